"""The investigator's calibration constants, shipped as data with how they were fitted.

The temperature and the "none of these" score turn raw scores into probabilities
(agents/investigator_scoring.py `calibrate`). They are fitted, not chosen, so they live
in resources/calibration/investigator.json beside the seeds, the scenarios and the date
of the fit, and `python -m benchmarks.bench_calibrate --write` refits and rewrites them.
A file that does not hold two finite positive-temperature numbers is refused by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

FILE = "investigator.json"


class CalibrationError(ValueError):
    """The shipped calibration file cannot be used (the message names file and field)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    temperature: float
    null_score: float
    fit: dict[str, Any] = field(default_factory=dict)  # how it was fitted, as written


def parse(text: str, source: str) -> Calibration:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{source}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected an object")
    out: dict[str, float] = {}
    for name in ("temperature", "null_score"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise CalibrationError(f"{source}: {name}: expected a finite number, got "
                                   f"{value!r}")
        out[name] = float(value)
    if out["temperature"] <= 0:
        raise CalibrationError(f"{source}: temperature: must be above 0, got "
                               f"{out['temperature']!r}")
    fit = {k: v for k, v in data.items() if k not in out}
    return Calibration(out["temperature"], out["null_score"], fit)


def load() -> Calibration:
    """The shipped calibration (resources/calibration/investigator.json)."""
    path = resources.files("resources").joinpath("calibration", FILE)
    return parse(path.read_text("utf-8"), f"resources/calibration/{FILE}")

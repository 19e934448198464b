"""The investigator's calibration constants, shipped as data with how they were fitted.

The weights of each kind of evidence make a candidate's raw score; the temperature and
the "none of these" score turn raw scores into probabilities
(agents/investigator_scoring.py `calibrate`). They are fitted, not chosen, so they live
in resources/calibration/investigator.json beside the seeds, the scenarios and the date
of the fit, and `python -m benchmarks.bench_calibrate --write` refits and rewrites them.
A file that does not hold two finite positive-temperature numbers, or whose weights are
not finite non-negative numbers of known kinds, is refused by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

FILE = "investigator.json"
# The kinds of evidence a weight may be given for (agents/investigator_scoring.py).
WEIGHT_KINDS = ("metric", "change", "log", "alert", "trend", "deeper")


class CalibrationError(ValueError):
    """The shipped calibration file cannot be used (the message names file and field)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    temperature: float
    null_score: float
    fit: dict[str, Any] = field(default_factory=dict)  # how it was fitted, as written
    weights: dict[str, float] = field(default_factory=dict)  # per evidence kind; missing:
    # the investigator's own defaults
    # (temperature, null score) of the causes after an incident's first (agents/causes.py):
    # a cause split off beside a stronger one is right less often than its raw score says,
    # so it has a calibration of its own. None: the first cause's.
    later: tuple[float, float] | None = None


def parse(text: str, source: str) -> Calibration:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{source}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: expected an object")
    temperature, null_score = _pair(data, source, "")
    weights = _weights(data.get("weights", {}), source)
    later = data.get("later_causes")
    if later is not None:
        if not isinstance(later, dict):
            raise CalibrationError(f"{source}: later_causes: expected an object, got "
                                   f"{later!r}")
        later = _pair(later, source, "later_causes.")
    fit = {k: v for k, v in data.items()
           if k not in ("temperature", "null_score", "weights")}
    return Calibration(temperature, null_score, fit, weights, later)


def _pair(data: dict[str, Any], source: str, where: str) -> tuple[float, float]:
    """The (temperature, null_score) of `data`, checked; `where` prefixes the field."""
    out: dict[str, float] = {}
    for name in ("temperature", "null_score"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise CalibrationError(f"{source}: {where}{name}: expected a finite number, "
                                   f"got {value!r}")
        out[name] = float(value)
    if out["temperature"] <= 0:
        raise CalibrationError(f"{source}: {where}temperature: must be above 0, got "
                               f"{out['temperature']!r}")
    return out["temperature"], out["null_score"]


def _weights(value: Any, source: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise CalibrationError(f"{source}: weights: expected an object, got {value!r}")
    out: dict[str, float] = {}
    for kind, weight in value.items():
        if kind not in WEIGHT_KINDS:
            raise CalibrationError(f"{source}: weights.{kind}: unknown kind; known: "
                                   f"{', '.join(WEIGHT_KINDS)}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or \
                not math.isfinite(weight) or weight < 0:
            raise CalibrationError(f"{source}: weights.{kind}: expected a finite number "
                                   f"of 0 or more, got {weight!r}")
        out[kind] = float(weight)
    return out


def load() -> Calibration:
    """The shipped calibration (resources/calibration/investigator.json)."""
    path = resources.files("resources").joinpath("calibration", FILE)
    return parse(path.read_text("utf-8"), f"resources/calibration/{FILE}")

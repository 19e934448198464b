"""The generated scenarios' families and the fixed seed split, apart from the generator:
`watchfloor` builds every command's parser on its way to the window, and the generator
brings the estate's models (pydantic, networkx) with it."""

from __future__ import annotations

FAMILIES = ("single", "double", "triple", "remedyless", "herring", "quiet", "pulse")
FIT_SEEDS = range(1000, 2000)  # weights and calibration are fitted on these only
REPORT_SEEDS_FROM = 2000  # every figure is reported on these
DEFAULT_REPORT_SEED = 2000
MAX_COUNT = 10_000


def split_of(seed: int) -> str:
    """Which side of the fixed split a generator seed is on: fit, report, or neither."""
    if seed in FIT_SEEDS:
        return "fit"
    return "report" if seed >= REPORT_SEEDS_FROM else "other"

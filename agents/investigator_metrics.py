"""How far a metric of a service has moved from its own normal, and since when.

The baseline is the service's own history before the incident (the hour before its
first alert, as far as the source still holds it). Levels are compared on a robust
scale: the noise is the median absolute difference between successive samples (so a
slow climb inside the baseline window does not pass for noise), never less than a floor
per metric that says what a meaningful move of that metric is (half a percent of error
rate, 15% of latency...). A rise is measured from the baseline's low decile and a fall
from its high decile: when a fault began inside the baseline window and is still on (a
leak, a surge that has lasted half an hour), the median has moved with it, but the
decile still holds the level from before it started.

A z of 3 is where "anomalous" starts; `severity` squashes z into [0, 1).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from console.sources.metrics import Point

# (relative floor of the reference, absolute floor) per metric: the smallest move that
# matters to an operator, whatever the noise says.
_FLOORS: dict[str, tuple[float, float]] = {
    "request_rate": (0.08, 0.5),
    "error_rate": (0.0, 0.004),
    "latency_p50_ms": (0.15, 1.0),
    "latency_p99_ms": (0.15, 2.0),
    "cpu": (0.05, 3.0),
    "memory": (0.0, 1.5),
    "disk": (0.0, 1.5),
    "queue_depth": (0.2, 50.0),
    "saturation": (0.08, 0.02),
    "instances_ready": (0.0, 0.2),
    "pool_usage": (0.0, 0.03),
    "cache_hit_ratio": (0.0, 0.02),
    "cert_expiry_hours": (0.0, 1.0),
}
Z_ANOMALOUS = 3.0
Z_NORMAL = 2.5  # back inside this band = the anomaly had not begun yet
MIN_BASELINE_POINTS = 6
EARLY_BASELINE_POINTS = 8  # a baseline taken from the first samples has this many


@dataclass(frozen=True, slots=True)
class MetricStat:
    """One metric of one service: its normal, its worst moves since the baseline ended,
    and when it left its normal band. z_high > 0 is a rise above the low decile, z_low < 0
    a fall below the high decile (both in units of `scale`); onsets are None when the
    move was never seen beginning."""

    service: str
    metric: str
    reference: float  # the baseline's median (what "normal" reads as)
    floor: float  # its low decile: rises are measured from here
    ceiling: float  # its high decile: falls are measured from here
    scale: float
    current: float
    high: float
    high_at: datetime
    low: float
    low_at: datetime
    z_high: float
    z_low: float
    onset_high: datetime | None
    onset_low: datetime | None
    points: int

    def rise(self) -> float:
        return severity(self.z_high)

    def fall(self) -> float:
        return severity(-self.z_low)

    def ref(self, high: bool = True) -> str:
        at = self.high_at if high else self.low_at
        return f"metric:{self.service}/{self.metric}@{at.isoformat()}"


def severity(z: float) -> float:
    """0 below 3 sigma, 0.33 at 5, 0.75 at 10, 0.98 at 23: how clearly it moved."""
    if not math.isfinite(z):
        return 0.0 if z < 0 or math.isnan(z) else 1.0
    return 1.0 - math.exp(-max(0.0, z - Z_ANOMALOUS) / 5.0)


def _floor(metric: str, reference: float) -> float:
    """The smallest move of the metric that matters, around `reference`."""
    rel, absolute = _FLOORS.get(metric, (0.1, 1e-6))
    return max(rel * abs(reference), absolute)


def _noise(values: Sequence[float]) -> float:
    if len(values) < 3:
        return 0.0
    diffs = [abs(b - a) for a, b in itertools.pairwise(values)]
    return 1.4826 * statistics.median(diffs) / math.sqrt(2.0)


def _smooth(points: Sequence[Point], width: int = 3) -> list[Point]:
    """Trailing mean of `width` samples: one noisy sample is not a move."""
    out: list[Point] = []
    acc = 0.0
    for i, (at, value) in enumerate(points):
        acc += value
        if i >= width:
            acc -= points[i - width][1]
        out.append((at, acc / min(i + 1, width)))
    return out


def analyse(service: str, metric: str, points: Sequence[Point], baseline_end: datetime,
            baseline_start: datetime, *, early: bool = False) -> MetricStat | None:
    """Compare the samples after `baseline_end` with those in [baseline_start,
    baseline_end]; None when there is not enough of either (or the values are not
    finite). `early`: with too little before `baseline_end`, the first samples are the
    baseline when they are quiet."""
    clean = [(at, v) for at, v in points if math.isfinite(v)]
    base = [v for at, v in clean if baseline_start <= at <= baseline_end]
    if early and len(base) < MIN_BASELINE_POINTS:
        # The source holds less history than the baseline wants (an incident opened
        # moments after the data begin): the first samples are the normal there is.
        # Only when those samples are quiet: a move already under way in them is no normal.
        early = [(at, v) for at, v in clean if at >= baseline_start][:EARLY_BASELINE_POINTS]
        values = [v for _, v in early]
        if len(early) >= MIN_BASELINE_POINTS and len(clean) > len(early) and \
                max(values) - min(values) <= 3.0 * _floor(metric, statistics.median(values)):
            baseline_end = early[-1][0]
            base = values
    after = [(at, v) for at, v in clean if at > baseline_end]
    if len(base) < MIN_BASELINE_POINTS or not after:
        return None
    ordered = sorted(base)
    reference = statistics.median(ordered)
    floor, ceiling = ordered[len(ordered) // 10], ordered[-1 - len(ordered) // 10]
    rel, absolute = _FLOORS.get(metric, (0.1, 1e-6))
    scale = max(_noise(base), rel * abs(reference), absolute)
    smoothed = _smooth(clean)
    tail = [(at, v) for at, v in smoothed if at > baseline_end]
    high_at, high = max(tail, key=lambda p: p[1])
    low_at, low = min(tail, key=lambda p: p[1])
    z_high = (high - floor) / scale
    z_low = (low - ceiling) / scale
    return MetricStat(
        service, metric, reference, floor, ceiling, scale,
        statistics.fmean(v for _, v in after[-3:]), high, high_at, low, low_at, z_high, z_low,
        _onset(smoothed, high_at, floor, scale, +1) if z_high >= Z_ANOMALOUS else None,
        _onset(smoothed, low_at, ceiling, scale, -1) if -z_low >= Z_ANOMALOUS else None,
        len(clean))


def _onset(smoothed: Sequence[Point], peak_at: datetime, reference: float, scale: float,
           sign: int) -> datetime | None:
    """The first sample of the run that leads to the peak without going back to normal."""
    index = next(i for i, (at, _) in enumerate(smoothed) if at == peak_at)
    for i in range(index, -1, -1):
        if sign * (smoothed[i][1] - reference) / scale < Z_NORMAL:
            return smoothed[min(i + 1, index)][0]
    return None

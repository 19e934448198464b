"""Two root-cause baselines, written from their published descriptions, that read the
same recording through the same `MetricsReader` as the investigator (so that only the
method differs, never the data):

- `zscore_ranking`: "the largest z-score against the baseline window" (N-Sigma, as in
  the RCAEval and PetShop comparisons): every metric of every service is standardised
  by its own baseline window (mean, standard deviation); a service scores the largest
  |z| any of its metrics reaches after the baseline, and services are ranked by it.
- `correlation_ranking`: "ranked correlation with the symptom series, filtered to the
  anomalous nodes" (the correlation baseline of the same comparisons): the services
  with some metric past 3 sigma are kept, and ranked by the largest absolute Spearman
  (rank) correlation of any of their metrics with the symptom's series over the
  window; the symptom's series is its named metric, else its most anomalous one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime

from console.recording import Recording
from console.sources.metrics import METRIC_NAMES, MetricsReader, Point

Z_ANOMALOUS = 3.0
# The symptom metrics of the datasets, in the investigator's names.
SYMPTOM_METRIC = {"latency": "latency_p99_ms", "availability": "error_rate",
                  "error": "error_rate", "requests": "request_rate"}


def _split(points: Sequence[Point], baseline_end: datetime) -> tuple[list[float], list[float]]:
    base = [v for at, v in points if at <= baseline_end and math.isfinite(v)]
    after = [v for at, v in points if at > baseline_end and math.isfinite(v)]
    return base, after


def max_z(points: Sequence[Point], baseline_end: datetime) -> float:
    base, after = _split(points, baseline_end)
    if len(base) < 2 or not after:
        return 0.0
    mean = statistics.fmean(base)
    std = statistics.pstdev(base)
    scale = std if std > 1e-9 * max(1.0, abs(mean)) else max(1e-9, 1e-3 * abs(mean))
    return max(abs(v - mean) / scale for v in after)


def _service_series(metrics: MetricsReader, service: str, start: datetime,
                    end: datetime) -> dict[str, list[Point]]:
    out = {}
    for metric in METRIC_NAMES:
        points = metrics.series(service, metric, start, end)
        if points:
            out[metric] = points
    return out


def zscore_ranking(recording: Recording, opened_at: datetime,
                   baseline_end: datetime) -> list[str]:
    metrics = recording.metrics()
    start = min((p[0][0] for p in recording.series.values() if p), default=recording.start)
    scores = {}
    for service in metrics.services():
        series = _service_series(metrics, service, start, recording.end)
        scores[service] = max((max_z(p, baseline_end) for p in series.values()), default=0.0)
    return sorted(scores, key=lambda s: (-scores[s], s))


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Spearman correlation over the timestamps both series have (0 when undefined)."""
    right = dict(b)
    pairs = [(v, right[at]) for at, v in a if at in right]
    if len(pairs) < 3:
        return 0.0
    x, y = _ranks([p[0] for p in pairs]), _ranks([p[1] for p in pairs])
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sx = math.sqrt(sum((v - mx) ** 2 for v in x))
    sy = math.sqrt(sum((v - my) ** 2 for v in y))
    if sx == 0 or sy == 0:
        return 0.0
    return sum((p - mx) * (q - my) for p, q in zip(x, y, strict=True)) / (sx * sy)


def correlation_ranking(recording: Recording, opened_at: datetime,
                        baseline_end: datetime) -> list[str]:
    metrics = recording.metrics()
    start = min((p[0][0] for p in recording.series.values() if p), default=recording.start)
    symptom_services = recording.symptom.services if recording.symptom else []
    named = SYMPTOM_METRIC.get(recording.symptom.metric, recording.symptom.metric) \
        if recording.symptom else ""
    target: list[Point] = []
    for service in symptom_services:
        series = _service_series(metrics, service, start, recording.end)
        if named in series:
            target = series[named]
        elif series:
            target = max(series.values(), key=lambda p: max_z(p, baseline_end))
        if target:
            break
    scores: dict[str, float] = {}
    for service in metrics.services():
        series = _service_series(metrics, service, start, recording.end)
        if not any(max_z(p, baseline_end) >= Z_ANOMALOUS for p in series.values()):
            continue
        scores[service] = max((abs(spearman(p, target)) for p in series.values()),
                              default=0.0) if target else 0.0
    return sorted(scores, key=lambda s: (-scores[s], s))

"""What an investigation could not check, and an answer even when no signature matched.

The investigator scores fault-class signatures; on telemetry nobody shaped for it (a
public dataset's recording, a half-instrumented estate) a real fault can match none of
them closely enough, and an empty list tells the operator nothing: neither where to look
nor why the investigator is silent. Two things follow from that:

- investigation gaps: for each service read, the golden signals it has no series of, and
  the series that could not be compared with a normal (too few samples before the
  symptom, nothing after it). They say why a service may be ranked low or not at all, so
  a missing series is never read as "nothing wrong there". Trace-derived series are
  kept for a few minutes around trouble only, and are compared edge by edge
  (agents/investigator_traces.py), not listed here.
- unranked candidates: every candidate service the scoring left out is still listed,
  after all the scored hypotheses, with confidence 0 (the calibration never scored it),
  ordered by how far its most-moved metric left its own normal - the plainest evidence
  there is, the one a z-score baseline reads (trace-derived series aside: a few
  minutes of samples make no normal) - and then the incident's own services
  before the rest (the trouble was seen there). The fault class is the one whose primary
  metric moved most; the evidence says that no signature matched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agents.investigator_metrics import MIN_BASELINE_POINTS, MetricStat
from agents.investigator_scoring import PRIMARY, ServiceView
from agents.investigator_text import describe_metric
from agents.investigator_traces import TRACE_PREFIX
from console.domain import Evidence, Hypothesis
from console.sources.metrics import Point

GOLDEN = ("error_rate", "latency_p99_ms")  # what a caller feels: read on every service


@dataclass(frozen=True, slots=True)
class Gap:
    """One thing the investigation could not check: `metric` of `service` ("" when the
    gap is the service's as a whole), `kind` one of missing / short_baseline /
    nothing_after, and a sentence for the operator."""

    service: str
    metric: str
    kind: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "metric": self.metric, "kind": self.kind,
                "detail": self.detail}


def gaps(views: Mapping[str, ServiceView], candidates: Iterable[str],
         reads: Callable[[ServiceView], Iterable[str]],
         series: Callable[[str, str], Sequence[Point]],
         baseline_start: datetime, baseline_end: datetime) -> list[Gap]:
    """The gaps of one investigation (see the module docstring), service by service:
    `reads` says which metrics the investigation read of a view, `series` reads one
    again (only those that had samples but gave no comparison are read twice)."""
    out: list[Gap] = []
    for service in sorted(set(candidates)):
        view = views.get(service)
        if view is None:
            continue  # the screen found nothing worth reading there: not a gap
        if not view.sampled and not view.latest:
            out.append(Gap(service, "", "missing",
                           f"{service}: the metrics source holds no series of it"))
            continue
        for metric in sorted(set(GOLDEN) | set(reads(view))):
            if metric in view.stats or metric.startswith(TRACE_PREFIX):
                continue
            # a metric read without a sample was empty: no need to ask again
            points = series(service, metric) if metric in view.sampled else ()
            if not points:
                if metric in GOLDEN:
                    out.append(Gap(service, metric, "missing",
                                   f"{service}: no {metric} series"))
                continue
            before = sum(1 for at, _ in points if baseline_start <= at <= baseline_end)
            after = sum(1 for at, _ in points if at > baseline_end)
            if before < MIN_BASELINE_POINTS:
                out.append(Gap(service, metric, "short_baseline",
                               f"{service}: {metric} has {before} sample(s) before "
                               f"{baseline_end.isoformat()}, {MIN_BASELINE_POINTS} are "
                               "needed to know its normal"))
            elif not after:
                out.append(Gap(service, metric, "nothing_after",
                               f"{service}: {metric} has no sample after "
                               f"{baseline_end.isoformat()}"))
    return out


def _moved(stat: MetricStat) -> tuple[float, bool]:
    """How far the metric left its normal band (z), and whether that was a rise."""
    return (stat.z_high, True) if stat.z_high >= -stat.z_low else (-stat.z_low, False)


def _class_of(metric: str, fault_classes: Sequence[str]) -> str:
    """The class whose primary metric this is (the first such, in the library's order),
    else the first class a golden signal dates (an error or latency move)."""
    for fault in fault_classes:
        if PRIMARY.get(fault) == metric:
            return fault
    for golden in GOLDEN:
        for fault in fault_classes:
            if PRIMARY.get(fault) == golden:
                return fault
    return fault_classes[0]


def unranked(views: Mapping[str, ServiceView], candidates: Iterable[str],
             symptoms: Iterable[str], ranked: Sequence[Hypothesis],
             fault_classes: Sequence[str]) -> list[Hypothesis]:
    """Hypotheses, confidence 0, for the candidates no scored hypothesis names."""
    if not fault_classes:
        return []
    named = {h.service for h in ranked}
    seen = set(symptoms)
    rows = []
    for service in sorted(set(candidates) - named):
        view = views.get(service)
        stats = [s for s in view.stats.values() if not s.metric.startswith(TRACE_PREFIX)] \
            if view is not None else []
        best = max(stats, key=lambda s: _moved(s)[0], default=None)
        z = _moved(best)[0] if best is not None else float("-inf")
        rows.append((-z, service not in seen, service, best))
    rows.sort(key=lambda row: row[:3])
    out = []
    for _, _, service, best in rows:
        if best is None:
            fault = _class_of("", fault_classes)
            evidence = Evidence("metric", f"{service}: no metric of it could be compared "
                                          "with its normal; no fault signature matched",
                                f"service:{service}", 0.0)
        else:
            z, rising = _moved(best)
            fault = _class_of(best.metric, fault_classes)
            at = best.high_at if rising else best.low_at
            evidence = Evidence("metric", f"no fault signature matched; its largest move: "
                                          f"{describe_metric(best, rising)}",
                                f"metric:{service}/{best.metric}@{at.isoformat()}", 0.0)
        out.append(Hypothesis(service, fault, 0.0, (evidence,), 0.0, 0))
    return out

"""Which readings say a cause is still there after an action on it, and when one counts.

The circuit breaker (agents/escalation.py) judges each action by the symptoms of the
cause it was meant for, not by whatever else is wrong on the service meanwhile: a
second fault downstream can keep a service's error rate up long after its own fault is
fixed, and a backlog keeps latency high while it drains. So:

- the cause's own metric comes first (the fault class's signature: a pool's usage, a
  consumer's intake that fell, a cache's hit ratio); the golden signals its callers
  feel (errors, latency) come after it, and only while the outcome is first judged;
- whether a fix lasted is judged on the cause's own metric alone; a class whose
  signature is only what callers feel (a partition drains instances by design) is
  judged on the service's errors;
- a reading is still a symptom only when it is anomalous against the hour before the
  incident, material (errors 2 points over normal, latency twice its normal), and not
  well on its way back (half its distance to normal gone since the action began);
- errors and latency are not held against the action when a service it calls went
  wrong after the action began (`downstream`): that is another fault, felt through the
  call.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from agents.investigator_metrics import Z_ANOMALOUS, MetricStat, analyse
from agents.investigator_scoring import PRIMARY
from console.sources.metrics import Point

Series = Callable[[str, str, datetime, datetime], Sequence[Point]]

# Metrics whose symptom is a fall, not a rise.
FALLS = frozenset({"cache_hit_ratio", "instances_ready", "cert_expiry_hours"})
# Fault classes whose own signature is a fall of a metric that otherwise rises.
_FALLING_SIGNATURE = {"queue_backlog": "request_rate"}  # stuck consumers take in less
# A symptom that has come back this much of the way to normal since the action counts as
# going away (the fix is taking hold), not as still there.
RECOVERED = 0.5


def own_metric(fault_class: str) -> str | None:
    """The cause's own signature metric, when it has one a fix must bring back."""
    if fault_class in _FALLING_SIGNATURE:
        return _FALLING_SIGNATURE[fault_class]
    if fault_class == "traffic_surge":
        return "saturation"  # traffic stays up once capacity has caught up
    if fault_class == "network_partition":
        return None  # drained instances stay out: what callers feel is what counts
    primary = PRIMARY.get(fault_class)
    return None if primary in (None, "request_rate") else primary


def symptom_metrics(fault_class: str) -> list[str]:
    """The cause's own metric first, then the golden signals its callers feel. A
    partition's are its errors alone: a drained zone leaves less capacity, and a slower
    service is the drain's price, not the partition still there."""
    if fault_class == "network_partition":
        return ["error_rate"]
    metrics = ["error_rate", "latency_p99_ms"]
    own = own_metric(fault_class)
    if own is not None and own not in metrics:
        metrics.insert(0, own)
    return metrics


def lasting_metrics(fault_class: str) -> list[str]:
    """What a fix's lasting is judged on: the cause's own metric, else its errors."""
    own = own_metric(fault_class)
    return [own] if own is not None else ["error_rate"]


def rises(fault_class: str, metric: str) -> bool:
    """Whether this metric's symptom for this cause is a rise (else a fall)."""
    if _FALLING_SIGNATURE.get(fault_class) == metric:
        return False
    return metric not in FALLS


def recovering(stat: MetricStat, was: float | None) -> bool:
    """Well on its way back: at least RECOVERED of the distance from its normal that it
    had when the action started is gone (a cache warms, a backlog drains)."""
    if was is None:
        return False
    gap_before = abs(was - stat.reference)
    return gap_before > stat.scale and \
        abs(stat.current - stat.reference) <= (1.0 - RECOVERED) * gap_before


def material(stat: MetricStat) -> bool:
    """Worth calling a symptom: errors at least 2 points over normal, latency at least
    twice its normal (a drained zone leaves less capacity, not an outage)."""
    if stat.metric == "error_rate":
        return stat.current - stat.reference >= 0.02
    if stat.metric == "latency_p99_ms":
        return stat.current >= 2.0 * stat.reference
    return True


def still_wrong(stat: MetricStat, rising: bool) -> bool:
    moved = (stat.current - stat.floor) if rising else (stat.ceiling - stat.current)
    return moved / stat.scale >= Z_ANOMALOUS


GOLDEN = ("error_rate", "latency_p99_ms")  # what callers feel, whoever is at fault


def downstream(series: Series, callees: Iterable[str], action_at: datetime, now: datetime,
               baseline: tuple[datetime, datetime]) -> str | None:
    """A service this one calls whose own errors or latency went wrong after the action
    began (normal in the samples just before it, wrong now), in words; None when there
    is none. Then what the service's golden signals show is that other fault, felt
    through the call, not the cause the action was for (explain-away over the graph)."""
    start, end = baseline
    for callee in callees:
        for metric in GOLDEN:
            points = list(series(callee, metric, start, now))
            stat = analyse(callee, metric, points, end, start)
            if stat is None or not (still_wrong(stat, True) and material(stat)):
                continue
            before = [v for at, v in points if end < at < action_at][-3:]
            if before and (statistics.fmean(before) - stat.reference) / stat.scale \
                    < Z_ANOMALOUS:
                return (f"{metric} of {callee}, which it calls, went wrong after the action "
                        f"({stat.current:.4g}, normal {stat.reference:.4g})")
    return None

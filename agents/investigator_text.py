"""The sentences an operator reads in an evidence list: short, with the numbers."""

from __future__ import annotations

from datetime import UTC, datetime

from agents.investigator_metrics import MetricStat
from console.domain import ChangeEvent

_PERCENT = frozenset({"error_rate", "pool_usage", "cache_hit_ratio", "saturation"})
_UNITS = {"latency_p50_ms": " ms", "latency_p99_ms": " ms", "cpu": "%", "memory": "%",
          "disk": "%", "request_rate": " req/s", "queue_depth": " messages",
          "cert_expiry_hours": " h", "instances_ready": " ready"}


def hhmmss(at: datetime | float) -> str:
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def value(metric: str, number: float) -> str:
    if metric in _PERCENT:
        return f"{number:.1%}"
    if abs(number) >= 100:
        return f"{number:.0f}{_UNITS.get(metric, '')}"
    return f"{number:.3g}{_UNITS.get(metric, '')}"


def describe_metric(stat: MetricStat, rising: bool = True) -> str:
    level = stat.high if rising else stat.low
    z = stat.z_high if rising else stat.z_low
    onset = stat.onset_high if rising else stat.onset_low
    since = f" since {hhmmss(onset)}" if onset is not None else ""
    verb = "rose" if rising else "fell"
    return (f"{stat.service} {stat.metric} {verb} to {value(stat.metric, level)} from a normal "
            f"of {value(stat.metric, stat.floor if rising else stat.ceiling)} ({z:+.0f} sigma)"
            f"{since}")


def describe_change(change: ChangeEvent, onset: float | None) -> str:
    what = change.description or f"{change.kind} change"
    if change.version_to:
        what = f"{change.kind} {change.service} {change.version_from or '?'} -> " \
               f"{change.version_to}"
    when = f"at {hhmmss(change.at)}"
    if onset is not None:
        lead = onset - change.at.timestamp()
        when += (f", {lead / 60:.0f} min before the anomaly began" if lead >= 60
                 else f", {max(lead, 0):.0f} s before the anomaly began")
    return f"{what} ({change.kind} by {change.author}) {when}"

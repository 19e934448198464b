"""Proactive checks: rule steps that read metric history and warn before an alert fires.

Three questions a night shift would rather hear about at 22:00 than at 03:00:
- `expiry`: a value counting down is under a threshold now (a certificate that expires
  within two weeks, long before the 72-hour alert);
- `forecast`: a straight line fitted to the recent window reaches a limit within a
  horizon (a disk that will be full in four hours while it is still at 60 %);
- `burn_rate`: the error budget of an objective burns faster than a factor over a long
  and a short window at once (the multi-window burn rate: the long window says it is
  real, the short one that it is still going on), well under any error-rate alert.

A check looks at every service its metrics source knows (narrowed by the step's and the
rule's `services`), and each finding becomes a low-severity alert signal of the rule
(source `rule:ID`) with its numbers as annotations: stored like any signal and correlated
like any alert, so it opens an incident with that evidence, and a finding that clears
resolves it. A maintenance window holds it back like any other alert. Nothing here
touches an executor.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.metrics import MetricsReader, Point
from console.yamlpos import Duration

_ALERT = r"^[A-Za-z][A-Za-z0-9_]{0,99}$"
_METRIC = r"^[a-z][a-z0-9_]{0,60}$"
PRODUCES = ("check.findings", "check.detail")


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else (value,)


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alert: str = Field(pattern=_ALERT, description="the name of the warning's alert")
    metric: str = Field(pattern=_METRIC)
    services: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ("*",)
    severity: Severity = Severity.INFO
    templates: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[tuple[str, ...]] = PRODUCES


class Expiry(_Check):
    """The latest value is under `below` (a countdown such as cert_expiry_hours)."""

    do: Literal["expiry"]
    below: float


class Forecast(_Check):
    """A least-squares line over `window` reaches `reaches` within `within`."""

    do: Literal["forecast"]
    reaches: float
    within: Duration = Field(gt=0, le=30 * 86400)
    window: Duration = Field(1800.0, ge=300, le=7 * 86400)
    min_points: int = Field(5, ge=3, le=10000)
    min_fit: float = Field(0.6, ge=0, le=1, description="R² below this is noise, not a trend")


class BurnRate(_Check):
    """The error budget (1 - objective) burns at `factor` times or more over both the
    `long` and the `short` window (the metric is a failing fraction, 0-1)."""

    do: Literal["burn_rate"]
    metric: str = Field("error_rate", pattern=_METRIC)
    objective: float = Field(gt=0, lt=1)
    factor: float = Field(gt=0, le=1000)
    long: Duration = Field(3600.0, ge=300, le=30 * 86400)
    short: Duration = Field(300.0, ge=60, le=86400)

    @model_validator(mode="after")
    def _windows(self) -> BurnRate:
        if self.short >= self.long:
            raise ValueError("the short window must be shorter than the long one")
        return self


CHECK_STEPS = (Expiry, Forecast, BurnRate)


@dataclass(frozen=True, slots=True)
class Finding:
    service: str
    summary: str
    evidence: dict[str, str] = field(default_factory=dict)


def _covered(points: list[Point], start: datetime, span: float) -> bool:
    """The series reaches back over at least half the window (a fresh start is no trend)."""
    return bool(points) and (points[-1][0] - points[0][0]).total_seconds() >= span / 2 \
        and points[0][0] <= start + timedelta(seconds=span / 2)


def _expiry(step: Expiry, metrics: MetricsReader, service: str,
            now: datetime) -> Finding | None:
    latest = metrics.latest(service).get(step.metric)
    if latest is None or latest >= step.below:
        return None
    return Finding(service, f"{service} {step.metric} is {latest:.1f}, under {step.below:g}",
                   {"value": f"{latest:.3f}", "below": f"{step.below:g}"})


def _forecast(step: Forecast, metrics: MetricsReader, service: str,
              now: datetime) -> Finding | None:
    start = now - timedelta(seconds=step.window)
    points = metrics.series(service, step.metric, start, now)
    if len(points) < step.min_points or not _covered(points, start, step.window):
        return None
    xs = [(at - points[0][0]).total_seconds() for at, _ in points]
    ys = [value for _, value in points]
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None  # flat: nothing is moving towards the limit
    slope, _ = statistics.linear_regression(xs, ys)
    fit = statistics.correlation(xs, ys) ** 2
    latest = ys[-1]
    gap = step.reaches - latest
    if slope == 0 or gap == 0 or (gap > 0) != (slope > 0) or fit < step.min_fit:
        return None
    eta = gap / slope
    if eta > step.within:
        return None
    at = now + timedelta(seconds=eta)
    return Finding(service, f"{service} {step.metric} is {latest:.1f} and moving "
                   f"{slope * 3600:+.1f}/h; it reaches {step.reaches:g} in about "
                   f"{eta / 3600:.1f} h ({at:%H:%M} UTC)",
                   {"value": f"{latest:.3f}", "per_hour": f"{slope * 3600:.3f}",
                    "reaches": f"{step.reaches:g}", "hours_left": f"{eta / 3600:.2f}",
                    "r2": f"{fit:.3f}", "points": str(len(points)),
                    "window_s": f"{step.window:g}",
                    "first": f"{points[0][0].isoformat()} {points[0][1]:.3f}",
                    "last": f"{points[-1][0].isoformat()} {points[-1][1]:.3f}"})


def _burn_rate(step: BurnRate, metrics: MetricsReader, service: str,
               now: datetime) -> Finding | None:
    budget = 1.0 - step.objective
    rates: dict[str, float] = {}
    for name, span in (("long", step.long), ("short", step.short)):
        start = now - timedelta(seconds=span)
        points = metrics.series(service, step.metric, start, now)
        if not _covered(points, start, span):
            return None
        rates[name] = statistics.fmean(v for _, v in points) / budget
    if min(rates.values()) < step.factor:
        return None
    return Finding(service, f"{service} burns its error budget ({step.objective:.2%} "
                   f"objective) {rates['long']:.1f}x over {step.long / 60:g} min and "
                   f"{rates['short']:.1f}x over {step.short / 60:g} min (warn at "
                   f"{step.factor:g}x)",
                   {"burn_long": f"{rates['long']:.2f}", "burn_short": f"{rates['short']:.2f}",
                    "objective": f"{step.objective:g}", "factor": f"{step.factor:g}",
                    "long_s": f"{step.long:g}", "short_s": f"{step.short:g}"})


_CHECKS: dict[type, Callable[..., Finding | None]] = {
    Expiry: _expiry, Forecast: _forecast, BurnRate: _burn_rate}


def findings(step: Any, metrics: MetricsReader, allowed: Callable[[str], bool],
             now: datetime) -> list[Finding]:
    """The step's findings over every service it may look at, in name order."""
    check = _CHECKS[type(step)]
    out = []
    for service in sorted(metrics.services()):
        if allowed(service) and any(fnmatchcase(service, g) for g in step.services):
            found = check(step, metrics, service, now)
            if found is not None:
                out.append(found)
    return out


def signals(rule_id: str, step: Any, found: Iterable[Finding], was_firing: Iterable[str],
            now: datetime) -> tuple[list[Signal], set[str]]:
    """The warnings as alert signals: firing for each finding, resolved for a service
    that was firing and is found no more; returns them and the services firing now."""
    found = list(found)
    firing = {f.service for f in found}
    out = [_signal(rule_id, step, f.service, AlertStatus.FIRING, now,
                   {"summary": f.summary, **f.evidence}) for f in found]
    out += [_signal(rule_id, step, service, AlertStatus.RESOLVED, now,
                    {"summary": f"{service}: {step.alert} no longer holds"})
            for service in sorted(set(was_firing) - firing)]
    return out, firing


def _signal(rule_id: str, step: Any, service: str, status: AlertStatus, now: datetime,
            annotations: Mapping[str, str]) -> Signal:
    labels = {"alertname": step.alert, "service": service, "severity": step.severity.value,
              "rule": rule_id, "check": step.do}
    return Signal(f"rule:{rule_id}", SignalKind.ALERT, step.alert, service, step.severity,
                  status, now, labels, dict(annotations))

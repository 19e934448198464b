"""The impact tracer: who feels a hypothesised cause, and how badly.

From the cause it walks the dependency graph up through every caller to the entry points
(services nothing calls, such as the storefront), rates each service on what its users
see now against its own baseline (error rate and p99 latency, and traffic collapsing),
and lists the user-facing paths (entry point -> ... -> cause) with the worst state along
each. It reads the same metrics as the investigator and never the estate itself.

States: `none` (within its normal), `degraded` (errors or latency clearly above normal),
`critical` (past what the alert rules call critical: 5% errors, 5x p99), `down` (half
or more failing, or its traffic gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.investigator_metrics import MetricStat, analyse
from console.domain import Hypothesis, IncidentInfo
from console.sources.metrics import MetricsReader

STATES = ("none", "degraded", "critical", "down")
MAX_PATHS = 25
_READS = ("error_rate", "latency_p99_ms", "request_rate")


@dataclass(frozen=True, slots=True)
class ServiceImpact:
    service: str
    state: str  # none | degraded | critical | down
    why: str  # the numbers behind the state
    ref: str  # metric:<service>/<metric>@<time> of the worst figure ("" without metrics)


@dataclass(frozen=True, slots=True)
class UserPath:
    services: tuple[str, ...]  # entry point -> ... -> cause
    state: str  # the worst state along it


@dataclass(frozen=True, slots=True)
class Impact:
    """What a cause does to the estate: per service, per user-facing path, in one line."""

    cause: str
    fault_class: str
    state: str  # the worst state of any affected service
    services: tuple[ServiceImpact, ...]  # the cause, then its callers, worst first
    paths: tuple[UserPath, ...]  # worst first
    entry_points: tuple[str, ...]  # the user-facing services reached
    summary: str

    @property
    def affected(self) -> tuple[str, ...]:
        return tuple(s.service for s in self.services if s.state != "none")


class ImpactTracer:
    name = "impact_tracer"

    def __init__(self, metrics: MetricsReader, topology: Mapping[str, Iterable[str]], *,
                 baseline: timedelta = timedelta(hours=1),
                 baseline_gap: timedelta = timedelta(minutes=2)) -> None:
        self.metrics = metrics
        self.baseline = baseline
        self.baseline_gap = baseline_gap
        self.callers: dict[str, set[str]] = {}
        for service, deps in topology.items():
            self.callers.setdefault(service, set())
            for dep in deps:
                if dep != service:
                    self.callers.setdefault(dep, set()).add(service)
        self.callees: dict[str, set[str]] = {s: set() for s in self.callers}
        for dep, callers in self.callers.items():
            for caller in callers:
                self.callees[caller].add(dep)

    def trace(self, incident: IncidentInfo, hypothesis: Hypothesis | str,
              now: datetime) -> Impact:
        """The impact of `hypothesis` (or of a bare service name) on the estate at `now`."""
        cause = hypothesis if isinstance(hypothesis, str) else hypothesis.service
        fault = "" if isinstance(hypothesis, str) else hypothesis.fault_class
        reached = {cause} | self._ancestors(cause)
        if fault == "traffic_surge":  # the extra load flows down, not up
            reached |= self._descendants(cause)
        first_alert = min(incident.opened_at, now)
        rated = {s: self._rate(s, first_alert, now) for s in sorted(reached)}
        paths = [UserPath(path, _worst(rated[s].state for s in path))
                 for path in self._paths(cause)]
        paths.sort(key=lambda p: (-STATES.index(p.state), len(p.services), p.services))
        order = sorted(rated.values(), key=lambda r: (r.service != cause,
                                                      -STATES.index(r.state), r.service))
        entries = tuple(sorted({p.services[0] for p in paths}))
        worst = _worst(r.state for r in rated.values())
        return Impact(cause, fault, worst, tuple(order), tuple(paths[:MAX_PATHS]), entries,
                      _summary(cause, fault, worst, order, paths, entries))

    # --- rating -------------------------------------------------------------------------

    def _rate(self, service: str, first_alert: datetime, now: datetime) -> ServiceImpact:
        start, end = first_alert - self.baseline, first_alert - self.baseline_gap
        stats: dict[str, MetricStat] = {}
        newest: dict[str, tuple[datetime, float]] = {}
        for metric in _READS:
            points = self.metrics.series(service, metric, start, now)
            if points:
                newest[metric] = points[-1]
            stat = analyse(service, metric, points, end, start)
            if stat is not None:
                stats[metric] = stat
        if not newest:
            return ServiceImpact(service, "none", "no metrics", "")
        state, why, ref = "none", [], ""

        def worse(to: str, reason: str, metric: str) -> None:
            nonlocal state, ref
            why.append(reason)
            if STATES.index(to) > STATES.index(state):
                state = to
                at = newest[metric][0]
                ref = f"metric:{service}/{metric}@{at.isoformat()}"

        if "error_rate" in newest:
            errors = _current(stats.get("error_rate"), newest["error_rate"][1])
            normal = stats["error_rate"].floor if "error_rate" in stats else 0.0
            text = f"{errors:.1%} errors (normal {normal:.1%})"
            if errors >= 0.5:
                worse("down", text, "error_rate")
            elif errors >= 0.05:
                worse("critical", text, "error_rate")
            elif errors >= max(0.01, 3 * normal):
                worse("degraded", text, "error_rate")
        p99 = stats.get("latency_p99_ms")
        if p99 is not None and p99.floor > 0:
            ratio = p99.current / p99.floor
            text = f"p99 {p99.current:.0f} ms ({ratio:.1f}x normal)"
            if ratio >= 5:
                worse("critical", text, "latency_p99_ms")
            elif ratio >= 2 and p99.z_high >= 3:
                worse("degraded", text, "latency_p99_ms")
        rate = stats.get("request_rate")
        if rate is not None and rate.ceiling > 0 and rate.current < 0.1 * rate.ceiling:
            worse("down", f"traffic {rate.current:.0f} req/s (normal {rate.ceiling:.0f})",
                  "request_rate")
        if not ref:
            metric = next(iter(newest))
            ref = f"metric:{service}/{metric}@{newest[metric][0].isoformat()}"
        return ServiceImpact(service, state, "; ".join(why) or "within its normal", ref)

    # --- the graph ---------------------------------------------------------------------

    def _ancestors(self, service: str) -> set[str]:
        return _reach(service, self.callers)

    def _descendants(self, service: str) -> set[str]:
        return _reach(service, self.callees)

    def _paths(self, cause: str) -> list[tuple[str, ...]]:
        """Every simple path from an entry point down to the cause (at most MAX_PATHS * 4)."""
        out: list[tuple[str, ...]] = []
        stack: list[tuple[str, ...]] = [(cause,)]
        while stack and len(out) < MAX_PATHS * 4:
            path = stack.pop()
            callers = sorted(self.callers.get(path[0], set()) - set(path))
            if not callers:
                out.append(path)
            stack.extend((caller, *path) for caller in reversed(callers))
        return out


def _current(stat: MetricStat | None, newest: float) -> float:
    return stat.current if stat is not None else newest


def _worst(states: Iterable[str]) -> str:
    return max(states, key=STATES.index, default="none")


def _reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen and node != start:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def _summary(cause: str, fault: str, worst: str, rated: list[ServiceImpact],
             paths: list[UserPath], entries: tuple[str, ...]) -> str:
    what = f"{fault.replace('_', ' ')} on {cause}" if fault else cause
    hit = [r for r in rated if r.state != "none"]
    if not hit:
        return f"{what}: no service shows errors or latency beyond its normal yet"
    parts = ", ".join(f"{r.service} {r.state}" for r in hit[:6])
    more = f" and {len(hit) - 6} more" if len(hit) > 6 else ""
    users = [p for p in paths if p.state != "none"]
    if users and entries:
        top = users[0]
        reach = (f"; users feel it through {len(users)} path(s) from "
                 f"{', '.join(sorted({p.services[0] for p in users}))}, worst "
                 f"{' -> '.join(top.services)} ({top.state})")
    else:
        reach = "; no user-facing path is affected yet"
    return f"{what}: {len(hit)} service(s) affected, worst {worst} ({parts}{more}){reach}"

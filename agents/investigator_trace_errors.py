"""Where failures start, read from the trace-derived error series.

A span that fails marks its service's own share of failed spans (span metrics' status
codes: `trace_error_rate`), and a failed call marks the caller -> callee edge (the
service graph's failed requests: `trace_call_error_rate:<callee>` under the caller).
Failures travel *up* the call graph: a callee that fails makes its callers' spans fail
too, never the other way round. So, as the PetShop authors walk the call graph down
from the symptom while the next service is as anomalous, the origin is where the walk
stops:

- a service's failing got worse when its own spans fail more than they did before the
  symptom (the least of its earlier samples: trace minutes are kept around trouble, so
  the earlier ones are often an earlier fault's, which only ever adds failures), or
  when every caller's calls into it fail more;
- it passes failures on, and is not where they start, when a call it makes fails at
  least half as much more, or a callee's own spans do;
- its callers that fail too only report its failures: their candidates lose as much as
  it gains (agents/investigator_traces.py `with_traces`).

A service asked for twice the calls of the minutes before is not blamed: an overloaded
service sheds calls (a surge upstream) with no fault of its own, which the metrics' load
signatures tell apart. A share of failed spans is read, never a count (a busy service
fails more calls at the same health), and a rise of less than RISE is noise. Without error series nothing is
read or scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from agents.investigator_traces import LOADED, TraceFinding, more_calls
from console.sources.metrics import Point

ERROR_RATE = "trace_error_rate"
CALL_ERRORS = "trace_call_error_rate"  # + ":<callee>", under the caller
CALLS = "trace_calls_per_min"  # the service's own spans a minute
RISE = 0.02  # two more spans in a hundred failing: less is noise
HALF = 0.1  # the rise (ten more in a hundred) at which the strength is one half
FAULT = "bad_deploy"  # failing code, as an error-rate signature reads it


def _rise(points: Sequence[Point], end: datetime) -> float | None:
    before = [v for at, v in points if at <= end]
    after = [v for at, v in points if at > end]
    if not before or not after:
        return None  # no normal to compare with, or nothing since
    return max(after) - min(before)


def error_findings(latest: Mapping[str, Mapping[str, float]],
                   series: Callable[[str, str], Sequence[Point]], baseline_end: datetime,
                   callees: Mapping[str, Sequence[str]]) -> dict[str, TraceFinding]:
    """The services the error series point at (see the module docstring); `latest` is
    each service's newest samples by metric (which series exist), `series(service,
    metric)` reads one, `callees` is the call graph."""
    own: dict[str, float] = {}
    edge: dict[tuple[str, str], float] = {}
    prefix = CALL_ERRORS + ":"
    newest: dict[tuple[str, str], datetime] = {}  # what the evidence links to
    for service, names in latest.items():
        for metric in names:
            if metric == ERROR_RATE or metric.startswith(prefix):
                points = series(service, metric)
                rise = _rise(points, baseline_end)
                if rise is None:
                    continue
                newest[(service, metric)] = points[-1][0]
                if metric == ERROR_RATE:
                    own[service] = rise
                else:
                    edge[(service, metric[len(prefix):])] = rise
    if not own and not edge:
        return {}
    into: dict[str, list[float]] = {}
    for (_, callee), rise in edge.items():
        into.setdefault(callee, []).append(rise)
    found: dict[str, TraceFinding] = {}
    for service in sorted(set(own) | set(into)):
        mine = own.get(service, 0.0)
        felt = min(into.get(service, [0.0]))
        worse = max(mine, felt)
        if worse < RISE:
            continue
        if more_calls(series(service, CALLS), baseline_end) >= LOADED:
            continue  # asked for that much more: an overload sheds calls with no fault there
        below = [edge.get((service, c), 0.0) for c in callees.get(service, ())] + \
                [own.get(c, 0.0) for c in callees.get(service, ())]
        if max(below, default=0.0) >= worse / 2:
            continue  # it passes on what fails below it: the walk goes on down
        callers = tuple(sorted(a for (a, b), rise in edge.items()
                               if b == service and rise >= RISE)
                        or sorted(a for a, deps in callees.items()
                                  if service in deps and own.get(a, 0.0) >= RISE))
        how = (f"{mine:.0%} more of its own spans fail" if mine >= felt else
               f"calls into it fail {felt:.0%} more, from every caller")
        metric = ERROR_RATE if mine >= felt else f"{CALL_ERRORS}:{service}"
        where = service if mine >= felt else min(a for (a, b) in edge if b == service)
        found[service] = TraceFinding(
            service, worse / (worse + HALF),
            f"{service} fails where it did not before the symptom (traces: {how}); "
            f"none of what it calls fails as much, so the failures start there",
            f"metric:{where}/{metric}@{newest[(where, metric)].isoformat()}", worse, FAULT,
            callers)
    return found

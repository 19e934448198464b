"""Where a slowdown starts, read from trace-derived series (span metrics, service graph).

A call from A to B is measured twice: by A's client span (B's work, the network between
them, and A's own waiting to be scheduled) and by B's server span (B's work only). That
is what separates the causes a per-service metric cannot tell apart:

- a delay on the way to B (the network, B's pod being throttled before it answers)
  raises the client side of *every* call into B while B's server side stays where it
  was;
- B's own trouble raises both sides of its calls, more than B's own calls to its
  dependencies rose (what B waits for is not B's fault);
- a caller starved of CPU raises the client side of *all* its calls, whoever answers
  them: one origin (the caller) explains all those edges, where blaming the callees
  would need one cause each.

A callee whose callers sent it twice the calls of the minutes before is not blamed:
queueing on load slows its spans as a fault would (a surge upstream, a cache's misses),
and only the metrics' load signatures tell those apart.

Each edge's latency after the symptom (the median) is compared with its own earlier
samples (the lowest: see `_rise`), in log ratio, with a small absolute floor so that a
fast call moving by a millisecond is no event. The score of a service is the largest of:

    into(B)  = min over B's callers of the client-side rise of their calls to B, less
               what B itself waits for (the largest client-side rise of B's own calls),
               and discounted by how much that caller's other calls slowed too; when B's
               own spans slowed, every call B makes must have been read (else it may be
               waiting on the one that was not);
    caller(A) = the median over A's calls (three or more) of their client-side rise
               beyond their server-side rise.

Series names: console/recording_traces.py (`trace_call_p50_ms:<callee>` under the caller,
`trace_call_server_p99_ms:<callee>`); with no such series, nothing is read or scored.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.investigator_scoring import Candidate, Part, ServiceView
from console.sources.metrics import Point

TRACE_PREFIX = "trace_"  # every trace-derived series: sparse, read per edge here
CALL_P50 = "trace_call_p50_ms"
CALL_SERVER_P99 = "trace_call_server_p99_ms"
CALL_RATE = "trace_call_rate_per_min"
# A median of fewer calls than this in a minute is too noisy to compare: an edge whose
# typical minute carries fewer is not read (an edge without a call count is).
MIN_CALLS_PER_MIN = 10.0
FLOOR_MS = 5.0  # a latency moving by less than about this much is no event
SLOW = math.log(1.5)  # a call half again as slow as before is slowed
HALF = math.log(2.0)
MIN_BEFORE = 2  # samples of an edge before the symptom: one minute is no normal  # the score's half-way point: a doubling counts 0.5
RECENT = timedelta(minutes=5)  # the minutes before the symptom a change of load is read in
# Handed twice the calls it had, a service has used the headroom services are run with
# (half their capacity or so): its slowness or failures may be the load's alone.
LOADED = math.log(2.0)


@dataclass(frozen=True, slots=True)
class TraceFinding:
    """A service the traces point at: `strength` in [0, 1) (`raw`: the log ratio it
    comes from), and a sentence saying why."""

    service: str
    strength: float
    summary: str
    ref: str
    raw: float
    fault: str  # the fault class it reads as (a starved caller's, a slow callee's)
    # the callers that only wait for it: their own slowness is this one's
    waiting: tuple[str, ...] = ()


def _rise(points: Sequence[Point], end: datetime) -> float | None:
    before = [v for at, v in points if at <= end]
    after = [v for at, v in points if at > end]
    if len(before) < MIN_BEFORE or not after:
        return None
    # The normal is the lowest sample before: the minutes kept before the symptom are
    # often those of an earlier fault (traces are kept around trouble), which only ever
    # adds latency - as the metrics' rises are measured from the baseline's low decile.
    return math.log((statistics.median(after) + FLOOR_MS) / (min(before) + FLOOR_MS))


def more_calls(points: Sequence[Point], end: datetime) -> float:
    """How much the calls a minute rose after `end` over the minutes just before it (log
    ratio of the medians; 0 without MIN_BEFORE samples in those minutes, or none after).
    A service given twice as many calls queues them: its spans slow with no fault of
    its own (a surge upstream, a cache's misses), which the metrics' load signatures tell
    apart and the traces cannot. Only the minutes just before count: traces kept around
    earlier trouble say how many calls were traced then, not how many a normal minute
    brings."""
    before = [v for at, v in points if end - RECENT < at <= end]
    after = [v for at, v in points if at > end]
    if len(before) < MIN_BEFORE or not after:
        return 0.0
    return math.log((statistics.median(after) + 1.0) / (statistics.median(before) + 1.0))


def _edges(latest: Mapping[str, Mapping[str, float]]) -> list[tuple[str, str]]:
    prefix = CALL_P50 + ":"
    return sorted({(caller, metric[len(prefix):]) for caller, names in latest.items()
                   for metric in names if metric.startswith(prefix)})


def trace_findings(latest: Mapping[str, Mapping[str, float]],
                   series: Callable[[str, str], Sequence[Point]],
                   baseline_end: datetime) -> dict[str, TraceFinding]:
    """The services the trace-derived series point at (see the module docstring);
    `latest` is each service's newest samples by metric (which series exist),
    `series(service, metric)` reads one."""
    edges = _edges(latest)
    if not edges:
        return {}
    client: dict[tuple[str, str], float] = {}
    server: dict[tuple[str, str], float] = {}
    refs: dict[tuple[str, str], str] = {}
    more: dict[tuple[str, str], float] = {}  # log ratio of calls a minute, after/before
    for caller, callee in edges:
        rates = series(caller, f"{CALL_RATE}:{callee}")
        rate = [v for _, v in rates]
        if rate and statistics.median(rate) < MIN_CALLS_PER_MIN:
            continue
        more[(caller, callee)] = more_calls(rates, baseline_end)
        points = series(caller, f"{CALL_P50}:{callee}")
        c = _rise(points, baseline_end)
        if c is None:
            continue
        client[(caller, callee)] = c
        # a link to the newest sample read, as every metric's evidence links one
        refs[(caller, callee)] = (f"metric:{caller}/{CALL_P50}:{callee}"
                                  f"@{points[-1][0].isoformat()}")
        s = _rise(series(caller, f"{CALL_SERVER_P99}:{callee}"), baseline_end)
        server[(caller, callee)] = s if s is not None else 0.0
    unread = {caller for caller, callee in edges if (caller, callee) not in client}
    calls_of: dict[str, list[tuple[str, str]]] = {}
    calls_into: dict[str, list[tuple[str, str]]] = {}
    for edge in client:
        calls_of.setdefault(edge[0], []).append(edge)
        calls_into.setdefault(edge[1], []).append(edge)
    found: dict[str, TraceFinding] = {}
    for caller, out in calls_of.items():
        if len(out) < 3:
            continue  # with two calls, one slow callee would look like a slow caller
        together = statistics.median(client[e] - max(0.0, server[e]) for e in out)
        if together >= SLOW:
            found[caller] = _finding(caller, together,
                                     f"most of the {len(out)} kinds of call {caller} makes "
                                     f"slowed together (client side x{math.exp(together):.1f}"
                                     f" beyond their callees' own spans): {caller} itself is "
                                     "slow to make them",
                                     refs[out[0]],
                                     "cpu_saturation")
    for callee, into in calls_into.items():
        feel = min(client[e] for e in into)
        waits = max((client[e] for e in calls_of.get(callee, ())), default=0.0)
        excuse = max((_starved(e[0], callee, calls_of, client, server) for e in into),
                     default=0.0)
        own = (feel - max(0.0, waits)) * (1.0 - min(1.0, excuse / max(feel, 1e-9)))
        if own < SLOW or own <= (found[callee].raw if callee in found else 0.0):
            continue
        if statistics.median(more.get(e, 0.0) for e in into) >= LOADED:
            continue  # its callers sent it that much more: the load's slowness, not its own
        side = max(server[e] for e in into)
        if side >= SLOW and callee in unread:
            continue  # its own spans slowed, but some of what it waits for was not read
        where = ("its own spans slowed as much" if side >= SLOW else
                 "its own spans did not: the delay is on the way to it")
        found[callee] = _finding(callee, own,
                                 f"every caller's calls to {callee} slowed (client side "
                                 f"x{math.exp(feel):.1f} at least, {len(into)} caller(s)); "
                                 f"{where}",
                                 refs[into[0]],
                                 "slow_dependency", tuple(sorted(e[0] for e in into)))
    return found


def _starved(caller: str, callee: str, calls_of: Mapping[str, list[tuple[str, str]]],
             client: Mapping[tuple[str, str], float],
             server: Mapping[tuple[str, str], float]) -> float:
    """How much the caller's other calls slowed beyond their callees' own spans (the
    median of them; 0 with fewer than two others): what a starved caller adds to all."""
    others = [e for e in calls_of.get(caller, ()) if e[1] != callee]
    if len(others) < 2:
        return 0.0
    return max(0.0, statistics.median(client[e] - max(0.0, server[e]) for e in others))


def _finding(service: str, raw: float, summary: str, ref: str, fault: str,
             waiting: tuple[str, ...] = ()) -> TraceFinding:
    return TraceFinding(service, raw / (raw + HALF), summary, ref, raw, fault, waiting)


def with_traces(ranked: list[Candidate], views: Mapping[str, ServiceView],
                findings: Mapping[str, TraceFinding], fault_classes: Sequence[str],
                weight: float) -> list[Candidate]:
    """The ranking with the traces' findings as evidence: on the service's best-scored
    candidate, or on a new one of the finding's class when the metrics scored none (a
    delay on the network shows in no metric of the delayed service); and against the
    candidates of the callers that only wait for it (their metrics show its slowness as
    theirs), as much as for it. Best first again."""
    if not findings or not fault_classes:
        return ranked
    for service, finding in sorted(findings.items()):
        if service not in views:
            continue  # not a candidate of this incident
        mine = [c for c in ranked if c.service == service]
        if mine:
            target = max(mine, key=lambda c: c.score)
        else:
            fault = finding.fault if finding.fault in fault_classes else fault_classes[0]
            target = Candidate(service, fault, 0.0)
            ranked.append(target)
        target.parts.append(Part("trace", finding.summary, finding.ref,
                                 weight * finding.strength))
        target.add("trace", weight, finding.strength)
        for cand in ranked:
            if cand.service in finding.waiting and cand.service not in findings:
                cand.parts.append(Part("topology", f"its calls to {service} slowed as much "
                                                   f"(traces): it waits for {service}",
                                       finding.ref, -weight * finding.strength))
                cand.add("trace", weight, -finding.strength)
    ranked.sort(key=lambda c: (-c.score, c.service, c.fault_class))
    return ranked

"""The spans the estate's traffic makes, seen as a tracing backend sums them up.

The estate simulates no single request, only each service's traffic, latency and errors
per tick; the spans those requests would leave follow from them. A call from A to B is a
client span on A and a server span on B:

- B's server span lasts what B's published latency says (its own work and what it waits
  for) and fails as often as B's error rate says;
- A's client span lasts that plus the network hop, and ends at A's timeout when B takes
  longer; it also fails when A gave up waiting (B's p99 past the timeout) or could not
  shake hands with B (B's certificate expired).

So a slow dependency shows on every caller's client spans into it, and its errors travel
up as the estate's physics already sends them. Nothing here reads a fault: only the
metrics the estate has just published, so the spans never tell more than a real
tracing pipeline would. Each tick's spans go two ways: into `SpanHistory` (what the
console's own investigator reads, under the names a recording's trace-derived series get,
console/recording_traces.py) and, once the estate is scraped, into the cumulative
counters and histograms of its exposition (console/estate/span_exposition.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from console.recording_traces import (
    CALL_ERROR_RATE,
    CALL_P50,
    CALL_RATE,
    CALL_SERVER_P99,
    SERVICE_METRICS,
)

NET_P50_MS = 0.4  # the estate's network: one hop, median and tail
NET_P99_MS = 2.0
TLS_REFUSED = 0.95  # the share of handshakes an expired certificate fails
TRACE_PREFIX = "trace_"  # every trace-derived series' name starts so
KEEP_POINTS = 720  # per series: three hours at the collection interval
COLLECTION_INTERVAL_S = 15.0


@dataclass(frozen=True, slots=True)
class Calls:
    """One tick of one kind of span: calls per second, the share that failed, and the
    latency's median and 99th percentile in milliseconds."""

    rate: float
    failed: float
    p50_ms: float
    p99_ms: float


@dataclass(slots=True)
class SpanTick:
    """The spans of one tick: each service's server spans, and per caller -> callee
    edge the callee's server side and the caller's client side of the same calls."""

    at: float
    dt: float
    server: dict[str, Calls] = field(default_factory=dict)
    edge_server: dict[tuple[str, str], Calls] = field(default_factory=dict)
    edge_client: dict[tuple[str, str], Calls] = field(default_factory=dict)


def _timeout_share(p99_ms: float, timeout_ms: float) -> float:
    """The share of calls a caller abandons: the estate's own rule for timeouts."""
    if p99_ms <= timeout_ms:
        return 0.0
    return min(0.6, (p99_ms - timeout_ms) / timeout_ms * 0.3 + 0.05)


def spans_of(at: float, dt: float, calls: Mapping[str, Iterable[str]],
             metrics: Mapping[str, Mapping[str, float]], timeout_ms: float) -> SpanTick:
    """The spans one tick's published metrics imply; `calls`: each service's callees
    (request/response dependencies; a worker draining a queue makes no such call);
    `timeout_ms`: how long a caller waits before it gives up."""
    tick = SpanTick(at, dt)
    for service, m in metrics.items():
        tick.server[service] = Calls(m.get("request_rate", 0.0), m.get("error_rate", 0.0),
                                     m.get("latency_p50_ms", 0.0), m.get("latency_p99_ms", 0.0))
    callers: dict[str, list[str]] = {}
    for caller, callees in calls.items():
        for callee in callees:
            callers.setdefault(callee, []).append(caller)
    for callee, who in callers.items():
        served = tick.server.get(callee)
        if served is None:
            continue
        # a callee's traffic is its callers' calls, shared as their own traffic is
        weights = [max(tick.server[c].rate, 0.0) if c in tick.server else 0.0 for c in who]
        total = sum(weights)
        refused = TLS_REFUSED if metrics[callee].get("cert_expiry_hours", 1.0) <= 0 else 0.0
        given_up = _timeout_share(served.p99_ms, timeout_ms)
        ok = (1.0 - min(served.failed, 1.0)) * (1.0 - given_up) * (1.0 - refused)
        cap = timeout_ms + NET_P99_MS
        for caller, weight in zip(who, weights, strict=True):
            share = weight / total if total > 0 else 1.0 / len(who)
            rate = served.rate * share
            tick.edge_server[(caller, callee)] = Calls(rate, served.failed, served.p50_ms,
                                                       served.p99_ms)
            tick.edge_client[(caller, callee)] = Calls(
                rate, 1.0 - ok, min(served.p50_ms + NET_P50_MS, cap),
                min(served.p99_ms + NET_P99_MS, cap))
    return tick


@dataclass(slots=True)
class _Series:
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, at: datetime, value: float) -> None:
        self.times.append(at)
        self.values.append(value)
        if len(self.times) > 2 * KEEP_POINTS:  # trimmed in batches: appends stay cheap
            del self.times[:KEEP_POINTS]
            del self.values[:KEEP_POINTS]


class SpanHistory:
    """The spans per service, under the trace-derived series' names: a caller's calls to
    a callee under the caller (`trace_call_p50_ms:<callee>` ...), a service's own spans
    under it (`trace_latency_p50_ms` ...), at the moments the estate's clock says (`origin`
is its start): a read hands back stored points without making any.

    A sample is the mean of the ticks of one collection interval, as a metrics generator
    flushes what it counted every so often (Tempo: every 15 s): a tracing backend's series
    are that coarse, and an investigation reads a third of the points a tick-by-tick
    history would hand it."""

    def __init__(self, origin: datetime, interval_s: float = COLLECTION_INTERVAL_S) -> None:
        self.origin = origin
        self.interval_s = interval_s
        self._series: dict[tuple[str, str], _Series] = {}
        self._latest: dict[str, dict[str, float]] = {}
        self._sums: dict[tuple[str, str], list[float]] = {}  # [sum, ticks] this interval
        self._flush_at = 0.0

    def add(self, tick: SpanTick) -> None:
        for service, own in tick.server.items():
            self._count(service, dict(zip(SERVICE_METRICS, (
                own.p50_ms, own.p99_ms, own.rate * 60.0, min(max(own.failed, 0.0), 1.0)),
                strict=True)))
        for (caller, callee), client in tick.edge_client.items():
            server = tick.edge_server[(caller, callee)]
            self._count(caller, {f"{CALL_P50}:{callee}": client.p50_ms,
                                 f"{CALL_SERVER_P99}:{callee}": server.p99_ms,
                                 f"{CALL_RATE}:{callee}": client.rate * 60.0,
                                 f"{CALL_ERROR_RATE}:{callee}": min(max(client.failed, 0.0),
                                                                   1.0)})
        if tick.at >= self._flush_at - 1e-9:
            self._flush(tick.at)

    def _count(self, service: str, values: Mapping[str, float]) -> None:
        for metric, value in values.items():
            cell = self._sums.setdefault((service, metric), [0.0, 0.0])
            cell[0] += value
            cell[1] += 1.0

    def _flush(self, at: float) -> None:
        moment = self.origin + timedelta(seconds=at)
        for (service, metric), (total, n) in self._sums.items():
            value = total / n
            self._series.setdefault((service, metric), _Series()).add(moment, value)
            self._latest.setdefault(service, {})[metric] = value
        self._sums = {}
        while self._flush_at <= at + 1e-9:
            self._flush_at += self.interval_s

    def latest(self, service: str) -> dict[str, float]:
        return dict(self._latest.get(service, {}))

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[tuple[datetime, float]]:
        """The samples in [start, end], oldest first."""
        found = self._series.get((service, metric))
        if found is None:
            return []
        lo, hi = bisect_left(found.times, start), bisect_right(found.times, end)
        return list(zip(found.times[lo:hi], found.values[lo:hi], strict=True))


class EstateSpans:
    """The estate's spans: every tick into the history; and, from the moment an
    exposition asks for them (`counting`), kept for it to fold into its counters at the
    next scrape, so that an estate nobody scrapes spends nothing on histograms."""

    def __init__(self, calls: Mapping[str, Iterable[str]], timeout_ms: float,
                 origin: datetime) -> None:
        self.calls = {service: tuple(callees) for service, callees in calls.items()}
        self.timeout_ms = timeout_ms
        self.history = SpanHistory(origin)
        self.counting = False
        self._pending: list[SpanTick] = []

    def observe(self, at: float, dt: float,
                metrics: Mapping[str, Mapping[str, float]]) -> None:
        tick = spans_of(at, dt, self.calls, metrics, self.timeout_ms)
        self.history.add(tick)
        if self.counting and dt > 0:
            self._pending.append(tick)

    def take_pending(self) -> list[SpanTick]:
        pending, self._pending = self._pending, []
        return pending

"""The estate's spans as a tracing backend exposes them to Prometheus: the series, names
and labels of Grafana Tempo's metrics generator.

- span metrics, per service: `traces_spanmetrics_calls_total` and the
  `traces_spanmetrics_latency` histogram, by `service`, `span_name`, `span_kind`
  (`SPAN_KIND_SERVER` for the calls a service serves, `SPAN_KIND_CLIENT` for those it
  makes) and `status_code` (`STATUS_CODE_UNSET` / `STATUS_CODE_ERROR`);
- the service graph, per `client` -> `server` edge: `traces_service_graph_request_total`,
  `..._request_failed_total` (failed on either side), and the
  `..._request_server_seconds` / `..._request_client_seconds` histograms (the callee's
  span, and the caller's span of the same call, which includes the network).

Counters and histograms are cumulative from the moment the estate was first scraped, as
a generator's are from its start. A tick's latencies are spread over the buckets as a
log-normal with the tick's median and 99th percentile (the usual shape of service
latency), so `histogram_quantile` gives the percentiles back to within a bucket. The
buckets are finer than Tempo's defaults (a generator's buckets are configurable): half
octaves, so that a call half again as slow lands in another bucket.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from console.estate.spans import Calls, SpanTick

# 1 ms .. about 65 s in half octaves, in seconds
BUCKETS = tuple(round(0.001 * 2 ** (k / 2), 6) for k in range(33))
_LOG_BUCKETS = tuple(math.log(b * 1000.0) for b in BUCKETS)  # in log milliseconds
Z99 = 2.3263478740408408  # the standard normal's 99th percentile
OK, ERROR = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"
SERVER, CLIENT = "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"


class _Histogram:
    """Cumulative bucket counts, sum (seconds) and count of one labelled series."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0.0] * len(BUCKETS)
        self.count = 0.0
        self.total = 0.0

    def observe(self, n: float, p50_ms: float, p99_ms: float) -> None:
        if n <= 0:
            return
        mu = math.log(max(p50_ms, 1e-3))
        sigma = max(math.log(max(p99_ms, p50_ms, 1e-3)) - mu, 1e-3) / Z99
        # only the buckets within a few sigma move by less than all or nothing
        lo = bisect_left(_LOG_BUCKETS, mu - 6 * sigma)
        hi = bisect_right(_LOG_BUCKETS, mu + 6 * sigma)
        scale = 1.0 / (sigma * math.sqrt(2.0))
        for i in range(lo, hi):
            self.buckets[i] += n * 0.5 * (1.0 + math.erf((_LOG_BUCKETS[i] - mu) * scale))
        for i in range(hi, len(BUCKETS)):
            self.buckets[i] += n
        self.count += n
        self.total += n * math.exp(mu + sigma * sigma / 2.0) / 1000.0

    def as_buckets(self) -> list[tuple[str, float]]:
        return [*((f"{b:g}", v) for b, v in zip(BUCKETS, self.buckets, strict=True)),
                ("+Inf", self.count)]


class SpanCounters:
    """The cumulative series of every tick folded in so far."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str, str], float] = {}
        self.latency: dict[tuple[str, str, str, str], _Histogram] = {}
        self.requests: dict[tuple[str, str], float] = {}
        self.failed: dict[tuple[str, str], float] = {}
        self.server_seconds: dict[tuple[str, str], _Histogram] = {}
        self.client_seconds: dict[tuple[str, str], _Histogram] = {}

    def fold(self, tick: SpanTick) -> None:
        for service, own in tick.server.items():
            self._spans((service, "serve", SERVER), own, tick.dt)
        for (caller, callee), client in tick.edge_client.items():
            self._spans((caller, f"call {callee}", CLIENT), client, tick.dt)
            n = client.rate * tick.dt
            edge = (caller, callee)
            self.requests[edge] = self.requests.get(edge, 0.0) + n
            self.failed[edge] = self.failed.get(edge, 0.0) + n * _share(client.failed)
            server = tick.edge_server[edge]
            self.server_seconds.setdefault(edge, _Histogram()).observe(
                n, server.p50_ms, server.p99_ms)
            self.client_seconds.setdefault(edge, _Histogram()).observe(
                n, client.p50_ms, client.p99_ms)

    def _spans(self, key: tuple[str, str, str], calls: Calls, dt: float) -> None:
        n = calls.rate * dt
        failed = _share(calls.failed)
        for status, part in ((OK, n * (1.0 - failed)), (ERROR, n * failed)):
            labels = (*key, status)
            self.calls[labels] = self.calls.get(labels, 0.0) + part
            self.latency.setdefault(labels, _Histogram()).observe(part, calls.p50_ms,
                                                                  calls.p99_ms)

    def families(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        own = ["service", "span_name", "span_kind", "status_code"]
        calls = CounterMetricFamily("traces_spanmetrics_calls", "spans, by service, name, "
                                    "kind and status", labels=own)
        for labels, value in sorted(self.calls.items()):
            calls.add_metric(list(labels), value)
        yield calls
        latency = HistogramMetricFamily("traces_spanmetrics_latency", "span duration (s)",
                                        labels=own)
        for labels, hist in sorted(self.latency.items()):
            latency.add_metric(list(labels), hist.as_buckets(), hist.total)
        yield latency
        edge = ["client", "server"]
        for name, counts in (("request", self.requests), ("request_failed", self.failed)):
            family = CounterMetricFamily(f"traces_service_graph_{name}",
                                         f"calls from client to server ({name})", labels=edge)
            for labels, value in sorted(counts.items()):
                family.add_metric(list(labels), value)
            yield family
        for side, hists in (("server", self.server_seconds), ("client", self.client_seconds)):
            family = HistogramMetricFamily(f"traces_service_graph_request_{side}_seconds",
                                           f"duration of the {side} span of a call (s)",
                                           labels=edge)
            for labels, hist in sorted(hists.items()):
                family.add_metric(list(labels), hist.as_buckets(), hist.total)
            yield family


def _share(value: float) -> float:
    return min(max(value, 0.0), 1.0)

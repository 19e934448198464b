"""The trace-derived series `watchfloor record` asks a Prometheus for, when it has them.

Tracing backends turn spans into Prometheus series: Grafana Tempo's metrics generator
(`traces_spanmetrics_*` by `service`), the OpenTelemetry collector's spanmetrics
connector (`traces_span_metrics_*`, older releases without the prefix, by
`service_name`, durations in milliseconds or seconds), and the service graph of either
(`traces_service_graph_*` by `client` and `server`). Which of them a Prometheus holds is
asked once (the metric names it has over the window), and each is recorded in the shape
the recording's reader expects (console/recording_traces.py): per-service span counters
and latency percentiles, per-edge call counters and the caller's and callee's latency
percentiles. The percentiles are worked out by Prometheus itself (`histogram_quantile`
over a rate window), so no bucket is copied; the counters are recorded as they are.

A service's own spans are the ones it serves (span kind server or consumer): its calls
to others are read per edge, from the service graph. What is missing is said in the
manifest (`traces`), so that an investigation of the recording can say it could not
read traces rather than saying nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SERVED = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"'
ERROR = 'status_code="STATUS_CODE_ERROR"'
GRAPH_CALLS = "traces_service_graph_request_total"
GRAPH_FAILED = "traces_service_graph_request_failed_total"
GRAPH_SIDES = {"client": "traces_service_graph_request_client_seconds_bucket",
               "server": "traces_service_graph_request_server_seconds_bucket"}


@dataclass(frozen=True, slots=True)
class SpanMetricsKind:
    """One backend's span metrics: its names, its service label and its duration unit
    (seconds per unit of its buckets)."""

    name: str
    calls: str
    buckets: str
    service_label: str
    seconds_per_unit: float


KINDS = (
    SpanMetricsKind("tempo", "traces_spanmetrics_calls_total",
                    "traces_spanmetrics_latency_bucket", "service", 1.0),
    SpanMetricsKind("otel-collector", "traces_span_metrics_calls_total",
                    "traces_span_metrics_duration_milliseconds_bucket", "service_name", 0.001),
    SpanMetricsKind("otel-collector", "traces_span_metrics_calls_total",
                    "traces_span_metrics_duration_seconds_bucket", "service_name", 1.0),
    SpanMetricsKind("otel-collector", "calls_total", "duration_milliseconds_bucket",
                    "service_name", 0.001),
)


def _by_service(kind: SpanMetricsKind, expr: str) -> str:
    """`expr` with the backend's service label named `service`, as the recording reads."""
    if kind.service_label == "service":
        return expr
    return f'label_replace({expr}, "service", "$1", "{kind.service_label}", "(.+)")'


def _quantile(q: float, buckets: str, by: str, window: str, scale: float,
              kind: SpanMetricsKind | None = None) -> str:
    """The q-quantile (in seconds) of a histogram over a rate window, by `by`; with a
    span metrics' `kind`, its service label is renamed after the rate (a range applies to
    a selector only). `>= 0` drops the NaN of a window without a call."""
    rate = f"rate({buckets}[{window}])"
    if kind is not None:
        rate = _by_service(kind, rate)
    scaled = f" * {scale:g}" if scale != 1.0 else ""
    return f"(histogram_quantile({q:g}, sum by ({by}, le) ({rate})){scaled}) >= 0"


@dataclass(frozen=True, slots=True)
class TraceQueries:
    """What the Prometheus holds of trace-derived series, and the queries that record it."""

    span_metrics: str | None  # the backend found, None without span metrics
    service_graph: bool
    queries: tuple[tuple[str, str], ...]

    def manifest(self) -> dict[str, Any]:
        """The manifest's `traces` entry (console/recording.py, `Traces`)."""
        gaps = []
        if self.span_metrics is None:
            gaps.append("the Prometheus held no span metrics (traces_spanmetrics_* or "
                        "traces_span_metrics_*): no service's own spans were recorded")
        if not self.service_graph:
            gaps.append("the Prometheus held no service graph (traces_service_graph_*): "
                        "no call between services was recorded")
        return {"span_metrics": self.span_metrics, "service_graph": self.service_graph,
                "series": [name for name, _ in self.queries], "gaps": gaps}


def trace_queries(names: Iterable[str], window_s: float) -> TraceQueries:
    """The queries for the trace-derived series among `names` (the metric names the
    Prometheus holds), with `window_s` seconds of rate window for the percentiles."""
    have = set(names)
    window = f"{max(1, round(window_s))}s"
    queries: list[tuple[str, str]] = []
    kind = next((k for k in KINDS if k.calls in have and k.buckets in have), None)
    if kind is not None:
        served = f"{kind.calls}{{{SERVED}}}"
        failed = f"{kind.calls}{{{SERVED},{ERROR}}}"
        buckets = f"{kind.buckets}{{{SERVED}}}"
        queries += [
            ("traces_spanmetrics_calls_total",
             f"sum by (service) ({_by_service(kind, served)})"),
            ("traces_spanmetrics_errors_total",
             f"sum by (service) ({_by_service(kind, failed)})"),
            *((f"traces_spanmetrics_latency_{p}_seconds",
               _quantile(q, buckets, "service", window, kind.seconds_per_unit, kind))
              for p, q in (("p50", 0.5), ("p99", 0.99))),
        ]
    graph = GRAPH_CALLS in have and all(b in have for b in GRAPH_SIDES.values())
    if graph:
        queries += [
            ("traces_service_graph_request_total",
             f"sum by (client, server) ({GRAPH_CALLS})"),
            *((("traces_service_graph_request_failed_total",
                f"sum by (client, server) ({GRAPH_FAILED})"),) if GRAPH_FAILED in have
              else ()),
            ("traces_service_graph_request_client_p50_seconds",
             _quantile(0.5, GRAPH_SIDES["client"], "client, server", window, 1.0)),
            ("traces_service_graph_request_client_p99_seconds",
             _quantile(0.99, GRAPH_SIDES["client"], "client, server", window, 1.0)),
            ("traces_service_graph_request_server_p99_seconds",
             _quantile(0.99, GRAPH_SIDES["server"], "client, server", window, 1.0)),
        ]
    return TraceQueries(kind.name if kind else None, graph, tuple(queries))

"""Trace-derived series of a recording, as the investigator reads them per service.

Grafana Tempo's metrics generator (and the OpenTelemetry collector's spanmetrics
connector) turn spans into Prometheus series: per service (`traces_spanmetrics_*`:
span counts, latency percentiles, errors) and per caller -> callee edge
(`traces_service_graph_*`: call counts, the callee's server-side latency and the
caller's client-side latency, which includes the network between them). The
investigator keys its series by (service, metric), so each edge is kept under its caller,
with the callee in the metric's name:

- `trace_call_p50_ms:<callee>`: the caller's client-side median latency of its calls to
  that callee - what it waits for, the network between them included;
- `trace_call_server_p99_ms:<callee>`: the callee's server-side p99 of the same calls -
  its own spans; a delay on the way to it shows above, not here;
- `trace_call_rate_per_min:<callee>`: how many such calls a minute (a percentile of a
  handful of calls is noise);
- `trace_call_error_rate:<callee>`: the share of those calls that failed (the service
  graph's `traces_service_graph_request_failed_total`), where the source has it;
- `trace_latency_p50_ms` / `_p99_ms`, `trace_calls_per_min`, `trace_error_rate`: the
  service's own spans (all of them), their count per minute and the share that failed.

Counters become per-minute increases between successive samples (traces may be kept
for a few minutes only, so samples can be minutes apart); a counter that went down was
reset and gives no sample.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from console.recording import RawSeries
from console.sources.metrics import Point

SPAN_P50 = "traces_spanmetrics_latency_p50_seconds"
SPAN_P99 = "traces_spanmetrics_latency_p99_seconds"
SPAN_CALLS = "traces_spanmetrics_calls_total"
SPAN_ERRORS = "traces_spanmetrics_errors_total"
EDGE_CLIENT_P50 = "traces_service_graph_request_client_p50_seconds"
EDGE_SERVER_P99 = "traces_service_graph_request_server_p99_seconds"
CALL_P50 = "trace_call_p50_ms"  # + ":<callee>", under the caller
CALL_SERVER_P99 = "trace_call_server_p99_ms"
CALL_RATE = "trace_call_rate_per_min"
EDGE_CALLS = "traces_service_graph_request_total"
EDGE_FAILED = "traces_service_graph_request_failed_total"
CALL_ERROR_RATE = "trace_call_error_rate"  # + ":<callee>", under the caller
SERVICE_METRICS = ("trace_latency_p50_ms", "trace_latency_p99_ms", "trace_calls_per_min",
                   "trace_error_rate")
Cells = dict[tuple[str, int], list[float]]


def _slot(ts: float, grid_start: float, step: float) -> int:
    return round((ts - grid_start) / step)


def _gauge(series: list[RawSeries], labels_of: Callable[[Mapping[str, str]], tuple[str, str]],
           grid_start: float, step: float, scale: float, out: dict[str, Cells]) -> None:
    """Samples into cells[metric][(service, slot)]; `labels_of` names the (service,
    metric) a series belongs to, ("", "") for none."""
    for labels, points in series:
        service, metric = labels_of(labels)
        if service:
            cells = out.setdefault(metric, {})
            for ts, value in points:
                cells.setdefault((service, _slot(ts, grid_start, step)), []).append(
                    value * scale)


def _own(metric: str) -> Callable[[Mapping[str, str]], tuple[str, str]]:
    return lambda labels: (labels.get("service", ""), metric)


def _edge(metric: str) -> Callable[[Mapping[str, str]], tuple[str, str]]:
    def labels_of(labels: Mapping[str, str]) -> tuple[str, str]:
        client, server = labels.get("client", ""), labels.get("server", "")
        return (client, f"{metric}:{server}") if client and server else ("", "")
    return labels_of


def _increase(series: list[RawSeries], label: str | Callable[[Mapping[str, str]], str],
              grid_start: float, step: float) -> dict[tuple[str, int], float]:
    """Per-minute increase of each counter, summed per key (a label's value, or what
    `label` makes of the labels) and grid slot."""
    out: dict[tuple[str, int], float] = {}
    for labels, points in series:
        key_of = label(labels) if callable(label) else labels.get(label, "")
        ordered = sorted(points)
        for (t0, c0), (t1, c1) in zip(ordered, ordered[1:], strict=False):
            if key_of and t1 > t0 and c1 >= c0:
                key = (key_of, _slot(t1, grid_start, step))
                out[key] = out.get(key, 0.0) + (c1 - c0) * 60.0 / (t1 - t0)
    return out


def _edge_key(labels: Mapping[str, str]) -> str:
    client, server = labels.get("client", ""), labels.get("server", "")
    return f"{client}\n{server}" if client and server else ""


def _failed_calls(raw: Mapping[str, list[RawSeries]], grid_start: float, step: float,
                  cells: dict[str, Cells]) -> None:
    """The share of each caller -> callee edge's calls that failed, per slot, from the
    service graph's counters (a failed call is the callee's failure or one of what it
    waits for, seen from the caller: agents/investigator_trace_errors.py)."""
    failed = _increase(raw.get(EDGE_FAILED, []), _edge_key, grid_start, step)
    if not failed:
        return
    calls = _increase(raw.get(EDGE_CALLS, []), _edge_key, grid_start, step)
    for (edge, slot), value in failed.items():
        total = calls.get((edge, slot), 0.0)
        if total > 0:
            caller, callee = edge.split("\n", 1)
            cells.setdefault(f"{CALL_ERROR_RATE}:{callee}", {})[(caller, slot)] = [
                min(1.0, value / total)]


def trace_series(raw: Mapping[str, list[RawSeries]], grid_start: float,
                 step: float) -> dict[tuple[str, str], list[Point]]:
    """The trace-derived series of one recording (see the module docstring); {} when it
    holds none."""
    cells: dict[str, Cells] = {}
    _gauge(raw.get(EDGE_CLIENT_P50, []), _edge(CALL_P50), grid_start, step, 1000.0, cells)
    _gauge(raw.get(EDGE_SERVER_P99, []), _edge(CALL_SERVER_P99), grid_start, step, 1000.0,
           cells)
    _gauge(raw.get(SPAN_P50, []), _own("trace_latency_p50_ms"), grid_start, step, 1000.0,
           cells)
    _gauge(raw.get(SPAN_P99, []), _own("trace_latency_p99_ms"), grid_start, step, 1000.0,
           cells)
    for (edge, slot), value in _increase(
            raw.get(EDGE_CALLS, []),
            lambda labels: f"{labels.get('client', '')}\n{labels.get('server', '')}"
            if labels.get("client") and labels.get("server") else "",
            grid_start, step).items():
        caller, callee = edge.split("\n", 1)
        cells.setdefault(f"{CALL_RATE}:{callee}", {})[(caller, slot)] = [value]
    _failed_calls(raw, grid_start, step, cells)
    calls = _increase(raw.get(SPAN_CALLS, []), "service", grid_start, step)
    for key, value in calls.items():
        cells.setdefault("trace_calls_per_min", {})[key] = [value]
    for key, failed in _increase(raw.get(SPAN_ERRORS, []), "service", grid_start,
                                 step).items():
        if calls.get(key, 0.0) > 0:
            cells.setdefault("trace_error_rate", {})[key] = [min(1.0, failed / calls[key])]
    out: dict[tuple[str, str], list[Point]] = {}
    for metric, by in cells.items():
        for (service, slot), values in sorted(by.items()):
            at = datetime.fromtimestamp(grid_start + slot * step, UTC)
            out.setdefault((service, metric), []).append((at, statistics.fmean(values)))
    return out

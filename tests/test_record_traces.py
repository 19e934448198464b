"""What `watchfloor record` asks a Prometheus for of trace-derived series, by the metric
names it holds, and how a recording says what it lacked."""

from __future__ import annotations

import json
from pathlib import Path

from console.record_traces import GRAPH_CALLS, GRAPH_FAILED, GRAPH_SIDES, KINDS, trace_queries
from console.recording import load_recording

GRAPH = [GRAPH_CALLS, GRAPH_FAILED, *GRAPH_SIDES.values()]


def test_tempos_series_are_recorded_under_the_names_the_reader_knows() -> None:
    found = trace_queries(["up", "traces_spanmetrics_calls_total",
                           "traces_spanmetrics_latency_bucket", *GRAPH], 120)
    names = dict(found.queries)
    assert found.span_metrics == "tempo" and found.service_graph
    assert set(names) == {
        "traces_spanmetrics_calls_total", "traces_spanmetrics_errors_total",
        "traces_spanmetrics_latency_p50_seconds", "traces_spanmetrics_latency_p99_seconds",
        "traces_service_graph_request_total", "traces_service_graph_request_failed_total",
        "traces_service_graph_request_client_p50_seconds",
        "traces_service_graph_request_client_p99_seconds",
        "traces_service_graph_request_server_p99_seconds"}
    assert "[120s]" in names["traces_spanmetrics_latency_p50_seconds"]
    assert "STATUS_CODE_ERROR" in names["traces_spanmetrics_errors_total"]
    assert "label_replace" not in names["traces_spanmetrics_calls_total"]
    assert found.manifest()["gaps"] == []


def test_the_collectors_service_label_and_milliseconds_are_brought_to_tempos() -> None:
    kind = next(k for k in KINDS if k.buckets.endswith("_milliseconds_bucket"))
    found = trace_queries([kind.calls, kind.buckets], 60)
    names = dict(found.queries)
    assert found.span_metrics == "otel-collector" and not found.service_graph
    assert '"service", "$1", "service_name"' in names["traces_spanmetrics_calls_total"]
    assert "* 0.001" in names["traces_spanmetrics_latency_p99_seconds"]
    assert [g for g in found.manifest()["gaps"] if "service graph" in g]


def test_a_prometheus_without_traces_is_recorded_as_a_gap() -> None:
    found = trace_queries(["up", "watchfloor_service_error_rate"], 60)
    assert found.queries == ()
    manifest = found.manifest()
    assert manifest["span_metrics"] is None and manifest["service_graph"] is False
    assert len(manifest["gaps"]) == 2
    # a half-exported histogram (no buckets) is not read as span metrics
    assert trace_queries(["traces_spanmetrics_calls_total"], 60).span_metrics is None


def _body(series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> str:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[t, str(v)] for t, v in points]}
        for labels, points in series]}})


def _recording(folder: Path, traces: dict[str, object], with_edges: bool) -> Path:
    (folder / "metrics").mkdir(parents=True)
    t0 = 1_700_000_000
    (folder / "metrics" / "watchfloor_service_error_rate.json").write_text(_body(
        [({"service": s}, [(t0 + 60 * k, 0.01) for k in range(10)]) for s in ("a", "b")]))
    if with_edges:
        (folder / "metrics" / "traces_service_graph_request_client_p50_seconds.json"
         ).write_text(_body([({"client": "a", "server": "b"},
                              [(t0 + 60 * k, 0.02) for k in range(10)])]))
    (folder / "manifest.json").write_text(json.dumps({
        "format": "watchfloor.recording/1", "name": "r",
        "window": {"start": t0, "end": t0 + 540, "step": 60},
        "symptom": {"services": ["a"]}, "traces": traces}))
    return folder


def test_a_recording_reads_its_trace_series_and_says_what_it_lacked(tmp_path: Path) -> None:
    with_edges = load_recording(_recording(tmp_path / "one", trace_queries(
        GRAPH, 60).manifest(), with_edges=True))
    assert len(with_edges.series[("a", "trace_call_p50_ms:b")]) == 10
    assert with_edges.metrics().latest("a")["trace_call_p50_ms:b"] == 20.0
    assert any("no span metrics" in note for note in with_edges.notes)
    bare = load_recording(_recording(tmp_path / "two", trace_queries([], 60).manifest(),
                                     with_edges=False))
    assert not [key for key in bare.series if key[1].startswith("trace_")]
    assert sum("traces:" in note for note in bare.notes) == 2

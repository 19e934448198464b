"""The embedded estate's spans: what its traffic makes a tracing backend count, on its
Prometheus exposition (Tempo's names and labels) and to the console's own investigator
(the trace-derived series a recording gets), consistent with its topology and faults."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from console.estate import ScenarioPlayer, load_scenario
from console.estate.exporter import EstateCollector
from console.estate.span_exposition import BUCKETS
from console.estate.telemetry import EstateMetrics

SLOW_DB = ("name: slow-db\nduration: 30m\ntimeline:\n"
           "  - {at: 10m, type: fault, kind: slow_dependency, service: orders-db, "
           "params: {latency_ms: 1500}}\n")
BAD_DEPLOY = ("name: bad-payments\nduration: 30m\ntimeline:\n"
              "  - {at: 10m, type: fault, kind: bad_deploy, service: payments, "
              "params: {error: 0.4}}\n")


def _player(tmp_path: Path, text: str) -> ScenarioPlayer:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return ScenarioPlayer(load_scenario(path))


def _scrape(registry: CollectorRegistry) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry).decode())}


def test_a_slow_database_slows_every_callers_client_spans_into_it(tmp_path: Path) -> None:
    player = _player(tmp_path, SLOW_DB)
    reader = EstateMetrics(player)
    player.advance(9 * 60)
    before = {s: dict(reader.latest(s)) for s in ("orders", "inventory", "shipping")}
    player.advance(4 * 60)
    after = {s: dict(reader.latest(s)) for s in ("orders", "inventory", "shipping")}
    into = "trace_call_p50_ms:orders-db"
    for caller in before:
        # every caller waits for it, and the callee's own spans say the same
        assert after[caller][into] > before[caller][into] + 1000
        assert after[caller]["trace_call_server_p99_ms:orders-db"] > \
            before[caller]["trace_call_server_p99_ms:orders-db"] + 1000
        # the client side is the server side plus the network hop, never less
        assert after[caller][into] >= player.estate.services["orders-db"].metrics[
            "latency_p50_ms"]
    # a call orders makes elsewhere is as fast as it was: the trouble is not orders'
    other = "trace_call_p50_ms:order-queue"
    assert math.isclose(after["orders"][other], before["orders"][other], rel_tol=0.3)
    # orders' own spans are slow because it waits (its server spans hold the wait)
    assert after["orders"]["trace_latency_p50_ms"] > before["orders"]["trace_latency_p50_ms"] \
        + 1000


def test_a_failing_deploy_fails_its_callers_calls_and_nothing_beside(tmp_path: Path) -> None:
    player = _player(tmp_path, BAD_DEPLOY)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EstateCollector(player.estate, player.lock))
    player.advance(9 * 60)
    quiet = _scrape(registry)
    player.advance(6 * 60)
    failing = _scrape(registry)

    def edge_failed_share(scrape: dict[str, Any], earlier: dict[str, Any],
                          client: str, server: str) -> float:
        def total(f: dict[str, Any], name: str) -> float:
            return sum(s.value for s in f[name].samples
                       if s.labels == {"client": client, "server": server}
                       and s.name.endswith("_total"))
        calls = total(scrape, "traces_service_graph_request") - total(
            earlier, "traces_service_graph_request")
        failed = total(scrape, "traces_service_graph_request_failed") - total(
            earlier, "traces_service_graph_request_failed")
        return failed / calls

    assert edge_failed_share(failing, quiet, "checkout", "payments") > 0.3
    assert edge_failed_share(failing, quiet, "checkout", "cart") < 0.05
    # and payments' own server spans carry the error status
    errors = [s for s in failing["traces_spanmetrics_calls"].samples
              if s.labels["service"] == "payments" and s.labels["status_code"] ==
              "STATUS_CODE_ERROR" and s.labels["span_kind"] == "SPAN_KIND_SERVER"]
    assert errors and errors[0].value > 0


def test_the_exposition_speaks_tempos_metrics_generator(tmp_path: Path) -> None:
    player = _player(tmp_path, SLOW_DB)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EstateCollector(player.estate, player.lock))
    player.advance(60)
    first = _scrape(registry)
    player.advance(60)
    second = _scrape(registry)
    assert first["traces_spanmetrics_calls"].type == "counter"
    assert second["traces_spanmetrics_latency"].type == "histogram"
    assert second["traces_service_graph_request_server_seconds"].type == "histogram"
    assert second["traces_service_graph_request_client_seconds"].type == "histogram"
    labels = {tuple(sorted(s.labels)) for s in second["traces_spanmetrics_calls"].samples}
    assert labels == {("service", "span_kind", "span_name", "status_code")}
    kinds = {s.labels["span_kind"] for s in second["traces_spanmetrics_calls"].samples}
    assert kinds == {"SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"}
    # one edge per request/response dependency of the estate, none for a queue consumer
    edges = {(s.labels["client"], s.labels["server"])
             for s in second["traces_service_graph_request"].samples}
    spec = player.estate.spec
    assert edges == {(n, d) for n, s in spec.services.items() for d in s.depends_on}
    # counters only grow
    for name in ("traces_spanmetrics_calls", "traces_service_graph_request"):
        was = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in first[name].samples}
        for s in second[name].samples:
            assert s.value >= was.get((s.name, tuple(sorted(s.labels.items()))), 0.0)
    # the buckets give the median back to within a bucket (histogram_quantile's reading)
    p50 = player.estate.services["payments"].metrics["latency_p50_ms"] / 1000.0
    buckets = sorted((float(s.labels["le"]), s.value)
                     for s in second["traces_service_graph_request_server_seconds"].samples
                     if s.name.endswith("_bucket") and s.labels["server"] == "payments"
                     and s.labels["client"] == "checkout")
    count = buckets[-1][1]
    median_bucket = next(le for le, n in buckets if n >= count / 2)
    index = BUCKETS.index(median_bucket)
    assert BUCKETS[max(0, index - 2)] <= p50 <= median_bucket * 1.5


def test_an_estate_nobody_scrapes_keeps_no_counters(tmp_path: Path) -> None:
    player = _player(tmp_path, SLOW_DB)
    player.advance(120)
    assert player.estate.spans.take_pending() == []


def test_a_reader_answers_trace_series_over_a_window(tmp_path: Path) -> None:
    player = _player(tmp_path, SLOW_DB)
    reader = EstateMetrics(player)
    player.advance(300)
    start = player.estate.start
    points = reader.series("orders", "trace_call_p50_ms:orders-db",
                           start + timedelta(seconds=60), start + timedelta(seconds=120))
    # one sample per collection interval (15 s), as a metrics generator flushes them
    assert [(at - start).total_seconds() for at, _ in points] == [60.0, 75.0, 90.0, 105.0,
                                                                  120.0]
    assert reader.series("orders", "trace_call_p50_ms:nowhere", start, player.estate.now) == []
    assert reader.series("nowhere", "trace_calls_per_min", start, player.estate.now) == []


@pytest.mark.parametrize("metric", ["trace_calls_per_min", "trace_error_rate"])
def test_every_service_has_its_own_span_series(tmp_path: Path, metric: str) -> None:
    player = _player(tmp_path, SLOW_DB)
    reader = EstateMetrics(player)
    player.advance(30)
    assert all(metric in reader.latest(s) for s in reader.services())

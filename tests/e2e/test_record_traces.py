"""Trace-derived series end to end: the embedded estate's span metrics scraped by a real
Prometheus, `watchfloor record` from it, and `watchfloor investigate` reading them.

Two Prometheus servers (Debian's package) scrape the same estate on loopback: one keeps
everything, the other drops the `traces_*` series at scrape time, as a Prometheus
without a tracing backend would hold - its recording says so instead of failing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from console.cli import main
from console.estate import ScenarioPlayer, load_estate_spec, load_scenario
from console.estate.exporter import prometheus_rules
from console.record_traces import GRAPH_CALLS, GRAPH_FAILED, GRAPH_SIDES, KINDS, trace_queries
from tests.e2e.test_monitoring_stack import FOR_SCALE, Estate, free_port, ready, start, wait_for
from tests.e2e.test_record_prometheus import edges_file
from tests.helpers import stop_process

pytestmark = pytest.mark.e2e
FAULT_AT_S = 600  # simulated: 30 wall seconds of normal first (SPEED 20)
SLOW = "orders-db"


def _prometheus(tmp: Path, name: str, target: int, *, drop_traces: bool) -> tuple[Any, str]:
    job: dict[str, Any] = {"job_name": "estate",
                           "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
    if drop_traces:
        job["metric_relabel_configs"] = [{"source_labels": ["__name__"],
                                          "regex": "traces_.*", "action": "drop"}]
    (tmp / f"{name}.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")], "scrape_configs": [job]}))
    port = free_port()
    proc = start(["prometheus", f"--config.file={tmp / f'{name}.yml'}",
                  f"--storage.tsdb.path={tmp / f'{name}-data'}",
                  f"--web.listen-address=127.0.0.1:{port}"], tmp / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture
def two_prometheus(tmp_path: Path) -> Iterator[tuple[str, str, Estate]]:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("name: slow-db\nduration: 4h\ntimeline:\n"
                        f"  - {{at: {FAULT_AT_S}s, type: fault, kind: slow_dependency, "
                        f"service: {SLOW}, params: {{latency_ms: 2000}}}}\n")
    estate = Estate(ScenarioPlayer(load_scenario(scenario)))
    (tmp_path / "rules.yml").write_text(prometheus_rules(load_estate_spec(),
                                                         for_scale=FOR_SCALE))
    procs = []
    try:
        procs.append(_prometheus(tmp_path, "traced", estate.port, drop_traces=False))
        procs.append(_prometheus(tmp_path, "plain", estate.port, drop_traces=True))
        for _, url in procs:
            wait_for(lambda url=url: ready(url + "/-/ready"), 30, "Prometheus to be ready")
        yield procs[0][1], procs[1][1], estate
    finally:
        for proc, _ in procs:
            stop_process(proc)
        estate.close()


def _firing(url: str) -> bool:
    try:
        body = httpx.get(url + "/api/v1/query", timeout=2, params={
            "query": 'ALERTS{alertstate="firing"}'}).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body.get("data", {}).get("result"))


def test_record_then_investigate_reads_the_estates_traces(
        two_prometheus: tuple[str, str, Estate], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    traced, plain, estate = two_prometheus
    began = time.time()
    wait_for(lambda: _firing(traced), 150, "an alert firing")
    time.sleep(10)  # some more samples of the fault
    ended = time.time()
    edges = edges_file(estate, tmp_path)
    window = ["--start", f"{began:.3f}", "--end", f"{ended:.3f}", "--step", "1",
              "--rate-window", "5", "--graph", str(edges)]

    out = tmp_path / "traced"
    assert main(["record", "--from-prometheus", traced, *window, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["traces"]["span_metrics"] == "tempo"
    assert manifest["traces"]["service_graph"] is True
    assert manifest["traces"]["gaps"] == []
    body = json.loads((out / "metrics" /
                       "traces_service_graph_request_client_p50_seconds.json").read_text())
    assert {(s["metric"]["client"], s["metric"]["server"]) for s in body["data"]["result"]} \
        >= {("orders", SLOW), ("inventory", SLOW)}
    capsys.readouterr()
    assert main(["investigate", "--recording", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cited = [(c["service"], e["ref"]) for c in report["candidates"] for e in c["evidence"]
             if e["kind"] == "trace"]
    assert any(service == SLOW and f"/trace_call_p50_ms:{SLOW}@" in ref
               for service, ref in cited), report["candidates"][:3]
    assert report["candidates"][0]["service"] == SLOW

    # without trace-derived series the recording is made all the same, and says so
    bare = tmp_path / "plain"
    assert main(["record", "--from-prometheus", plain, *window, "--out", str(bare)]) == 0
    manifest = json.loads((bare / "manifest.json").read_text())
    assert manifest["traces"]["span_metrics"] is None
    assert manifest["traces"]["service_graph"] is False
    assert len(manifest["traces"]["gaps"]) == 2
    assert not list((bare / "metrics").glob("traces_*.json"))
    capsys.readouterr()
    assert main(["investigate", "--recording", str(bare), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("no service graph" in note for note in report["notes"])
    assert not any(e["kind"] == "trace" for c in report["candidates"]
                   for e in c["evidence"])


def test_every_backends_queries_are_valid_promql(
        two_prometheus: tuple[str, str, Estate]) -> None:
    """The OpenTelemetry collector's names are not on the estate; Prometheus still
    parses and runs what would record them."""
    traced, _, _ = two_prometheus
    for kind in KINDS:
        names = [kind.calls, kind.buckets, GRAPH_CALLS, GRAPH_FAILED, *GRAPH_SIDES.values()]
        queries = trace_queries(names, 60).queries
        assert len(queries) == 9
        for name, expr in queries:
            body = httpx.get(traced + "/api/v1/query", params={"query": expr},
                             timeout=5).json()
            assert body["status"] == "success", (kind.name, name, body)

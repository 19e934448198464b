"""`watchfloor record` against a real Prometheus scraping the embedded estate, then
`watchfloor investigate` on what it wrote: the recorded fault is the top cause.

Prometheus is Debian's package; the fixture starts it on a loopback port with the
shipped alert rules (so the recording holds real `ALERTS` series) and stops it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from console.cli import main
from console.estate import ScenarioPlayer, load_estate_spec, load_scenario
from console.estate.exporter import prometheus_rules
from tests.e2e.test_monitoring_stack import FOR_SCALE, Estate, free_port, ready, start, wait_for
from tests.helpers import stop_process

pytestmark = pytest.mark.e2e
FAULT_AT_S = 600  # simulated: 30 wall seconds of normal first (SPEED 20)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Estate]]:
    scenario = tmp_path / "record.yaml"
    scenario.write_text("name: record\nduration: 4h\ntimeline:\n"
                        f"  - {{at: {FAULT_AT_S}s, type: fault, kind: bad_deploy, "
                        "service: payments, params: {error: 0.4}}\n")
    estate = Estate(ScenarioPlayer(load_scenario(scenario)))
    port = free_port()
    (tmp_path / "rules.yml").write_text(prometheus_rules(load_estate_spec(),
                                                         for_scale=FOR_SCALE))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "estate", "static_configs": [
            {"targets": [f"127.0.0.1:{estate.port}"]}]}]}))
    proc = start(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                  f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "prom.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url + "/-/ready"), 30, "Prometheus to be ready")
        yield url, estate
    finally:
        stop_process(proc)
        estate.close()


def edges_file(estate: Estate, folder: Path) -> Path:
    """The estate's call graph as `record --graph` reads it (caller,callee per line)."""
    edges = folder / "edges.csv"
    with estate.lock:
        topology = estate.player.estate.topology()
    edges.write_text("source,target\n" + "".join(
        f"{caller},{callee}\n" for caller, callees in topology.items() for callee in callees))
    return edges


def _firing(url: str, service: str) -> bool:
    try:
        body = httpx.get(url + "/api/v1/query", timeout=2, params={
            "query": f'ALERTS{{alertstate="firing",service="{service}"}}'}).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body.get("data", {}).get("result"))


def test_record_from_prometheus_then_investigate(
        prometheus: tuple[str, Estate], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, estate = prometheus
    began = time.time()
    wait_for(lambda: _firing(url, "payments"), 150, "an alert firing on payments")
    time.sleep(8)  # a few more samples of the fault
    ended = time.time()
    edges = edges_file(estate, tmp_path)
    out = tmp_path / "recorded"
    assert main(["record", "--from-prometheus", url, "--start", f"{began:.3f}",
                 "--end", f"{ended:.3f}", "--step", "1", "--out", str(out),
                 "--graph", str(edges)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "watchfloor.recording/1"
    body = json.loads((out / "metrics" / "watchfloor_service_error_rate.json").read_text())
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "matrix"
    assert any(s["metric"]["service"] == "payments" for s in body["data"]["result"])
    assert json.loads((out / "alerts.json").read_text())["data"]["result"]

    capsys.readouterr()
    assert main(["investigate", "--recording", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "payments" in report["symptom"]["services"]
    assert report["candidates"][0]["service"] == "payments"
    assert report["candidates"][0]["fault_class"] in ("bad_deploy", "config_error")

    # A second recording into the same folder is refused; so is an empty window.
    assert main(["record", "--from-prometheus", url, "--start", f"{began:.3f}",
                 "--end", f"{ended:.3f}", "--out", str(out)]) == 2
    assert main(["record", "--from-prometheus", url, "--start", f"{ended:.3f}",
                 "--end", f"{began:.3f}", "--out", str(tmp_path / "x")]) == 2
    assert "window is empty" in capsys.readouterr().err


def test_record_from_a_prometheus_that_is_down(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--from-prometheus", f"http://127.0.0.1:{free_port()}",
                 "--start", "now-10m", "--end", "now", "--out", str(tmp_path / "r"),
                 "--timeout", "2"]) == 1
    assert "prometheus" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

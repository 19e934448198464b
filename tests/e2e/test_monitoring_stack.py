"""End to end with the real monitoring stack: the estate's /metrics scraped by a real
Prometheus, the shipped rules firing into a real Alertmanager, Watchfloor receiving them
by webhook and by polling, one incident per fault, resolved once the fault is fixed.

Prometheus and Alertmanager are Debian's packages (installed by the README's test
command); the fixtures start them on loopback ports and stop them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from agents.correlator_agent import CorrelatorAgent
from console.cli import main
from console.domain import AlertStatus
from console.estate import ScenarioPlayer, load_estate_spec, load_scenario
from console.estate.exporter import prometheus_rules, serve
from console.runtime import Runtime
from console.sources.clients import AlertmanagerPoller, PrometheusClient
from console.sources.webhook import WebhookReceiver
from tests.helpers import stop_process

pytestmark = pytest.mark.e2e
TOKEN = "e2e-token"
SPEED = 20.0  # simulated seconds per wall second
FOR_SCALE = 1 / SPEED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)





class Stack:
    def __init__(self, tmp: Path, receiver_url: str, target_port: int) -> None:
        self.am_port, self.prom_port = free_port(), free_port()
        self.am_url = f"http://127.0.0.1:{self.am_port}"
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        am_config = {
            "route": {"receiver": "watchfloor", "group_by": ["alertname", "service"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "watchfloor", "webhook_configs": [{
                "url": f"{receiver_url}/webhook/alertmanager", "send_resolved": True,
                "http_config": {"authorization": {"credentials": TOKEN}}}]}],
        }
        (tmp / "am.yml").write_text(yaml.safe_dump(am_config))
        rules = prometheus_rules(load_estate_spec(), for_scale=FOR_SCALE)
        (tmp / "rules.yml").write_text(rules)
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": [{"job_name": "estate", "static_configs": [
                {"targets": [f"127.0.0.1:{target_port}"]}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        self.procs = [
            start(["prometheus-alertmanager", f"--config.file={tmp / 'am.yml'}",
                   f"--storage.path={tmp / 'am-data'}",
                   f"--web.listen-address=127.0.0.1:{self.am_port}",
                   "--cluster.listen-address="], tmp / "am.log"),
            start(["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                   f"--storage.tsdb.path={tmp / 'prom-data'}",
                   f"--web.listen-address=127.0.0.1:{self.prom_port}"], tmp / "prom.log"),
        ]
        wait_for(lambda: ready(self.am_url + "/-/ready"), 30, "Alertmanager to be ready")
        wait_for(lambda: ready(self.prom_url + "/-/ready"), 30, "Prometheus to be ready")

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc)


class Estate:
    """Plays the scenario on a thread at SPEED, holding the lock the exporter reads under."""

    def __init__(self, player: ScenarioPlayer) -> None:
        self.player = player
        self.lock = threading.Lock()
        self.server, self.port = serve(player.estate, lock=self.lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with self.lock:
                self.player.advance(0.25 * SPEED)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.shutdown()


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[tuple[Runtime, Estate, Stack, CorrelatorAgent]]:
    scenario = tmp_path / "e2e.yaml"
    scenario.write_text("name: e2e\nduration: 4h\ntimeline:\n"
                        "  - {at: 30s, type: fault, kind: bad_deploy, service: payments,"
                        " params: {error: 0.4}}\n")
    player = ScenarioPlayer(load_scenario(scenario))
    runtime = Runtime(db_url)
    agent = CorrelatorAgent(runtime.service, player.estate.topology())
    receiver = WebhookReceiver(runtime.service, token=TOKEN,
                               on_stored=lambda d: agent.handle(d.signals, datetime.now(UTC)))
    receiver.start()
    estate = Estate(player)
    stack = Stack(tmp_path, receiver.url, estate.port)
    try:
        yield runtime, estate, stack, agent
    finally:
        stack.close()
        estate.close()
        receiver.close()
        runtime.close()


def test_real_prometheus_and_alertmanager_open_and_resolve_one_incident(  # type: ignore[no-untyped-def]
        world, tmp_path: Path, make_db_url) -> None:
    runtime, estate, stack, _agent = world

    def incidents_with(service: str, state: str) -> list:
        return [i for i in runtime.service.incidents()
                if service in i.services and i.state == state]

    wait_for(lambda: incidents_with("payments", "open"), 120,
             "an incident on payments from Alertmanager's webhook")
    webhook_signals = runtime.service.recent_signals()
    assert any(s.source == "alertmanager" and s.name == "HighErrorRate"
               and s.service == "payments" for s in webhook_signals)

    async def poll_and_query() -> None:
        async with httpx.AsyncClient() as client:
            poller = AlertmanagerPoller(client, stack.am_url)
            polled = await poller.poll(datetime.now(UTC))
            assert poller.health.state == "ok"
            assert any(s.name == "HighErrorRate" and s.service == "payments"
                       and s.status is AlertStatus.FIRING for s in polled)
            prom = PrometheusClient(client, stack.prom_url)
            now = await prom.query('watchfloor_service_error_rate{service="payments"}')
            assert next(iter(now.scalars().values())) > 0.2
            rules = await prom.rules()
            assert {r["name"] for r in rules} >= {"HighErrorRate", "InstanceDown"}
            assert any(a["labels"]["alertname"] == "HighErrorRate"
                       for a in await prom.alerts())

    asyncio.run(poll_and_query())

    # What the real Alertmanager sent is a valid file for `watchfloor ingest`.
    sent = runtime.service.payloads("alertmanager")
    assert sent
    assert all(body["version"] == "4" for body in sent)
    replay = tmp_path / "from-alertmanager.json"
    replay.write_text(json.dumps(sent))
    assert main(["ingest", "--format", "alertmanager", str(replay),
                 "--db", make_db_url(tmp_path, "replay")]) == 0

    with estate.lock:
        estate.player.apply_action("rollback", "payments")
    wait_for(lambda: incidents_with("payments", "resolved"), 180,
             "the incident to resolve after the rollback")
    assert len(runtime.service.incidents()) == 1  # one fault, one incident
    assert any(s.status is AlertStatus.RESOLVED for s in runtime.service.recent_signals())
    assert runtime.service.verify_audit().ok


def test_a_source_that_is_down_is_degraded_and_backs_off() -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as client:
            poller = AlertmanagerPoller(client, f"http://127.0.0.1:{free_port()}", timeout=2)
            assert await poller.poll(datetime.now(UTC)) == []
            assert poller.health.state == "degraded"
            assert "alertmanager" in poller.health.last_error
            first_retry = poller.health.next_attempt
            assert await poller.poll(datetime.now(UTC)) == []  # not due: no new attempt
            assert poller.health.failures == 1
            poller.health.next_attempt = 0
            await poller.poll(datetime.now(UTC))
            assert poller.health.failures == 2
            assert poller.health.next_attempt - time.monotonic() > \
                first_retry - time.monotonic()  # backoff grew
            prom = PrometheusClient(client, f"http://127.0.0.1:{free_port()}", timeout=2)
            with pytest.raises(Exception, match="prometheus"):
                await prom.query("up")
            assert prom.health.state == "degraded"

    asyncio.run(run())

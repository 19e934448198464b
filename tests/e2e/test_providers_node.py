"""The providers in the engine process: `watchfloor node --listen ... --zabbix ...` leads,
receives each system's real payload at its /providers path (Grafana, Zabbix's webhook,
Datadog) and OTLP/HTTP JSON at /v1/logs, polls a loopback Zabbix API, and its correlation
turns them into incidents about the right services, read back from the database."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.runtime import Runtime
from tests.e2e.nodes import NodeProcess
from tests.provider_payloads import DATADOG, GRAFANA, OTLP_LOGS, ZABBIX_WEBHOOK
from tests.waiting import wait_for
from tests.zabbix_server import TOKEN, ZabbixState, problem, zabbix_api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_leading_node_takes_every_provider_into_incidents(
        tmp_path: Path, make_db_url: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_db_url(tmp_path, "providers")
    port = _free_port()
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    state = ZabbixState()
    state.problems = [problem("9001", "23310", "Ledger replication lag is high",
                              tags=[{"tag": "service", "value": "ledger"}])]
    state.hosts = {"23310": {"hostid": "10084", "host": "ldg-db-1", "name": "ledger-db-1"}}
    monkeypatch.setenv("WATCHFLOOR_ZABBIX_TOKEN", TOKEN)
    with zabbix_api(state) as zabbix:
        node = NodeProcess(url, "engine", tmp_path / "engine", runbooks, extra=(
            "--listen", f"127.0.0.1:{port}", "--zabbix", zabbix))
        try:
            node.wait(lambda e: e["event"] == "leader", 90, "the lead")
            node.wait(lambda e: e["event"] == "notice"
                      and "receiving webhooks" in e["text"], 60, "the receiver")
            receiver = f"http://127.0.0.1:{port}"
            for path, body in (("/providers/grafana", GRAFANA),
                               ("/providers/zabbix", ZABBIX_WEBHOOK),
                               ("/providers/datadog", DATADOG), ("/v1/logs", OTLP_LOGS)):
                answer = httpx.post(receiver + path, content=json.dumps(body), timeout=20,
                                    headers={"Content-Type": "application/json"})
                assert answer.status_code == 200, (path, answer.text)
            wanted = {"checkout", "payments", "cart", "search", "ledger"}
            with Runtime(url) as reader:
                wait_for(lambda: wanted <= {s for i in reader.service.incidents()
                                            for s in i.services}, 90,
                         "incidents about every provider's service")
                sources = {s.source for s in reader.service.recent_signals(2000)}
            assert {"grafana", "zabbix", "datadog", "otlp"} <= sources
            assert "problem.get" in state.calls
        finally:
            assert node.stop() == 0

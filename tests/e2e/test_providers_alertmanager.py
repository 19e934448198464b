"""The Alertmanager provider with the real Alertmanager (Debian's package, on loopback):
an alert posted to its API v2 is routed to the receiver's /providers/alertmanager path
and becomes an incident, and `watchfloor providers --alertmanager URL` asks the real one
how it is (ok while it runs, degraded with the reason, exit 1, once it is gone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from console.cli import main
from console.runtime import Runtime
from console.sources.webhook import WebhookReceiver
from tests.e2e.test_monitoring_stack import free_port, ready, start, wait_for
from tests.helpers import stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def alertmanager(tmp_path: Path, db_url: str) -> Iterator[tuple[str, Runtime]]:
    runtime = Runtime(db_url)
    receiver = WebhookReceiver(runtime.service, on_stored=runtime.deferred.submit).start()
    port = free_port()
    config = {"route": {"receiver": "watchfloor", "group_by": ["alertname", "service"],
                        "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
              "receivers": [{"name": "watchfloor", "webhook_configs": [{
                  "url": f"{receiver.url}/providers/alertmanager", "send_resolved": True}]}]}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    proc = start(["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
                  f"--storage.path={tmp_path / 'am-data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                 tmp_path / "am.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url + "/-/ready"), 30, "Alertmanager to be ready")
        yield url, runtime
    finally:
        stop_process(proc)
        receiver.close()
        runtime.close()


def test_the_real_alertmanager_delivers_to_the_provider_path(
        alertmanager: tuple[str, Runtime], capsys: pytest.CaptureFixture[str]) -> None:
    url, runtime = alertmanager
    alert = {"labels": {"alertname": "QueueBacklog", "service": "orders",
                        "severity": "critical"},
             "annotations": {"summary": "orders queue is backing up"},
             "startsAt": datetime.now(UTC).isoformat()}
    assert httpx.post(url + "/api/v2/alerts", json=[alert], timeout=10).status_code == 200
    wait_for(lambda: any(i.services == ("orders",) for i in runtime.service.incidents()),
             30, "the incident from Alertmanager's delivery")
    (sig,) = runtime.service.recent_signals()
    assert (sig.source, sig.name) == ("alertmanager", "QueueBacklog")

    assert main(["providers", "--json", "--alertmanager", url]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["providers"]}
    assert rows["alertmanager"]["health"] == {"state": "ok", "detail": f"{url} answers"}


def test_providers_says_when_the_alertmanager_is_gone(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["providers", "--json", "--alertmanager", url]) == 1
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["providers"]}
    health = rows["alertmanager"]["health"]
    assert health["state"] == "degraded"
    assert health["detail"].startswith(f"{url}: ConnectError")

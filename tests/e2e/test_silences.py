"""A maintenance window's silence in a real Alertmanager (Debian's package, started on a
loopback port as the monitoring-stack test starts it): made with the window, seen active
through the API v2, extended, and expired when the window is ended early."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from console.clock import RealClock
from console.maintenance import MaintenanceError, MaintenanceOps
from console.runtime import Runtime
from console.silences import SilenceError, Silences
from tests.e2e.test_monitoring_stack import free_port, ready, start, wait_for
from tests.helpers import stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]}
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config))
    proc: subprocess.Popen[bytes] = start(
        ["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="], tmp_path / "am.log")
    try:
        wait_for(lambda: ready(url + "/-/ready"), 30, "Alertmanager to be ready")
        yield url
    finally:
        stop_process(proc)


@pytest.fixture
def world(db_url: str, alertmanager: str) -> Iterator[tuple[Runtime, MaintenanceOps]]:
    runtime = Runtime(db_url, clock=RealClock())  # Alertmanager refuses a silence in the past
    runtime.service.bootstrap_admin("alice")
    ops = MaintenanceOps(runtime.service, alertmanager)
    try:
        yield runtime, ops
    finally:
        ops.close()
        runtime.close()


def _listed(url: str) -> dict[str, dict]:
    """Every silence as Alertmanager's own list shows it, by id."""
    answer = httpx.get(f"{url}/api/v2/silences", timeout=5)
    answer.raise_for_status()
    return {s["id"]: s for s in answer.json()}


def test_a_window_silence_is_made_extended_and_expired_in_alertmanager(
        world: tuple[Runtime, MaintenanceOps], alertmanager: str) -> None:
    runtime, ops = world
    window = ops.start(service="payments", reason="database upgrade", minutes=30,
                       as_user="alice", silence=True)
    first = window.silence["id"]
    assert window.silence["alertmanager"] == alertmanager
    seen = _listed(alertmanager)[first]
    assert seen["status"]["state"] == "active"
    assert seen["matchers"] == [{"name": "service", "value": "payments", "isRegex": False,
                                 "isEqual": True}]
    assert seen["createdBy"] == "alice"
    assert "database upgrade" in seen["comment"]

    longer = ops.extend(window.id, 45, as_user="alice")
    current = longer.silence["id"]
    listed = _listed(alertmanager)
    assert listed[current]["status"]["state"] == "active"
    got = Silences(alertmanager).get(current)
    assert abs(got.ends_at - window.ends_at - timedelta(minutes=45)) < timedelta(seconds=1)
    # Alertmanager updates an active silence's end in place (0.25 does) or replaces it
    # with a new one and expires the old: either way one silence is in force.
    assert [i for i, s in listed.items() if s["status"]["state"] == "active"] == [current]

    ended = ops.end(window.id, as_user="alice", reason="finished early")
    assert ended.silence["expired"] is True
    assert _listed(alertmanager)[current]["status"]["state"] == "expired"
    actions = [e.action for e in runtime.service.audit_entries()
               if e.action.startswith("maintenance.")]
    assert actions == ["maintenance.start", "maintenance.extend", "maintenance.end"]
    start_record = next(e for e in runtime.service.audit_entries()
                        if e.action == "maintenance.start")
    assert start_record.outputs["silence"]["id"] == first


def test_an_incident_window_silences_each_of_its_services(
        world: tuple[Runtime, MaintenanceOps], alertmanager: str) -> None:
    from agents.correlator_agent import CorrelatorAgent
    from tests.test_correlator import alert

    runtime, ops = world
    agent = CorrelatorAgent(runtime.service, {"checkout": ["payments"], "payments": []})
    opened = agent.handle([alert("HighErrorRate", "payments", 0),
                           alert("HighErrorRate", "checkout", 1)], runtime.clock.now())
    window = ops.start(incident_id=opened[0].id, reason="failover", minutes=10,
                       as_user="alice", silence=True)
    seen = _listed(alertmanager)[window.silence["id"]]
    assert seen["matchers"] == [{"name": "service", "value": "checkout|payments",
                                 "isRegex": True, "isEqual": True}]


def test_a_silence_alertmanager_refuses_stores_no_window(
        world: tuple[Runtime, MaintenanceOps], alertmanager: str) -> None:
    runtime, ops = world
    down = MaintenanceOps(runtime.service, f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(MaintenanceError, match="the silence was not made"):
        down.start(service="payments", reason="x", minutes=5, as_user="alice", silence=True)
    down.close()
    with pytest.raises(SilenceError, match="HTTP 400"):
        Silences(alertmanager).create(("payments",), starts_at=runtime.clock.now(),
                                      ends_at=runtime.clock.now() - timedelta(minutes=5),
                                      created_by="alice", comment="ends before it starts")
    assert ops.windows(include_over=True) == []
    assert _listed(alertmanager) == {}

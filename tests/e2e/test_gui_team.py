"""The desktop console as a member of a team on a real PostgreSQL.

A `watchfloor node` leads (plays the estate, runs the agents); the window of
console.app.main() joins the same database as a follower: its status bar names the
leader, the leader's incidents, recommendations, audit records and alerts come into its
panes, an approval clicked in the window is run once, at the leader (the follower has no
estate to act on), and when the leader goes the window takes the agents over and the
estate plays there."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from console.runtime import local_user
from tests.e2e.nodes import NodeProcess
from tests.test_gui_e2e import running_console

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

SCENARIO, SPEED = "traffic-surge", 60.0


@pytest.fixture
def leader_node(pg_url: str, tmp_path: Path) -> Iterator[NodeProcess]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    node = NodeProcess(pg_url, "n1", tmp_path / "n1", runbooks, scenario=SCENARIO, speed=SPEED)
    try:
        yield node
    finally:
        node.stop()


def _pending(queue: Any) -> Any:
    model = queue.model
    return next((model.recommendation_at(r) for r in range(model.rowCount())
                 if model.recommendation_at(r).state == "pending"), None)


def test_the_window_follows_the_leader_its_approval_runs_there_and_it_takes_over(
        leader_node: NodeProcess, pg_url: str, qloop: asyncio.AbstractEventLoop,
        qtbot: Any) -> None:
    node = leader_node
    qtbot.waitUntil(lambda: node.find(lambda e: e["event"] == "leader") is not None,
                    timeout=60_000)
    with running_console(qloop, qtbot, pg_url, SCENARIO, SPEED) as window:
        status = window.status
        engine = window.recommendations_pane._engine

        # who leads is in the status bar; this console does not run the estate
        qtbot.waitUntil(lambda: status.team is not None and len(status.team.members) == 2,
                        timeout=10_000)
        assert status.team is not None
        assert not status.team.leading
        assert status.team.leader == f"{local_user()}@{socket.gethostname()}"
        assert status.team_label.text() == f"Agents: {status.team.leader} \u00b7 2 consoles"
        assert status.team_label.isVisible()
        assert "estate" not in engine.executors
        # its clock keeps the leader's simulated time (its own estate does not play)
        clock = status.clock_label.text()
        qtbot.waitUntil(lambda: status.clock_label.text() != clock, timeout=10_000)

        # the leader's incident, its recommendation and its audit records come in
        queue = window.recommendations_pane
        qtbot.waitUntil(lambda: _pending(queue) is not None, timeout=90_000)
        incidents = window.incidents_pane.model
        qtbot.waitUntil(lambda: incidents.rowCount() > 0, timeout=10_000)
        # and the alerts the leader stored, in the Signals pane and the status bar's count
        signals = window.signals_pane.model
        qtbot.waitUntil(lambda: signals.rowCount() > 0, timeout=10_000)
        assert any(signals.signal_at(r).service in incidents.incident_at(0).services
                   for r in range(signals.rowCount()))
        # and the leader's metrics, in the services table and the incident's history
        services = window.services_pane.model
        qtbot.waitUntil(lambda: services.rowCount() > 0, timeout=10_000)
        history = window.metrics_pane.history
        implicated = incidents.incident_at(0).services
        qtbot.waitUntil(lambda: all(len(history.series(name)[0]) > 1 for name in implicated),
                        timeout=10_000)
        assert set(implicated) <= {services.service_at(r) for r in range(services.rowCount())}
        assert status.signal_total >= signals.rowCount()
        audit = window.audit_pane.model
        qtbot.waitUntil(lambda: any(audit.entry_at(r).action == "recommendation.create"
                                    for r in range(audit.rowCount())), timeout=10_000)
        seqs = [audit.entry_at(r).seq for r in range(audit.rowCount())]
        assert seqs == sorted(seqs, reverse=True)
        assert len(set(seqs)) == len(seqs)

        # approved here, run once at the leader, seen in this console's history
        rec = _pending(queue)
        qtbot.waitUntil(lambda: queue.model.standing_of(rec.id) is not None, timeout=10_000)
        assert queue.select_recommendation(rec.id)
        approve = window.findChild(QPushButton, "approveButton")
        qtbot.waitUntil(approve.isEnabled, timeout=10_000)
        qtbot.mouseClick(approve, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: node.find(lambda e: e["event"] == "action"
                                          and e["action"] == "execution.intent") is not None,
                        timeout=30_000)
        history = window.history_pane.model
        qtbot.waitUntil(lambda: any(history.execution_at(r).recommendation_id == rec.id
                                    for r in range(history.rowCount())), timeout=15_000)
        runs = [e for e in engine.executions() if e.recommendation_id == rec.id]
        assert len(runs) == 1

        # the leader stops: this console takes the agents over and the estate plays here
        assert node.stop() == 0
        qtbot.waitUntil(lambda: status.team is not None and status.team.leading,
                        timeout=10_000)
        assert status.team_label.text() == "Agents: this console"
        assert "leads the team now" in status.notice
        # the seat says it leads before `lead` has made the estate (off the GUI thread)
        qtbot.waitUntil(lambda: "estate" in engine.executors, timeout=10_000)
        clock = status.clock_label.text()
        qtbot.waitUntil(lambda: status.clock_label.text() != clock, timeout=10_000)

"""The window as a client of an engine process, on SQLite, with real processes.

console.app.main() with an `EngineOptions` starts `python -m console node` itself (no
leader holds the fresh database) and only follows it: the engine's incident and
recommendation come into the panes, an approval clicked in the window is run by the
engine, a rollback confirmed from the history too; the engine killed with SIGKILL is said
in the status bar, started again, settles what was in flight, and a later approval still
runs exactly once. The engine ends once the last window has closed, unless asked to stay.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from console.engine_process import EngineOptions
from console.leader import Member, team_members
from console.storage.db import Database
from tests.test_gui_e2e import running_console
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

SCENARIO, SPEED = "bad-deploy", 60.0
LONG_MS = 120_000


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'engine.db'}"


@pytest.fixture
def reader(db_url: str) -> Iterator[Database]:
    """The test's own look at the database (who leads, what ran)."""
    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()


def _engine(db: Database) -> Member | None:
    return next((m for m in team_members(db) if m.role == "leader" and m.kind == "engine"),
                None)


def _alive(pid: int) -> bool:
    """Running (an ended child of this process that nobody reaped yet is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pending(queue: Any) -> Any:
    model = queue.model
    return next((model.recommendation_at(r) for r in range(model.rowCount())
                 if model.recommendation_at(r).state == "pending"), None)


def _approve(qtbot: Any, window: Any, rec_id: int) -> None:
    queue = window.recommendations_pane
    model, stored = queue.model, queue._engine.recommendation(rec_id)
    # the preview the engine completed is the one on screen (and approved)
    qtbot.waitUntil(lambda: model.row_of(rec_id) >= 0 and model.recommendation_at(
        model.row_of(rec_id)).preview_hash == stored.preview_hash, timeout=20_000)
    qtbot.waitUntil(lambda: queue.model.standing_of(rec_id) is not None, timeout=20_000)
    assert queue.select_recommendation(rec_id)
    approve = window.findChild(QPushButton, "approveButton")
    qtbot.waitUntil(approve.isEnabled, timeout=20_000)
    qtbot.mouseClick(approve, Qt.MouseButton.LeftButton)


def _approved_and_ran(qtbot: Any, window: Any, engine: Any) -> Any:
    """An operator's scale-out proposed in the window (the engine completes its preview),
    approved with the button, and seen to its end: its one execution."""
    rec_id = engine.propose("scale-out", {"service": "frontend", "count": 1},
                            requester="user:alice", explanation="more room")
    qtbot.waitUntil(lambda: all(step.get("effect") is not None
                                for step in engine.recommendation(rec_id).preview["steps"]),
                    timeout=30_000)
    _approve(qtbot, window, rec_id)
    qtbot.waitUntil(lambda: any(e.state in ("succeeded", "failed")
                                for e in _runs_of(engine, rec_id)), timeout=LONG_MS)
    [run] = _runs_of(engine, rec_id)
    return run


def _runs_of(engine: Any, rec_id: int) -> list[Any]:
    return [e for e in engine.executions() if e.recommendation_id == rec_id]


def test_the_window_follows_its_engine_which_runs_what_is_approved_and_comes_back(
        db_url: str, reader: Database, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    options = EngineOptions(scenario=SCENARIO, speed=SPEED)
    with running_console(qloop, qtbot, db_url, SCENARIO, SPEED, engine=options) as window:
        status = window.status
        engine = window.recommendations_pane._engine
        assert engine.executors == {}  # nothing runs in the window's process
        qtbot.waitUntil(lambda: status.engine_label.text().startswith("Engine running"),
                        timeout=60_000)
        first = _engine(reader)
        assert first is not None and first.pid != os.getpid()
        assert f"pid {first.pid}" in status.engine_label.text()
        assert status.team is not None and not status.team.leading

        # the engine's incident and its recommendation come in; approved here, run there
        queue = window.recommendations_pane
        qtbot.waitUntil(lambda: _pending(queue) is not None, timeout=LONG_MS)
        assert window.incidents_pane.model.rowCount() > 0
        rec = _pending(queue)
        _approve(qtbot, window, rec.id)
        qtbot.waitUntil(lambda: any(e.state in ("succeeded", "failed")
                                    for e in _runs_of(engine, rec.id)), timeout=LONG_MS)
        assert len(_runs_of(engine, rec.id)) == 1

        # an operator's scale-out, approved here and run there, then rolled back from
        # the history: queued here, run by the engine
        run = _approved_and_ran(qtbot, window, engine)
        assert run.can_roll_back, run
        # rolled back from the history: queued here, run by the engine
        history = window.history_pane
        qtbot.waitUntil(lambda: history.model.row_of(run.id) >= 0, timeout=20_000)
        assert history.select_execution(run.id)
        rollback = window.findChild(QPushButton, "rollbackButton")
        qtbot.waitUntil(rollback.isEnabled, timeout=20_000)
        qtbot.mouseClick(rollback, Qt.MouseButton.LeftButton)
        assert history.dialog is not None
        qtbot.mouseClick(history.dialog.findChild(QPushButton, "rollbackConfirm"),
                         Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: engine.execution(run.id).state == "rolled_back",
                        timeout=LONG_MS)
        qtbot.waitUntil(lambda: history.model.execution_at(
            history.model.row_of(run.id)).state == "rolled_back", timeout=20_000)

        # the engine is killed: the window says so, starts another, which leads
        os.kill(first.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: any("restarting" in text for text, _ in status.notices),
                        timeout=20_000)
        qtbot.waitUntil(lambda: status.engine_label.text().startswith("Engine back"),
                        timeout=60_000)
        second = _engine(reader)
        assert second is not None and second.pid not in (first.pid, os.getpid())
        assert f"pid {second.pid}" in status.engine_label.text()
        assert any("Engine back" in text for text, _ in status.notices)

        # a later approval runs exactly once, at the new engine
        later_run = _approved_and_ran(qtbot, window, engine)
        qtbot.wait(3000)  # a second run, if any, would have started by now
        assert len(_runs_of(engine, later_run.recommendation_id)) == 1
        intents = [e for e in engine.service.audit_entries()
                   if e.action == "execution.intent" and e.target == f"execution:{later_run.id}"]
        assert len(intents) == 1
        assert engine.executors == {}
    # the window closed: the engine it started ends by itself
    wait_for(lambda: not _alive(second.pid), 30, "the engine to end with the last window")


def test_an_engine_asked_to_stay_outlives_the_window(
        db_url: str, reader: Database, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    options = EngineOptions(scenario="quiet-day", speed=5.0, stay=True)
    with running_console(qloop, qtbot, db_url, "quiet-day", 5.0, engine=options) as window:
        qtbot.waitUntil(lambda: window.status.engine_label.text().startswith(
            "Engine running"), timeout=60_000)
        member = _engine(reader)
        assert member is not None
    try:
        qtbot.wait(6000)  # longer than an engine started without --stay waits
        assert _alive(member.pid)
        assert _engine(reader) is not None  # it still leads, with no window
    finally:
        os.kill(member.pid, signal.SIGTERM)
        wait_for(lambda: not _alive(member.pid), 30, "the engine to stop on SIGTERM")


def test_an_engine_that_refuses_its_input_is_said_and_not_started_again(
        db_url: str, reader: Database, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    options = EngineOptions(scenario="no-such-scenario", speed=5.0)
    with running_console(qloop, qtbot, db_url, "no-such-scenario", 5.0,
                         engine=options) as window:
        label = window.status.engine_label
        qtbot.waitUntil(lambda: "refused to start" in label.text(), timeout=60_000)
        assert "unknown scenario 'no-such-scenario'" in label.text()
        assert any("refused to start" in text and error
                   for text, error in window.status.notices)
        qtbot.wait(3000)
        assert "refused to start" in label.text()  # not started over and over
        assert _engine(reader) is None


CLIENT_CHILD = r'''
import os, sys
from PySide6.QtCore import QSettings, QTimer
from console import app
from console.engine_process import EngineOptions
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2])

def ready(window):
    def report():
        # (the runbooks' validation names the estate's actions: that package is read)
        heavy = sorted(m for m in ("console.runtime", "agents.investigator",
                                   "agents.recommender", "agents.coordinator",
                                   "agents.correlator_agent", "console.rules",
                                   "console.sources.webhook") if m in sys.modules)
        print("HEAVY", ",".join(heavy), flush=True)
        window.close()
    QTimer.singleShot(0, report)

sys.exit(app.run_gui(sys.argv[1], "bad-deploy", 1.0, on_ready=ready,
                     engine=EngineOptions(scenario="bad-deploy", speed=1.0)))
'''


def test_a_client_window_builds_no_estate_and_no_agent_team(db_url: str,
                                                            tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", CLIENT_CHILD, db_url, str(tmp_path / "qs")],
                          env=env, capture_output=True, text=True, timeout=180, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    heavy = next(line for line in done.stdout.splitlines() if line.startswith("HEAVY"))
    assert heavy == "HEAVY ", heavy

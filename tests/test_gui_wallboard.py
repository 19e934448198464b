"""The wallboard: View > Wallboard (and `watchfloor --wallboard`) shows the open
incidents with their live states and the autonomy level, full screen and read-only (no
button, nothing selectable or editable), says when the kill switch has stopped the
agents, drops an incident once it is resolved, and leaves with Esc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QApplication

from console.runtime import ScenarioDriver
from tests.scenario_play import first_pending, play_until
from widgets.incident_models import IncidentTableModel
from widgets.wallboard import Wallboard

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


def _open_ids(runtime: Any) -> list[int]:
    return sorted(i.id for i in runtime.service.incidents() if i.state == "open")


def test_the_wallboard_shows_open_incidents_and_autonomy_read_only(
        runtime: Any, console: Any, qtbot: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    first_pending(runtime, driver, tick=QApplication.processEvents)
    open_ids = _open_ids(runtime)
    assert open_ids

    window.actions_by_id["wallboard"].trigger()  # View > Wallboard
    board = window.wallboard
    assert isinstance(board, Wallboard)
    assert board.isVisible()
    assert board.windowState() & Qt.WindowState.WindowFullScreen
    qtbot.waitUntil(lambda: sorted(board.open_incident_ids()) == open_ids, timeout=TIMEOUT_MS)

    # Read-only: nothing to press, select or edit.
    assert not [b for b in board.findChildren(QAbstractButton) if b.isEnabled()]
    assert board.table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert board.table.selectionMode() == QAbstractItemView.SelectionMode.NoSelection

    # Each row says the incident's live state, as the console's incident list does.
    model = window.incidents_pane.model
    for row, ident in enumerate(board.open_incident_ids()):
        shown = board.proxy.index(row, IncidentTableModel.STATE).data()
        listed = model.index(model.row_of(ident), IncidentTableModel.STATE).data()
        assert shown == listed and shown
    assert board.proxy.index(0, IncidentTableModel.ID).data() == str(board.open_incident_ids()[0])
    assert board.table.font().pointSize() >= 20  # large type

    status = runtime.service.status()
    qtbot.waitUntil(lambda: board.status is not None, timeout=TIMEOUT_MS)
    assert board.autonomy.text() == f"Autonomy ceiling {status.effective_ceiling}"
    assert board.autonomy.property("killSwitch") == "false"

    runtime.service.set_kill_switch(True, as_user="alice", reason="wallboard test")
    qtbot.waitUntil(lambda: board.status is not None and board.status.kill_switch,
                    timeout=TIMEOUT_MS)
    assert board.autonomy.text().startswith("KILL SWITCH ON")
    assert "agents stopped" in board.autonomy.text()
    assert board.autonomy.property("killSwitch") == "true"

    qtbot.keyClick(board, Qt.Key.Key_Escape)
    assert not board.isVisible()
    assert window.isVisible()


def test_a_resolved_incident_leaves_the_wall(runtime: Any, console: Any, qtbot: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    rec = first_pending(runtime, driver, tick=QApplication.processEvents)
    board = window.open_wallboard()
    assert isinstance(board, Wallboard)
    qtbot.waitUntil(lambda: bool(board.open_incident_ids()), timeout=TIMEOUT_MS)
    runtime.service.engine.approve(rec.id, as_user="alice", preview_hash=rec.preview_hash)
    play_until(driver, lambda: not _open_ids(runtime), tick=QApplication.processEvents)
    assert not _open_ids(runtime)
    qtbot.waitUntil(lambda: not board.open_incident_ids(), timeout=TIMEOUT_MS)
    assert board.empty.isVisible() and not board.table.isVisible()
    assert board.count.text() == "0 open incidents"
    board.close()


def test_watchfloor_wallboard_opens_it_once_the_panes_are_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import console.app
    from console import cli

    seen: dict[str, Any] = {}

    def run_gui(*_args: Any, on_ready: Any = None, **_kwargs: Any) -> int:
        seen["on_ready"] = on_ready
        return 0

    class Window:
        opened = 0

        def open_wallboard(self) -> None:
            self.opened += 1

    monkeypatch.setattr(console.app, "run_gui", run_gui)
    assert cli.main(["--wallboard"]) == 0
    window = Window()
    seen["on_ready"](window)
    assert window.opened == 1
    assert cli.main([]) == 0
    assert seen["on_ready"] is None


CHILD = """
import sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from console.app import build_window
from console.runtime import Runtime

app = QApplication([])
runtime = Runtime(sys.argv[1])
runtime.service.bootstrap_admin("alice")
window = build_window(runtime, None, "alice",
                      settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
window.setGeometry(100, 100, 1200, 800)
window.show()
board = window.open_wallboard()
app.processEvents()
print(window.screen().name(), board.screen().name(), board.isFullScreen())
board.close()
window.close()
runtime.close()
"""


def test_with_a_second_display_the_wallboard_goes_there(tmp_path: Path) -> None:
    """The NOC's video wall is the console's second display: the board fills it and
    leaves the operator's desk screen to the console."""
    screens = {"screens": [
        {"name": "desk", "x": 0, "y": 0, "width": 1600, "height": 1000, "logicalDpi": 96,
         "logicalBaseDpi": 96, "dpr": 1},
        {"name": "wall", "x": 1600, "y": 0, "width": 1920, "height": 1080, "logicalDpi": 96,
         "logicalBaseDpi": 96, "dpr": 1}]}
    config = tmp_path / "screens.json"
    config.write_text(json.dumps(screens), encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, f"sqlite:///{tmp_path / 'wf.db'}",
         str(tmp_path / "wf.ini")], env=env, capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1], check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["desk", "wall", "True"]

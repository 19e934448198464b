"""The console as a night-shift operator meets it, over the real core with the agent
team: the status bar and the panes say only what is true now (a waiting approval leaves
once given, a run's message once the run is over), each incident's row says its one live
state, and a new critical incident takes the screen unless the operator is busy typing
or in a dialog (then a chip counts it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QPushButton

from console.domain import IncidentUpdate, Severity
from console.runtime import ScenarioDriver
from widgets.attention import CriticalFocus
from widgets.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


def _step_until(driver: ScenarioDriver, done: Any, *, step: float = 30.0,
                limit: float = 3600.0) -> None:
    while not done() and not driver.finished and driver.elapsed < limit:
        driver.step(step)
        QApplication.processEvents()
    assert done(), f"not reached by {driver.elapsed:.0f} s"


def _button(window: MainWindow, name: str) -> QPushButton:
    found = window.findChildren(QPushButton, name)
    assert len(found) == 1, name
    return found[0]


def test_what_the_bar_and_the_queue_say_leaves_once_it_is_no_longer_true(
        runtime: Any, console: Any, qtbot: Any) -> None:
    """Defect 1: "Approval waiting for incident #1" and "Approved #1: running as
    execution 1" stayed after the action ran, validated and the incident resolved."""
    driver = ScenarioDriver(runtime, "traffic-surge", seed=7, agents=True)
    window = console(driver)
    engine, queue = runtime.service.engine, window.recommendations_pane
    _step_until(driver, lambda: bool(engine.recommendations(("pending",))))
    rec = engine.recommendations(("pending",))[0]
    qtbot.waitUntil(lambda: "Approval waiting" in window.status.notice, timeout=TIMEOUT_MS)
    assert window.status.notice_about == f"recommendation:{rec.id}"
    incidents = window.incidents_pane.model

    def state_cell() -> str:
        row = incidents.row_of(rec.incident_id)
        return str(incidents.data(incidents.index(row, incidents.STATE))) if row >= 0 else ""

    # The incident's row says the one thing that is true of it: it waits on a person.
    qtbot.waitUntil(lambda: state_cell() == "waiting for approval", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: queue.model.row_of(rec.id) >= 0, timeout=TIMEOUT_MS)
    assert queue.select_recommendation(rec.id)
    qtbot.waitUntil(lambda: _button(window, "approveButton").isEnabled(), timeout=TIMEOUT_MS)
    qtbot.mouseClick(_button(window, "approveButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "running as execution" in queue.message.text(),
                    timeout=TIMEOUT_MS)
    # The approval is given: the bar no longer asks for it.
    qtbot.waitUntil(lambda: "Approval waiting" not in window.status.notice,
                    timeout=TIMEOUT_MS)
    execution = engine.executions()[0]
    _step_until(driver, lambda: engine.execution(execution.id).state not in
                ("intent", "running", "validating"), step=15.0, limit=driver.elapsed + 900)
    assert engine.execution(execution.id).state == "succeeded"
    # The run is over: the queue's message about it is gone too.
    qtbot.waitUntil(lambda: "running as execution" not in queue.message.text(),
                    timeout=TIMEOUT_MS)
    assert any("Approval waiting" in text for text, _ in window.status.notices)  # history
    qtbot.waitUntil(lambda: state_cell() == "resolved", timeout=TIMEOUT_MS)


def _critical(runtime: Any, title: str, service: str) -> int:
    """An incident the correlator would open, stored and announced as it does."""
    saved = runtime.service.save_incidents([IncidentUpdate(
        key=title, id=None, title=title, severity=Severity.CRITICAL, state="open",
        services=(service,), opened_at=runtime.clock.now(), resolved_at=None)],
        actor="agent:correlator")
    runtime.service.announce_incidents(saved)
    return saved[0].id


def test_a_new_critical_incident_takes_the_screen_unless_the_operator_is_busy(
        runtime: Any, console: Any, qtbot: Any) -> None:
    """Defect 2: incident #2 opened while the list, the timeline and the agents stayed on
    the resolved #1 the operator had clicked."""
    window = console(None)
    incidents, coordination = window.incidents_pane, window.coordination_pane
    first = _critical(runtime, "checkout errors", "checkout")
    qtbot.waitUntil(lambda: incidents.model.row_of(first) >= 0, timeout=TIMEOUT_MS)
    incidents.select_incident(first)  # the operator clicked it: the pane is pinned
    assert incidents.pinned
    resolved = runtime.service.save_incidents([IncidentUpdate(
        key="checkout errors", id=first, title="checkout errors",
        severity=Severity.CRITICAL, state="resolved", services=("checkout",),
        opened_at=runtime.clock.now(), resolved_at=runtime.clock.now())],
        actor="agent:correlator")
    runtime.service.announce_incidents(resolved)

    second = _critical(runtime, "payments down", "payments")
    qtbot.waitUntil(lambda: incidents.selected_incident == second, timeout=TIMEOUT_MS)
    assert incidents.timeline.incident_id == second
    assert coordination.incident_id == second
    assert window.status.critical_chip.isHidden()

    # Typing a question: the screen stays, a chip counts what came.
    window.focus_ask()
    qtbot.keyClicks(window.ask_pane.input, "what changed on payments")
    assert window.findChild(CriticalFocus).operator_busy() == "the operator is typing"
    third = _critical(runtime, "search disk full", "search")
    fourth = _critical(runtime, "cart latency", "cart")
    qtbot.waitUntil(lambda: not window.status.critical_chip.isHidden(), timeout=TIMEOUT_MS)
    assert incidents.selected_incident == second
    assert window.status.critical_chip.text() == "2 new critical"
    # A warning is no reason to interrupt, and a critical one seen again is not new.
    runtime.service.announce_incidents([replace(runtime.service.incidents()[0])])
    runtime.service.announce_incidents(runtime.service.save_incidents([IncidentUpdate(
        key="slow", id=None, title="slow search", severity=Severity.WARNING, state="open",
        services=("search",), opened_at=runtime.clock.now(), resolved_at=None)],
        actor="agent:correlator"))
    assert window.status.critical_chip.text() == "2 new critical"
    qtbot.mouseClick(window.status.critical_chip, Qt.MouseButton.LeftButton)
    assert incidents.selected_incident == fourth
    assert window.status.critical_chip.isHidden()

    # In a dialog: the same.
    dialog = QDialog(window)
    dialog.setModal(True)
    dialog.open()
    try:
        fifth = _critical(runtime, "dns failing", "dns")
        qtbot.waitUntil(lambda: not window.status.critical_chip.isHidden(),
                        timeout=TIMEOUT_MS)
        assert incidents.selected_incident == fourth
        assert window.status.critical_chip.text() == "1 new critical"
    finally:
        dialog.close()
    assert third != fifth


def _reddish(color: Any) -> bool:
    return color.red() - max(color.green(), color.blue()) > 60


def test_the_kill_switch_is_unmistakable_and_lifting_it_asks_why(
        runtime: Any, console: Any, qtbot: Any) -> None:
    """Defect 5: off, the button read red-on-pink and looked armed; lifting it asked
    nothing; on, nothing in the panes said that the agents were stopped."""
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QLineEdit

    window = console(None)
    button = window.status.kill_switch
    assert button.text() == "Kill switch: off"
    assert not _reddish(button.palette().color(QPalette.ColorRole.ButtonText))
    assert not window.kill_switch_bar.isVisible()

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # pulling it asks nothing
    assert runtime.service.status().kill_switch
    assert button.text() == "KILL SWITCH ON"
    banner = window.kill_switch_banner
    assert window.kill_switch_bar.isVisible()
    assert "every agent is at autonomy level 0" in banner.text.text()
    assert "pulled by alice" in banner.since.text()
    assert banner.width() >= window.width() * 0.9  # across every pane
    assert _reddish(banner.palette().color(QPalette.ColorRole.Window))

    # Lifting asks for a reason; without one nothing changes.
    qtbot.mouseClick(banner.lift, Qt.MouseButton.LeftButton)
    dialog = window.status.lift_dialog
    assert dialog is not None and dialog.isVisible()
    assert runtime.service.status().kill_switch
    assert not dialog.confirm.isEnabled()
    qtbot.mouseClick(dialog.findChild(QPushButton, "liftCancel"), Qt.MouseButton.LeftButton)
    assert runtime.service.status().kill_switch
    assert window.kill_switch_bar.isVisible()

    window.actions_by_id["kill_switch"].trigger()  # Ctrl+Shift+K: the same question
    dialog = window.status.lift_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.findChild(QLineEdit, "liftReason"), "bad deploy rolled back")
    qtbot.mouseClick(dialog.confirm, Qt.MouseButton.LeftButton)
    assert not runtime.service.status().kill_switch
    assert not window.kill_switch_bar.isVisible()
    assert button.text() == "Kill switch: off"
    lifted = [e for e in runtime.service.audit_entries() if e.action == "autonomy.kill_switch"]
    assert [e.reason for e in lifted][-1] == "bad deploy rolled back"


def test_the_autonomy_menu_sets_the_ceiling_and_the_layout_and_policy_read_plainly(
        runtime: Any, console: Any, qtbot: Any) -> None:
    """Defect 9: the Autonomy menu had only the kill switch (no way to see or set the
    ceiling), there was no 'reset layout', the Settings policy table was empty although
    a default level applies, and durations read 3600.0."""
    window = console(None)
    actions = window.actions_by_id
    ceiling = runtime.service.status().autonomy_ceiling
    autonomy = window.menus["&Autonomy"].actions()
    assert [a.objectName() for a in autonomy if a.objectName().startswith("action_ceiling")] \
        == [f"action_ceiling_{n}" for n in range(6)]
    assert [n for n in range(6) if actions[f"ceiling_{n}"].isChecked()] == [ceiling]
    actions["ceiling_3"].trigger()
    assert runtime.service.status().autonomy_ceiling == 3
    assert [n for n in range(6) if actions[f"ceiling_{n}"].isChecked()] == [3]
    assert runtime.service.audit_entries()[-1].action == "autonomy.set_ceiling"
    assert "Autonomy ceiling 3" in window.status.autonomy_label.text()

    # Reset layout puts a closed pane back.
    window.docks["incidents"].close()
    assert window.docks["incidents"].isHidden()
    actions["reset_layout"].trigger()
    assert not window.docks["incidents"].isHidden()

    # The policy tables show the default level, and durations read as durations.
    window.open_settings()
    dialog = window.settings_dialog
    try:
        levels = dialog.levels_model
        assert [levels.index(0, c).data() for c in range(3)] == ["*", "*", 2]
        text = dialog.policy_text.toPlainText()
        assert "per: 1h" in text and "approval_ttl: 15m" in text
        assert "3600.0" not in text
    finally:
        dialog.close()

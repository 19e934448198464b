"""The console's core panes over the real core: a scenario played with the agent team,
its recommendation approved with a click, the action seen in the history and rolled back
from there, and the estate back where it was. Every model is checked by Qt's model
tester while the real run feeds it."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from console.runtime import ScenarioDriver
from widgets.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000




def _models(window: MainWindow) -> list[Any]:
    inc, rec = window.incidents_pane, window.recommendations_pane
    hist, coord = window.history_pane, window.coordination_pane
    return [inc.model, inc.proxy, inc.timeline, inc.timeline_proxy, rec.model, rec.proxy,
            hist.model, hist.proxy, coord.messages, coord.hypotheses]


def _step_until(driver: ScenarioDriver, done: Any, *, step: float = 30.0,
                limit: float = 3600.0) -> None:
    while not done() and not driver.finished and driver.elapsed < limit:
        driver.step(step)
        QApplication.processEvents()
    assert done(), f"not reached by {driver.elapsed:.0f} s"


def _instances(driver: ScenarioDriver, service: str) -> int:
    return len(driver.player.estate.describe(service)["instances"])


def _button(window: MainWindow, name: str) -> QPushButton:
    found = window.findChildren(QPushButton, name)
    assert len(found) == 1, name
    return found[0]


def test_approve_from_the_queue_then_roll_back_from_the_history(
        runtime: Any, console: Any, qtbot: Any, qtmodeltester: Any) -> None:
    """traffic-surge: the team recommends scaling the frontend out; at autonomy 2 the
    recommendation waits for a person. Approve it with a click, see it run and validate
    in the history, roll it back with a click and a confirmation: the frontend is back
    to the instances it had."""
    driver = ScenarioDriver(runtime, "traffic-surge", seed=7, agents=True)
    window = console(driver)
    for model in _models(window):
        qtmodeltester.check(model)
    resets: list[str] = []
    for model in (window.incidents_pane.model, window.recommendations_pane.model,
                  window.history_pane.model):
        model.modelReset.connect(lambda m=model: resets.append(type(m).__name__))
    queue, history = window.recommendations_pane, window.history_pane
    engine = runtime.service.engine

    _step_until(driver, lambda: bool(engine.recommendations(("pending",))))
    rec = engine.recommendations(("pending",))[0]
    assert rec.runbook_id == "scale-out"
    qtbot.waitUntil(lambda: queue.model.row_of(rec.id) >= 0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: queue.model.standing_of(rec.id) is not None, timeout=TIMEOUT_MS)
    standing = queue.model.standing_of(rec.id)
    assert standing is not None
    assert standing.outcome == "needs_approval"
    assert "needs operator" in queue.model.policy_text(queue.model.recommendation_at(
        queue.model.row_of(rec.id)))
    # The incident, its timeline and the agents who worked it are on screen.
    incidents = window.incidents_pane
    assert incidents.model.rowCount() >= 1
    assert incidents.selected_incident == rec.incident_id
    qtbot.waitUntil(lambda: any(e.kind == "agent" for e in incidents.timeline.entries()),
                    timeout=TIMEOUT_MS)
    coordination = window.coordination_pane
    qtbot.waitUntil(lambda: "investigator" in coordination.lanes.lanes, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: coordination.hypotheses.rowCount() > 0, timeout=TIMEOUT_MS)

    assert queue.select_recommendation(rec.id)
    details = queue.details.toPlainText()
    assert "Execution preview" in details
    assert "Rollback:" in details
    assert "may approve: operator or above" in details
    before = _instances(driver, "frontend")
    approve = _button(window, "approveButton")
    assert approve.isEnabled()
    assert window.actions_by_id["approve"].isEnabled()
    qtbot.mouseClick(approve, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: history.model.rowCount() > 0, timeout=TIMEOUT_MS)
    execution = history.model.execution_at(0)
    assert execution.recommendation_id == rec.id
    assert not execution.autonomous
    assert _instances(driver, "frontend") == before + int(rec.params["count"])
    qtbot.waitUntil(lambda: queue.model.recommendation_at(
        queue.model.row_of(rec.id)).state not in ("pending", "queued"), timeout=TIMEOUT_MS)
    assert "running as execution" in queue.message.text()
    assert not approve.isEnabled()  # nothing left to approve on that row
    # Validation goes on as the estate plays; the row follows it in place.
    _step_until(driver, lambda: engine.execution(execution.id).state != "validating",
                step=15.0, limit=driver.elapsed + 900)
    final = engine.execution(execution.id)
    qtbot.waitUntil(lambda: history.model.execution_at(
        history.model.row_of(execution.id)).state == final.state, timeout=TIMEOUT_MS)
    assert final.can_roll_back, final

    assert history.select_execution(execution.id)
    rollback = _button(window, "rollbackButton")
    assert rollback.isEnabled()
    qtbot.mouseClick(rollback, Qt.MouseButton.LeftButton)
    dialog = history.dialog
    assert dialog is not None
    assert dialog.objectName() == "rollbackDialog"
    assert dialog.isVisible()
    plan_text = dialog.findChild(QWidget, "rollbackPlan").text()
    assert "scale_in" in plan_text
    assert "frontend" in plan_text
    assert _instances(driver, "frontend") == before + int(rec.params["count"])  # not yet
    qtbot.mouseClick(dialog.findChild(QPushButton, "rollbackConfirm"),
                     Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: history.model.execution_at(
        history.model.row_of(execution.id)).state == "rolled_back", timeout=TIMEOUT_MS)
    assert engine.execution(execution.id).state == "rolled_back"
    assert _instances(driver, "frontend") == before  # the estate is back
    assert "rolled back" in history.message.text()
    assert not rollback.isEnabled()
    qtbot.waitUntil(lambda: any("rolled back" in e.summary
                                for e in incidents.timeline.entries()), timeout=TIMEOUT_MS)
    kinds = {e.kind for e in incidents.timeline.entries()}
    assert {"signal", "agent", "approval", "action", "validation"} <= kinds, kinds
    assert resets == []
    actions = [entry.action for entry in runtime.service.audit_entries()]
    assert "recommendation.approve" in actions
    assert "execution.rolled_back" in actions
    assert runtime.bus.failures == []


def test_reject_asks_a_reason_without_blocking_and_four_eyes_is_shown(
        runtime: Any, console: Any, qtbot: Any, qtmodeltester: Any) -> None:
    """bad-deploy: rolling back a deploy is high risk, so the queue says four eyes are
    needed; R opens the reason dialog (not waited on), and the rejection is recorded."""
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    queue = window.recommendations_pane
    engine = runtime.service.engine
    _step_until(driver, lambda: bool(engine.recommendations(("pending",))))
    rec = engine.recommendations(("pending",))[0]
    qtbot.waitUntil(lambda: queue.model.standing_of(rec.id) is not None, timeout=TIMEOUT_MS)
    for model in _models(window):
        qtmodeltester.check(model)
    assert queue.select_recommendation(rec.id)
    standing = queue.model.standing_of(rec.id)
    assert standing is not None
    assert standing.four_eyes
    row = queue.model.row_of(rec.id)
    assert "4 eyes" in queue.model.policy_text(queue.model.recommendation_at(row))
    assert "Four-eyes" in queue.details.toPlainText()
    assert "cannot be undone" in queue.details.toPlainText()  # rollback: none
    assert "[metric:" in queue.details.toPlainText()  # the evidence, cited

    queue.table.setFocus()
    qtbot.keyClick(queue.table, Qt.Key.Key_R)
    dialog = queue.dialog
    assert dialog is not None
    assert dialog.isVisible()
    confirm = dialog.findChild(QPushButton, "rejectConfirm")
    assert not confirm.isEnabled()  # a reason is required
    qtbot.keyClicks(dialog.reason, "deploy is being fixed forward")
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: queue.model.recommendation_at(
        queue.model.row_of(rec.id)).state == "rejected", timeout=TIMEOUT_MS)
    assert engine.recommendation(rec.id).state == "rejected"
    assert "Rejected" in queue.message.text()
    assert runtime.bus.failures == []


def test_a_viewer_is_not_offered_approval_and_the_operation_refuses_it(
        runtime: Any, console: Any, qtbot: Any) -> None:
    """The role decides what the console offers (Approve is off, and says why), and the
    operation itself refuses a viewer whatever the widgets do."""
    from console.operations import PermissionDenied

    runtime.service.add_user("victor", "viewer", as_user="alice")
    driver = ScenarioDriver(runtime, "traffic-surge", seed=7, agents=True)
    window = console(driver, "victor")
    queue = window.recommendations_pane
    engine = runtime.service.engine
    _step_until(driver, lambda: bool(engine.recommendations(("pending",))))
    rec = engine.recommendations(("pending",))[0]
    qtbot.waitUntil(lambda: queue.model.row_of(rec.id) >= 0, timeout=TIMEOUT_MS)
    assert queue.select_recommendation(rec.id)
    qtbot.waitUntil(lambda: queue.model.standing_of(rec.id) is not None, timeout=TIMEOUT_MS)
    approve = _button(window, "approveButton")
    assert not approve.isEnabled()
    assert not window.actions_by_id["approve"].isEnabled()
    assert "viewer" in approve.toolTip()
    qtbot.mouseClick(approve, Qt.MouseButton.LeftButton)  # nothing happens
    with pytest.raises(PermissionDenied, match="needs role operator"):
        engine.approve(rec.id, as_user="victor", preview_hash=rec.preview_hash)
    assert engine.recommendation(rec.id).state == "pending"


def test_pin_and_exclude_go_through_the_steering_operations(runtime: Any, console: Any,
                                                            qtbot: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    coordination = window.coordination_pane
    _step_until(driver, lambda: bool(runtime.service.incidents()))
    _step_until(driver, lambda: coordination.hypotheses.rowCount() >= 2, step=15.0)
    incident_id = coordination.incident_id
    assert incident_id is not None
    second = coordination.hypotheses.hypothesis_at(1)
    assert coordination.select_hypothesis(second.key)
    qtbot.mouseClick(_button(window, "pinButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: coordination.hypotheses.hypothesis_at(0).key == second.key,
                    timeout=TIMEOUT_MS)
    assert coordination.hypotheses.hypothesis_at(0).state == "pinned"
    assert [s.kind for s in runtime.steering.steers(incident_id)] == ["pin"]
    assert coordination.select_hypothesis(second.key)
    qtbot.mouseClick(_button(window, "excludeButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: coordination.hypotheses.hypothesis_at(
        coordination.hypotheses.row_of(second.key)).state == "excluded", timeout=TIMEOUT_MS)
    assert [s.kind for s in runtime.steering.steers(incident_id)] == ["exclude_hypothesis"]
    assert "excluded" in coordination.message.text()
    # Lanes: one per agent, each with what it is doing now (events go in every 250 ms).
    qtbot.waitUntil(lambda: {"coordinator", "investigator", "recommender"}
                    <= set(coordination.lanes.lanes), timeout=TIMEOUT_MS)
    assert coordination.lanes.doing_now("investigator")
    assert runtime.bus.failures == []


def test_new_docks_are_in_the_view_menu_and_every_new_pane_renders(
        runtime: Any, console: Any, qtbot: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    _step_until(driver, lambda: bool(runtime.service.engine.recommendations(("pending",))))
    QApplication.processEvents()
    view = {a.text() for a in window.menus["&View"].actions()}
    for name, title in (("incidents", "Incidents"), ("recommendations", "Recommendations"),
                        ("history", "Action history"), ("coordination", "Agents")):
        dock = window.docks[name]
        assert dock.objectName() == f"{name}Dock"
        assert title in view
        assert dock.isVisible(), name  # in front by default
        image = dock.widget().grab().toImage()
        pixels = {image.pixelColor(x, y).rgb() for x in range(0, image.width(), 9)
                  for y in range(0, image.height(), 9)}
        assert len(pixels) > 8, f"{name} pane is empty"
    assert window.actions_by_id["approve"].shortcut().toString() == "A"
    assert window.actions_by_id["reject"].shortcut().toString() == "R"


def test_in_the_live_console_approving_runs_off_the_gui_thread(
        db_url: str, qloop: Any, qtbot: Any) -> None:
    """console.app.main() on the test loop: the bus is bound, so the panes' reads and the
    approval run on a worker thread and come back as events; the action still shows."""
    import threading

    from tests.test_gui_e2e import running_console

    with running_console(qloop, qtbot, db_url, "traffic-surge", 240.0) as window:
        queue, history = window.recommendations_pane, window.history_pane
        assert window.worker.offload
        qtbot.waitUntil(lambda: any(queue.model.recommendation_at(r).state == "pending"
                                    for r in range(queue.model.rowCount())), timeout=30_000)
        row = next(r for r in range(queue.model.rowCount())
                   if queue.model.recommendation_at(r).state == "pending")
        rec = queue.model.recommendation_at(row)
        assert queue.select_recommendation(rec.id)
        threads: list[str] = []
        engine = window.recommendations_pane._engine
        approve = engine.approve

        def spy(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return approve(*args, **kwargs)

        engine.approve = spy  # type: ignore[method-assign]
        try:
            qtbot.mouseClick(_button(window, "approveButton"), Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: any(history.model.execution_at(r).recommendation_id
                                        == rec.id for r in range(history.model.rowCount())),
                            timeout=TIMEOUT_MS)
        finally:
            del engine.approve
        assert threads
        assert threads[0] != threading.main_thread().name


def test_filters_and_search_narrow_the_tables_and_the_timeline_is_marked_on_the_plot(
        runtime: Any, console: Any, qtbot: Any, qtmodeltester: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    incidents, queue = window.incidents_pane, window.recommendations_pane
    for model in _models(window):
        qtmodeltester.check(model)
    _step_until(driver, lambda: bool(runtime.service.engine.recommendations(("pending",))))
    qtbot.waitUntil(lambda: any(e.kind == "change" for e in incidents.timeline.entries()),
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: any(e.actor == "recommender" for e in incidents.timeline.entries()),
                    timeout=TIMEOUT_MS)  # the agents' steps go in every 250 ms
    # The deploy that caused it is on the timeline, and marked on the plot.
    deploy = next(e for e in incidents.timeline.entries() if e.kind == "change")
    assert "payments" in deploy.summary
    assert deploy.key in incidents._marks
    assert {name for name in incidents._curves} <= set(
        incidents.model.incident_at(0).services)
    assert incidents._curves, "the implicated services are plotted"
    # Drawn on request up to the history's last sample (the snapshot command asks, as
    # it steps faster than the plot's refresh timer fires).
    for _ in range(8):
        driver.step(15.0)
    QApplication.processEvents()
    incidents.draw_plot_now()
    for name, curve in incidents._curves.items():
        x, _y = curve.getData()
        assert x[-1] == incidents.history.series(name)[0][-1]
    total = incidents.timeline_proxy.rowCount()
    incidents.kind_filter.setCurrentIndex(incidents.kind_filter.findData("change"))
    assert 0 < incidents.timeline_proxy.rowCount() < total
    incidents.kind_filter.setCurrentIndex(0)
    incidents.timeline_filter.setText("recommender")
    assert 0 < incidents.timeline_proxy.rowCount() < total
    incidents.timeline_filter.clear()
    assert incidents.timeline_proxy.rowCount() == total
    incidents.filter.setText("no-such-service")
    assert incidents.proxy.rowCount() == 0
    incidents.filter.setText("payments")
    assert incidents.proxy.rowCount() == 1
    qtbot.mouseClick(incidents.open_only, Qt.MouseButton.LeftButton)
    assert incidents.proxy.rowCount() == 1  # still open
    qtbot.waitUntil(lambda: queue.model.rowCount() == 1, timeout=TIMEOUT_MS)
    queue.filter.setText("payments")
    assert queue.proxy.rowCount() == 1
    qtbot.mouseClick(queue.open_only, Qt.MouseButton.LeftButton)
    assert queue.proxy.rowCount() == 1
    window.toggle_theme()  # every new pane follows the theme
    assert window.theme == "light"
    assert runtime.bus.failures == []

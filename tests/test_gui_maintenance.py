"""Maintenance... from the console: from a service's and from an incident's context menu,
started, listed, extended and ended through the same operations as the command line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from agents.correlator_agent import CorrelatorAgent
from console.maintenance import MaintenanceOps
from console.runtime import ScenarioDriver
from tests.test_correlator import alert
from widgets.main_window import MainWindow
from widgets.maintenance_dialog import MaintenanceDialog, MaintenanceModel

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")
TIMEOUT_MS = 10_000


@pytest.fixture
def window(runtime: Any, console: Any) -> MainWindow:
    # One incident on payments and checkout, there before the window opens.
    CorrelatorAgent(runtime.service, {"checkout": ["payments"], "payments": []}).handle(
        [alert("HighErrorRate", "payments", 0), alert("HighErrorRate", "checkout", 1)],
        runtime.clock.now())
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    opened: MainWindow = console(driver)
    QApplication.processEvents()
    return opened


def _trigger(table: Any, name: str) -> MaintenanceDialog:
    assert table.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    action = table.findChild(QAction, name)
    assert action is not None
    assert action.text() == "Maintenance\u2026"
    action.trigger()
    dialog = table.window().findChild(MaintenanceDialog, "maintenanceDialog")
    assert dialog is not None
    assert dialog.isVisible()
    return dialog


def test_a_service_window_is_started_extended_and_ended_from_its_context_menu(
        window: MainWindow, runtime: Any, qtbot: Any, qtmodeltester: Any,
        tmp_path: Path) -> None:
    services = window.services_pane
    services.select_service("cart")
    dialog = _trigger(services.table, "maintenanceServiceAction")
    assert dialog.target.text() == "cart"
    assert not dialog.silence.isEnabled()  # no Alertmanager configured here
    dialog.reason.setText("resizing the connection pool")
    dialog.minutes.setValue(45)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=TIMEOUT_MS)
    qtmodeltester.check(dialog.model)
    ops = MaintenanceOps(runtime.service)
    [stored] = ops.windows()
    assert (stored.services, stored.created_by, stored.reason) == (
        ("cart",), "alice", "resizing the connection pool")
    assert stored.ends_at - stored.starts_at == timedelta(minutes=45)
    assert dialog.status.text().startswith(f"#{stored.id} active until")
    dialog.resize(900, 420)
    dialog.grab().save(str(tmp_path / "maintenance.png"))

    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.extend_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ops.windows()[0].ends_at > stored.ends_at, timeout=TIMEOUT_MS)
    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.end_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 0, timeout=TIMEOUT_MS)
    assert ops.windows() == []
    dialog.show_all.setChecked(True)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=TIMEOUT_MS)
    assert dialog.model.data(dialog.model.index(0, 2)) == "ended"
    actions = [e.action for e in runtime.service.audit_entries()
               if e.action.startswith("maintenance.")]
    assert actions == ["maintenance.start", "maintenance.extend", "maintenance.end"]
    dialog.close()


def test_an_incident_window_covers_the_incidents_services(window: MainWindow, runtime: Any,
                                                          qtbot: Any) -> None:
    pane = window.incidents_pane
    incident = runtime.service.incidents()[-1]
    pane.select_incident(incident.id)
    dialog = _trigger(pane.table, "maintenanceIncidentAction")
    assert set(dialog.target.text().split(", ")) == {"payments", "checkout"}
    assert dialog.target.isReadOnly()
    dialog.reason.setText("failover drill")
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=TIMEOUT_MS)
    [stored] = MaintenanceOps(runtime.service).windows()
    assert stored.incident_id == incident.id
    assert set(stored.services) == {"payments", "checkout"}
    dialog.close()


def test_a_refusal_is_said_in_the_dialog(window: MainWindow, runtime: Any, qtbot: Any) -> None:
    hooks_dialog = window.findChild(QAction, "action_maintenance")
    assert hooks_dialog is not None
    hooks_dialog.trigger()
    dialog = window.findChild(MaintenanceDialog, "maintenanceDialog")
    assert dialog is not None
    assert dialog.target.text() == ""
    dialog.target.setText("cart")
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)  # no reason given
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Refused:"), timeout=TIMEOUT_MS)
    assert "needs a reason" in dialog.status.text()
    assert MaintenanceOps(runtime.service).windows(include_over=True) == []
    dialog.close()


def test_the_model_merges_rows_without_a_reset(runtime: Any, qtmodeltester: Any) -> None:
    ops = MaintenanceOps(runtime.service)
    runtime.service.add_user("bob", "operator", as_user="alice")
    first = ops.start(service="a", reason="x", minutes=10, as_user="bob")
    model = MaintenanceModel(runtime.clock.now)
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.merge(ops.windows())
    second = ops.start(service="b", reason="y", minutes=10, as_user="bob")
    model.merge(ops.windows())
    assert [model.window_at(r).id for r in range(model.rowCount())] == [second.id, first.id]
    ops.end(first.id, as_user="bob")
    model.merge(ops.windows())
    assert [model.window_at(r).id for r in range(model.rowCount())] == [second.id]
    qtmodeltester.check(model)
    assert resets == []

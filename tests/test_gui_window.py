"""The main window: kill switch, permissions, filter, actions, layout persistence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt
from PySide6.QtWidgets import QWidget

from console.app import build_window
from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.events import EstateSnapshot
from widgets.main_window import MainWindow
from widgets.models import AuditTableModel
from widgets.theme import load_stylesheet

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

OpenWindow = Callable[..., MainWindow]


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "watchfloor.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def open_window(runtime: Any, settings: QSettings, qtbot: Any,
                qloop: Any) -> Iterator[OpenWindow]:
    windows: list[MainWindow] = []

    def open_(user: str = "alice", *, driver: Any = None,
              with_settings: QSettings | None = None) -> MainWindow:
        window = build_window(runtime, driver, user, settings=with_settings or settings)
        window.show()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def alert(runtime: Any, service: str, name: str = "HighErrorRate",
          severity: Severity = Severity.CRITICAL, seconds: float = 0.0) -> Signal:
    return Signal(source="test", kind=SignalKind.ALERT, name=name, service=service,
                  severity=severity, status=AlertStatus.FIRING,
                  at=runtime.clock.now() + timedelta(seconds=seconds),
                  labels={"service": service}, annotations={"summary": f"{name} on {service}"})


def test_kill_switch_flips_the_stored_status_and_is_audited(runtime: Any, qtbot: Any,
                                                            open_window: OpenWindow) -> None:
    window = open_window()
    button = window.status.kill_switch
    assert button.objectName() == "killSwitch"
    assert window.findChild(type(button), "killSwitch") is button
    audit = window.audit_pane.model
    rows_before = audit.rowCount()

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    assert runtime.service.status().kill_switch is True
    assert button.isChecked()
    assert "KILL SWITCH ON" in window.status.autonomy_label.text()
    assert window.actions_by_id["kill_switch"].isChecked()
    assert audit.rowCount() == rows_before + 1
    assert audit.index(0, AuditTableModel.ACTION).data() == "autonomy.kill_switch"
    assert audit.index(0, AuditTableModel.ACTOR).data() == "user:alice"
    assert audit.index(0, AuditTableModel.DECISION).data() == "allow"
    assert window.audit_pane.proxy.rowCount() == audit.rowCount()

    window.actions_by_id["kill_switch"].trigger()  # Ctrl+Shift+K: lifting asks why
    assert runtime.service.status().kill_switch is True
    dialog = window.status.lift_dialog
    assert dialog is not None
    dialog.reason.setText("drill over")
    dialog.confirm.click()

    assert runtime.service.status().kill_switch is False
    assert not button.isChecked()
    assert "KILL SWITCH" not in window.status.autonomy_label.text()
    assert audit.rowCount() == rows_before + 2


def test_viewer_is_refused_with_a_message_and_nothing_changes(runtime: Any, qtbot: Any,
                                                              open_window: OpenWindow) -> None:
    runtime.service.add_user("victor", "viewer", as_user="alice")
    window = open_window("victor")
    assert window.status.user_label.text() == "victor (viewer)"

    qtbot.mouseClick(window.status.kill_switch, Qt.MouseButton.LeftButton)

    assert runtime.service.status().kill_switch is False
    assert not window.status.kill_switch.isChecked()
    assert not window.actions_by_id["kill_switch"].isChecked()
    assert "needs role operator" in window.status.notice
    assert window.status.notice_label.property("level") == "error"
    audit = window.audit_pane.model
    assert audit.index(0, AuditTableModel.DECISION).data() == "deny"
    assert audit.index(0, AuditTableModel.ACTOR).data() == "user:victor"


def test_signals_from_the_bus_appear_and_the_filter_filters(runtime: Any,
                                                            open_window: OpenWindow) -> None:
    window = open_window()
    pane = window.signals_pane
    inserted: list[tuple[int, int]] = []
    resets: list[bool] = []
    pane.model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    pane.model.modelReset.connect(lambda: resets.append(True))

    runtime.service.ingest([alert(runtime, "payments"),
                            alert(runtime, "cart", severity=Severity.WARNING, seconds=1),
                            alert(runtime, "payments", "HighLatency", seconds=2)])

    assert inserted == [(0, 2)]
    assert not resets
    assert pane.proxy.rowCount() == 3
    assert "Signals 3" in window.status.signal_label.text()
    assert "firing 3" in window.status.signal_label.text()

    line_edit = window.findChild(type(pane.filter), "signalFilter")
    assert line_edit is pane.filter
    line_edit.setText("payments")
    assert pane.proxy.rowCount() == 2
    line_edit.setText("warning")  # any column, any case
    assert pane.proxy.rowCount() == 1
    line_edit.setText("HighLatency")
    assert pane.proxy.rowCount() == 1
    assert pane.count_label.text() == "1 of 3"
    runtime.service.ingest([alert(runtime, "search", "HighLatency", seconds=3)])
    assert pane.proxy.rowCount() == 2  # new rows are filtered as they arrive
    line_edit.clear()
    assert pane.proxy.rowCount() == 4


def test_firing_now_only_leaves_the_live_alerts(runtime: Any, qtbot: Any,
                                               open_window: OpenWindow) -> None:
    window = open_window()
    pane = window.signals_pane
    toggle = window.findChild(type(pane.live_only_toggle), "liveOnlyToggle")
    assert toggle is pane.live_only_toggle
    cpu = alert(runtime, "payments", "HighCPU", Severity.WARNING)
    runtime.service.ingest([cpu, alert(runtime, "cart", seconds=1)])
    runtime.service.ingest([replace(cpu, status=AlertStatus.RESOLVED,
                                    at=cpu.at + timedelta(minutes=5))])
    assert pane.proxy.rowCount() == 3

    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)

    assert toggle.isChecked()
    assert pane.proxy.rowCount() == 1
    assert pane.proxy.index(0, 3).data() == "cart"
    assert pane.count_label.text() == "1 of 3"
    runtime.service.ingest([alert(runtime, "search", seconds=2)])
    assert pane.proxy.rowCount() == 2  # a new firing alert shows at once
    pane.set_filter("search")
    assert pane.proxy.rowCount() == 1  # both filters at once
    pane.set_filter("")
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert pane.proxy.rowCount() == 4


def test_services_pane_follows_snapshots_and_drives_the_metrics_pane(
        runtime: Any, open_window: OpenWindow) -> None:
    window = open_window()
    base = {"request_rate": 100.0, "error_rate": 0.001, "latency_p99_ms": 80.0,
            "cpu": 20.0, "memory": 40.0, "disk": 30.0, "instances_ready": 2.0}
    for step in range(3):
        runtime.clock.advance(30)
        bad = dict(base, error_rate=0.1 * step, latency_p99_ms=800.0 * step)
        runtime.bus.publish(EstateSnapshot(runtime.clock.now(), {"frontend": base,
                                                                 "payments": bad}))
    services = window.services_pane
    assert services.model.rowCount() == 2
    # Worst health first, and the first row is selected so the plot has something to show.
    assert services.proxy.index(0, 0).data() == "payments"
    services.select_service("frontend")
    assert window.metrics_pane.service == "frontend"
    services.select_service("payments")
    t, errors, p99 = window.metrics_pane.history.series("payments")
    assert list(errors) == pytest.approx([0.0, 10.0, 20.0])
    assert list(p99) == [0.0, 800.0, 1600.0]
    assert len(t) == 3
    assert "payments" in window.metrics_pane.title.text()
    assert "02:01:30" in window.status.clock_label.text()


def test_actions_change_speed_and_theme(runtime: Any, settings: QSettings,
                                        open_window: OpenWindow) -> None:
    window = open_window()
    actions = window.actions_by_id
    assert actions["quit"].shortcut().toString() == "Ctrl+Q"
    assert actions["toggle_theme"].shortcut().toString() == "Ctrl+T"
    assert actions["faster"].shortcut().toString() == "Ctrl+="
    assert actions["slower"].shortcut().toString() == "Ctrl+-"
    assert actions["kill_switch"].shortcut().toString() == "Ctrl+Shift+K"
    runtime.clock.speed = 10
    actions["faster"].trigger()
    assert runtime.clock.speed == 20
    assert "\u00d720" in window.status.clock_label.text()
    actions["slower"].trigger()
    actions["slower"].trigger()
    assert runtime.clock.speed == 5
    assert window.theme == "dark"
    assert window.styleSheet() == load_stylesheet("dark")
    actions["toggle_theme"].trigger()
    assert window.theme == "light"
    assert window.styleSheet() == load_stylesheet("light")
    assert settings.value("ui/theme") == "light"
    actions["quit"].trigger()
    assert not window.isVisible()


def test_layout_and_theme_round_trip_through_qsettings(settings: QSettings,
                                                       open_window: OpenWindow) -> None:
    first = open_window()
    first.resize(700, 500)  # inside the offscreen screen, which clamps restored geometry
    first.docks["metrics"].hide()
    first.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, first.docks["audit"])
    first.toggle_theme()
    first.close()  # saves
    assert settings.value("mainWindow/state") is not None

    second = open_window()
    assert second.theme == "light"
    assert second.docks["metrics"].isHidden()
    assert not second.docks["signals"].isHidden()
    assert second.dockWidgetArea(second.docks["audit"]) == Qt.DockWidgetArea.BottomDockWidgetArea
    assert (second.width(), second.height()) == (700, 500)


def test_a_fresh_settings_file_gives_the_default_layout(open_window: OpenWindow) -> None:
    window = open_window()
    assert not window.restore_layout()
    assert window.dockWidgetArea(window.docks["services"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert window.dockWidgetArea(window.docks["audit"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert all(not dock.isHidden() for dock in window.docks.values())


def test_every_dock_has_an_object_name(open_window: OpenWindow) -> None:
    window = open_window()
    names = {dock.objectName() for dock in window.docks.values()}
    assert names == {"servicesDock", "signalsDock", "metricsDock", "auditDock",
                     "incidentsDock", "recommendationsDock", "historyDock",
                     "coordinationDock", "outcomesDock", "auditBrowserDock", "askDock"}
    assert {dock.windowTitle() for dock in window.docks.values()} == {
        "Services", "Signals", "Metrics", "Audit", "Incidents", "Recommendations",
        "Action history", "Agents", "Outcomes", "Audit browser", "Ask"}


@pytest.mark.parametrize("name", [
    "killSwitch", "signalFilter", "liveOnlyToggle", "servicesTable", "signalsTable",
    "auditTable", "errorPlot", "latencyPlot", "clockLabel", "autonomyLabel", "statusBar"])
def test_what_a_person_looks_at_or_clicks_has_a_stable_object_name(
        open_window: OpenWindow, name: str) -> None:
    window = open_window()
    found = window.findChildren(QWidget, name)
    assert len(found) == 1, f"{name}: {found}"
    assert found[0].isVisible()


def test_incidents_pane_reads_only_the_notes_it_has_not_shown(
        runtime: Any, open_window: OpenWindow, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from console.domain import IncidentUpdate, TimelineNote

    window = open_window()
    service = runtime.service
    opened = runtime.clock.now()
    asked: list[int] = []
    read = service.incident_activity

    def spy(incident_id: int, **kwargs: Any) -> Any:
        asked.append(kwargs.get("after_note_id", 0))
        return read(incident_id, **kwargs)

    monkeypatch.setattr(service, "incident_activity", spy)

    def save(incident_id: int | None, first: int, count: int) -> int:
        notes = tuple(TimelineNote(opened + timedelta(seconds=n), "note", f"note {n}")
                      for n in range(first, first + count))
        saved = service.save_incidents([IncidentUpdate(
            key=1, id=incident_id, title="t", severity=Severity.CRITICAL, state="open",
            services=("checkout",), opened_at=opened, resolved_at=None, notes=notes)],
            actor="agent:correlator")
        service.announce_incidents(saved)
        return saved[0].id

    def notes_shown() -> list[str]:
        return [e.summary for e in window.incidents_pane.timeline.entries() if e.kind == "note"]

    incident_id = save(None, 0, 3)
    qtbot.waitUntil(lambda: len(notes_shown()) == 3, timeout=5000)
    assert asked[0] == 0  # a newly selected incident is read whole
    seen = window.incidents_pane.timeline.last_note_id
    assert seen > 0
    save(incident_id, 3, 2)
    qtbot.waitUntil(lambda: len(notes_shown()) == 5, timeout=5000)
    assert asked[-1] >= seen  # later reads ask only for what followed
    assert notes_shown() == [f"note {n}" for n in range(5)]


def test_a_pane_tabbed_behind_another_does_no_work_until_it_comes_to_the_front(
        runtime: Any, open_window: OpenWindow, qtbot: Any) -> None:
    """The outcomes dock sits behind the incidents by default: a stream of incidents does
    not make it recompute its KPIs (Qt still calls a tabbed-away dock visible), and it
    catches up once raised."""
    from console.domain import IncidentUpdate

    window = open_window()
    outcomes = window.outcomes_pane
    qtbot.waitUntil(lambda: outcomes.report is not None, timeout=10_000)  # the first fill
    assert window.docks["outcomes"].visibleRegion().isEmpty()
    reports: list[Any] = []
    outcomes.reportShown.connect(reports.append)
    saved = runtime.service.save_incidents([IncidentUpdate(
        key=1, id=None, title="t", severity=Severity.CRITICAL, state="open",
        services=("checkout",), opened_at=runtime.clock.now(), resolved_at=None, notes=())],
        actor="agent:correlator")
    runtime.service.announce_incidents(saved)
    qtbot.wait(2500)  # beyond the pane's 1.5 s debounce
    assert reports == []
    window.show_dock("outcomes")
    qtbot.waitUntil(lambda: bool(reports), timeout=10_000)
    assert reports[-1].totals.incidents == 1  # the incident that came while it was hidden


def test_a_table_repaint_enters_the_python_model_once_per_cell_and_paints_the_same(
        runtime: Any, open_window: OpenWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    """During the storm each entry from C++ into Python waits for the interpreter lock;
    a painted cell must cost one (`multiData`), not one per role, and look the same."""
    from PySide6.QtCore import QSortFilterProxyModel

    from widgets.models import SignalTableModel, TableModel

    window = open_window()
    pane = window.signals_pane
    window.resize(1400, 900)
    runtime.service.ingest([alert(runtime, "payments"),
                            alert(runtime, "cart", severity=Severity.WARNING, seconds=1),
                            alert(runtime, "search", "HighLatency", Severity.INFO, seconds=2)])
    pane.table.resize(900, 300)
    inside = [0]
    calls = {"multi": 0, "data_from_qt": 0}
    plain_data = SignalTableModel.data
    plain_multi = TableModel.multiData

    def data(self: Any, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not inside[0]:
            calls["data_from_qt"] += 1
        return plain_data(self, index, role)

    def multi(self: Any, index: Any, span: Any) -> None:
        calls["multi"] += 1
        inside[0] += 1
        try:
            plain_multi(self, index, span)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(SignalTableModel, "data", data)
    monkeypatch.setattr(TableModel, "multiData", multi)
    painted = pane.table.grab().toImage()

    cells = pane.proxy.rowCount() * pane.proxy.columnCount()
    assert calls["multi"] >= cells
    assert calls["data_from_qt"] == 0

    # the same view over Qt's own proxy (one `data` call per role) paints the same pixels
    pane.table.clearSelection()
    painted = pane.table.viewport().grab().toImage()
    assert calls["data_from_qt"] == 0
    widths = [pane.table.columnWidth(col) for col in range(pane.proxy.columnCount())]
    plain = QSortFilterProxyModel()
    plain.setSourceModel(pane.model)
    pane.table.setModel(plain)
    for col, width in enumerate(widths):
        pane.table.setColumnWidth(col, width)
    reference = pane.table.viewport().grab().toImage()
    pane.table.setModel(pane.proxy)
    assert calls["data_from_qt"] > 0  # Qt's proxy asks role by role
    assert painted == reference


def test_a_burst_of_agent_steps_goes_into_the_timeline_and_messages_in_one_insert(
        runtime: Any, open_window: OpenWindow, qtbot: Any) -> None:
    """Ten steps a second in a storm: each inserted on its own repainted the timeline."""
    from agents.board import AgentEventPosted
    from console.domain import AgentEvent, IncidentUpdate

    window = open_window()
    service = runtime.service
    opened = runtime.clock.now()
    saved = service.save_incidents([IncidentUpdate(
        key=1, id=None, title="t", severity=Severity.CRITICAL, state="open",
        services=("checkout",), opened_at=opened, resolved_at=None, notes=())],
        actor="agent:correlator")
    service.announce_incidents(saved)
    incident_id = saved[0].id
    pane, coordination = window.incidents_pane, window.coordination_pane
    qtbot.waitUntil(lambda: pane.timeline.incident_id == incident_id
                    and coordination.incident_id == incident_id, timeout=5000)
    qtbot.wait(400)  # the first reads are in
    inserts: list[tuple[int, int]] = []
    messages: list[tuple[int, int]] = []
    pane.timeline.rowsInserted.connect(lambda _p, a, b: inserts.append((a, b)))
    coordination.messages.rowsInserted.connect(lambda _p, a, b: messages.append((a, b)))
    for n in range(12):
        runtime.bus.publish(AgentEventPosted(AgentEvent(
            id=1000 + n, incident_id=incident_id, agent="investigator", kind="message",
            summary=f"step {n}", at=opened + timedelta(seconds=n), to_agent="board")))
    runtime.bus.publish(AgentEventPosted(AgentEvent(  # another incident's: not shown
        id=2000, incident_id=incident_id + 1, agent="investigator", kind="message",
        summary="elsewhere", at=opened, to_agent="board")))

    def shown() -> list[str]:
        return [e.summary for e in pane.timeline.entries() if ": step " in e.summary]

    qtbot.waitUntil(lambda: len(shown()) == 12
                    and coordination.messages.rowCount() >= 12, timeout=5000)
    assert shown() == [f"message \u2192 board: step {n}" for n in range(12)]
    assert inserts == [(inserts[0][0], inserts[0][0] + 11)]
    assert messages == [(messages[0][0], messages[0][0] + 11)]
    assert not any("elsewhere" in e.summary for e in pane.timeline.entries())
    assert "investigator" in coordination.lanes.lanes

"""Maintenance windows in the console: start one from an incident or a service, see the
windows in force, extend one or end it early.

The dialog is a view over the core's operations (console/maintenance.py): every click
is an operation run on the `Worker`, so the GUI thread never waits on the database or
on Alertmanager, and what the core refuses is said in the dialog's status line. The
list follows the bus: any console's start, extend or end (``changes.maintenance``)
re-reads it, merged row by row; a window that expires drops out on the next minute's
look without anyone doing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from console.events import OperationDone
from console.maintenance import MAX_MINUTES, MaintenanceOps, MaintenanceWindow
from widgets.bridge import BusBridge
from widgets.ops import Worker, describe_error
from widgets.tables import make_table

EXPIRY_LOOK_MS = 60_000  # how often the list drops windows that expired meanwhile
EXTEND_MINUTES = 30
Index = QModelIndex | QPersistentModelIndex


class MaintenanceModel(QAbstractTableModel):
    """The windows, newest first, merged row by row (never reset per refresh)."""

    COLUMNS = ("#", "Services", "State", "Until (UTC)", "Alerts kept", "By", "Reason",
               "Silence")

    def __init__(self, now: Callable[[], datetime], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._now = now
        self._rows: list[MaintenanceWindow] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        w = self._rows[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return w.describe()
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        silence = w.silence.get("id", "")
        return (str(w.id), ", ".join(w.services), w.state(self._now()),
                w.until.strftime("%Y-%m-%d %H:%M"), str(w.kept), w.created_by, w.reason,
                str(silence)[:8])[index.column()]

    def window_at(self, row: int) -> MaintenanceWindow:
        return self._rows[row]

    def merge(self, windows: Sequence[MaintenanceWindow]) -> None:
        """Show `windows` (newest first): rows gone are removed, changed ones updated,
        new ones inserted where they belong."""
        keep = {w.id for w in windows}
        for row in range(len(self._rows) - 1, -1, -1):
            if self._rows[row].id not in keep:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        for position, window in enumerate(windows):
            if position < len(self._rows) and self._rows[position].id == window.id:
                if self._rows[position] != window:
                    self._rows[position] = window
                    self.dataChanged.emit(self.index(position, 0),
                                          self.index(position, len(self.COLUMNS) - 1))
                continue
            self.beginInsertRows(QModelIndex(), position, position)
            self._rows.insert(position, window)
            self.endInsertRows()
        # States move with the clock alone (active -> expired): repaint that column.
        if self._rows:
            self.dataChanged.emit(self.index(0, 2), self.index(len(self._rows) - 1, 2))


class MaintenanceDialog(QDialog):
    """Start a window on `service` or on the services of `incident_id` (or on a service
    typed in), and manage the windows in force."""

    def __init__(self, ops: MaintenanceOps, *, user: str, bridge: BusBridge, worker: Worker,
                 service: str | None = None, incident_id: int | None = None,
                 incident_services: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maintenanceDialog")
        self.setWindowTitle("Maintenance windows")
        self._ops, self._user, self._worker = ops, user, worker
        self._incident_id = incident_id
        self.model = MaintenanceModel(ops.service.clock.now, self)

        self.target = QLineEdit(service or "", self)
        self.target.setObjectName("maintenanceService")
        self.target.setPlaceholderText("service name")
        if incident_id is not None:
            self.target.setText(", ".join(incident_services))
            self.target.setReadOnly(True)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("maintenanceReason")
        self.reason.setPlaceholderText("What is being done (shown wherever the window "
                                       "holds something back)")
        self.minutes = QSpinBox(self)
        self.minutes.setObjectName("maintenanceMinutes")
        self.minutes.setRange(1, MAX_MINUTES)
        self.minutes.setValue(60)
        self.minutes.setSuffix(" min")
        self.silence = QCheckBox("Also silence these services in Alertmanager", self)
        self.silence.setObjectName("maintenanceSilence")
        if ops.alertmanager is None:
            self.silence.setEnabled(False)
            self.silence.setToolTip("No Alertmanager is configured (Settings -> Sources)")
        else:
            self.silence.setToolTip(f"A silence in {ops.alertmanager} for the same time")
        self.start_button = QPushButton("Start window", self)
        self.start_button.setObjectName("maintenanceStart")
        self.start_button.clicked.connect(self._on_start_clicked)

        self.show_all = QCheckBox("Show past windows", self)
        self.show_all.setObjectName("maintenanceShowAll")
        self.show_all.toggled.connect(self.refresh)
        self.table = make_table("maintenanceTable", self.model,
                                ("888", "payments, checkout", "expired", "2026-01-01 00:00",
                                 "888", "alice", "", "0a1b2c3d"), self)
        self.table.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self.extend_button = QPushButton(f"Extend {EXTEND_MINUTES} min", self)
        self.extend_button.setObjectName("maintenanceExtend")
        self.extend_button.clicked.connect(self._on_extend_clicked)
        self.end_button = QPushButton("End now", self)
        self.end_button.setObjectName("maintenanceEnd")
        self.end_button.clicked.connect(self._on_end_clicked)
        self.status = QLabel("", self)
        self.status.setObjectName("maintenanceStatus")
        self.status.setWordWrap(True)
        self._layout(incident_id)

        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self._on_selection_changed()
        bridge.operationDone.connect(self._on_bridge_operation_done)
        self._expiry = QTimer(self)
        self._expiry.setInterval(EXPIRY_LOOK_MS)
        self._expiry.timeout.connect(self.refresh)
        self._expiry.start()
        self.resize(860, 460)
        self.refresh()

    def _layout(self, incident_id: int | None) -> None:
        new = QGroupBox("New window" if incident_id is None
                        else f"New window for incident #{incident_id}", self)
        form = QFormLayout(new)
        form.addRow("Services", self.target)
        form.addRow("Reason", self.reason)
        form.addRow("Lasts", self.minutes)
        form.addRow("", self.silence)
        form.addRow("", self.start_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_all)
        buttons.addStretch(1)
        buttons.addWidget(self.extend_button)
        buttons.addWidget(self.end_button)
        layout = QVBoxLayout(self)
        layout.addWidget(new)
        hint = QLabel("While a window applies, its services' alerts are kept but open no "
                      "incident, and no agent or rule acts on them on its own (a person "
                      "may still approve).", self)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    # --- reads ------------------------------------------------------------------------

    def refresh(self) -> None:
        everything = self.show_all.isChecked()
        self._worker.submit("reading the maintenance windows",
                            lambda: self._ops.windows(include_over=everything),
                            on_done=self.model.merge)

    def _on_bridge_operation_done(self, event: OperationDone) -> None:
        if event.changes.maintenance:
            self.refresh()

    def _selected(self) -> MaintenanceWindow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.window_at(rows[0].row()) if rows else None

    def _on_selection_changed(self, *_args: object) -> None:
        window = self._selected()
        live = window is not None and window.state(self._ops.service.clock.now()) in (
            "active", "scheduled")
        self.extend_button.setEnabled(live)
        self.end_button.setEnabled(live)

    # --- operations -------------------------------------------------------------------

    def _run(self, what: str, call: Callable[[], MaintenanceWindow]) -> None:
        self.status.setText(f"{what}\u2026")
        self._worker.submit(what, call, on_done=self._on_done, on_error=self._on_error)

    def _on_done(self, window: MaintenanceWindow) -> None:
        silence = window.silence.get("id")
        self.status.setText(f"#{window.id} {window.state(self._ops.service.clock.now())} "
                            f"until {window.until:%Y-%m-%d %H:%M} UTC"
                            + (f"; silence {silence}" if silence else "")
                            + (f"; the silence was not expired: {window.silence['error']}"
                               if window.silence.get("error") else ""))
        self.refresh()

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText(f"Refused: {describe_error(exc)}")

    def _on_start_clicked(self) -> None:
        reason, minutes, silence = self.reason.text(), self.minutes.value(), \
            self.silence.isChecked()
        if self._incident_id is not None:
            incident = self._incident_id
            self._run("starting the window", lambda: self._ops.start(
                incident_id=incident, reason=reason, minutes=minutes, as_user=self._user,
                silence=silence))
            return
        service = self.target.text()
        self._run("starting the window", lambda: self._ops.start(
            service=service, reason=reason, minutes=minutes, as_user=self._user,
            silence=silence))

    def _on_extend_clicked(self) -> None:
        window = self._selected()
        if window is not None:
            self._run(f"extending #{window.id}", lambda: self._ops.extend(
                window.id, EXTEND_MINUTES, as_user=self._user))

    def _on_end_clicked(self) -> None:
        window = self._selected()
        if window is not None:
            self._run(f"ending #{window.id}", lambda: self._ops.end(
                window.id, as_user=self._user, reason="ended from the console"))


class MaintenanceHooks(QObject):
    """The "Maintenance..." entries: on the incidents' and the services' tables (their
    context menus) and in the Operations menu. Keeps the open dialog alive."""

    def __init__(self, window: QMainWindow, ops: MaintenanceOps, *, user: str,
                 bridge: BusBridge, worker: Worker) -> None:
        super().__init__(window)
        self._window, self._ops, self._user = window, ops, user
        self._bridge, self._worker = bridge, worker
        self.dialog: MaintenanceDialog | None = None
        incidents = getattr(window, "incidents_pane", None)
        services = getattr(window, "services_pane", None)
        if incidents is not None:
            self._add(incidents.table, "maintenanceIncidentAction",
                      lambda: self.open_for_incident(incidents.model,
                                                     incidents.selected_incident))
        if services is not None:
            self._add(services.table, "maintenanceServiceAction",
                      lambda: self.open_dialog(service=services.selected_service))
        menu = getattr(window, "menus", {}).get("&Operations")
        if menu is not None:
            action = QAction("&Maintenance windows\u2026", window)
            action.setObjectName("action_maintenance")
            action.triggered.connect(lambda _checked=False: self.open_dialog())
            menu.addSeparator()
            menu.addAction(action)
        window.destroyed.connect(ops.close)

    def _add(self, table: QWidget, name: str, handler: Callable[[], None]) -> None:
        action = QAction("Maintenance\u2026", table)
        action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: handler())
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        table.addAction(action)

    def open_for_incident(self, model: Any, incident_id: int | None) -> None:
        """The incident's services as its row shows them (the core reads them again)."""
        row = -1 if incident_id is None else model.row_of(incident_id)
        if row < 0:
            self.open_dialog()
            return
        self.open_dialog(incident_id=incident_id,
                         incident_services=model.incident_at(row).services)

    def open_dialog(self, *, service: str | None = None, incident_id: int | None = None,
                    incident_services: Sequence[str] = ()) -> MaintenanceDialog:
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
        self.dialog = MaintenanceDialog(self._ops, user=self._user, bridge=self._bridge,
                                        worker=self._worker, service=service,
                                        incident_id=incident_id,
                                        incident_services=incident_services,
                                        parent=self._window)
        self.dialog.open()
        return self.dialog


def attach_maintenance(window: QMainWindow, service: Any, *, user: str, bridge: BusBridge,
                       worker: Worker) -> MaintenanceHooks:
    """The hooks over a `MaintenanceOps` whose silences go to the Alertmanager configured
    for the console ($WATCHFLOOR_ALERTMANAGER, else Settings -> Sources); a settings file
    that does not validate leaves silences off (the window says so on its checkbox)."""
    from console.maintenance_cli import configured_alertmanager

    try:
        alertmanager = configured_alertmanager(None)
    except ValueError:
        alertmanager = None
    return MaintenanceHooks(window, MaintenanceOps(service, alertmanager), user=user,
                            bridge=bridge, worker=worker)

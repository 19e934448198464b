"""The wallboard: the NOC video wall's view of the night, read from across the room.

Open incidents in large type with their live state, the autonomy ceiling, and the kill
switch when it is on, in high contrast and full screen. It only shows: nothing on it
approves, rejects or rolls back (a wall is not where decisions are made, and anyone
walking past could press a button), and it takes no focus from the operator's console
beyond its own window. Esc leaves it.

The rows are the incident list's own model (the same live state the console shows,
from `console.incident_state`), filtered to open incidents; the autonomy line is read
through the facade on the `Worker` whenever a settings operation is announced.
"""

from __future__ import annotations

from collections.abc import Callable

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.clock import Clock
from console.events import OperationDone
from console.service import Status
from widgets.bridge import BusBridge
from widgets.filtering import RowFilterProxy
from widgets.incident_models import IncidentTableModel
from widgets.ops import Worker, describe_error

CLOCK_MS = 1000
ROW_PT = 26  # the rows' type size, read from across the room
COLUMNS = (IncidentTableModel.ID, IncidentTableModel.SEVERITY, IncidentTableModel.STATE,
           IncidentTableModel.CAUSE, IncidentTableModel.OPENED, IncidentTableModel.SERVICES)
"""What the wall shows of an incident, in this order; the services (a long list in a
big incident) take what is left, elided."""

STYLE = """
QWidget#wallboard { background: #000000; color: #ffffff; }
QLabel { color: #ffffff; background: transparent; }
QLabel#wallboardTitle { font-size: 30px; font-weight: bold; }
QLabel#wallboardClock { font-size: 30px; font-weight: bold; color: #ffffff; }
QLabel#wallboardAutonomy { font-size: 30px; font-weight: bold; padding: 6px 14px;
                           border: 3px solid #ffffff; }
QLabel#wallboardAutonomy[killSwitch="true"] { background: #d00000; color: #ffffff;
                                               border-color: #ffff00; }
QLabel#wallboardCount { font-size: 26px; color: #ffff00; font-weight: bold; }
QLabel#wallboardEmpty { font-size: 40px; color: #00e060; font-weight: bold; }
QLabel#wallboardHint { font-size: 15px; color: #c0c0c0; }
QTableView#wallboardTable { background: #000000; alternate-background-color: #141414;
                            color: #ffffff; gridline-color: #404040; border: none; }
QTableView#wallboardTable::item { padding: 4px 10px; }
QHeaderView::section { background: #202020; color: #ffffff; font-size: 24px;
                       font-weight: bold; padding: 6px 10px; border: none;
                       border-bottom: 3px solid #ffffff; }
"""


class OpenIncidents(RowFilterProxy):
    """The incident model's open incidents only, most severe first, then the newest."""

    def __init__(self, model: IncidentTableModel, parent: QWidget) -> None:
        super().__init__(model, parent)
        self.incidents = model
        self.keep_only(lambda row: model.incident_at(row).state == "open")
        self.sort(IncidentTableModel.ID, Qt.SortOrder.DescendingOrder)
        self.font = QFont()
        self.font.setPointSize(ROW_PT)
        self.bold = QFont(self.font)
        self.bold.setBold(True)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The console's cells in the wall's type: the model's own (small) bold font
        would shrink the id, the severity and the state back to desk size."""
        if role == Qt.ItemDataRole.FontRole:
            return self.bold if index.column() in (
                IncidentTableModel.ID, IncidentTableModel.SEVERITY,
                IncidentTableModel.STATE) else self.font
        return super().data(index, role)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex,
                 right: QModelIndex | QPersistentModelIndex) -> bool:
        a = self.incidents.incident_at(left.row())
        b = self.incidents.incident_at(right.row())
        rank = {"critical": 2, "warning": 1}
        return (rank.get(a.severity.value, 0), a.id) < (rank.get(b.severity.value, 0), b.id)


class Wallboard(QWidget):
    """A read-only, full-screen window over the open incidents and the autonomy level."""

    def __init__(self, model: IncidentTableModel, *, read_status: Callable[[], Status],
                 bridge: BusBridge, worker: Worker, clock: Clock,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("wallboard")
        self.setWindowTitle("Watchfloor \u2014 wallboard")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self._read_status, self._worker, self._clock = read_status, worker, clock
        self.status: Status | None = None
        self.proxy = OpenIncidents(model, self)
        self.title = self._label("wallboardTitle", "WATCHFLOOR")
        self.clock_label = self._label("wallboardClock", "")
        self.autonomy = self._label("wallboardAutonomy", "Autonomy \u2026")
        self.count = self._label("wallboardCount", "")
        self.empty = self._label("wallboardEmpty", "No open incidents")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = self._label("wallboardHint", "Read-only wallboard \u2014 Esc leaves it")
        self.table = self._table()
        self._layout()
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._show_count)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        self._tick = QTimer(self)
        self._tick.setInterval(CLOCK_MS)
        self._tick.timeout.connect(self._show_clock)
        self._tick.start()
        self._show_clock()
        self._show_count()
        self.refresh_status()

    def _label(self, name: str, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setObjectName(name)
        return label

    def _table(self) -> QTableView:
        table = QTableView(self)
        table.setObjectName("wallboardTable")
        table.setModel(self.proxy)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        table.setCornerButtonEnabled(False)  # "select all" is no business of a wall
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.verticalHeader().setVisible(False)
        table.setFont(self.proxy.font)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 22)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for col in range(self.proxy.columnCount()):
            if col not in COLUMNS:
                table.setColumnHidden(col, True)
        for visual, col in enumerate(COLUMNS):
            header.moveSection(header.visualIndex(col), visual)
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(IncidentTableModel.SERVICES, QHeaderView.ResizeMode.Stretch)
        return table

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.setSpacing(24)
        top.addWidget(self.title)
        top.addWidget(self.count)
        top.addStretch(1)
        top.addWidget(self.autonomy)
        top.addWidget(self.clock_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 12)
        layout.setSpacing(12)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.hint)

    # --- what it shows -------------------------------------------------------------------

    def open_incident_ids(self) -> list[int]:
        """The incidents on the wall, top to bottom."""
        model = self.proxy.incidents
        return [model.incident_at(self.proxy.mapToSource(self.proxy.index(row, 0)).row()).id
                for row in range(self.proxy.rowCount())]

    def refresh_status(self) -> None:
        """Read the autonomy ceiling and the kill switch (off the GUI thread)."""
        self._worker.submit("reading the autonomy level for the wallboard", self._read_status,
                            on_done=self._show_status, on_error=self._on_status_failed)

    def _show_status(self, status: Status) -> None:
        self.status = status
        if status.kill_switch:
            text = ("KILL SWITCH ON \u2014 agents stopped (autonomy 0, ceiling "
                    f"{status.autonomy_ceiling})")
        else:
            text = f"Autonomy ceiling {status.effective_ceiling}"
        self.autonomy.setText(text)
        self.autonomy.setProperty("killSwitch", "true" if status.kill_switch else "false")
        self.autonomy.style().unpolish(self.autonomy)
        self.autonomy.style().polish(self.autonomy)

    def _on_status_failed(self, exc: BaseException) -> None:
        self.autonomy.setText(f"Autonomy unknown: {describe_error(exc)}")

    def _show_count(self, *_args: object) -> None:
        shown = self.proxy.rowCount()
        self.count.setText(f"{shown} open incident{'s' if shown != 1 else ''}")
        self.table.setVisible(shown > 0)
        self.empty.setVisible(shown == 0)

    def _show_clock(self) -> None:
        self.clock_label.setText(self._clock.now().strftime("%H:%M:%S UTC"))

    # --- events --------------------------------------------------------------------------

    def _on_bridge_operation_done(self, event: OperationDone) -> None:
        if event.changes.settings:
            self.refresh_status()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._tick.stop()
        super().closeEvent(event)

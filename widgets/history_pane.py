"""The action history: every executed action with its state, validation and duration,
and a rollback (after a confirmation that says what it will do) where the run has one.

Whether a run can be rolled back is the domain's answer (`Execution.can_roll_back`); the
rollback itself is the engine's operation, run on the `Worker`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.domain import Execution
from console.execution import ExecutionEngine
from widgets.bridge import BusBridge
from widgets.history_model import ExecutionTableModel, execution_html, steps_html, title_of
from widgets.ops import Worker, describe_error
from widgets.recommendation_view import document_css
from widgets.tables import make_table, sorting_proxy
from widgets.theme import DEFAULT_THEME, STATE_COLORS

RELOAD_MS = 150


class RollbackDialog(QDialog):
    """Shows what the rollback will run, on what, before it runs; opened with `open()`.
    Emits ``confirmed(int)`` with the execution's id."""

    confirmed = QtSignal(int)

    def __init__(self, execution: Execution, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("rollbackDialog")
        self.setWindowTitle(f"Roll back execution {execution.id}?")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.exec_id = execution.id
        text = QLabel(self)
        text.setObjectName("rollbackPlan")
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        text.setText(f"<p>Roll back <b>{escape(title_of(execution))}</b> "
                     f"(now {escape(execution.state)})?</p>"
                     f"<p>This will run, on {escape(execution.target)}:<br>"
                     f"{steps_html(execution.plan.get('rollback'))}</p>"
                     "<p>It is recorded in the audit log under your name.</p>")
        text.setMinimumWidth(420)
        buttons = QDialogButtonBox(self)
        confirm = buttons.addButton("Roll back", QDialogButtonBox.ButtonRole.AcceptRole)
        confirm.setObjectName("rollbackConfirm")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("rollbackCancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)

    def accept(self) -> None:
        self.confirmed.emit(self.exec_id)
        super().accept()


class HistoryPane(QWidget):
    """Emits ``selectionChanged()`` when the selected run or what may be done with it
    changed."""

    selectionChanged = QtSignal()

    def __init__(self, model: ExecutionTableModel, *, engine: ExecutionEngine, user: str,
                 bridge: BusBridge, worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyPane")
        self.model = model
        self._engine, self._user, self._worker = engine, user, worker
        self._colors = STATE_COLORS[DEFAULT_THEME]
        self._busy = False
        self._wanted: set[int] = set()
        self._reads = self._applied = 0  # reads may finish out of order off the GUI thread
        self.dialog: RollbackDialog | None = None
        self.proxy = sorting_proxy(model, self)
        self.table = make_table("historyTable", self.proxy,
                                ("888", "00:00:00", "", "autonomous", "rolled back",
                                 "passed: error_rate < 0.02", "10 min 00 s", "available"),
                                self, fit=True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(ExecutionTableModel.ACTION, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.rollback_button = QPushButton("Roll back\u2026", self)
        self.rollback_button.setObjectName("rollbackButton")
        self.rollback_button.setToolTip("Undo the selected action (asks first)")
        self.rollback_button.clicked.connect(self.rollback_selected)
        self.message = QLabel(self)
        self.message.setObjectName("historyMessage")
        self.message.setWordWrap(True)
        self.details = QTextBrowser(self)
        self.details.setObjectName("executionDetails")
        self._layout()
        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(RELOAD_MS)
        self._reload.timeout.connect(self._on_reload_timeout)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        model.dataChanged.connect(self._on_model_data_changed)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        self.set_theme(DEFAULT_THEME)

    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 4, 4, 0)
        bar.setSpacing(8)
        bar.addWidget(self.rollback_button)
        bar.addWidget(self.message, 1)
        upper = QWidget(self)
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.setSpacing(4)
        upper_layout.addLayout(bar)
        upper_layout.addWidget(self.table)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("historySplitter")
        self.splitter.addWidget(upper)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        # A small explicit minimum: a narrow window squeezes (or collapses) the parts
        # instead of refusing to shrink below the sum of their minimums.
        self.splitter.setMinimumSize(160, 72)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def set_theme(self, name: str) -> None:
        self._colors = STATE_COLORS[name]
        self.model.set_colors(self._colors)
        self.details.document().setDefaultStyleSheet(document_css(self._colors))
        self._show_selected()

    # --- selection -----------------------------------------------------------------

    @property
    def selected(self) -> Execution | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.execution_at(self.proxy.mapToSource(rows[0]).row())

    def select_execution(self, exec_id: int) -> bool:
        source = self.model.row_of(exec_id)
        if source < 0:
            return False
        self.table.selectRow(self.proxy.mapFromSource(self.model.index(source, 0)).row())
        return True

    @property
    def can_roll_back(self) -> bool:
        execution = self.selected
        return execution is not None and execution.can_roll_back and not self._busy

    def _on_table_selection_changed(self, _s: QItemSelection, _d: QItemSelection) -> None:
        self.message.clear()
        self._show_selected()

    def _on_model_data_changed(self, *_args: object) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        execution = self.selected
        if execution is None:
            self.details.setHtml(f"<p style='color:{self._colors.dimmed}'>Every action the "
                                 "console runs, autonomous or approved, is listed here with "
                                 "its validation; select one to see its steps.</p>")
        else:
            self.details.setHtml(execution_html(execution, self._colors))
        self.rollback_button.setEnabled(self.can_roll_back)
        tip = ("Undo the selected action (asks first)" if self.can_roll_back else
               "The selected action has no rollback path" if execution is not None
               and not execution.reversible else "Select an action that can be rolled back")
        self.rollback_button.setToolTip(tip)
        self.selectionChanged.emit()

    # --- reading -------------------------------------------------------------------

    def reload(self, ids: Any = ()) -> None:
        self._wanted.update(ids)
        if not self._reload.isActive():
            self._reload.start()  # not restarted: a steady stream must not starve it

    def _on_reload_timeout(self) -> None:
        wanted = sorted(self._wanted | set(self.model.in_flight_ids()))
        self._wanted.clear()
        engine = self._engine

        def read() -> list[Execution]:
            found = {e.id: e for e in engine.executions()}
            for exec_id in wanted:
                if exec_id not in found and (e := engine.execution(exec_id)) is not None:
                    found[exec_id] = e
            return list(found.values())

        self._reads += 1
        number = self._reads
        self._worker.submit("reading the action history", read,
                            on_done=lambda runs: self._apply(number, runs))

    def _apply(self, read: int, runs: list[Execution]) -> None:
        if read < self._applied:
            return  # a newer read has been shown already; this one is older news
        self._applied = read
        self.model.update(runs)

    def _on_bridge_operation_done(self, event: Any) -> None:
        if event.changes.executions:
            self.reload(int(i) for i in event.changes.ids if str(i).isdigit())

    # --- rollback ------------------------------------------------------------------

    def rollback_selected(self) -> None:
        """Ask first, showing what the rollback runs; the dialog is not waited on."""
        execution = self.selected
        if execution is None or not self.can_roll_back:
            return
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = RollbackDialog(execution, self)
        self.dialog.confirmed.connect(self._on_dialog_confirmed)
        self.dialog.finished.connect(self._on_dialog_finished)
        self.dialog.open()

    def _on_dialog_finished(self, _result: int) -> None:
        self.dialog = None

    def _on_dialog_confirmed(self, exec_id: int) -> None:
        engine, user = self._engine, self._user
        self._busy = True
        self._show_selected()
        self._say(f"Rolling back #{exec_id}\u2026")

        def done(state: str) -> None:
            self._busy = False
            self._say(f"#{exec_id}: {state.replace('_', ' ')}",
                      error=state not in ("rolled_back", "rollback_queued"))
            self.reload([exec_id])

        def failed(exc: BaseException) -> None:
            self._busy = False
            self._say(f"#{exec_id} not rolled back: {describe_error(exc)}", error=True)
            self.reload([exec_id])

        self._worker.submit(f"rolling back execution {exec_id}",
                            lambda: engine.rollback(exec_id, as_user=user),
                            on_done=done, on_error=failed)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("level", "error" if error else "info")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

"""Where the operator's eyes go when a new critical incident opens.

A critical incident that opens while the panes show another one (often a resolved one
the operator clicked earlier) must not wait for them to notice the list grew: the panes
switch to it, all together (the incident list, its timeline, the agents follow the
selection). Taking the screen is wrong in two cases only: the operator is typing (a
question, a reason, a search) or working in a dialog. Then a chip in the status bar
counts what came ("2 new critical"); clicking it shows the newest and clears it.

Which incidents count is decided once per incident: open and critical, not seen before
(an incident that grows from warning to critical counts when it turns critical; the ones
already there when the console opened do not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from console.domain import Severity

if TYPE_CHECKING:
    from widgets.bridge import BusBridge
    from widgets.incidents_pane import IncidentsPane
    from widgets.status_bar import ConsoleStatusBar


def _typing_in(widget: QWidget | None) -> bool:
    """The operator is typing: the focus is in an editable text field holding text not
    yet sent (a question, a reason, a search being typed). An empty field with the
    focus is no work to lose."""
    if isinstance(widget, QComboBox) and widget.isEditable():
        widget = widget.lineEdit()
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly() and bool(widget.text())
    if isinstance(widget, QTextEdit | QPlainTextEdit):
        return not widget.isReadOnly() and bool(widget.toPlainText())
    return isinstance(widget, QAbstractSpinBox)


class CriticalFocus(QObject):
    """Moves the panes to each new critical incident, or counts it on the status bar's
    chip while the operator is busy (see the module docstring). `show(incident_id)`
    brings an incident to the screen (the window's)."""

    def __init__(self, *, window: QWidget, incidents: IncidentsPane,
                 status_bar: ConsoleStatusBar, bridge: BusBridge,
                 show: Callable[[int], None], known: Iterable[Any] = ()) -> None:
        super().__init__(window)
        self.setObjectName("criticalFocus")
        self._window, self._incidents, self._bar, self._show = (
            window, incidents, status_bar, show)
        self._seen: set[int] = set()
        self.waiting: list[int] = []
        """The new critical incidents counted on the chip, oldest first."""
        self.prime(known)
        bridge.incidentsUpdated.connect(self._on_bridge_incidents)
        status_bar.critical_chip.clicked.connect(self._on_chip_clicked)
        incidents.incidentSelected.connect(self._on_incident_selected)

    def prime(self, incidents: Iterable[Any]) -> None:
        """What is there when the console opens is on screen already, not new."""
        for info in incidents:
            if self._counts(info):
                self._seen.add(info.id)

    @staticmethod
    def _counts(info: Any) -> bool:
        return info.state == "open" and info.severity is Severity.CRITICAL

    # --- is the operator busy? --------------------------------------------------------

    def operator_busy(self) -> str:
        """Why the screen must not move now ("" when it may): a dialog is open, or the
        operator is typing in a text field that still has the focus."""
        if QApplication.activeModalWidget() is not None:
            return "a dialog is open"
        active = QApplication.activeWindow()
        if isinstance(active, QDialog) and active.isVisible():
            return "a dialog is open"
        if any(isinstance(w, QDialog) and w.isVisible() and w.isModal()
               for w in self._window.findChildren(QDialog)):
            return "a dialog is open"
        if _typing_in(QApplication.focusWidget() or self._window.focusWidget()):
            return "the operator is typing"
        return ""

    # --- new incidents ----------------------------------------------------------------

    def _on_bridge_incidents(self, event: Any) -> None:
        new = [info for info in event.incidents
               if self._counts(info) and info.id not in self._seen]
        if not new:
            return
        self._seen.update(info.id for info in new)
        newest = max(info.id for info in new)
        if self.operator_busy():
            self.waiting.extend(sorted(info.id for info in new))
            self._show_chip()
            return
        self._show(newest)

    def _show_chip(self) -> None:
        self._bar.show_new_critical(len(self.waiting),
                                    [f"#{i}" for i in self.waiting])

    def _on_chip_clicked(self) -> None:
        if self.waiting:
            newest = self.waiting[-1]
            self.waiting.clear()
            self._show_chip()
            self._show(newest)

    def _on_incident_selected(self, incident_id: int) -> None:
        if incident_id in self.waiting:  # the operator went to it on their own
            self.waiting.remove(incident_id)
            self._show_chip()

"""The recommendation queue's smaller parts: its filter and the reject dialog.

Kept apart from the pane (widgets/recommendations_pane.py), which composes them with the
table, the decision card and the operations.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from widgets.filtering import RowFilterProxy
from widgets.models import SORT_ROLE
from widgets.recommendation_model import OPEN, RecommendationTableModel


class RecommendationFilterProxy(RowFilterProxy):
    """Free text over every column, and optionally the open recommendations only."""

    def __init__(self, model: RecommendationTableModel, parent: QWidget) -> None:
        super().__init__(model, parent, sort_role=SORT_ROLE)
        self.recommendations = model
        self.open_only = False

    def set_open_only(self, on: bool) -> None:
        self.open_only = on
        self.keep_only((lambda row: self.recommendations.recommendation_at(row).state in OPEN)
                       if on else None)


class RejectDialog(QDialog):
    """Asks for the reason of a rejection (the engine refuses one without); opened with
    `open()`, so nothing waits in a nested event loop. Emits ``reasonGiven(int, str)``."""

    reasonGiven = QtSignal(int, str)

    def __init__(self, rec_id: int, title: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("rejectDialog")
        self.setWindowTitle(f"Reject recommendation {rec_id}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.rec_id = rec_id
        self.reason = QLineEdit(self)
        self.reason.setObjectName("rejectReason")
        self.reason.setPlaceholderText("Why not? (kept in the audit log)")
        self.reason.setMinimumWidth(420)
        buttons = QDialogButtonBox(self)
        self.confirm = buttons.addButton("Reject", QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm.setObjectName("rejectConfirm")
        self.confirm.setEnabled(False)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("rejectCancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._on_reason_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Reject \u201c{title}\u201d?", self))
        layout.addWidget(self.reason)
        layout.addWidget(buttons)

    def _on_reason_changed(self, text: str) -> None:
        self.confirm.setEnabled(bool(text.strip()))

    def accept(self) -> None:
        if not self.reason.text().strip():
            return
        self.reasonGiven.emit(self.rec_id, self.reason.text().strip())
        super().accept()

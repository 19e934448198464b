"""The kill switch's two pieces besides its button: the banner that says across the whole
window that the agents are stopped, and the dialog that asks why before they are let go.

Pulling the switch is an emergency stop and asks nothing. Lifting it hands the estate
back to the agents, so it asks for a reason, which the audit record of the operation
keeps (`WatchfloorService.set_kill_switch(..., reason=...)`). The banner sits above every
pane (a toolbar the width of the window), so whichever pane the operator looks at, the
stop is in view; the status bar's button alone was easy to miss."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

BANNER_TEXT = ("KILL SWITCH ON \u2014 every agent is at autonomy level 0: nothing runs on "
               "its own, and what the agents had queued to run was cancelled.")


class KillSwitchBanner(QWidget):
    """The red strip shown while the kill switch is on. Emits ``liftRequested()`` when
    its Lift button is pressed (the status bar then asks for a reason)."""

    liftRequested = QtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("killSwitchBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.text = QLabel(BANNER_TEXT, self)
        self.text.setObjectName("killSwitchBannerText")
        self.text.setToolTip(BANNER_TEXT)
        # One line (a wrapped label asked the toolbar for two, 70 px of a 768 px screen);
        # on a narrow window its end is cut, never its first words.
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.since = QLabel("", self)
        self.since.setObjectName("killSwitchBannerSince")
        self.lift = QPushButton("Lift the kill switch\u2026", self)
        self.lift.setObjectName("liftKillSwitchButton")
        self.lift.setToolTip("Let the agents work again up to the autonomy ceiling (asks "
                             "for a reason, kept in the audit log; needs the admin role)")
        self.lift.clicked.connect(self.liftRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 3, 8, 3)
        layout.setSpacing(12)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.since)
        layout.addWidget(self.lift)

    def set_since(self, text: str) -> None:
        """Who pulled it and when ("" when not known, e.g. pulled before this console
        opened)."""
        self.since.setText(text)
        self.since.setVisible(bool(text))


class LiftKillSwitchDialog(QDialog):
    """Asks why the agents may work again; opened with `open()` (nothing waits in a
    nested event loop). Emits ``reasonGiven(str)`` with the reason, then closes."""

    reasonGiven = QtSignal(str)

    def __init__(self, ceiling: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("liftKillSwitchDialog")
        self.setWindowTitle("Lift the kill switch")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        intro = QLabel(
            f"The agents will work again up to autonomy level {ceiling}: what policy "
            "allows at that level runs on its own once more. Why is it safe now?", self)
        intro.setWordWrap(True)
        self.reason = QLineEdit(self)
        self.reason.setObjectName("liftReason")
        self.reason.setPlaceholderText("The reason (kept in the audit log)")
        self.reason.setMinimumWidth(440)
        buttons = QDialogButtonBox(self)
        self.confirm = buttons.addButton("Lift it", QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm.setObjectName("liftConfirm")
        self.confirm.setEnabled(False)
        cancel = buttons.addButton("Keep the agents stopped",
                                   QDialogButtonBox.ButtonRole.RejectRole)
        cancel.setObjectName("liftCancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.reason.textChanged.connect(self._on_reason_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.reason)
        layout.addWidget(buttons)

    def _on_reason_changed(self, text: str) -> None:
        self.confirm.setEnabled(bool(text.strip()))

    def accept(self) -> None:
        reason = self.reason.text().strip()
        if not reason:
            return
        self.reasonGiven.emit(reason)
        super().accept()

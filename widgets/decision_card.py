"""The decision card: everything needed to approve, reject or roll back the selected
cause's fix, in one block that fits above the fold.

The preview in full (steps, target states, the why and every evidence link) stays in
the details box under the card (headed by the recommendation's title); the card holds
the answers a person weighs, one line each, elided with the whole text in a tooltip: which of the incident's causes this is
(a tab per cause, each with its own recommendation and state), what is wrong, one
confidence in words and number with what it rests on, what the fix changes, whether it
can be undone, how success is checked, and who must approve; then the buttons.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from console.domain import Recommendation
from console.storage.repos_causes import Cause
from widgets.decision_text import CardFields, card_fields, cause_line, cause_of, cause_tab
from widgets.elided import ElidedLabel
from widgets.recommendation_model import Standing
from widgets.theme import StateColors

# (objectName, heading) a row each; the confidence's row also says what it rests on
FIELDS = (("cardCause", "Wrong"), ("cardConfidence", "Confidence"), ("cardChange", "Fix"),
          ("cardUndo", "Undo"), ("cardCheck", "Check"), ("cardApproval", "Approval"))


class DecisionCard(QFrame):
    """Emits ``causePicked(int)`` with the id of the newest recommendation of the cause
    the operator picked (-1 when that cause has none yet)."""

    causePicked = QtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("decisionCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._causes: tuple[Cause, ...] = ()
        self._filling = False
        self.tabs = QTabBar(self)
        self.tabs.setObjectName("causeTabs")
        self.tabs.setExpanding(False)
        self.tabs.setUsesScrollButtons(True)
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.tabs.hide()
        self.fields: dict[str, ElidedLabel] = {}
        self.body = QWidget(self)  # the answers; hidden while nothing is selected
        self.body.setObjectName("cardBody")
        grid = QGridLayout(self.body)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(1)
        for row, (name, heading) in enumerate(FIELDS):
            head = QLabel(heading, self.body)
            head.setObjectName("cardHeading")
            grid.addWidget(head, row, 0)
            value = ElidedLabel("", self.body)
            value.setObjectName(name)
            self.fields[name] = value
            grid.addWidget(value, row, 1)
        grid.setColumnStretch(1, 1)
        # The confidence keeps its words whole; what it rests on takes the rest of its row.
        confidence = self.fields["cardConfidence"]
        confidence.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        basis = ElidedLabel("", self.body)
        basis.setObjectName("cardBasis")
        self.fields["cardBasis"] = basis
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(6)
        grid.removeWidget(confidence)
        line.addWidget(confidence)
        line.addWidget(QLabel("rests on", self.body))
        line.addWidget(basis, 1)
        grid.addLayout(line, 1, 1)
        self.buttons = QHBoxLayout()
        self.buttons.setContentsMargins(0, 2, 0, 0)
        self.buttons.setSpacing(8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.tabs)
        layout.addWidget(self.body)
        layout.addLayout(self.buttons)

    def add_button(self, widget: QWidget, stretch: int = 0) -> None:
        self.buttons.addWidget(widget, stretch)

    def field(self, name: str) -> ElidedLabel:
        return self.fields[name]

    # --- what it shows -----------------------------------------------------------------

    def show_nothing(self) -> None:
        self._set_causes((), None)
        self.body.hide()
        for value in self.fields.values():
            value.setText("")
            value.setFullToolTip("")

    def show_recommendation(self, rec: Recommendation, standing: Standing | None,
                            causes: Sequence[Cause], user: str,
                            colors: StateColors) -> CardFields:
        mine = cause_of(rec, causes)
        self.body.show()
        self._set_causes(tuple(causes), mine)
        shown = card_fields(rec, standing, mine, user)
        self._put("cardCause", shown.wrong,
                  cause_line(mine) if mine is not None else shown.wrong)
        tone = colors.green if rec.confidence >= 0.8 else \
            colors.amber if rec.confidence >= 0.45 else colors.red
        self._put("cardConfidence", shown.confidence,
                  f"{shown.confidence}: one number for this fix on this cause.\n"
                  f"It rests on: {shown.basis}", tone)
        confidence = self.fields["cardConfidence"]
        confidence.setFixedWidth(confidence.fontMetrics().horizontalAdvance(
            shown.confidence) + 6)
        self._put("cardBasis", shown.basis, shown.basis, colors.dimmed)
        self._put("cardChange", shown.change, shown.change)
        self._put("cardUndo", shown.undo, shown.undo,
                  colors.green if shown.undoable else colors.amber)
        self._put("cardCheck", shown.check, shown.check)
        stale = "STALE" in shown.approval
        self._put("cardApproval", shown.approval, shown.approval,
                  colors.red if stale else colors.amber if shown.four_eyes else "")
        return shown

    def _put(self, name: str, text: str, tip: str, color: str = "") -> None:
        value = self.fields[name]
        value.setText(text)
        value.setFullToolTip(tip)
        value.setStyleSheet(f"color: {color};" if color else "")

    # --- one tab per cause -----------------------------------------------------------

    def _set_causes(self, causes: tuple[Cause, ...], current: Cause | None) -> None:
        self._filling = True
        try:
            if [c.id for c in causes] != [c.id for c in self._causes]:
                while self.tabs.count():
                    self.tabs.removeTab(0)
                for cause in causes:
                    self.tabs.addTab(cause_tab(cause))
            for i, cause in enumerate(causes):
                self.tabs.setTabText(i, cause_tab(cause))
                self.tabs.setTabToolTip(i, cause_line(cause))
            self._causes = causes
            if current is not None:
                self.tabs.setCurrentIndex(next(i for i, c in enumerate(causes)
                                               if c.id == current.id))
            self.tabs.setVisible(bool(causes))
        finally:
            self._filling = False

    def _on_tabs_current_changed(self, index: int) -> None:
        if self._filling or not 0 <= index < len(self._causes):
            return
        rec = self._causes[index].recommendation
        self.causePicked.emit(rec.recommendation_id if rec is not None else -1)

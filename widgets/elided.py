"""A one-line label that never cuts its text off silently.

A label too narrow for its text shows the start of it and nothing says that more was
there ("Roll back payments t"). This one elides where it must (an ellipsis at the end)
and then carries the whole text as its tooltip, so what was cut can still be read.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """`text()` is the whole text; what is painted is elided to the width. The tooltip
    is the whole text while it is elided (or `setFullToolTip`'s, when given)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._tip = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._sync_tip()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        super().setText(text)
        self._sync_tip()

    def setFullToolTip(self, tip: str) -> None:  # noqa: N802 (Qt naming, like setToolTip)
        """A tooltip shown always (a longer explanation than the text itself)."""
        self._tip = tip
        self._sync_tip()

    def setToolTip(self, tip: str) -> None:  # noqa: N802 (Qt override)
        """A tooltip set from outside is kept as the full one (it says more than the
        text), not replaced on the next resize."""
        self.setFullToolTip(tip)

    @property
    def elided(self) -> bool:
        width = self.contentsRect().width()
        return width > 0 and self.fontMetrics().horizontalAdvance(self.text()) > width

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        hint = super().minimumSizeHint()
        return QSize(self.fontMetrics().horizontalAdvance("\u2026") * 4, hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._sync_tip()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             rect.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)

    def _sync_tip(self) -> None:
        if self._tip:
            super().setToolTip(self._tip)
        else:
            super().setToolTip(self.text() if self.elided else "")

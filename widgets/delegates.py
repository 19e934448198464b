"""Painted cells: a confidence bar with its number (no widget per row, STYLE.md 4)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from widgets.theme import DEFAULT_THEME, STATE_COLORS, StateColors

CONFIDENCE_ROLE = Qt.ItemDataRole.UserRole + 2
"""A float 0-1 for the confidence bar (the DisplayRole keeps the number as text)."""


class ConfidenceDelegate(QStyledItemDelegate):
    """A bar as long as the confidence, coloured by how sure it is, and the number beside
    it, so a glance at the queue tells a 0.9 from a 0.5 without reading."""

    BAR_HEIGHT = 8

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.colors = STATE_COLORS[DEFAULT_THEME]

    def set_colors(self, colors: StateColors) -> None:
        self.colors = colors

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        value = index.data(CONFIDENCE_ROLE)
        if not isinstance(value, float):
            super().paint(painter, option, index)
            return
        style = option.widget.style() if option.widget is not None else QApplication.style()
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, option.widget)
        rect = option.rect.adjusted(6, 0, -6, 0)
        text = f"{value:.2f}"
        metrics = option.fontMetrics
        text_width = metrics.horizontalAdvance("0.00") + 8
        bar = QRect(rect.left(), rect.center().y() - self.BAR_HEIGHT // 2 + 1,
                    max(rect.width() - text_width, 10), self.BAR_HEIGHT)
        c = self.colors
        fill = QColor(c.green if value >= 0.8 else c.amber if value >= 0.5 else c.red)
        track = QColor(c.dimmed)
        track.setAlpha(60)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(bar, 3, 3)
        done = QRect(bar)
        done.setWidth(max(int(bar.width() * min(max(value, 0.0), 1.0)), 2))
        painter.setBrush(fill)
        painter.drawRoundedRect(done, 3, 3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(option.palette.highlightedText().color() if selected
                       else option.palette.text().color())
        painter.drawText(QRect(bar.right() + 6, rect.top(), text_width, rect.height()),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.restore()

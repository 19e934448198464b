"""Table columns as wide as what they hold, within the width the table has.

Columns sized once from sample texts cut off what is longer than the sample
("report.stakeholder_up"), and in a narrow pane the stretching column (a title, an
action) was crushed to a few letters ("Actior") while fixed columns kept their room.
Here each column asks for the width of its widest text seen so far (its header, its
sample, the rows as they arrive, up to a cap); when the table is too narrow for all of
them, the widest are capped first (a state or a time stays whole) and the stretching
column keeps a fair share. What still does not fit is elided, and the
models' tooltips hold the whole text. A column the operator resized by hand is left
alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QHeaderView, QTableView

PADDING = 28  # cell margins and the sort indicator
MEASURED_ROWS = 50  # rows measured per inserted batch (a storm inserts thousands)
CAP = 0.45  # no column asks for more than this share of the table's width
STRETCH_SHARE = 0.5  # the stretching column (the one that matters) keeps up to this


class ColumnFit(QObject):
    def __init__(self, view: QTableView, samples: Sequence[str]) -> None:
        super().__init__(view)
        self._view = view
        metrics = view.fontMetrics()
        bold = view.font()
        bold.setBold(True)
        self._bold = QFontMetrics(bold)
        model = view.model()
        self._titles = [self._bold.horizontalAdvance(
            str(model.headerData(c, Qt.Orientation.Horizontal) or "")) + PADDING
            for c in range(model.columnCount())]
        self._wanted = [max(title, metrics.horizontalAdvance(sample) + PADDING if sample
                            else 0) for title, sample in zip(self._titles, samples, strict=False)]
        self._wanted += self._titles[len(self._wanted):]
        self._by_hand: set[int] = set()
        self._fitting = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.fit)
        model.rowsInserted.connect(self._on_model_rows_inserted)
        model.modelReset.connect(self._on_model_reset)
        view.horizontalHeader().sectionResized.connect(self._on_header_section_resized)
        view.horizontalHeader().geometriesChanged.connect(self._timer.start)
        view.viewport().installEventFilter(self)
        self._measure(0, model.rowCount() - 1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.Resize:
            self._timer.start()
        return False

    def wanted(self, column: int) -> int:
        """The width `column` asks for (its widest text seen, header included)."""
        return self._wanted[column]

    def fit(self) -> None:
        view = self._view
        header = view.horizontalHeader()
        width = view.viewport().width()
        if width <= 0:
            return
        columns = [c for c in range(len(self._wanted)) if not header.isSectionHidden(c)]
        stretch = next((c for c in columns if header.sectionResizeMode(c)
                        == QHeaderView.ResizeMode.Stretch), None)
        if stretch is None and header.stretchLastSection() and columns:
            stretch = columns[-1]
        elif stretch is not None and header.stretchLastSection():
            header.setStretchLastSection(False)  # one column takes the rest, not two
        sized = [c for c in columns if c != stretch and c not in self._by_hand]
        fixed = sum(header.sectionSize(c) for c in self._by_hand if c in columns)
        asked = {c: min(self._wanted[c], max(self._titles[c], int(width * CAP)))
                 for c in sized}
        # The stretching column is the one a pane reads first (a title, a cause, an
        # action): it keeps what it asks for, up to half the width.
        keep = 0 if stretch is None else min(
            self._wanted[stretch], max(self._titles[stretch], int(width * STRETCH_SHARE)))
        asked = _level(asked, {c: self._titles[c] for c in sized}, width - fixed - keep)
        self._fitting = True
        try:
            for c, w in asked.items():
                if header.sectionSize(c) != w:
                    header.resizeSection(c, w)
        finally:
            self._fitting = False

    def _measure(self, first: int, last: int) -> bool:
        model, metrics = self._view.model(), self._view.fontMetrics()
        grew = False
        for row in range(first, min(last, first + MEASURED_ROWS - 1) + 1):
            for col in range(len(self._wanted)):
                text = model.index(row, col).data()
                if text is None:
                    continue
                need = metrics.horizontalAdvance(str(text)) + PADDING
                if need > self._wanted[col]:
                    self._wanted[col] = need
                    grew = True
        return grew

    def _on_model_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        if self._measure(first, last):
            self._timer.start()

    def _on_model_reset(self) -> None:
        if self._measure(0, self._view.model().rowCount() - 1):
            self._timer.start()

    def _on_header_section_resized(self, column: int, _old: int, _new: int) -> None:
        header = self._view.horizontalHeader()
        if not self._fitting and header.sectionResizeMode(column) \
                == QHeaderView.ResizeMode.Interactive \
                and QApplication.mouseButtons() & Qt.MouseButton.LeftButton:
            self._by_hand.add(column)  # the operator's width stays theirs


def _level(asked: dict[int, int], floors: dict[int, int], room: int) -> dict[int, int]:
    """Fit the columns into `room` by capping the widest first: every column narrower
    than the cap keeps its width whole (a state, a time), the widest give up what they
    must, never below their header's width."""
    if sum(asked.values()) <= room or not asked:
        return asked
    low, high = 0, max(asked.values())
    while low < high:  # the highest cap that fits
        cap = (low + high + 1) // 2
        if sum(max(floors[c], min(w, cap)) for c, w in asked.items()) <= room:
            low = cap
        else:
            high = cap - 1
    return {c: max(floors[c], min(w, low)) for c, w in asked.items()}

"""One filter proxy for the panes' tables: free text over every column (any case), and
one optional condition on the row's item (open incidents only, one timeline kind...).

The panes differ only in that condition, so each passes it as a function of the source
row instead of subclassing QSortFilterProxyModel once more."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import QWidget

RowTest = Callable[[int], bool]


class RowFilterProxy(QSortFilterProxyModel):
    def __init__(self, model: QAbstractItemModel, parent: QWidget, *,
                 sort_role: int | None = None) -> None:
        super().__init__(parent)
        self._keep: RowTest | None = None
        self.setSourceModel(model)
        if sort_role is not None:
            self.setSortRole(sort_role)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def keep_only(self, keep: RowTest | None) -> None:
        """Show only the source rows `keep` accepts (None: every row the text matches)."""
        self._keep = keep
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self._keep is not None and not self._keep(row):
            return False
        return super().filterAcceptsRow(row, parent)

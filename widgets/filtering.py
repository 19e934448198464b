"""One filter proxy for the panes' tables: free text over every column (any case), and
one optional condition on the row's item (open incidents only, one timeline kind...).

The panes differ only in that condition, so each passes it as a function of the source
row instead of subclassing QSortFilterProxyModel once more. Every proxy over a pane's
table is a `SortFilterProxy`, which passes a painted cell's roles to its Python source
model in one call."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import QWidget

RowTest = Callable[[int], bool]


def role_slots(span: QModelRoleDataSpan | QModelRoleData) -> list[QModelRoleData]:
    """The slots of a `multiData` request (one role each), filled in place."""
    if isinstance(span, QModelRoleData):
        return [span]
    return [span[i] for i in range(span.size())]  # type: ignore[index]  # not in the stubs


class SortFilterProxy(QSortFilterProxyModel):
    """A QSortFilterProxyModel that hands a cell's whole role request to its source."""

    def multiData(self, index: QModelIndex | QPersistentModelIndex,
                  roleDataSpan: QModelRoleDataSpan | QModelRoleData) -> None:
        """Pass a cell's whole role request to the source model in one call.

        QSortFilterProxyModel would split it into one `data` call per role, each a trip
        from C++ into the Python source model (widgets/models.py `TableModel.multiData`)."""
        source = self.sourceModel()
        if source is None or not index.isValid():
            for role_data in role_slots(roleDataSpan):
                role_data.clearData()
            return
        source.multiData(self.mapToSource(index), roleDataSpan)


class RowFilterProxy(SortFilterProxy):
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

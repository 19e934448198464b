"""A small editable table model for the settings dialog's tables (policy rows, users).

The dialog edits short lists of plain values (a service, an action class, a level);
one model with typed columns serves them all. Integer columns hand the view ints, so
Qt's default delegate edits them with a spin box; everything else is text. The model
holds what the operator typed, valid or not: judging it is `console.policy_rows`' job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

AnyIndex = QModelIndex | QPersistentModelIndex


class RowsModel(QAbstractTableModel):
    """Rows of plain values under fixed headers; `int_columns` hold whole numbers."""

    def __init__(self, headers: Sequence[str], rows: Iterable[Sequence[Any]] = (), *,
                 int_columns: Iterable[int] = (), editable: bool = True,
                 defaults: Sequence[Any] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.headers = tuple(headers)
        self.int_columns = frozenset(int_columns)
        self.editable = editable
        self.defaults = list(defaults) if defaults is not None else [""] * len(self.headers)
        self._rows: list[list[Any]] = [self._fit(r) for r in rows]

    def _fit(self, row: Sequence[Any]) -> list[Any]:
        values = list(row)[: len(self.headers)]
        return values + self.defaults[len(values):]

    # --- content ----------------------------------------------------------------------

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._rows]

    def set_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Replace everything (after the stored value changed): one reset."""
        self.beginResetModel()
        self._rows = [self._fit(r) for r in rows]
        self.endResetModel()

    def append_row(self, row: Sequence[Any] | None = None) -> int:
        at = len(self._rows)
        self.beginInsertRows(QModelIndex(), at, at)
        self._rows.append(self._fit(row if row is not None else self.defaults))
        self.endInsertRows()
        return at

    def remove_row(self, row: int) -> None:
        if 0 <= row < len(self._rows):
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()

    # --- Qt ---------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(self.headers)):
            return self.headers[section]
        return None

    def _valid(self, index: AnyIndex) -> bool:
        return (index.isValid() and not index.parent().isValid()
                and 0 <= index.row() < len(self._rows)
                and 0 <= index.column() < len(self.headers))

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not self._valid(index):
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return flags | Qt.ItemFlag.ItemIsEditable if self.editable else flags

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        value = self._rows[index.row()][index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if index.column() in self.int_columns and isinstance(value, int):
                return value
            return "" if value is None else str(value)
        return None

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not self._valid(index) or role != Qt.ItemDataRole.EditRole or not self.editable:
            return False
        if index.column() in self.int_columns:
            text = str(value).strip()
            value = int(text) if text.lstrip("-").isdigit() else text
        else:
            value = str(value)
        self._rows[index.row()][index.column()] = value
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole,
                                             Qt.ItemDataRole.EditRole])
        return True

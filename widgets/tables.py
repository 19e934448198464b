"""The three table panes: services, signals (with a text filter and a live-only switch)
and audit.

Each pane gets its model in `__init__` and shows it through a proxy; none of them reads
the database or the bus itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFontMetrics, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from widgets.column_fit import ColumnFit
from widgets.filtering import SortFilterProxy
from widgets.models import SORT_ROLE, AuditTableModel, SignalTableModel
from widgets.service_model import ServiceTableModel


class Table(QTableView):
    """A pane's table view. Its paint is entered from Python so that the GUI thread keeps
    the GIL while Qt asks the model for every visible cell (widgets/process.py,
    "Painting"): from C++ alone, each cell's call into the model would wait for it anew."""

    column_fit: ColumnFit | None = None

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)


def make_table(name: str, model: QAbstractItemModel, widths: Sequence[str],
               parent: QWidget, *, fit: bool = False) -> QTableView:
    """A compact, read-only, row-selecting table; `widths` are sample texts per column
    (the column fits the sample in the current font), "" lets the last column stretch.
    With `fit`, the columns then follow what they hold (widgets/column_fit.py)."""
    view = Table(parent)
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    metrics = view.fontMetrics()
    vertical = view.verticalHeader()
    vertical.setVisible(False)
    vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # fast with thousands of rows
    vertical.setDefaultSectionSize(metrics.height() + 8)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setMinimumSectionSize(metrics.horizontalAdvance("Ready") + 16)
    bold = view.font()
    bold.setBold(True)
    bold_metrics = QFontMetrics(bold)  # headers are bold in both themes
    for col, sample in enumerate(widths):
        if sample:
            title = str(model.headerData(col, Qt.Orientation.Horizontal) or "")
            view.setColumnWidth(col, max(metrics.horizontalAdvance(sample),
                                         bold_metrics.horizontalAdvance(title)) + 28)
    header.setStretchLastSection(not widths[-1])
    if fit:
        view.column_fit = ColumnFit(view, widths)
    return view


def sorting_proxy(model: QAbstractItemModel, parent: QWidget) -> QSortFilterProxyModel:
    proxy = SortFilterProxy(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setDynamicSortFilter(True)
    return proxy


class SignalFilterProxy(SortFilterProxy):
    """Sorts and filters the signals; with `live_only`, only alerts firing now pass.

    The source model emits `dataChanged` for a row whose alert stops firing, and the
    dynamic filter then drops it, so the live view shrinks as alerts resolve.
    """

    def __init__(self, model: SignalTableModel, parent: QWidget) -> None:
        super().__init__(parent)
        self.signals_model = model
        self.live_only = False
        self.setSourceModel(model)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_live_only(self, on: bool) -> None:
        if on == self.live_only:
            return
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10; invalidateRowsFilter before
            self.beginFilterChange()
            self.live_only = on
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.live_only = on
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self.live_only and not self.signals_model.is_live(source_row):
            return False
        return super().filterAcceptsRow(source_row, source_parent)


RESORT_MS = 1000  # rows of one health class are put back in order at most this often
_SORTED, _ROWS_OUT_OF_ORDER, _CLASS_OUT_OF_ORDER = range(3)


class ServicesPane(QWidget):
    """The estate's services, worst health first.

    Until the operator picks a row, the selection follows the top (worst) row, so the
    metrics pane shows the service most in trouble; a click pins it.

    Emits ``serviceSelected(str)`` with the service's name when the selection changes.
    """

    serviceSelected = Signal(str)

    def __init__(self, model: ServiceTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("servicesPane")
        self.model = model
        self.pinned = False
        self._following = False
        self.proxy = sorting_proxy(model, self)
        # Sorted by the pane, once per update and only when the order is wrong: resorting
        # on every row's change moved the selection and redrew the metrics plot each time.
        self.proxy.setDynamicSortFilter(False)
        self._resort = QTimer(self)
        self._resort.setSingleShot(True)
        self._resort.setInterval(RESORT_MS)
        self._resort.timeout.connect(self._sort)
        self.table = make_table("servicesTable", self.proxy,
                                ("recommendations", "\u25cf critical", "88,888", "100.00",
                                 "88,888", "100", "100", "100", "100", "88"), self)
        self.table.horizontalHeader().setSectionResizeMode(
            ServiceTableModel.NAME, QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(ServiceTableModel.HEALTH, Qt.SortOrder.DescendingOrder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.pressed.connect(self._on_table_pressed)
        for sig in (self.proxy.rowsInserted, self.proxy.layoutChanged):
            sig.connect(self._follow_worst)
        model.updated.connect(self._on_model_updated)
        self._follow_worst()

    def select_service(self, name: str) -> None:
        """Select (and pin) a service, as a click on its row does."""
        row = self.proxy.mapFromSource(self.model.index(self.model.row_of(name), 0)).row()
        self.table.selectRow(row)

    @property
    def selected_service(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.service_at(self.proxy.mapToSource(rows[0]).row())

    def _on_table_selection_changed(self, _selected: QItemSelection,
                                    _deselected: QItemSelection) -> None:
        if not self._following:
            self.pinned = True
        name = self.selected_service
        if name is not None:
            self.serviceSelected.emit(name)

    def _on_table_pressed(self, _index: QModelIndex) -> None:
        self.pinned = True  # also when the pressed row was already the selected one

    def _on_model_updated(self) -> None:
        """Re-sort at once when a row's health class is out of place (the worst must be
        on top now); when only rows of the same class swapped (their error rates moved),
        at most once per RESORT_MS."""
        disorder = self._disorder()
        if disorder == _SORTED:
            self._resort.stop()
        elif disorder == _CLASS_OUT_OF_ORDER:
            self._sort()
        elif not self._resort.isActive():
            self._resort.start()

    def _disorder(self) -> int:
        column, order = self.proxy.sortColumn(), self.proxy.sortOrder()
        if column < 0:
            return _SORTED
        keys = [self.proxy.index(row, column).data(SORT_ROLE)
                for row in range(self.proxy.rowCount())]
        if order == Qt.SortOrder.DescendingOrder:
            keys.reverse()
        health = column == ServiceTableModel.HEALTH
        found = _SORTED
        for a, b in pairwise(keys):
            try:
                if not b < a:
                    continue
                if health and a // 1000 != b // 1000:  # the key is class * 1000 + errors
                    return _CLASS_OUT_OF_ORDER
            except TypeError:  # keys this check cannot compare: the proxy sorts them
                pass
            found = _ROWS_OUT_OF_ORDER
        return found

    def _sort(self) -> None:
        self._resort.stop()
        self.proxy.sort(self.proxy.sortColumn(), self.proxy.sortOrder())

    def _follow_worst(self, *_args: object) -> None:
        if self.pinned or not self.proxy.rowCount():
            return
        top = self.proxy.index(0, 0)
        if self.table.selectionModel().isRowSelected(0, QModelIndex()):
            return
        self._following = True
        try:
            self.table.selectRow(top.row())
        finally:
            self._following = False


class SignalsPane(QWidget):
    """Every signal as it arrives, newest on top, with a free-text filter over all columns
    and a switch that leaves only the alerts firing now."""

    def __init__(self, model: SignalTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signalsPane")
        self.model = model
        self.proxy = SignalFilterProxy(model, self)
        self.live_only_toggle = QCheckBox("Firing now only", self)
        self.live_only_toggle.setObjectName("liveOnlyToggle")
        self.live_only_toggle.setToolTip("Hide resolved alerts, and firing ones that have "
                                         "resolved since")
        self.live_only_toggle.toggled.connect(self._on_live_only_toggled)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("signalFilter")
        self.filter.setPlaceholderText("Filter signals: service, alert, severity, text\u2026")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter_text_changed)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("signalFilterCount")
        self.table = make_table("signalsTable", self.proxy,
                                ("00:00:00", "CRITICAL", "was firing", "recommendations",
                                 "HighErrorRateBudgetBurn", ""), self)
        header = self.table.horizontalHeader()
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)  # no indicator: model order, newest on top
        top = QHBoxLayout()
        top.setContentsMargins(4, 4, 4, 0)
        top.setSpacing(12)
        top.addWidget(self.filter, 1)
        top.addWidget(self.live_only_toggle)
        top.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.table)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._show_count)
        self._show_count()

    def set_filter(self, text: str) -> None:
        self.filter.setText(text)

    def _on_live_only_toggled(self, on: bool) -> None:
        self.proxy.set_live_only(on)
        self._show_count()

    def _on_filter_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self._show_count()

    def _show_count(self, *_args: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{total:,} shown" if shown == total
                                 else f"{shown:,} of {total:,}")


class AuditPane(QWidget):
    """The audit chain as it grows, newest on top; the tooltip holds the full record."""

    def __init__(self, model: AuditTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("auditPane")
        self.model = model
        self.proxy = sorting_proxy(model, self)
        self.table = make_table("auditTable", self.proxy,
                                ("88888", "00:00:00", "user:operator", "autonomy.set_ceiling",
                                 "cascading-failure", ""), self, fit=True)
        header = self.table.horizontalHeader()
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)

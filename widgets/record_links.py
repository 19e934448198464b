"""Where a record link leads: the one dispatch every pane's links go through.

A citation in an answer, an evidence link on a recommendation, a timeline row's record, a
notification, a record followed from the audit browser: each names a record as
`kind:id`, and each opens it the same way. A record with a row in a pane is shown there
(the row selected and scrolled to, any filter that hid it cleared, the pane's dock
brought to the front); a record without one (a runbook, a log template's lines, a
change outside the selected incident's timeline, a document, a report) opens in the
record viewer. Nothing is only named in the status bar any more, except a link that is
no record at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QSortFilterProxyModel
from PySide6.QtWidgets import QAbstractItemView, QTableView

if TYPE_CHECKING:
    from widgets.history_pane import HistoryPane
    from widgets.incidents_pane import IncidentsPane
    from widgets.metrics_pane import MetricsPane
    from widgets.record_viewer import RecordViewer
    from widgets.recommendations_pane import RecommendationsPane
    from widgets.tables import AuditPane, SignalsPane

VIEWER_KINDS = frozenset({"runbook", "log", "knowledge", "report", "change", "signal",
                          "audit", "incident", "execution", "recommendation"})
"""Kinds the record viewer can read when no pane holds the record."""


def reveal(view: QTableView, proxy: QSortFilterProxyModel, source: QModelIndex) -> bool:
    """Select and scroll to the row of `source` (an index of the proxy's source model);
    False when the proxy hides it."""
    row = proxy.mapFromSource(source)
    if not row.isValid():
        return False
    view.selectRow(row.row())
    view.scrollTo(row, QAbstractItemView.ScrollHint.PositionAtCenter)
    return True


def first_row(model: QAbstractItemModel, test: Callable[[int], bool]) -> int:
    """The first row of `model` that `test` accepts, -1 when none does."""
    return next((row for row in range(model.rowCount()) if test(row)), -1)


class RecordLinks:
    """Opens record links. `show_dock(name)` brings a dock to the front; `viewer()` gives
    the record viewer (made on first use); `notify(text)` says what cannot be opened."""

    def __init__(self, *, incidents: IncidentsPane, recommendations: RecommendationsPane,
                 history: HistoryPane, signals: SignalsPane, audit: AuditPane,
                 metrics: MetricsPane, show_dock: Callable[[str], None],
                 viewer: Callable[[], RecordViewer | None],
                 notify: Callable[[str], None]) -> None:
        self._incidents, self._recommendations, self._history = incidents, recommendations, \
            history
        self._signals, self._audit, self._metrics = signals, audit, metrics
        self._show_dock, self._viewer, self._notify = show_dock, viewer, notify
        self._panes: dict[str, Callable[[str], str | None]] = {
            "incident": self._incident, "recommendation": self._recommendation,
            "execution": self._execution, "signal": self._signal, "audit": self._audit_record,
            "change": self._timeline_row, "agent_event": self._timeline_row,
            "metric": self._metric,
        }
        self.opened: tuple[str, str] | None = None
        """(ref, where) of the last link opened: a dock's name or "viewer"."""

    def open(self, ref: str) -> str | None:
        """Open `ref`; returns where it was shown (a dock's name, "viewer"), None when
        it names nothing the console can show (said in the status bar)."""
        kind, _, ident = ref.partition(":")
        where = None
        if ident:
            in_pane = self._panes.get(kind)
            where = in_pane(ref) if in_pane is not None else None
            if where is not None:
                self._show_dock(where)
            elif kind in VIEWER_KINDS:
                viewer = self._viewer()
                if viewer is not None:
                    viewer.show_ref(ref)
                    where = "viewer"
        if where is None:
            self._notify(f"record {ref}: nothing in the console shows this record")
            return None
        self.opened = (ref, where)
        return where

    # --- the panes -----------------------------------------------------------------------

    def _incident(self, ref: str) -> str | None:
        pane, ident = self._incidents, ref.partition(":")[2]
        if not ident.isdigit() or pane.model.row_of(int(ident)) < 0:
            return None
        source = pane.model.index(pane.model.row_of(int(ident)), 0)
        if not pane.proxy.mapFromSource(source).isValid():
            pane.filter.clear()  # the operator's filter hid it: the record matters more
            pane.open_only.setChecked(False)
        pane.select_incident(int(ident))
        reveal(pane.table, pane.proxy, source)
        return "incidents"

    def _recommendation(self, ref: str) -> str | None:
        ident = ref.partition(":")[2]
        if ident.isdigit() and self._recommendations.select_recommendation(int(ident)):
            return "recommendations"
        return None

    def _execution(self, ref: str) -> str | None:
        pane, ident = self._history, ref.partition(":")[2]
        if not ident.isdigit() or pane.model.row_of(int(ident)) < 0:
            return None
        source = pane.model.index(pane.model.row_of(int(ident)), 0)
        return "history" if reveal(pane.table, pane.proxy, source) else None

    def _signal(self, ref: str) -> str | None:
        """The newest row of the alert series (the signals pane lists state changes)."""
        pane, fingerprint = self._signals, ref.partition(":")[2]
        row = first_row(pane.model, lambda r: pane.model.signal_at(r).fingerprint == fingerprint)
        if row < 0:
            return None
        source = pane.model.index(row, 0)
        if not pane.proxy.mapFromSource(source).isValid():
            pane.live_only_toggle.setChecked(False)
            pane.filter.clear()
        return "signals" if reveal(pane.table, pane.proxy, source) else None

    def _audit_record(self, ref: str) -> str | None:
        pane, ident = self._audit, ref.partition(":")[2]
        if not ident.isdigit():
            return None
        seq = int(ident)
        row = first_row(pane.model, lambda r: pane.model.entry_at(r).seq == seq)
        if row < 0:
            return None
        return "audit" if reveal(pane.table, pane.proxy, pane.model.index(row, 0)) else None

    def _timeline_row(self, ref: str) -> str | None:
        """A change (or an agent's step) on the selected incident's timeline."""
        pane = self._incidents
        row = first_row(pane.timeline, lambda r: pane.timeline.entry_at(r).ref == ref)
        if row < 0:
            return None
        source = pane.timeline.index(row, 0)
        if not pane.timeline_proxy.mapFromSource(source).isValid():
            pane.timeline_filter.clear()
            pane.kind_filter.setCurrentIndex(0)
        return "incidents" if reveal(pane.timeline_table, pane.timeline_proxy, source) else None

    def _metric(self, ref: str) -> str | None:
        service = ref.partition(":")[2].partition("/")[0]
        if not service:
            return None
        self._metrics.show_service(service)
        return "metrics"

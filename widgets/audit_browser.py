"""The audit browser: search the chain, follow a record, verify, export a signed bundle.

It is a view over an `AuditBrowserModel` plus three callables it is given (verify,
re-read, export), so the same widget serves the live console (the facade's
`verify_audit`, `audit_pages` read a page at a time, `export_audit`) and the offline
review of a bundle (read-only, no export). Verification and export hash every record:
they run on a worker thread (the export with its progress and Cancel,
widgets/audit_export.py) and come back as signals, and the first bad record is then
selected, scrolled to and painted red. A record's links (its incident, recommendation,
execution) are emitted as `recordFollowed(kind, id)` for the main window to route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QDateTime, QItemSelection, QModelIndex, Qt, QTimeZone, QUrl, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.audit import VerifyResult
from console.domain import AuditEntry
from widgets.audit_model import (
    AuditBrowserModel,
    AuditFilterProxy,
    BadRecord,
    links_of,
    record_text,
)
from widgets.audit_export import AuditExportControl, Export
from widgets.audit_live import LiveAuditModel
from widgets.audit_paged import PagedAuditModel, PagedAuditProxy
from widgets.offthread import BackgroundJob
from widgets.tables import make_table
from widgets.theme import DEFAULT_THEME, STATE_COLORS

if TYPE_CHECKING:
    from console.service import WatchfloorService
    from widgets.bridge import BusBridge

DECISIONS = ("", "allow", "deny", "needs_approval", "n/a")
LINK_SCHEME = "follow"
MINUTE_END = timedelta(seconds=59, microseconds=999_999)


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class AuditBrowser(QWidget):
    """Search, details, verification and export of an audit chain.

    Signals:

    - ``recordFollowed(str, str)``: the operator followed a record to (kind, id), e.g.
      ("incident", "12"); the main window routes it to the pane that shows it.
    - ``verified(object)``: a verification finished (its `VerifyResult`).
    - ``exported(object)``: an export finished: (records, key fingerprint, path).
    - ``exportCancelled(object)``: an export was stopped on request (its path; no file).
    - ``failed(str)``: a verification or export failed; the message is shown too.
    """

    recordFollowed = Signal(str, str)
    verified = Signal(object)
    exported = Signal(object)
    exportCancelled = Signal(object)
    failed = Signal(str)

    def __init__(self, model: AuditBrowserModel, *, verify: Callable[[], VerifyResult],
                 reload: Callable[[], Any] | None = None,
                 export: Export | None = None, read_only: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("auditBrowser")
        self.model = model
        self.read_only = read_only or export is None
        self._verify, self._reload = verify, reload
        self.last_result: VerifyResult | None = None
        # A paged model (a bundle file) filters by searching its file; the list model
        # through a sort-filter proxy that visits its rows.
        self.proxy: AuditFilterProxy | PagedAuditProxy = (
            PagedAuditProxy(model, self) if isinstance(model, PagedAuditModel)
            else AuditFilterProxy(model, self))
        colors = STATE_COLORS[DEFAULT_THEME]
        self._colors = {"ok": colors.green, "bad": colors.red, "info": colors.dimmed}

        self._verify_job = BackgroundJob("audit-verify", self)
        self._verify_job.finished.connect(self._on_verify_job_finished)
        self._verify_job.failed.connect(self._on_job_failed)
        self.exporter = AuditExportControl(None if self.read_only else export, self)
        self.exporter.status.connect(self._show_status)  # its outcome, in the status line
        self.exporter.exported.connect(self.exported)
        self.exporter.cancelled.connect(self.exportCancelled)
        self.exporter.failed.connect(self.failed)

        self._build_filters()
        self.table = make_table("auditBrowserTable", self.proxy,
                                ("88888", "2024-01-01 00:00:00", "agent:recommender",
                                 "recommendation.approve", "recommendation:888",
                                 "needs_approval", ""), self)
        header = self.table.horizontalHeader()
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(isinstance(self.proxy, AuditFilterProxy))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.details = QTextBrowser(self)
        self.details.setObjectName("auditDetails")
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._on_details_anchor_clicked)
        self.details.setPlaceholderText("Select a record to see every field")
        self.details.document().setDefaultStyleSheet(
            f"a {{ color: {colors.blue}; }} pre {{ white-space: pre-wrap; }}")
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setObjectName("auditSplitter")
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)

        self.verify_button = self._button("verifyButton", "Verify chain",
                                          "Check every record's hash and link, and the "
                                          "chain head", self.verify_chain)
        self.export_button = self.exporter.button
        self.follow_button = self._button("followButton", "Follow",
                                          "Open what the selected record is about",
                                          self.follow_selected)
        self.follow_button.setEnabled(False)
        self.status_label = QLabel("Not verified yet", self)
        self.status_label.setObjectName("verifyStatus")
        self.status_label.setWordWrap(True)
        self._show_status("Not verified yet", "info")
        actions = QHBoxLayout()
        actions.setContentsMargins(4, 0, 4, 4)
        actions.addWidget(self.verify_button)
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.follow_button)
        actions.addWidget(self.exporter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(self.filter_grid)
        layout.addWidget(split, 1)
        layout.addLayout(actions)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.doubleClicked.connect(self._on_table_double_clicked)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._show_count)
        self.proxy.modelReset.connect(self._on_proxy_model_reset)
        self._reset_time_range()
        self._show_count()
        # A verification speaks for the records it read; the chain grows after it.
        model.rowsInserted.connect(self._on_model_rows_inserted)

    @classmethod
    def for_service(cls, service: WatchfloorService, bridge: BusBridge | None = None,
                    parent: QWidget | None = None, *,
                    export: Export | None = None) -> AuditBrowser:
        """The live console's browser over the facade: the database read a page at a
        time (widgets/audit_live.py), grown by `auditAppended`; `export` stands in for
        the facade's own (`export_audit`)."""
        model = LiveAuditModel(service.audit_pages(), bridge=bridge)
        browser = cls(model, verify=service.verify_audit, reload=model.reload,
                      export=export or service.export_audit, parent=parent)
        model.setParent(browser)
        return browser

    # --- building -----------------------------------------------------------------------

    def _button(self, name: str, text: str, tip: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        edit.setClearButtonEnabled(True)
        edit.textChanged.connect(self._apply_filters)
        return edit

    def _build_filters(self) -> None:
        self.actor_filter = self._line("auditActorFilter", "user:alice, agent:\u2026")
        self.action_filter = self._line("auditActionFilter", "policy.set, recommendation\u2026")
        self.target_filter = self._line("auditTargetFilter", "incident:12, payments\u2026")
        self.text_filter = self._line("auditTextFilter", "Any text in the record (reason, "
                                      "inputs, outputs, hash)\u2026")
        self.decision_filter = QComboBox(self)
        self.decision_filter.setObjectName("auditDecisionFilter")
        for value in DECISIONS:
            self.decision_filter.addItem(value or "any decision", value)
        self.decision_filter.currentIndexChanged.connect(self._apply_filters)
        self.time_toggle = QCheckBox("Between", self)
        self.time_toggle.setObjectName("auditTimeToggle")
        self.time_toggle.setToolTip("Only records in this time range (UTC)")
        self.time_toggle.toggled.connect(self._on_time_toggle_toggled)
        self.since_edit = self._time_edit("auditSince")
        self.until_edit = self._time_edit("auditUntil")
        self.clear_button = self._button("auditClearFilters", "Clear", "Show every record",
                                         self.clear_filters)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("auditCount")
        grid = QGridLayout()
        grid.setContentsMargins(4, 4, 4, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        row0 = ((QLabel("Actor", self), self.actor_filter),
                (QLabel("Action", self), self.action_filter),
                (QLabel("Target", self), self.target_filter))
        for i, (label, edit) in enumerate(row0):
            grid.addWidget(label, 0, 2 * i)
            grid.addWidget(edit, 0, 2 * i + 1)
        grid.addWidget(self.decision_filter, 0, 6)
        grid.addWidget(QLabel("Text", self), 1, 0)
        grid.addWidget(self.text_filter, 1, 1, 1, 3)
        times = QHBoxLayout()
        times.setSpacing(6)
        times.addWidget(self.time_toggle)
        times.addWidget(self.since_edit)
        times.addWidget(QLabel("and", self))
        times.addWidget(self.until_edit)
        grid.addLayout(times, 1, 4, 1, 2)
        end = QHBoxLayout()
        end.addWidget(self.clear_button)
        end.addWidget(self.count_label)
        grid.addLayout(end, 1, 6)
        for col in (1, 3, 5):
            grid.setColumnStretch(col, 1)
        self.filter_grid = grid

    def _time_edit(self, name: str) -> QDateTimeEdit:
        edit = QDateTimeEdit(self)
        edit.setObjectName(name)
        edit.setTimeZone(QTimeZone.utc())
        edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        edit.setCalendarPopup(True)
        edit.setEnabled(False)
        edit.dateTimeChanged.connect(self._apply_filters)
        return edit

    # --- filtering ---------------------------------------------------------------------

    def set_filters(self, *, actor: str = "", action: str = "", target: str = "",
                    text: str = "", decision: str = "", since: datetime | None = None,
                    until: datetime | None = None) -> None:
        """Fill the filter fields as an operator would (tests, "show related")."""
        self.actor_filter.setText(actor)
        self.action_filter.setText(action)
        self.target_filter.setText(target)
        self.text_filter.setText(text)
        self.decision_filter.setCurrentIndex(max(0, self.decision_filter.findData(decision)))
        if since is not None or until is not None:
            if since is not None:
                self.since_edit.setDateTime(_qt_time(since))
            if until is not None:
                self.until_edit.setDateTime(_qt_time(until))
            self.time_toggle.setChecked(True)
        else:
            self.time_toggle.setChecked(False)
        self._apply_filters()

    def clear_filters(self) -> None:
        self.set_filters()
        self._reset_time_range()

    def _reset_time_range(self) -> None:
        span = self.model.time_span()
        if span is not None:
            self.since_edit.setDateTime(_qt_time(span[0]))
            self.until_edit.setDateTime(_qt_time(span[1]))

    def _on_time_toggle_toggled(self, on: bool) -> None:
        self.since_edit.setEnabled(on)
        self.until_edit.setEnabled(on)
        self._apply_filters()

    def _apply_filters(self, *_args: object) -> None:
        timed = self.time_toggle.isChecked()
        self.proxy.set_filters(
            actor=self.actor_filter.text(), action=self.action_filter.text(),
            target=self.target_filter.text(), text=self.text_filter.text(),
            decision=str(self.decision_filter.currentData() or ""),
            since=_py_time(self.since_edit.dateTime()) if timed else None,
            # the "until" minute is included whole
            until=_py_time(self.until_edit.dateTime()) + MINUTE_END if timed else None)
        self._show_count()

    def _show_count(self, *_args: object) -> None:
        shown = self.proxy.rowCount()
        # a paged model holds a search's rows only; its proxy says what is under way
        total = self._total()
        note = self.proxy.note if isinstance(self.proxy, PagedAuditProxy) else ""
        text = f"{total:,} records" if shown == total else f"{shown:,} of {total:,}"
        self.count_label.setText(f"{text} ({note})" if note else text)

    def _total(self) -> int:
        """Records in the chain (a paged model's rows are a search's, when one is shown)."""
        return self.model.total if isinstance(self.model, PagedAuditModel) \
            else self.model.rowCount()

    # --- selection, details, following -------------------------------------------------

    @property
    def selected_entry(self) -> AuditEntry | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.entry_at(self.proxy.mapToSource(rows[0]).row())

    def select_seq(self, seq: int) -> bool:
        """Select and scroll to record `seq` (or the record after it, if it is gone);
        False when no such row is shown under the current filters."""
        row = self.model.row_of_seq(seq)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return False
        self.table.selectRow(index.row())
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _on_table_selection_changed(self, _selected: QItemSelection,
                                    _deselected: QItemSelection) -> None:
        entry = self.selected_entry
        self.follow_button.setEnabled(bool(entry is not None and links_of(entry)))
        self._show_details(entry)

    def _on_proxy_model_reset(self) -> None:
        """A reset drops the selection without a selectionChanged (a paged model's
        search result): the details must not go on showing a record no longer listed."""
        self._on_table_selection_changed(QItemSelection(), QItemSelection())

    def _show_details(self, entry: AuditEntry | None) -> None:
        if entry is None:
            self.details.clear()
            return
        links = links_of(entry)
        parts = [f"<p><b>#{entry.seq} {_html(entry.action)}</b> by {_html(entry.actor)}"
                 f"<br>{entry.at.isoformat()} \u00b7 decision <b>{_html(entry.decision)}</b>"]
        if self.model.bad is not None and self.model.bad_row is not None and \
                self.model.entry_at(self.model.bad_row).seq == entry.seq:
            parts.append(f"<p style='color:{self._colors['bad']}'><b>Fails verification:</b> "
                         f"{_html(self.model.bad.problem)}</p>")
        if entry.reason:
            parts.append(f"<p>{_html(entry.reason)}</p>")
        if links:
            anchors = " \u00b7 ".join(
                f"<a href='{LINK_SCHEME}:{kind}/{_html(ident)}'>{kind} {_html(ident)}</a>"
                for kind, ident in links)
            parts.append(f"<p>Follow: {anchors}</p>")
        parts.append(f"<pre>{_html(record_text(entry))}</pre>")
        self.details.setHtml("".join(parts))

    def follow_selected(self) -> None:
        entry = self.selected_entry
        if entry is None:
            return
        links = links_of(entry)
        if links:
            self.recordFollowed.emit(*links[0])

    def _on_table_double_clicked(self, _index: QModelIndex) -> None:
        self.follow_selected()

    def _on_details_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() != LINK_SCHEME:
            return
        kind, _, ident = url.path().partition("/")
        if kind and ident:
            self.recordFollowed.emit(kind, ident)

    # --- verification ------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._verify_job.running or self.exporter.running

    def verify_chain(self) -> None:
        """Verify off the GUI thread (re-reading the records first where that is
        possible, so what is shown is what was verified)."""
        verify, reload = self._verify, self._reload

        def work() -> tuple[Any, VerifyResult]:
            entries = reload() if reload is not None else None
            return entries, verify()

        self.verify_button.setEnabled(False)
        self._show_status("Verifying the chain\u2026", "info")
        self._verify_job.submit(work)

    def _on_verify_job_finished(self, outcome: tuple[Any, VerifyResult]) -> None:
        entries, result = outcome
        self.verify_button.setEnabled(True)
        if entries is not None:
            self.model.replace_entries(entries)
            self._reset_time_range()
        self.show_verification(result)
        self.verified.emit(result)

    def show_verification(self, result: VerifyResult) -> None:
        """Show a verification result; a broken chain selects its first bad record."""
        self.last_result = result
        if result.ok:
            self.model.mark_bad(None)
            self._show_status(f"\u2714 Chain holds: {result.records:,} records verified",
                              "ok")
            return
        if result.first_bad_seq is None:
            self.model.mark_bad(None)
            self._show_status(f"\u2716 {result.problem}", "bad")
            return
        self.model.mark_bad(BadRecord(result.first_bad_seq, result.problem))
        hidden = "" if self.select_seq(result.first_bad_seq) else \
            " (hidden by the filters: Clear shows it)"
        self._show_status(f"\u2716 Chain broken at record {result.first_bad_seq}: "
                          f"{result.problem}{hidden}", "bad")

    def _on_model_rows_inserted(self, *_args: object) -> None:
        """Records came after the last verification: the status says how many of them
        it covered, not a count that looks current."""
        result = self.last_result
        # Not while a verification is under way (its answer will cover these): asked of
        # the button, which the GUI thread turns on when the answer is shown; the job's
        # own flag is cleared on its thread a moment after that.
        if result is None or not result.ok or not self.verify_button.isEnabled():
            return
        newer = self._total() - result.records
        if newer > 0:
            self._show_status(
                f"\u2714 Chain held at {result.records:,} records; {newer:,} newer "
                f"record{'s' if newer > 1 else ''} not verified yet (Verify chain)", "info")

    def _show_status(self, text: str, level: str) -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("level", level)
        weight = "bold" if level == "bad" else "normal"
        self.status_label.setStyleSheet(f"color: {self._colors[level]}; font-weight: {weight};")

    # --- export (widgets/audit_export.py) --------------------------------------------

    def choose_export_file(self) -> None:
        """Ask for a file without blocking (QFileDialog.open), then export to it."""
        self.exporter.choose_file()

    def export_to(self, path: Path) -> None:
        """Export the chain to `path` (a version 2 bundle) off the GUI thread."""
        self.exporter.export_to(path)

    def cancel_export(self) -> None:
        self.exporter.cancel()

    def _on_job_failed(self, message: str) -> None:
        self.verify_button.setEnabled(True)
        self._show_status(f"Failed: {message}", "bad")
        self.failed.emit(message)

    def shutdown(self) -> None:
        """Wait for a verification or export in flight (call before closing)."""
        self._verify_job.shutdown()
        self.exporter.shutdown()
        if isinstance(self.proxy, PagedAuditProxy):
            self.proxy.shutdown()


def _qt_time(at: datetime) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(at.timestamp()), QTimeZone.utc())


def _py_time(value: QDateTime) -> datetime:
    return datetime.fromtimestamp(value.toSecsSinceEpoch(), UTC)

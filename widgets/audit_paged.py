"""The audit browser's model over a version 2 bundle file: a page at a time.

A night's bundle can hold a million records. Reading them all into the model would
cost hundreds of megabytes and seconds before the window appears, so this model knows
only how many rows there are and reads the rows a view asks for, a page by key, keeping
a few pages (`PAGE_ROWS` x `KEPT_PAGES` records) and forgetting the oldest: memory stays
flat however far the reviewer scrolls. It is the same audit model as the console's
(`AuditBrowserModel`: the same columns, colours, bad-record marking), only its rows
come from the file.

Filtering cannot go through a QSortFilterProxyModel, which visits every source row.
The filters run as one SQL query over the file on a worker thread instead
(`console.audit_bundle_file.search`); the model then shows the matching records, at most
`MATCH_LIMIT` of them (newest first), and says so when there were more. Sorting by a
column is off for the same reason; rows stay newest first.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QIdentityProxyModel, QObject, QTimer

from console.audit_bundle_file import BundleFile, SearchFilters, search
from console.domain import AuditEntry
from widgets.audit_model import AuditBrowserModel
from widgets.offthread import BackgroundJob

PAGE_ROWS = 256
KEPT_PAGES = 12
MATCH_LIMIT = 100_000
SEARCH_DELAY_MS = 250  # typing a word runs one search, not one per letter
_MISSING_AT = datetime(1970, 1, 1, tzinfo=UTC)


def _missing(seq: int) -> AuditEntry:
    """What a row shows for a record the file does not hold as a record (deleted or
    damaged); verification names what is wrong with it."""
    return AuditEntry(seq=seq, at=_MISSING_AT, actor="", action="(not readable in the file)",
                      target="", reason="", inputs={}, outputs={}, decision="n/a",
                      prev_hash="", hash="")


class PagedAuditModel(AuditBrowserModel):
    """The records of an opened bundle file, newest on top, read by page on demand.

    `show_matches(seqs, more)` narrows it to a search's result (None: every record);
    `search` finds one (on a worker thread: it opens its own connection)."""

    SEARCHING = "searching the file\u2026"

    def __init__(self, bundle: BundleFile, parent: QObject | None = None) -> None:
        super().__init__((), parent=parent)
        self.bundle = bundle
        self._matches: list[int] | None = None
        self.more_matches = False
        self._pages: OrderedDict[int, dict[int, AuditEntry]] = OrderedDict()
        self.pages_read = 0  # how many page reads the views caused (tests, benchmark)

    # --- rows ----------------------------------------------------------------------

    def _row_count(self) -> int:
        return len(self._matches) if self._matches is not None else self.bundle.count

    @property
    def total(self) -> int:
        return self.bundle.count

    def seq_at(self, row: int) -> int:
        if self._matches is not None:
            return self._matches[row]
        return self.bundle.last_seq - row

    def entry_at(self, row: int) -> AuditEntry:
        page_no = row // PAGE_ROWS
        page = self._pages.get(page_no)
        if page is None:
            first = page_no * PAGE_ROWS
            seqs = [self.seq_at(r) for r in range(first, min(first + PAGE_ROWS,
                                                               self._row_count()))]
            page = self.bundle.entries(seqs)
            self.pages_read += 1
            self._pages[page_no] = page
            while len(self._pages) > KEPT_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        seq = self.seq_at(row)
        return page.get(seq) or _missing(seq)

    def entries(self) -> tuple[AuditEntry, ...]:
        """Only the records read so far: the whole file is never loaded."""
        return tuple(e for page in self._pages.values() for e in page.values())

    @property
    def last_seq(self) -> int:
        return self.bundle.last_seq

    def time_span(self) -> tuple[datetime, datetime] | None:
        return self.bundle.span()

    def row_of_seq(self, seq: int) -> int | None:
        """The row of record `seq`, or of the nearest newer one shown."""
        if self._matches is None:
            if seq > self.bundle.last_seq or not self.bundle.count:
                return None
            return min(self.bundle.last_seq - max(seq, self.bundle.first_seq),
                       self.bundle.count - 1)
        lo, hi = 0, len(self._matches)  # seqs descending: the last row with seq >= `seq`
        while lo < hi:
            mid = (lo + hi) // 2
            if self._matches[mid] >= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1 if lo else None

    def add_entry(self, entry: AuditEntry) -> None:
        """A bundle does not grow."""

    def replace_entries(self, entries: Any) -> None:
        """A bundle is not re-read: its records are what the file holds."""

    def search(self, filters: SearchFilters, limit: int) -> tuple[list[int], bool]:
        return search(self.bundle.path, filters, limit)

    def show_matches(self, seqs: list[int] | None, more: bool = False) -> None:
        """Show a search's result (seqs newest first), or every record again (None):
        one reset, on the reviewer's request."""
        self.beginResetModel()
        self._matches, self.more_matches = seqs, more
        self._pages.clear()
        self._bad_row = None if self.bad is None else self.row_of_seq(self.bad.seq)
        self.endResetModel()


class PagedAuditProxy(QIdentityProxyModel):
    """The browser's filter for a paged model: the same `set_filters` as
    `AuditFilterProxy`, run as a search over the file off the GUI thread. `note` says
    what the count cannot (a search under way, a result cut at `MATCH_LIMIT`)."""

    def __init__(self, model: PagedAuditModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.audit_model = model
        self.setSourceModel(model)
        self.filters = SearchFilters()
        self.note = ""
        self._asked = 0  # which request a finished search answers
        self._answered = 0  # the request whose answer is shown
        self._job = BackgroundJob("audit-search", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    @property
    def active(self) -> bool:
        return self.filters.active

    @property
    def searching(self) -> bool:
        """Until the latest search's answer is shown (the worker is done a moment
        before its answer reaches the GUI thread)."""
        return self._answered != self._asked

    def set_filters(self, *, actor: str = "", action: str = "", target: str = "",
                    text: str = "", decision: str = "", since: datetime | None = None,
                    until: datetime | None = None) -> None:
        filters = SearchFilters(actor.strip(), action.strip(), target.strip(), text.strip(),
                                decision, since, until)
        if filters == self.filters:
            return
        self.filters = filters
        self._asked += 1
        if not filters.active:
            self._timer.stop()
            self._answered = self._asked
            self.note = ""
            self.audit_model.show_matches(None)
            return
        self.note = self.audit_model.SEARCHING
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        find, filters, asked = self.audit_model.search, self.filters, self._asked
        self._job.submit(lambda: (asked, *find(filters, MATCH_LIMIT)))

    def _on_job_finished(self, outcome: tuple[int, list[int], bool]) -> None:
        asked, seqs, more = outcome
        if asked != self._asked:  # the filters changed meanwhile: a newer search comes
            return
        self._answered = asked
        self.note = (f"the newest {MATCH_LIMIT:,} matches shown; narrow the search"
                     if more else "")
        self.audit_model.show_matches(seqs, more)

    def _on_job_failed(self, message: str) -> None:
        self._answered = self._asked
        self.note = f"search failed: {message}"
        self.audit_model.show_matches([])

    def shutdown(self) -> None:
        self._timer.stop()
        self._job.shutdown()

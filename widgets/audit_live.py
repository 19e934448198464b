"""The console's audit browser over the live database: a page at a time, and growing.

A console that has run for weeks holds a million audit records; loading them all into
the browser cost hundreds of megabytes and seconds on the GUI thread. This model knows
only the first and last seq (a row per seq, newest on top: a deleted record is a row
that says so) and reads the rows a view asks for by key through
`console.audit_pages.AuditPageReader`, keeping at most `PAGE_ROWS` x `KEPT_PAGES`
records, as the review of a bundle does (widgets/audit_paged.py, whose filter proxy it
shares: search is SQL on a worker, capped at `MATCH_LIMIT` and saying so).

Records appended while the console runs arrive as bus events and are inserted at the
top (`beginInsertRows`; the model is never reset per event); while a search is shown,
an appended record joins it when the search would have found it. Records appended while
a search ran are read when its result is shown, so none falls between the two.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject

from console.audit_bundle_file import SearchFilters
from console.audit_pages import AuditPageReader, LogBounds, matches
from console.domain import AuditEntry
from widgets.audit_model import AuditBrowserModel
from widgets.audit_paged import KEPT_PAGES, PAGE_ROWS, PagedAuditModel

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

KEPT_RECORDS = PAGE_ROWS * KEPT_PAGES
_MISSING_AT = datetime(1970, 1, 1, tzinfo=UTC)


def _missing(seq: int) -> AuditEntry:
    """A seq the database holds no readable record for (deleted, or a field no writer
    produces); verification names what is wrong with it."""
    return AuditEntry(seq=seq, at=_MISSING_AT, actor="",
                      action="(not readable in the database)", target="", reason="",
                      inputs={}, outputs={}, decision="n/a", prev_hash="", hash="")


class LiveAuditModel(PagedAuditModel):
    """The live audit log, newest on top, read by page on demand and grown by
    `auditAppended`. `reload()` (a verification's re-read) is the one reset."""

    SEARCHING = "searching the log\u2026"

    def __init__(self, reader: AuditPageReader, *, bridge: BusBridge | None = None,
                 parent: QObject | None = None) -> None:
        # the bundle's model's state is a file's; this one's is the database's
        AuditBrowserModel.__init__(self, (), bridge=bridge, parent=parent)
        self.reader = reader
        self._bounds: LogBounds = reader.bounds()
        self._cache: OrderedDict[int, AuditEntry] = OrderedDict()
        self._matches: list[int] | None = None
        self.more_matches = False
        self.pages_read = 0
        # what the search in flight asked and up to which record (set on its worker,
        # read when its result is shown), and what the shown result answers
        self._search_filters: SearchFilters | None = None
        self._search_up_to = 0
        self._shown_filters: SearchFilters | None = None

    # --- rows --------------------------------------------------------------------------

    def _row_count(self) -> int:
        return len(self._matches) if self._matches is not None else self._bounds.rows

    @property
    def total(self) -> int:
        return self._bounds.rows

    @property
    def last_seq(self) -> int:
        return self._bounds.last_seq

    def seq_at(self, row: int) -> int:
        if self._matches is not None:
            return self._matches[row]
        return self._bounds.last_seq - row

    def entry_at(self, row: int) -> AuditEntry:
        seq = self.seq_at(row)
        entry = self._cache.get(seq)
        if entry is not None:
            self._cache.move_to_end(seq)
            return entry
        first = row // PAGE_ROWS * PAGE_ROWS
        seqs = [self.seq_at(r) for r in range(first, min(first + PAGE_ROWS,
                                                           self._row_count()))]
        found = self.reader.entries([s for s in seqs if s not in self._cache])
        self.pages_read += 1
        for s in seqs:
            if s not in self._cache:
                self._cache[s] = found.get(s) or _missing(s)
        self._cache.move_to_end(seq)
        self._trim()
        return self._cache[seq]

    def _trim(self) -> None:
        while len(self._cache) > KEPT_RECORDS:
            self._cache.popitem(last=False)

    def entries(self) -> tuple[AuditEntry, ...]:
        """Only the records read so far: the whole log is never loaded."""
        return tuple(self._cache.values())

    def time_span(self) -> tuple[datetime, datetime] | None:
        return self.reader.span(self._bounds)

    def row_of_seq(self, seq: int) -> int | None:
        """The row of record `seq` (or of the nearest newer one, for a deleted record);
        under a search only that record's own row."""
        if self._matches is None:
            bounds = self._bounds
            if not bounds.last_seq or seq > bounds.last_seq:
                return None
            return bounds.last_seq - max(seq, bounds.first_seq)
        lo, hi = 0, len(self._matches)  # seqs descending: the first row with seq <= `seq`
        while lo < hi:
            mid = (lo + hi) // 2
            if self._matches[mid] > seq:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self._matches) and self._matches[lo] == seq else None

    # --- growing -----------------------------------------------------------------------

    def add_entry(self, entry: AuditEntry) -> None:
        """A record appended to the live chain: new rows on top (a jump past records
        this console did not hear of adds their rows too; they are read when shown)."""
        bounds = self._bounds
        if entry.seq <= bounds.last_seq:  # known already: what a page read may refresh
            if entry.seq in self._cache:
                self._cache[entry.seq] = entry
            return
        grown = LogBounds(bounds.first_seq or entry.seq, entry.seq)
        self._cache[entry.seq] = entry
        self._trim()
        if self._matches is None:
            added = grown.rows - bounds.rows
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self._bounds = grown
            self._shift_bad(added)
            self.endInsertRows()
            return
        self._bounds = grown
        if self._shown_filters is not None and matches(entry, self._shown_filters):
            self.beginInsertRows(QModelIndex(), 0, 0)
            self._matches.insert(0, entry.seq)
            self._shift_bad(1)
            self.endInsertRows()

    def _shift_bad(self, rows: int) -> None:
        if self._bad_row is not None:
            self._bad_row += rows

    def replace_entries(self, entries: Any) -> None:
        """Show the log as stored now (a verification re-read it: `bounds` is what
        `reload` gives): one reset on the operator's request, the pages read again."""
        self.beginResetModel()
        if isinstance(entries, LogBounds):
            self._bounds = entries
        self._cache.clear()
        self._bad_row = None if self.bad is None else self.row_of_seq(self.bad.seq)
        self.endResetModel()

    def reload(self) -> LogBounds:
        """What a verification re-reads first (off the GUI thread): the bounds only."""
        return self.reader.bounds()

    # --- search (through widgets.audit_paged.PagedAuditProxy) ---------------------------

    def search(self, filters: SearchFilters, limit: int) -> tuple[list[int], bool]:
        """Runs on the proxy's worker: the database's matches up to the newest record
        heard of now; those appended meanwhile are added when the result is shown."""
        up_to = self._bounds.last_seq
        self._search_filters, self._search_up_to = filters, up_to
        return self.reader.search(filters, limit, up_to=up_to)

    def show_matches(self, seqs: list[int] | None, more: bool = False) -> None:
        self.beginResetModel()
        self._matches, self.more_matches = seqs, more
        self._shown_filters = None if seqs is None else self._search_filters
        filters, last = self._shown_filters, self._bounds.last_seq
        if seqs is not None and filters is not None and self._search_up_to < last:
            later = self.reader.entries(range(self._search_up_to + 1, last + 1))
            self._matches = [s for s in sorted(later, reverse=True)
                             if matches(later[s], filters)] + seqs
        self._bad_row = None if self.bad is None else self.row_of_seq(self.bad.seq)
        self.endResetModel()

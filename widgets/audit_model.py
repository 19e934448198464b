"""The audit browser's model and filter: the whole chain, searchable, with the first
record that fails verification marked.

`AuditBrowserModel` is a table over `AuditEntry` values, newest on top, fed once and
then grown by `auditAppended` (live console) or never (a bundle under review). After a
verification it knows the first bad record and paints it (and dims what follows it,
since nothing after a break can be trusted). `AuditFilterProxy` filters by actor,
action, target, decision, free text (over every field, inputs and outputs included)
and a time range, without copying the records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt

from console.domain import AuditEntry
from widgets.filtering import SortFilterProxy
from widgets.models import RIGHT, SORT_ROLE, AnyIndex, TableModel, bold_font, seq_position, tint

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2
"""Role carrying the row's AuditEntry itself."""

FOLLOWABLE = ("incident", "recommendation", "execution", "ticket", "runbook", "eval",
              "signal", "change", "user")
_LINK_KEYS = {"incident": "incident", "incident_id": "incident",
              "recommendation": "recommendation", "recommendation_id": "recommendation",
              "execution": "execution", "execution_id": "execution"}


def links_of(entry: AuditEntry) -> list[tuple[str, str]]:
    """The records an audit record is about, as (kind, id): its target first, then
    incidents, recommendations and executions named in its inputs or outputs."""
    found: list[tuple[str, str]] = []
    kind, sep, ident = entry.target.partition(":")
    if sep and kind in FOLLOWABLE and ident:
        found.append((kind, ident))
    for part in (entry.inputs, entry.outputs):
        for key, value in part.items():
            kind_of = _LINK_KEYS.get(key)
            if kind_of and isinstance(value, int | str) and not isinstance(value, bool) \
                    and str(value) and (kind_of, str(value)) not in found:
                found.append((kind_of, str(value)))
    return found


def record_text(entry: AuditEntry) -> str:
    """The full record as indented JSON, for the details view and copying."""
    body = {"seq": entry.seq, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "decision": entry.decision,
            "reason": entry.reason, "inputs": dict(entry.inputs),
            "outputs": dict(entry.outputs), "prev_hash": entry.prev_hash, "hash": entry.hash}
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class BadRecord:
    seq: int
    problem: str


class AuditBrowserModel(TableModel):
    """Every record of an audit chain, newest on top; `mark_bad` paints the first
    record a verification rejected."""

    HEADERS = ("Seq", "Time (UTC)", "Actor", "Action", "Target", "Decision", "Reason")
    SEQ, TIME, ACTOR, ACTION, TARGET, DECISION, REASON = range(7)

    def __init__(self, entries: Iterable[AuditEntry] = (), *, bridge: BusBridge | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AuditEntry] = sorted(entries, key=lambda e: e.seq, reverse=True)
        self._haystack: dict[int, str] = {}
        self.bad: BadRecord | None = None
        self._bad_row: int | None = None
        if bridge is not None:
            bridge.auditAppended.connect(self._on_bridge_audit)

    # --- content ----------------------------------------------------------------------

    def entry_at(self, row: int) -> AuditEntry:
        return self._rows[row]

    def entries(self) -> Sequence[AuditEntry]:
        return tuple(self._rows)

    def time_span(self) -> tuple[datetime, datetime] | None:
        """(oldest, newest) record time, for the time filter's initial range."""
        return (self._rows[-1].at, self._rows[0].at) if self._rows else None

    @property
    def last_seq(self) -> int:
        return self._rows[0].seq if self._rows else 0

    def add_entry(self, entry: AuditEntry) -> None:
        """A record appended to the live chain: on top, or in its place when it is older
        than the newest shown (another console's, read late); a known one is ignored."""
        row = seq_position(self._rows, entry.seq)
        if row is None:
            return
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, entry)
        if self._bad_row is not None and row <= self._bad_row:
            self._bad_row += 1
        self.endInsertRows()

    def replace_entries(self, entries: Iterable[AuditEntry]) -> None:
        """Show the chain as it is stored now (after a verification re-read it): one
        reset on the operator's request, never per event."""
        self.beginResetModel()
        self._rows = sorted(entries, key=lambda e: e.seq, reverse=True)
        self._haystack.clear()
        self._bad_row = None if self.bad is None else self.row_of_seq(self.bad.seq)
        self.endResetModel()

    def _on_bridge_audit(self, event: Any) -> None:
        self.add_entry(event.entry)

    def row_of_seq(self, seq: int) -> int | None:
        """The row of record `seq`, or of the nearest newer record when it is missing
        (a deleted record is "found" at the record after the gap)."""
        best: int | None = None
        for row, entry in enumerate(self._rows):  # newest first: seqs descending
            if entry.seq < seq:
                break
            best = row
        return best

    def search_text(self, row: int) -> str:
        entry = self._rows[row]
        text = self._haystack.get(entry.seq)
        if text is None:
            text = " ".join((str(entry.seq), entry.actor, entry.action, entry.target,
                             entry.decision, entry.reason,
                             json.dumps(dict(entry.inputs), default=str, ensure_ascii=False),
                             json.dumps(dict(entry.outputs), default=str, ensure_ascii=False),
                             entry.hash)).casefold()
            self._haystack[entry.seq] = text
        return text

    # --- verification -------------------------------------------------------------------

    def mark_bad(self, bad: BadRecord | None) -> None:
        """Mark the first bad record (None: the chain holds); repaints every row."""
        self.bad = bad
        self._bad_row = None if bad is None else self.row_of_seq(bad.seq)
        if self._row_count():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self._row_count() - 1, len(self.HEADERS) - 1))

    @property
    def bad_row(self) -> int | None:
        return self._bad_row

    # --- Qt ---------------------------------------------------------------------------

    def _text(self, entry: AuditEntry, col: int) -> str:
        if col == self.SEQ:
            return str(entry.seq)
        if col == self.TIME:
            return entry.at.strftime("%Y-%m-%d %H:%M:%S")
        if col == self.ACTOR:
            return entry.actor
        if col == self.ACTION:
            return entry.action
        if col == self.TARGET:
            return entry.target
        if col == self.DECISION:
            return entry.decision
        return " ".join(entry.reason.split())

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row, col = index.row(), index.column()
        entry = self.entry_at(row)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry, col)
        if role == SORT_ROLE:
            if col == self.SEQ:
                return entry.seq
            if col == self.TIME:
                return entry.at.timestamp()
            return self._text(entry, col)
        if role == ENTRY_ROLE:
            return entry
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.SEQ:
            return RIGHT
        bad = self.bad is not None and row == self.bad_row
        after = self.bad is not None and not bad and entry.seq > self.bad.seq
        p = self.palette
        if role == Qt.ItemDataRole.BackgroundRole:
            if bad:
                return tint(p.red, 110)
            if entry.decision == "deny":
                return tint(p.red, 35)
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if after:
                return p.dimmed
            if col == self.DECISION:
                return {"deny": p.red, "needs_approval": p.amber, "allow": p.green}.get(
                    entry.decision, p.dimmed)
            return None
        if role == Qt.ItemDataRole.FontRole and bad:
            return bold_font()
        if role == Qt.ItemDataRole.ToolTipRole:
            if bad and self.bad is not None:
                return (f"First record that fails verification (record {self.bad.seq}): "
                        f"{self.bad.problem}")
            if after:
                return "After the break in the chain: this record cannot be trusted"
            return f"#{entry.seq} {entry.action} on {entry.target or '-'} by {entry.actor}"
        return None


class AuditFilterProxy(SortFilterProxy):
    """Filters the audit model by field substrings (case-insensitive), decision, free
    text over the whole record and a time range; sorts by `SORT_ROLE`."""

    def __init__(self, model: AuditBrowserModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.audit_model = model
        self.setSourceModel(model)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.actor = self.action = self.target = self.text = self.decision = ""
        self.since: datetime | None = None
        self.until: datetime | None = None

    def set_filters(self, *, actor: str = "", action: str = "", target: str = "",
                    text: str = "", decision: str = "", since: datetime | None = None,
                    until: datetime | None = None) -> None:
        values = (actor.strip().casefold(), action.strip().casefold(),
                  target.strip().casefold(), text.strip().casefold(), decision, since, until)
        if values == (self.actor, self.action, self.target, self.text, self.decision,
                      self.since, self.until):
            return

        def assign() -> None:
            (self.actor, self.action, self.target, self.text, self.decision, self.since,
             self.until) = values

        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10; invalidateRowsFilter before
            self.beginFilterChange()
            assign()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            assign()
            self.invalidateRowsFilter()

    @property
    def active(self) -> bool:
        return any((self.actor, self.action, self.target, self.text, self.decision,
                    self.since, self.until))

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.audit_model
        if source_parent.isValid() or not 0 <= source_row < model.rowCount():
            return False
        entry = model.entry_at(source_row)
        if self.actor and self.actor not in entry.actor.casefold():
            return False
        if self.action and self.action not in entry.action.casefold():
            return False
        if self.target and self.target not in entry.target.casefold():
            return False
        if self.decision and entry.decision != self.decision:
            return False
        if self.since is not None and entry.at < self.since:
            return False
        if self.until is not None and entry.at > self.until:
            return False
        return not self.text or self.text in model.search_text(source_row)

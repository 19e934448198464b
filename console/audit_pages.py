"""The live audit log read a page at a time: what the console's audit browser shows.

A long-running console's log reaches a million records. The browser reads only the
rows a view shows, by key (seq), as `audit verify` reads them (console/audit_stream.py:
raw rows, no ORM objects, the time and JSON parsed here), and searches as one SQL query
that returns seqs only (capped, newest first), so neither the window nor this reader
ever holds the whole log. The same filters as a bundle's review
(`console.audit_bundle_file.SearchFilters`) mean the same here; `matches` is their
meaning for one record, so a record appended while a search is shown joins it when it
would have been found.

A record that cannot be read as a record (a raw write put garbage in a field) is left
out of a page; the browser shows a placeholder for it and verification names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from console.audit_bundle_file import SearchFilters
from console.audit_chain import UnreadableRecord
from console.audit_form import canonical_json
from console.audit_stream import parsed, raw_columns
from console.domain import AuditEntry
from console.storage.db import Database
from console.storage.models import AuditRow

_IN_CHUNK = 500  # under every driver's limit of bound parameters
_table = AuditRow.__table__


@dataclass(frozen=True, slots=True)
class LogBounds:
    """The stored records' first and last seq (0, 0 when there are none)."""

    first_seq: int
    last_seq: int

    @property
    def rows(self) -> int:
        """Rows from the first to the last record: a gap (a deleted record) is a row."""
        return self.last_seq - self.first_seq + 1 if self.last_seq else 0


def _entry(row: Any) -> AuditEntry | None:
    try:
        rec = parsed(tuple(row))
    except UnreadableRecord:
        return None
    at, inputs, outputs = rec["at"], rec["inputs"] or {}, rec["outputs"] or {}
    if not (isinstance(at, datetime) and isinstance(inputs, dict)
            and isinstance(outputs, dict)):
        return None
    return AuditEntry(seq=int(rec["seq"]), at=at, actor=str(rec["actor"]),
                      action=str(rec["action"]), target=str(rec["target"]),
                      reason=str(rec["reason"]), inputs=inputs, outputs=outputs,
                      decision=str(rec["decision"]), prev_hash=str(rec["prev_hash"]),
                      hash=str(rec["hash"]))


def _as_text(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(column, Text)
    return cast(column, Text)


class AuditPageReader:
    """Reads the audit records of one database by seq; each call opens its own session,
    so a search can run on a worker while the window reads a page."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def bounds(self) -> LogBounds:
        with self.db.sessions() as session:
            first, last = session.execute(
                select(func.min(_table.c.seq), func.max(_table.c.seq))).one()
        return LogBounds(int(first or 0), int(last or 0))

    def entries(self, seqs: Sequence[int]) -> dict[int, AuditEntry]:
        """The readable records of these seqs, by seq."""
        found: dict[int, AuditEntry] = {}
        wanted = sorted(set(seqs))
        if not wanted:
            return found
        with self.db.sessions() as session:
            columns = raw_columns(session.get_bind().dialect.name)
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start:start + _IN_CHUNK]
                where = (_table.c.seq.between(chunk[0], chunk[-1])
                         if chunk[-1] - chunk[0] == len(chunk) - 1  # a page: a key range
                         else _table.c.seq.in_(chunk))
                for row in session.execute(select(*columns).where(where)):
                    entry = _entry(row)
                    if entry is not None:
                        found[entry.seq] = entry
        return found

    def span(self, bounds: LogBounds) -> tuple[datetime, datetime] | None:
        """Times of the first and the last record (the time filter's range)."""
        ends = self.entries([bounds.first_seq, bounds.last_seq]) if bounds.last_seq else {}
        first, last = ends.get(bounds.first_seq), ends.get(bounds.last_seq)
        return (first.at, last.at) if first is not None and last is not None else None

    def search(self, filters: SearchFilters, limit: int,
               up_to: int | None = None) -> tuple[list[int], bool]:
        """Seqs of the records matching `filters` (up to seq `up_to`), newest first, at
        most `limit` of them, and whether there were more."""
        c = _table.c
        with self.db.sessions() as session:
            query = select(c.seq)
            for name in ("actor", "action", "target"):
                value = getattr(filters, name).strip().lower()
                if value:
                    query = query.where(func.lower(getattr(c, name))
                                        .contains(value, autoescape=True))
            text = filters.text.strip().lower()
            if text:
                haystack = literal("")
                for part in (c.actor, c.action, c.target, c.decision, c.reason,
                             _as_text(session, c.inputs), _as_text(session, c.outputs),
                             c.hash):
                    haystack = haystack + " " + part
                query = query.where(func.lower(haystack).contains(text, autoescape=True))
            if filters.decision:
                query = query.where(c.decision == filters.decision)
            if filters.since is not None:
                query = query.where(c.at >= filters.since)
            if filters.until is not None:
                query = query.where(c.at <= filters.until)
            if up_to is not None:
                query = query.where(c.seq <= up_to)
            rows = session.execute(query.order_by(c.seq.desc()).limit(int(limit) + 1))
            seqs = [int(r[0]) for r in rows]
        return seqs[:limit], len(seqs) > limit


def matches(entry: AuditEntry, filters: SearchFilters) -> bool:
    """Whether `AuditPageReader.search` would find this record (a live append)."""
    for name in ("actor", "action", "target"):
        value = getattr(filters, name).strip().lower()
        if value and value not in getattr(entry, name).lower():
            return False
    text = filters.text.strip().lower()
    if text:
        haystack = " ".join(("", entry.actor, entry.action, entry.target, entry.decision,
                             entry.reason, canonical_json(dict(entry.inputs)),
                             canonical_json(dict(entry.outputs)), entry.hash))
        if text not in haystack.lower():
            return False
    if filters.decision and entry.decision != filters.decision:
        return False
    if filters.since is not None and entry.at < filters.since:
        return False
    return filters.until is None or entry.at <= filters.until

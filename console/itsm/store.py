"""The built-in ticket store: the default TicketSystem, with its tickets in our database.

Every change to a ticket is one unit of work, like an operation's: the row, its audit
record and the commit go together, then the bus hears `OperationDone`. Opening with
an idempotency key that was used before returns the ticket made then (no second row),
even when two processes race: the key is UNIQUE, and the loser reads the winner's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from console.domain import AuditEntry
from console.events import AuditAppended, OpChanges, OperationDone
from console.itsm.base import TicketError, TicketKind, TicketRef
from console.itsm.http import check_ref, check_severity
from console.storage.models import TicketRow

if TYPE_CHECKING:
    from console.service import WatchfloorService

NAME = "builtin"
PREFIX = {"incident": "INC", "change": "CHG"}
STATES = ("open", "routed", "closed")
ACTOR = "system:tickets"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    number: str
    kind: str
    title: str
    body: str
    service: str
    severity: str
    state: str
    group: str
    notes: tuple[Mapping[str, Any], ...]
    resolution: str
    success: bool | None
    idempotency_key: str
    created_at: datetime
    updated_at: datetime

    def ref(self) -> TicketRef:
        kind: TicketKind = "change" if self.kind == "change" else "incident"
        return TicketRef(NAME, self.number, kind)


def stored_key(key: str) -> str:
    """Keys fit the column; a longer one is kept as its digest (still unique)."""
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class TicketRepo:
    def by_key(self, session: Session, key: str) -> TicketRow | None:
        return session.scalar(select(TicketRow).where(TicketRow.idempotency_key == key))

    def by_number(self, session: Session, number: str) -> TicketRow | None:
        return session.scalar(select(TicketRow).where(TicketRow.number == number))

    def next_seq(self, session: Session, kind: str) -> int:
        top = session.scalar(select(func.max(TicketRow.seq)).where(TicketRow.kind == kind))
        return int(top or 0) + 1

    def all(self, session: Session, limit: int = 500) -> list[Ticket]:
        rows = session.scalars(select(TicketRow).order_by(TicketRow.id.desc()).limit(limit))
        return [to_domain(r) for r in rows][::-1]


def to_domain(row: TicketRow) -> Ticket:
    return Ticket(row.id, row.number, row.kind, row.title, row.body, row.service,
                  row.severity, row.state, row.group,
                  tuple(dict(n) for n in row.notes), row.resolution, row.success,
                  row.idempotency_key, row.created_at, row.updated_at)


class BuiltinTicketStore:
    """Implements TicketSystem on the service's database, audit log, clock and bus."""

    name = NAME

    def __init__(self, service: WatchfloorService, *, actor: str = ACTOR) -> None:
        self._service = service
        self._actor = actor
        self._repo = TicketRepo()

    # --- TicketSystem ---------------------------------------------------------------

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef:
        if kind not in PREFIX:
            raise TicketError(f"{NAME}: unknown ticket kind {kind!r} (incident or change)")
        severity = check_severity(NAME, severity)
        if not title.strip():
            raise TicketError(f"{NAME}: a ticket needs a title")
        if not idempotency_key:
            raise TicketError(f"{NAME}: a ticket needs an idempotency key")
        key = stored_key(idempotency_key)
        for _ in range(5):  # a race for the next number is lost at most a few times
            with self._service.db.sessions() as session:
                existing = self._repo.by_key(session, key)
                if existing is not None:
                    return to_domain(existing).ref()
                now = self._service.clock.now()
                seq = self._repo.next_seq(session, kind)
                row = TicketRow(number=f"{PREFIX[kind]}-{seq:04d}", seq=seq, kind=kind,
                                title=title.strip()[:200], body=body, service=service[:200],
                                severity=severity, state="open", group="", notes=[],
                                resolution="", success=None, idempotency_key=key,
                                created_at=now, updated_at=now)
                try:
                    session.add(row)
                    session.flush()
                    entry = self._audit(session, "ticket.open", row,
                                        inputs={"kind": kind, "title": row.title,
                                                "service": service, "severity": severity,
                                                "idempotency_key": key})
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                ticket = to_domain(row)
            self._announce("ticket.open", entry, ticket)
            return ticket.ref()
        raise TicketError(f"{NAME}: could not open a ticket for key {idempotency_key!r} "
                          "(the database kept refusing a new number)")

    def update(self, ref: TicketRef, note: str) -> None:
        if not note.strip():
            raise TicketError(f"{NAME}: an update needs a note")

        def apply(row: TicketRow, now: datetime) -> dict[str, Any] | None:
            row.notes = [*row.notes, {"at": now.isoformat(), "by": self._actor, "text": note}]
            return {"note": note}

        self._mutate(ref, "ticket.update", apply)

    def route(self, ref: TicketRef, group: str) -> None:
        if not group.strip() or len(group) > 200:
            raise TicketError(f"{NAME}: a group name must be 1-200 characters")

        def apply(row: TicketRow, _now: datetime) -> dict[str, Any] | None:
            if row.state == "closed":
                raise TicketError(f"{NAME}: {row.number} is closed; it cannot be routed")
            if row.group == group and row.state == "routed":
                return None  # already there: nothing changes, nothing to audit
            before = row.group
            row.group, row.state = group, "routed"
            return {"group": group, "before": before}

        self._mutate(ref, "ticket.route", apply)

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        def apply(row: TicketRow, _now: datetime) -> dict[str, Any] | None:
            if row.state == "closed":
                return None  # a repeated close (a retry) changes nothing
            row.state, row.resolution, row.success = "closed", resolution, success
            return {"resolution": resolution, "success": success}

        self._mutate(ref, "ticket.close", apply)

    # --- reading --------------------------------------------------------------------

    def tickets(self, limit: int = 500) -> list[Ticket]:
        with self._service.db.sessions() as session:
            return self._repo.all(session, limit)

    def ticket(self, number: str) -> Ticket | None:
        with self._service.db.sessions() as session:
            row = self._repo.by_number(session, number)
            return to_domain(row) if row is not None else None

    # --- one unit of work per change ------------------------------------------------

    def _mutate(self, ref: TicketRef, action: str,
                apply: Callable[[TicketRow, datetime], dict[str, Any] | None]) -> None:
        check_ref(NAME, ref)
        with self._service.db.sessions() as session:
            row = self._repo.by_number(session, ref.id)
            if row is None:
                raise TicketError(f"{NAME}: no ticket {ref.id!r}")
            now = self._service.clock.now()
            outputs = apply(row, now)
            if outputs is None:
                return
            row.updated_at = now
            entry = self._audit(session, action, row, outputs=outputs)
            session.commit()
            ticket = to_domain(row)
        self._announce(action, entry, ticket)

    def _audit(self, session: Session, action: str, row: TicketRow, *,
               inputs: Mapping[str, Any] | None = None,
               outputs: Mapping[str, Any] | None = None) -> AuditEntry:
        return self._service.audit.append(
            session, actor=self._actor, action=action, target=f"ticket:{row.number}",
            inputs=inputs, outputs={"state": row.state, **(outputs or {})},
            at=self._service.clock.now())

    def _announce(self, action: str, entry: AuditEntry, ticket: Ticket) -> None:
        bus = self._service.bus
        bus.publish(AuditAppended(entry))
        bus.publish(OperationDone(action, OpChanges(tickets=True,
                                                    ids=(f"ticket:{ticket.number}",)),
                                  self._actor, {"ticket": ticket.number,
                                                "state": ticket.state}))

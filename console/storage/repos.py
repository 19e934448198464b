"""Repositories: the only code that turns ORM rows into domain dataclasses and back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from console.domain import (
    AlertStatus,
    ChangeEvent,
    IncidentInfo,
    IncidentUpdate,
    Severity,
    Signal,
    SignalKind,
    TimelineNote,
)
from console.storage.models import (
    ChangeRow,
    DeadLetterRow,
    InboundPayloadRow,
    IncidentRow,
    KnowledgeRow,
    LogRow,
    SettingRow,
    SignalRow,
    TimelineEventRow,
    UserRow,
)

ROLES = ("viewer", "operator", "approver", "admin")


def role_rank(role: str) -> int:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    return ROLES.index(role)


class SignalRepo:
    def add_many(self, session: Session, signals: Iterable[Signal]) -> tuple[int, int] | None:
        """Insert the signals; an id range that holds all of theirs (and maybe others'
        committed meanwhile), or None when there were none. Ids are handed out in
        increasing order, so this transaction's are above the largest id it could see
        before and at most the largest it sees after. Two index lookups: cheaper than
        RETURNING every id."""
        rows = self._rows(signals)
        if not rows:
            return None
        before = session.scalar(select(func.max(SignalRow.id))) or 0
        # Into the table, not the ORM entity: the ORM's bulk path costs about as much
        # again per row, on the receiver's path from a delivery to its answer.
        session.execute(insert(cast(Table, SignalRow.__table__)), rows)
        after = session.scalar(select(func.max(SignalRow.id))) or 0
        return before + 1, after

    @staticmethod
    def _rows(signals: Iterable[Signal]) -> list[dict[str, Any]]:
        return [
            {
                "source": s.source, "kind": s.kind.value, "name": s.name, "service": s.service,
                "severity": s.severity.value, "status": s.status.value,
                "fingerprint": s.fingerprint, "at": s.at, "labels": dict(s.labels),
                "annotations": dict(s.annotations),
            }
            for s in signals
        ]

    def between(self, session: Session, low: int, high: int,
                limit: int) -> list[tuple[int, Signal]]:
        """The newest `limit` signals with ids from `low` to `high`, oldest first, with
        their ids."""
        rows = session.scalars(select(SignalRow).where(SignalRow.id.between(low, high))
                               .order_by(SignalRow.id.desc()).limit(limit))
        return [(r.id, self._to_domain(r)) for r in rows][::-1]

    def recent(self, session: Session, limit: int = 500) -> list[Signal]:
        rows = session.scalars(select(SignalRow).order_by(SignalRow.id.desc()).limit(limit))
        return [self._to_domain(r) for r in rows][::-1]

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(SignalRow)) or 0

    @staticmethod
    def _to_domain(row: SignalRow) -> Signal:
        return Signal(source=row.source, kind=SignalKind(row.kind), name=row.name,
                      service=row.service, severity=Severity(row.severity),
                      status=AlertStatus(row.status), at=row.at, labels=row.labels,
                      annotations=row.annotations, fingerprint=row.fingerprint)


class ChangeRepo:
    def add_many(self, session: Session, changes: Iterable[ChangeEvent]) -> int:
        n = 0
        for c in changes:
            if session.get(ChangeRow, c.id) is None:  # duplicate deliveries are idempotent
                session.add(ChangeRow(id=c.id, service=c.service, kind=c.kind,
                                      description=c.description, author=c.author,
                                      version_from=c.version_from, version_to=c.version_to,
                                      at=c.at))
                n += 1
        return n

    def recent(self, session: Session, limit: int = 200) -> list[ChangeEvent]:
        rows = session.scalars(select(ChangeRow).order_by(ChangeRow.at.desc()).limit(limit))
        return [ChangeEvent(service=r.service, kind=r.kind, description=r.description, at=r.at,
                            author=r.author, version_from=r.version_from,
                            version_to=r.version_to, id=r.id) for r in rows][::-1]


class SettingsRepo:
    DEFAULTS: ClassVar[dict[str, Any]] = {"autonomy.ceiling": 2, "autonomy.kill_switch": False}

    def get(self, session: Session, key: str) -> Any:
        row = session.get(SettingRow, key)
        return row.value if row is not None else self.DEFAULTS.get(key)

    def set(self, session: Session, key: str, value: Any) -> None:
        row = session.get(SettingRow, key)
        if row is None:
            session.add(SettingRow(key=key, value=value))
        else:
            row.value = value


class UserRepo:
    def role_of(self, session: Session, name: str) -> str | None:
        row = session.get(UserRow, name)
        return row.role if row is not None else None

    def add(self, session: Session, name: str, role: str, display_name: str = "") -> None:
        role_rank(role)
        if not name or len(name) > 200 or not name.isprintable():
            raise ValueError(f"user name {name!r} must be 1-200 printable characters")
        row = session.get(UserRow, name)
        if row is None:
            session.add(UserRow(name=name, display_name=display_name or name, role=role,
                                created_at=datetime.now(UTC)))
        else:
            row.role = role

    def all(self, session: Session) -> Sequence[tuple[str, str]]:
        return [(r.name, r.role) for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(UserRow)) or 0


class IncidentRepo:
    def save(self, session: Session, update: IncidentUpdate) -> int:
        """Insert or update one incident and append its timeline notes; return its id."""
        row = session.get(IncidentRow, update.id) if update.id is not None else None
        if row is None:
            row = IncidentRow(title=update.title, severity=update.severity.value,
                              state=update.state, services=list(update.services),
                              opened_at=update.opened_at, resolved_at=update.resolved_at)
            session.add(row)
            session.flush()
        else:
            row.title, row.severity, row.state = update.title, update.severity.value, update.state
            row.services, row.resolved_at = list(update.services), update.resolved_at
        if update.notes:
            session.execute(insert(TimelineEventRow), [
                {"incident_id": row.id, "at": n.at, "kind": n.kind, "summary": n.summary,
                 "ref": n.ref, "data": dict(n.data)} for n in update.notes])
        return row.id

    def save_many(self, session: Session, updates: Sequence[IncidentUpdate]) -> list[int]:
        """`save` for a batch, in order: the new incidents in one or two inserts
        (`_insert_new`), every note in one more (a delivery of unrelated alerts opens
        thousands, and a flush per incident was most of the time it took)."""
        fresh = [{"title": u.title, "severity": u.severity.value, "state": u.state,
                  "services": list(u.services), "opened_at": u.opened_at,
                  "resolved_at": u.resolved_at} for u in updates if u.id is None]
        given = iter(self._insert_new(session, fresh))
        ids = [next(given) if u.id is None else self._update(session, u) for u in updates]
        notes = [{"incident_id": incident_id, "at": n.at, "kind": n.kind, "summary": n.summary,
                  "ref": n.ref, "data": dict(n.data)}
                 for incident_id, u in zip(ids, updates, strict=True) for n in u.notes]
        if notes:  # into the table, as the signals go (SignalRepo.add_many)
            session.execute(insert(cast(Table, TimelineEventRow.__table__)), notes)
        return ids

    @staticmethod
    def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[int]:
        """Insert incident rows; their ids, in order. SQLite cannot say which id went to
        which row of one multi-row insert, so an ordered RETURNING becomes one INSERT
        per row there (most of the time a delivery of unrelated alerts took to store).
        Instead the first row is inserted alone: from then on this transaction holds
        SQLite's write lock, so nothing else inserts before it commits and the ids
        SQLite would give the others are the next ones up, which they get explicitly."""
        if not rows:
            return []
        if session.get_bind().dialect.name != "sqlite":
            return list(session.scalars(
                insert(IncidentRow).returning(IncidentRow.id, sort_by_parameter_order=True),
                rows))
        table = cast(Table, IncidentRow.__table__)
        first = int(session.execute(insert(table).returning(table.c.id), rows[0]).scalar_one())
        ids = list(range(first, first + len(rows)))
        if len(rows) > 1:
            session.execute(insert(table), [{**row, "id": ident}
                                            for row, ident in zip(rows[1:], ids[1:], strict=True)])
        return ids

    def _update(self, session: Session, update: IncidentUpdate) -> int:
        row = session.get(IncidentRow, update.id)
        if row is None:  # gone meanwhile: stored again, as `save` does
            return self.save(session, replace(update, notes=()))
        row.title, row.severity, row.state = update.title, update.severity.value, update.state
        row.services, row.resolved_at = list(update.services), update.resolved_at
        return row.id

    def all(self, session: Session, limit: int = 500, *,
            ids: Iterable[int] | None = None) -> list[IncidentInfo]:
        query = select(IncidentRow)
        if ids is not None:
            query = query.where(IncidentRow.id.in_(list(ids)))
        rows = session.scalars(query.order_by(IncidentRow.id.desc()).limit(limit))
        return [IncidentInfo(r.id, r.title, Severity(r.severity), r.state, tuple(r.services),
                             r.opened_at, r.resolved_at) for r in rows]

    def timeline(self, session: Session, incident_id: int) -> list[TimelineNote]:
        """The whole timeline of one incident, oldest first."""
        return [note for _id, note in self.timeline_after(session, incident_id)]

    def timeline_after(self, session: Session, incident_id: int,
                       after_id: int = 0) -> list[tuple[int, TimelineNote]]:
        """The notes of one incident stored after note `after_id` (0: all of them), each
        with its id, oldest first: a reader that has seen up to one id asks only for what
        is new instead of reading the whole timeline again."""
        t = TimelineEventRow
        # Columns, not entities: a long timeline would otherwise fill the session's
        # identity map with objects nothing writes back.
        query = select(t.id, t.at, t.kind, t.summary, t.ref, t.data) \
            .where(t.incident_id == incident_id)
        if after_id:
            query = query.where(t.id > after_id)
        rows = session.execute(query.order_by(t.id))
        return [(note_id, TimelineNote(at, kind, summary, ref, data))
                for note_id, at, kind, summary, ref, data in rows]


class InboundRepo:
    def exists(self, session: Session, digest: str) -> bool:
        return session.scalar(select(InboundPayloadRow.id)
                              .where(InboundPayloadRow.digest == digest)) is not None

    def add(self, session: Session, source: str, digest: str, body: Any, received_at: datetime,
            signals: int, changes: int) -> int:
        row = InboundPayloadRow(source=source, digest=digest, received_at=received_at,
                                body=body if isinstance(body, dict) else {"items": body},
                                signals=signals, changes=changes)
        session.add(row)
        session.flush()
        return row.id

    def count(self, session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(InboundPayloadRow)) or 0)

    def bodies(self, session: Session, source: str, limit: int) -> list[Any]:
        rows = session.scalars(select(InboundPayloadRow).where(InboundPayloadRow.source == source)
                               .order_by(InboundPayloadRow.id).limit(limit))
        return [row.body for row in rows]

    def dead_letter(self, session: Session, source: str, reason: str, body: str,
                    size: int, received_at: datetime) -> None:
        session.add(DeadLetterRow(source=source, reason=reason, body=body, size=size,
                                  received_at=received_at))

    def dead_letters(self, session: Session, limit: int = 100) -> list[tuple[str, str, str]]:
        rows = session.scalars(select(DeadLetterRow).order_by(DeadLetterRow.id.desc())
                               .limit(limit))
        return [(r.source, r.reason, r.body) for r in rows]


class LogRepo:
    def add_many(self, session: Session, logs: Iterable[Any]) -> int:
        rows = [{"service": r.service, "level": r.level, "message": r.message, "at": r.at,
                 "instance": r.instance, "template": r.template, "template_id": r.template_id}
                for r in logs]
        if rows:
            session.execute(insert(LogRow), rows)
        return len(rows)

    def templates(self, session: Session, limit: int = 100) -> list[tuple[str, int]]:
        """The most frequent templates with their line counts."""
        rows = session.execute(select(LogRow.template, func.count())
                               .group_by(LogRow.template)
                               .order_by(func.count().desc(), LogRow.template).limit(limit))
        return [(template, int(count)) for template, count in rows]


class KnowledgeRepo:
    def add_new(self, session: Session, docs: Iterable[Any], at: datetime) -> int:
        """Insert the documents not already stored (by digest); return how many were new."""
        docs = list(docs)
        have = set(session.scalars(select(KnowledgeRow.digest)
                                   .where(KnowledgeRow.digest.in_([d.digest for d in docs]))))
        new = [d for d in docs if d.digest not in have]
        for d in new:
            have.add(d.digest)
            session.add(KnowledgeRow(digest=d.digest, title=d.title[:200], alert=d.alert[:200],
                                     source=d.source, sections=dict(d.sections),
                                     extra=dict(d.extra), imported_at=at))
        return len(new)

    def all(self, session: Session, limit: int = 500) -> list[tuple[str, str, list[str]]]:
        rows = session.scalars(select(KnowledgeRow).order_by(KnowledgeRow.id).limit(limit))
        return [(r.title, r.source, sorted(r.sections)) for r in rows]

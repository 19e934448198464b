"""Read-only queries over one time window: what the investigator and the impact tracer
read from the store (alerts, changes, log templates), as domain types or plain tuples.

Every method opens its own short session and never writes, so an agent can call it from
a worker thread while the sources keep storing. `exists` answers whether an evidence
link (`signal:`, `change:`, `log:`) still points at a stored record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, ScalarSelect, Select, func, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from console.domain import AlertStatus, ChangeEvent, Severity, Signal, SignalKind
from console.storage.models import ChangeRow, LogRow, SignalRow

_LEVEL_RANK = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}
MAX_SIGNALS = 20_000  # a storm's window; the newest are kept beyond that


class HasSessions(Protocol):
    """A `console.storage.db.Database`, or anything else with its session factory."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class TemplateStat(NamedTuple):
    """One log template of one service in a window: how often, how bad, since when.

    `first_seen` is the earliest line of that template on that service since the
    history horizon the caller gave (so a template older than the window is not new)."""

    service: str
    template_id: int
    template: str
    level: str  # the worst level among its lines
    lines: int
    first_at: datetime  # first line inside the window
    last_at: datetime
    first_seen: datetime
    examples: tuple[str, ...]  # a few of its lines, as written


class EvidenceRepo:
    """Signals, changes and log templates of a time window, for the agents."""

    def __init__(self, db: HasSessions) -> None:
        self._db = db

    def signals(self, start: datetime, end: datetime, services: Iterable[str] | None = None,
                *, alerts_only: bool = True, limit: int = MAX_SIGNALS) -> list[Signal]:
        """Signals stored with `at` in [start, end], oldest first (the newest `limit`)."""
        query = select(*_SIGNAL_COLUMNS).where(SignalRow.at >= start, SignalRow.at <= end,
                                               _among(SignalRow.service, services))
        if alerts_only:
            query = query.where(SignalRow.kind == SignalKind.ALERT.value)
        return self._signals(query, limit)

    def firing(self, at: datetime, services: Iterable[str] | None = None, *,
               since: datetime | None = None, limit: int = MAX_SIGNALS) -> list[Signal]:
        """The alerts firing at `at`: the newest state change of each series up to `at`
        (and since `since`, if given) is a firing one. Oldest first."""
        newest = _newest_per_series(SignalRow.at <= at, _among(SignalRow.service, services),
                                    SignalRow.at >= since if since is not None else true())
        return self._signals(select(*_SIGNAL_COLUMNS).where(
            SignalRow.id.in_(newest), SignalRow.status == AlertStatus.FIRING.value), limit)

    def fired(self, start: datetime, end: datetime, services: Iterable[str] | None = None,
              *, limit: int = MAX_SIGNALS) -> list[Signal]:
        """Every alert series that fired in [start, end] (resolved since or not), once: its
        newest firing notification in the window. Oldest first."""
        newest = _newest_per_series(SignalRow.at >= start, SignalRow.at <= end,
                                    SignalRow.status == AlertStatus.FIRING.value,
                                    _among(SignalRow.service, services))
        return self._signals(select(*_SIGNAL_COLUMNS).where(SignalRow.id.in_(newest)), limit)

    def _signals(self, query: Select[*tuple[Any, ...]], limit: int) -> list[Signal]:
        with self._db.sessions() as session:
            rows = session.execute(query.order_by(SignalRow.at.desc(), SignalRow.id.desc())
                                   .limit(limit))
            return [Signal(source=r.source, kind=SignalKind(r.kind), name=r.name,
                           service=r.service, severity=Severity(r.severity),
                           status=AlertStatus(r.status), at=r.at, labels=r.labels or {},
                           annotations=r.annotations or {}, fingerprint=r.fingerprint)
                    for r in rows][::-1]

    def changes(self, start: datetime, end: datetime,
                services: Iterable[str] | None = None) -> list[ChangeEvent]:
        """Change events with `at` in [start, end], oldest first."""
        query = select(ChangeRow).where(ChangeRow.at >= start, ChangeRow.at <= end,
                                        _among(ChangeRow.service, services))
        with self._db.sessions() as session:
            rows = session.scalars(query.order_by(ChangeRow.at, ChangeRow.id))
            return [ChangeEvent(service=r.service, kind=r.kind, description=r.description,
                                at=r.at, author=r.author, version_from=r.version_from,
                                version_to=r.version_to, id=r.id) for r in rows]

    def log_templates(self, start: datetime, end: datetime,
                      services: Iterable[str] | None = None, *,
                      history_from: datetime | None = None) -> list[TemplateStat]:
        """Per (service, template) with lines in [start, end]: counts, worst level, the
        newest form of the template, two example lines, and when it was first seen since
        `history_from` (default: `start`). Oldest first."""
        horizon = start if history_from is None else min(history_from, start)
        in_window = (LogRow.at >= start, LogRow.at <= end, _among(LogRow.service, services))
        window = (select(LogRow.service, LogRow.template_id, LogRow.level, func.count(),
                         func.min(LogRow.at), func.max(LogRow.at), func.min(LogRow.message),
                         func.max(LogRow.message))
                  .where(*in_window)
                  .group_by(LogRow.service, LogRow.template_id, LogRow.level))
        newest = select(func.max(LogRow.id)).where(*in_window).group_by(
            LogRow.service, LogRow.template_id)
        merged: dict[tuple[str, int], _Acc] = {}
        with self._db.sessions() as session:
            for service, tid, level, count, first, last, low, high in session.execute(window):
                key = (service, int(tid))
                acc = merged.get(key)
                if acc is None:
                    merged[key] = _Acc(level, int(count), first, last, {low, high})
                else:
                    acc.add(level, int(count), first, last, {low, high})
            templates = {(service, int(tid)): template for service, tid, template in
                         session.execute(select(LogRow.service, LogRow.template_id,
                                                LogRow.template)
                                         .where(LogRow.id.in_(newest.scalar_subquery())))}
            earlier: dict[tuple[str, int], datetime] = {}
            if merged and horizon < start:
                ids = sorted({tid for _, tid in merged})
                before = (select(LogRow.service, LogRow.template_id, func.min(LogRow.at))
                          .where(LogRow.at >= horizon, LogRow.at < start,
                                 LogRow.template_id.in_(ids),
                                 _among(LogRow.service, services))
                          .group_by(LogRow.service, LogRow.template_id))
                for service, tid, first in session.execute(before):
                    earlier[(service, int(tid))] = first
        out = [TemplateStat(service, tid, templates.get((service, tid), ""), a.level,
                            a.count, a.first, a.last, earlier.get((service, tid), a.first),
                            tuple(sorted(a.examples)[:4]))
               for (service, tid), a in merged.items()]
        out.sort(key=lambda t: (t.first_seen, t.service, t.template_id))
        return out

    def exists(self, ref: str) -> bool:
        """Whether an evidence link names a stored signal, change or log template; links
        of other kinds (`metric:`, `topology:`...) are not records and answer True."""
        kind, _, rest = ref.partition(":")
        with self._db.sessions() as session:
            if kind == "signal":
                return session.scalar(select(SignalRow.id)
                                      .where(SignalRow.fingerprint == rest).limit(1)) is not None
            if kind == "change":
                return session.get(ChangeRow, rest) is not None
            if kind == "log":
                service, _, tid = rest.rpartition("/")
                if not tid.isdigit():
                    return False
                return session.scalar(select(LogRow.id).where(
                    LogRow.service == service, LogRow.template_id == int(tid))
                    .limit(1)) is not None
        return True


@dataclass
class _Acc:
    """One template's lines of one service, summed over their levels."""

    level: str
    count: int
    first: datetime
    last: datetime
    examples: set[str]

    def add(self, level: str, count: int, first: datetime, last: datetime,
            examples: set[str]) -> None:
        if _LEVEL_RANK.get(level, 0) > _LEVEL_RANK.get(self.level, 0):
            self.level = level
        self.count += count
        self.first, self.last = min(self.first, first), max(self.last, last)
        self.examples |= examples


_SIGNAL_COLUMNS = (SignalRow.source, SignalRow.kind, SignalRow.name, SignalRow.service,
                   SignalRow.severity, SignalRow.status, SignalRow.at, SignalRow.labels,
                   SignalRow.annotations, SignalRow.fingerprint)


def _newest_per_series(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
    """The id of the newest alert notification of each series that meets the conditions."""
    return (select(func.max(SignalRow.id))
            .where(SignalRow.kind == SignalKind.ALERT.value, *conditions)
            .group_by(SignalRow.fingerprint).scalar_subquery())


def _among(column: InstrumentedAttribute[str],
           services: Iterable[str] | None) -> ColumnElement[bool]:
    """`column IN services`, or no condition at all when `services` is None."""
    return true() if services is None else column.in_(sorted(set(services)))

"""Read-only queries for the retriever and the scribe, and the scribe's reports.

The retriever answers questions over everything the console stored; the queries here
are the concrete ones it runs (and names in its answers). They return domain types or
small frozen records of this module, never ORM rows. The only writes are the scribe's
documents (stakeholder update drafts and post-incident reports) in `reports`.

`resolve()` tells whether a citation (`change:chg-…`, `audit:12`…) names a stored record,
so a link in an answer can be checked before anyone follows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.domain import (
    AlertStatus,
    AuditEntry,
    ChangeEvent,
    Evidence,
    Execution,
    Hypothesis,
    IncidentInfo,
    Recommendation,
    Severity,
    Signal,
    SignalKind,
)
from console.storage.models import (
    AuditRow,
    ChangeRow,
    ExecutionRow,
    HypothesisRow,
    IncidentRow,
    KnowledgeRow,
    LogRow,
    RecommendationRow,
    ReportRow,
    SignalRow,
    TicketRow,
    TimelineEventRow,
)
from console.storage.repos_exec import RecommendationRepo, to_execution

REPORT_KINDS = ("stakeholder_update", "postmortem")


@dataclass(frozen=True, slots=True)
class LogTemplateHit:
    """Lines of one drain3 template on one service in a window."""

    service: str
    template_id: int
    template: str
    level: str
    count: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class KnowledgeEntry:
    id: int
    title: str
    alert: str
    source: str
    sections: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    incident_id: int
    kind: str  # stakeholder_update | postmortem
    title: str
    markdown: str
    html: str
    data: Mapping[str, Any]
    created_at: datetime


def _signal(row: SignalRow) -> Signal:
    return Signal(source=row.source, kind=SignalKind(row.kind), name=row.name,
                  service=row.service, severity=Severity(row.severity),
                  status=AlertStatus(row.status), at=row.at, labels=row.labels,
                  annotations=row.annotations, fingerprint=row.fingerprint)


def _change(r: ChangeRow) -> ChangeEvent:
    return ChangeEvent(service=r.service, kind=r.kind, description=r.description, at=r.at,
                       author=r.author, version_from=r.version_from,
                       version_to=r.version_to, id=r.id)


def _incident(r: IncidentRow) -> IncidentInfo:
    return IncidentInfo(r.id, r.title, Severity(r.severity), r.state, tuple(r.services),
                        r.opened_at, r.resolved_at)


def _audit(r: AuditRow) -> AuditEntry:
    return AuditEntry(seq=r.seq, at=r.at, actor=r.actor, action=r.action, target=r.target,
                      reason=r.reason, inputs=r.inputs, outputs=r.outputs,
                      decision=r.decision, prev_hash=r.prev_hash, hash=r.hash)


def _report(r: ReportRow) -> Report:
    return Report(r.id, r.incident_id, r.kind, r.title, r.markdown, r.html, dict(r.data),
                  r.created_at)


class RetrievalRepo:
    # --- signals ----------------------------------------------------------------------

    def signals_between(self, session: Session, start: datetime, end: datetime, *,
                        services: Sequence[str] | None = None,
                        limit: int = 2000) -> list[Signal]:
        """Signal rows (state changes) in [start, end], oldest first."""
        query = select(SignalRow).where(SignalRow.at >= start, SignalRow.at <= end)
        if services:
            query = query.where(SignalRow.service.in_(tuple(services)))
        rows = session.scalars(query.order_by(SignalRow.id.desc()).limit(limit))
        return [_signal(r) for r in rows][::-1]

    def signals_after(self, session: Session, start: datetime, end: datetime,
                      after_id: int, *, services: Sequence[str] | None = None,
                      limit: int = 2000) -> list[tuple[int, Signal]]:
        """(id, signal) of the signal rows stored after row `after_id` with `at` in
        [start, end], oldest first: a reader that holds the earlier ones asks only for
        what is new (at most `limit`; the next read goes on from the last)."""
        query = select(SignalRow).where(SignalRow.id > after_id, SignalRow.at >= start,
                                        SignalRow.at <= end)
        if services:
            query = query.where(SignalRow.service.in_(tuple(services)))
        rows = session.scalars(query.order_by(SignalRow.id).limit(limit))
        return [(r.id, _signal(r)) for r in rows]

    def last_signal_id(self, session: Session) -> int:
        return int(session.scalar(select(func.max(SignalRow.id))) or 0)

    def latest_states(self, session: Session, until: datetime, *,
                      services: Sequence[str] | None = None,
                      limit: int = 5000) -> list[Signal]:
        """The newest state of every alert series seen by `until` (firing or resolved)."""
        newest = select(func.max(SignalRow.id)).where(SignalRow.at <= until)
        if services:
            newest = newest.where(SignalRow.service.in_(tuple(services)))
        newest = newest.group_by(SignalRow.fingerprint)
        rows = session.scalars(select(SignalRow).where(SignalRow.id.in_(newest))
                               .order_by(SignalRow.at.desc()).limit(limit))
        return [_signal(r) for r in rows]

    # --- changes and logs ---------------------------------------------------------------

    def changes_between(self, session: Session, start: datetime, end: datetime, *,
                        services: Sequence[str] | None = None,
                        limit: int = 200) -> list[ChangeEvent]:
        """Changes in [start, end], newest first."""
        query = select(ChangeRow).where(ChangeRow.at >= start, ChangeRow.at <= end)
        if services:
            query = query.where(ChangeRow.service.in_(tuple(services)))
        return [_change(r) for r in session.scalars(query.order_by(ChangeRow.at.desc())
                                                    .limit(limit))]

    def change(self, session: Session, change_id: str) -> ChangeEvent | None:
        row = session.get(ChangeRow, change_id)
        return None if row is None else _change(row)

    def log_templates(self, session: Session, start: datetime, end: datetime, *,
                      services: Sequence[str] | None = None,
                      levels: Sequence[str] = ("ERROR",), limit: int = 20) -> list[LogTemplateHit]:
        """Templates of the lines at these levels in [start, end], most frequent first."""
        count = func.count(LogRow.id)
        query = (select(LogRow.service, LogRow.template_id, LogRow.template, LogRow.level,
                        count, func.min(LogRow.at), func.max(LogRow.at))
                 .where(LogRow.at >= start, LogRow.at <= end, LogRow.level.in_(tuple(levels)))
                 .group_by(LogRow.service, LogRow.template_id, LogRow.template, LogRow.level)
                 .order_by(count.desc(), LogRow.service, LogRow.template_id).limit(limit))
        if services:
            query = query.where(LogRow.service.in_(tuple(services)))
        return [LogTemplateHit(s, int(tid), t, lvl, int(n), first, last)
                for s, tid, t, lvl, n, first, last in session.execute(query)]

    def known_services(self, session: Session) -> list[str]:
        """Every service name any stored record mentions."""
        names: set[str] = set()
        for column in (SignalRow.service, ChangeRow.service, LogRow.service):
            names.update(session.scalars(select(column).distinct()))
        for services in session.scalars(select(IncidentRow.services)):
            names.update(services or ())
        return sorted(n for n in names if n)

    # --- incidents ------------------------------------------------------------------------

    def incident(self, session: Session, incident_id: int) -> IncidentInfo | None:
        row = session.get(IncidentRow, incident_id)
        return None if row is None else _incident(row)

    def incidents(self, session: Session, states: Sequence[str] | None = None,
                  limit: int = 500) -> list[IncidentInfo]:
        """Newest first."""
        query = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(limit)
        if states is not None:
            query = query.where(IncidentRow.state.in_(tuple(states)))
        return [_incident(r) for r in session.scalars(query)]

    def incident_alert_names(self, session: Session,
                             incident_ids: Iterable[int]) -> dict[int, set[str]]:
        """Alert names per incident, through the timeline's links to signals."""
        ids = tuple(incident_ids)
        out: dict[int, set[str]] = {i: set() for i in ids}
        if not ids:
            return out
        rows = session.execute(select(TimelineEventRow.incident_id, SignalRow.name)
                               .join(SignalRow, SignalRow.fingerprint == TimelineEventRow.ref)
                               .where(TimelineEventRow.incident_id.in_(ids)).distinct())
        for incident_id, name in rows:
            out[int(incident_id)].add(str(name))
        return out

    def hypotheses(self, session: Session, incident_id: int) -> list[Hypothesis]:
        """The live (or pinned) ranking of an incident's causes, best first."""
        rows = session.scalars(select(HypothesisRow)
                               .where(HypothesisRow.incident_id == incident_id,
                                      HypothesisRow.state.in_(("live", "pinned")))
                               .order_by(HypothesisRow.rank))
        return [Hypothesis(r.service, r.fault_class, r.confidence,
                           tuple(Evidence(str(e.get("kind", "")), str(e.get("summary", "")),
                                          str(e.get("ref", "")), float(e.get("weight", 0.0)))
                                 for e in r.evidence),
                           r.score, r.signals) for r in rows]

    # --- recommendations, executions, approvals, audit -------------------------------------

    def recommendations(self, session: Session, now: datetime, *,
                        incident_id: int | None = None,
                        states: Sequence[str] | None = None,
                        limit: int = 200) -> list[Recommendation]:
        """Newest first."""
        query = select(RecommendationRow.id).order_by(RecommendationRow.id.desc()).limit(limit)
        if incident_id is not None:
            query = query.where(RecommendationRow.incident_id == incident_id)
        if states is not None:
            query = query.where(RecommendationRow.state.in_(tuple(states)))
        repo = RecommendationRepo()
        found = (repo.get(session, rec_id, now) for rec_id in session.scalars(query))
        return [r for r in found if r is not None]

    def recommendation(self, session: Session, rec_id: int,
                       now: datetime) -> Recommendation | None:
        return RecommendationRepo().get(session, rec_id, now)

    def executions(self, session: Session, *, incident_id: int | None = None,
                   recommendation_id: int | None = None,
                   states: Sequence[str] | None = None, limit: int = 200) -> list[Execution]:
        """Newest first; by incident through the recommendation that started each run."""
        query = select(ExecutionRow).order_by(ExecutionRow.id.desc()).limit(limit)
        if incident_id is not None:
            query = query.join(RecommendationRow,
                               RecommendationRow.id == ExecutionRow.recommendation_id) \
                .where(RecommendationRow.incident_id == incident_id)
        if recommendation_id is not None:
            query = query.where(ExecutionRow.recommendation_id == recommendation_id)
        if states is not None:
            query = query.where(ExecutionRow.state.in_(tuple(states)))
        return [to_execution(r) for r in session.scalars(query)]

    def execution(self, session: Session, exec_id: int) -> Execution | None:
        row = session.get(ExecutionRow, exec_id)
        return None if row is None else to_execution(row)

    def audit_for(self, session: Session, targets: Iterable[str],
                  limit: int = 200) -> list[AuditEntry]:
        """Audit records about any of the targets, in chain order."""
        wanted = tuple(set(targets))
        if not wanted:
            return []
        rows = session.scalars(select(AuditRow).where(AuditRow.target.in_(wanted))
                               .order_by(AuditRow.seq).limit(limit))
        return [_audit(r) for r in rows]

    # --- knowledge -------------------------------------------------------------------------

    def knowledge(self, session: Session, limit: int = 1000) -> list[KnowledgeEntry]:
        rows = session.scalars(select(KnowledgeRow).order_by(KnowledgeRow.id).limit(limit))
        return [KnowledgeEntry(r.id, r.title, r.alert, r.source, dict(r.sections),
                               dict(r.extra)) for r in rows]

    # --- reports (the scribe's documents) --------------------------------------------------

    def add_report(self, session: Session, *, incident_id: int, kind: str, title: str,
                   markdown: str, html: str, data: Mapping[str, Any], at: datetime) -> int:
        if kind not in REPORT_KINDS:
            raise ValueError(f"unknown report kind {kind!r} (known: {', '.join(REPORT_KINDS)})")
        row = ReportRow(incident_id=incident_id, kind=kind, title=title[:200],
                        markdown=markdown, html=html, data=dict(data), created_at=at)
        session.add(row)
        session.flush()
        return row.id

    def reports(self, session: Session, *, kind: str | None = None,
                incident_id: int | None = None, limit: int = 200) -> list[Report]:
        """Newest first."""
        query = select(ReportRow).order_by(ReportRow.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(ReportRow.kind == kind)
        if incident_id is not None:
            query = query.where(ReportRow.incident_id == incident_id)
        return [_report(r) for r in session.scalars(query)]

    def report(self, session: Session, report_id: int) -> Report | None:
        row = session.get(ReportRow, report_id)
        return None if row is None else _report(row)

    # --- citations -------------------------------------------------------------------------

    def resolve(self, session: Session, ref: str) -> bool | None:
        """Whether a citation names a stored record; None for kinds that live elsewhere
        (`runbook:` in the library, `metric:` in the metrics source)."""
        kind, _, rest = ref.partition(":")
        if not rest:
            return False
        if kind in ("runbook", "metric"):
            return None
        if kind == "signal":
            return session.scalar(select(SignalRow.id)
                                  .where(SignalRow.fingerprint == rest).limit(1)) is not None
        if kind == "change":
            return session.get(ChangeRow, rest) is not None
        if kind == "ticket":
            return session.scalar(select(TicketRow.id)
                                  .where(TicketRow.number == rest)) is not None
        if kind == "log":
            service, _, template = rest.rpartition("/")
            if not service or not template.isdigit():
                return False
            return session.scalar(select(LogRow.id).where(
                LogRow.service == service, LogRow.template_id == int(template)).limit(1)) \
                is not None
        tables: dict[str, Any] = {"incident": IncidentRow, "execution": ExecutionRow,
                                  "recommendation": RecommendationRow,
                                  "knowledge": KnowledgeRow, "audit": AuditRow,
                                  "report": ReportRow}
        if kind not in tables or not rest.isdigit():
            return False
        return session.get(tables[kind], int(rest)) is not None

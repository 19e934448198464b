"""Read-only queries the recommender and the learner derive their memory from.

There is no table of its own: what a runbook achieved for a fault class is derived
from the executions, the recommendations they ran, and the audit record in which the
recommender said which diagnosis a recommendation was for (`DIAGNOSIS_ACTION`); the
investigator's hypotheses table is the fallback for recommendations made without one.
An incident's alert names come from its timeline (each grouping note refers to the
alert's fingerprint) and the signals table. Deriving instead of storing means the
numbers cannot drift from the record they summarize, and a restored database or a
second console agrees with them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from console.domain import ChangeEvent, Signal
from console.storage.models import (
    AuditRow,
    ChangeRow,
    ExecutionRow,
    HypothesisRow,
    IncidentRow,
    RecommendationRow,
    SignalRow,
    TimelineEventRow,
)
from console.storage.repos import SignalRepo

DIAGNOSIS_ACTION = "recommendation.diagnosis"  # audit: which hypothesis a recommendation is for
NOT_STICKING_ACTION = "learner.fix_not_sticking"  # audit: a fix that did not last
OUTCOME_STATES = ("succeeded", "failed", "rolled_back", "rollback_failed")
FAILED_STATES = ("failed", "rolled_back", "rollback_failed")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The hypothesis a recommendation was made for."""

    recommendation_id: int
    incident_id: int | None
    service: str
    fault_class: str
    confidence: float
    signals: int

    @property
    def key(self) -> str:
        return f"{self.service}/{self.fault_class}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished execution with the incident its recommendation was for."""

    execution_id: int
    recommendation_id: int | None
    incident_id: int | None
    runbook_id: str
    target: str
    state: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class IncidentProfile:
    """What makes two incidents "the same problem": their services and alert names."""

    id: int
    state: str
    services: tuple[str, ...]
    alerts: tuple[str, ...]
    fingerprints: tuple[str, ...]  # the alert series grouped into it
    opened_at: datetime
    resolved_at: datetime | None

    @property
    def fingerprint(self) -> str:
        body = json.dumps([sorted(self.services), sorted(self.alerts)], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PriorRecommendation:
    id: int
    incident_id: int | None
    runbook_id: str
    target: str
    params: Mapping[str, Any]
    state: str
    requester: str
    created_at: datetime
    expires_at: datetime | None

    def open_at(self, now: datetime) -> bool:
        """Still waiting or running (a pending one past its expiry is expired)."""
        if self.state == "pending":
            return self.expires_at is None or self.expires_at > now
        return self.state in ("queued", "executing")


class LearningRepo:
    def outcomes(self, session: Session, since: datetime | None = None) -> list[Outcome]:
        query = (select(ExecutionRow, RecommendationRow.incident_id)
                 .outerjoin(RecommendationRow,
                            RecommendationRow.id == ExecutionRow.recommendation_id)
                 .where(ExecutionRow.state.in_(OUTCOME_STATES))
                 .order_by(ExecutionRow.id))
        if since is not None:
            query = query.where(ExecutionRow.started_at >= since)
        return [Outcome(e.id, e.recommendation_id, incident, e.runbook_id, e.target, e.state,
                        e.started_at, e.finished_at)
                for e, incident in session.execute(query)]

    def diagnoses(self, session: Session, rec_ids: Iterable[int]) -> dict[int, Diagnosis]:
        """The diagnosis behind each recommendation: the recommender's own audit note,
        else the incident's pinned or best-ranked hypothesis on the target service."""
        ids = sorted(set(rec_ids))
        if not ids:
            return {}
        out: dict[int, Diagnosis] = {}
        targets = [f"recommendation:{i}" for i in ids]
        for row in session.scalars(select(AuditRow)
                                   .where(AuditRow.action == DIAGNOSIS_ACTION,
                                          AuditRow.target.in_(targets))
                                   .order_by(AuditRow.seq)):
            rec_id = int(row.target.removeprefix("recommendation:"))
            data = row.inputs
            out[rec_id] = Diagnosis(rec_id, data.get("incident"), str(data.get("service", "")),
                                    str(data.get("fault_class", "")),
                                    float(data.get("confidence", 0.0)),
                                    int(data.get("signals", 0)))
        missing = [i for i in ids if i not in out]
        if missing:
            recs = session.scalars(select(RecommendationRow)
                                   .where(RecommendationRow.id.in_(missing)))
            for rec in recs:
                hyp = self._hypothesis_for(session, rec)
                if hyp is not None:
                    out[rec.id] = Diagnosis(rec.id, rec.incident_id, hyp.service,
                                            hyp.fault_class, hyp.confidence, hyp.signals)
        return out

    @staticmethod
    def _hypothesis_for(session: Session, rec: RecommendationRow) -> HypothesisRow | None:
        if rec.incident_id is None:
            return None
        rows = list(session.scalars(select(HypothesisRow)
                                    .where(HypothesisRow.incident_id == rec.incident_id,
                                           HypothesisRow.service == rec.target,
                                           HypothesisRow.state != "excluded",
                                           HypothesisRow.created_at <= rec.created_at)))
        rows.sort(key=lambda h: (h.state != "pinned", -h.created_at.timestamp(), h.rank))
        return rows[0] if rows else None

    def recommendations_for(self, session: Session,
                            incident_id: int) -> list[PriorRecommendation]:
        rows = session.scalars(select(RecommendationRow)
                               .where(RecommendationRow.incident_id == incident_id)
                               .order_by(RecommendationRow.id))
        return [PriorRecommendation(r.id, r.incident_id, r.runbook_id or "", r.target,
                                    dict(r.params), r.state, r.requester, r.created_at,
                                    r.expires_at) for r in rows]

    def incident(self, session: Session, incident_id: int) -> IncidentProfile | None:
        row = session.get(IncidentRow, incident_id)
        return None if row is None else self._profile(session, row)

    def incidents(self, session: Session, since: datetime,
                  limit: int = 500) -> list[IncidentProfile]:
        """Incidents open now, or opened or resolved since `since`, oldest first."""
        rows = session.scalars(select(IncidentRow)
                               .where(or_(IncidentRow.state == "open",
                                          IncidentRow.opened_at >= since,
                                          IncidentRow.resolved_at >= since))
                               .order_by(IncidentRow.id.desc()).limit(limit))
        return [self._profile(session, r) for r in reversed(list(rows))]

    def _profile(self, session: Session, row: IncidentRow) -> IncidentProfile:
        # DISTINCT in the database: a storm's incident has thousands of notes naming a
        # few hundred series, each with many stored state changes.
        refs = sorted({ref for ref in session.scalars(
            select(TimelineEventRow.ref).distinct()
            .where(TimelineEventRow.incident_id == row.id, TimelineEventRow.kind == "agent"))
            if ref})
        names = sorted(set(session.scalars(select(SignalRow.name).distinct()
                                           .where(SignalRow.fingerprint.in_(refs))))) \
            if refs else []
        return IncidentProfile(row.id, row.state, tuple(row.services), tuple(names),
                               tuple(refs), row.opened_at, row.resolved_at)

    def firings(self, session: Session, fingerprints: Iterable[str], after: datetime,
                until: datetime) -> list[Signal]:
        """Firing transitions of these alert series in (after, until], oldest first."""
        fps = sorted(set(fingerprints))
        if not fps:
            return []
        rows = session.scalars(select(SignalRow)
                               .where(SignalRow.fingerprint.in_(fps),
                                      SignalRow.status == "firing",
                                      SignalRow.at > after, SignalRow.at <= until)
                               .order_by(SignalRow.at, SignalRow.id))
        return [SignalRepo._to_domain(r) for r in rows]

    def signal(self, session: Session, fingerprint: str) -> Signal | None:
        """The newest stored signal of one series."""
        row = session.scalar(select(SignalRow).where(SignalRow.fingerprint == fingerprint)
                             .order_by(SignalRow.id.desc()).limit(1))
        return None if row is None else SignalRepo._to_domain(row)

    def change(self, session: Session, change_id: str) -> ChangeEvent | None:
        row = session.get(ChangeRow, change_id)
        return None if row is None else _change(row)

    def changes(self, session: Session, service: str, kinds: Iterable[str],
                since: datetime) -> list[ChangeEvent]:
        """Changes of some kinds on one service since a time, newest first."""
        rows = session.scalars(select(ChangeRow)
                               .where(ChangeRow.service == service,
                                      ChangeRow.kind.in_(tuple(kinds)),
                                      ChangeRow.at >= since)
                               .order_by(ChangeRow.at.desc()))
        return [_change(r) for r in rows]

    def flagged(self, session: Session) -> set[int]:
        """Executions the learner already flagged as a fix that did not stick."""
        return {int(t.removeprefix("execution:")) for t in session.scalars(
            select(AuditRow.target).where(AuditRow.action == NOT_STICKING_ACTION))
            if t.startswith("execution:")}


def _change(r: ChangeRow) -> ChangeEvent:
    return ChangeEvent(service=r.service, kind=r.kind, description=r.description, at=r.at,
                       author=r.author, version_from=r.version_from, version_to=r.version_to,
                       id=r.id)

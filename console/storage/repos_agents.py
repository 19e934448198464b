"""Repositories of the agent board: hypotheses, agent events and the operator's steering.

The board's rules live here, next to the rows they govern, so the agents, the steering
operations and a console restarted mid-incident all see the same board:

- a new ranking by an agent supersedes that agent's previous one, except that a pinned
  or excluded hypothesis the new ranking no longer names is carried forward: the
  operator's decision outlives the investigator's change of mind;
- a hypothesis's state follows the active steering (excluded wins over pinned), and is
  recomputed whenever the steering changes.

The dataclasses below are domain types (repositories return them, never rows). They sit
here rather than in console/domain.py only because that file was being edited by others
when they were written; move them there when convenient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from console.domain import AgentEvent, Evidence, Hypothesis
from console.storage.models import AgentEventRow, HypothesisRow, SteeringRow

STEER_KINDS = ("pin", "exclude_hypothesis", "exclude_service")
# The order the board shows them in: the operator's choice first, discarded ones last.
STATE_ORDER = {"pinned": 0, "live": 1, "excluded": 2, "superseded": 3}


@dataclass(frozen=True, slots=True)
class RankedHypothesis:
    """A stored hypothesis: its place in its agent's ranking and its board state."""

    id: int
    incident_id: int
    agent: str
    rank: int
    state: str  # live | superseded | pinned | excluded
    hypothesis: Hypothesis
    created_at: datetime

    @property
    def key(self) -> str:
        return self.hypothesis.key

    @property
    def service(self) -> str:
        return self.hypothesis.service

    @property
    def confidence(self) -> float:
        return self.hypothesis.confidence

    @property
    def usable(self) -> bool:
        """What agents may act on: pinned or live, never excluded or superseded."""
        return self.state in ("pinned", "live")


@dataclass(frozen=True, slots=True)
class Steer:
    """One operator steer as stored (the steering table)."""

    id: int
    incident_id: int
    kind: str  # pin | exclude_hypothesis | exclude_service
    value: str  # service/fault_class, or a service
    user: str
    at: datetime
    active: bool = True


@dataclass(frozen=True, slots=True)
class Steering:
    """The active steering of one incident, as the agents must obey it."""

    pinned: str | None = None
    excluded_hypotheses: frozenset[str] = field(default_factory=frozenset)
    excluded_services: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, steers: Iterable[Steer]) -> Steering:
        pinned: str | None = None
        hyps: set[str] = set()
        services: set[str] = set()
        for s in steers:
            if not s.active:
                continue
            if s.kind == "pin":
                pinned = s.value  # the newest pin wins (the operation keeps only one)
            elif s.kind == "exclude_hypothesis":
                hyps.add(s.value)
            elif s.kind == "exclude_service":
                services.add(s.value)
        return cls(pinned, frozenset(hyps), frozenset(services))

    def allows_service(self, service: str) -> bool:
        return service not in self.excluded_services

    def state_of(self, hypothesis: Hypothesis) -> str:
        if (hypothesis.key in self.excluded_hypotheses
                or hypothesis.service in self.excluded_services):
            return "excluded"
        return "pinned" if hypothesis.key == self.pinned else "live"

    def as_dict(self) -> dict[str, Any]:
        return {"pinned": self.pinned,
                "excluded_hypotheses": sorted(self.excluded_hypotheses),
                "excluded_services": sorted(self.excluded_services)}


def evidence_json(evidence: Iterable[Evidence]) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "summary": e.summary, "ref": e.ref, "weight": e.weight}
            for e in evidence]


def _hypothesis(row: HypothesisRow) -> Hypothesis:
    evidence = tuple(Evidence(str(e.get("kind", "")), str(e.get("summary", "")),
                              str(e.get("ref", "")), float(e.get("weight", 0.0)))
                     for e in row.evidence)
    return Hypothesis(row.service, row.fault_class, row.confidence, evidence, row.score,
                      row.signals, row.cause or 0)


def _ranked(row: HypothesisRow) -> RankedHypothesis:
    return RankedHypothesis(row.id, row.incident_id, row.agent, row.rank, row.state,
                            _hypothesis(row), row.created_at)


def board_order(hypotheses: Iterable[RankedHypothesis]) -> list[RankedHypothesis]:
    """Pinned first, then live by confidence, then excluded (shown, marked)."""
    return sorted(hypotheses, key=lambda h: (STATE_ORDER.get(h.state, 9), -h.confidence,
                                             h.rank, h.id))


class HypothesisRepo:
    def save_ranking(self, session: Session, incident_id: int, agent: str,
                     ranking: Sequence[Hypothesis], steering: Steering,
                     at: datetime) -> list[RankedHypothesis]:
        """Store `ranking` (best first) as `agent`'s live ranking; returns the new rows."""
        keys = {h.key for h in ranking}
        previous = session.scalars(select(HypothesisRow).where(
            HypothesisRow.incident_id == incident_id, HypothesisRow.agent == agent,
            HypothesisRow.state != "superseded"))
        for row in previous:
            carried = (row.state in ("pinned", "excluded")
                       and f"{row.service}/{row.fault_class}" not in keys)
            if not carried:
                row.state, row.updated_at = "superseded", at
        rows = [HypothesisRow(incident_id=incident_id, agent=agent, service=h.service,
                              fault_class=h.fault_class, confidence=float(h.confidence),
                              score=float(h.score), rank=rank, signals=int(h.signals),
                              evidence=evidence_json(h.evidence), state=steering.state_of(h),
                              created_at=at, updated_at=at, cause=int(h.cause))
                for rank, h in enumerate(ranking, start=1)]
        session.add_all(rows)
        session.flush()
        return [_ranked(r) for r in rows]

    def apply_steering(self, session: Session, incident_id: int, steering: Steering,
                       at: datetime) -> list[str]:
        """Recompute the state of every current hypothesis; returns the keys that changed.

        A row carried forward only because it was pinned or excluded is superseded once
        that steer is lifted: its agent's newest ranking no longer names it."""
        rows = list(session.scalars(select(HypothesisRow).where(
            HypothesisRow.incident_id == incident_id, HypothesisRow.state != "superseded")))
        newest: dict[str, int] = {}  # agent -> id of the first row of its newest ranking
        for row in rows:
            if row.rank == 1:
                newest[row.agent] = max(newest.get(row.agent, 0), row.id)
        changed = []
        for row in rows:
            state = steering.state_of(_hypothesis(row))
            if state == "live" and row.id < newest.get(row.agent, 0):
                state = "superseded"
            if state != row.state:
                row.state, row.updated_at = state, at
                changed.append(f"{row.service}/{row.fault_class}")
        session.flush()
        return changed

    def current(self, session: Session, incident_id: int) -> list[RankedHypothesis]:
        """The incident's board: pinned first, live by confidence, excluded last."""
        rows = session.scalars(select(HypothesisRow).where(
            HypothesisRow.incident_id == incident_id, HypothesisRow.state != "superseded"))
        return board_order(_ranked(r) for r in rows)

    def history(self, session: Session, incident_id: int) -> list[RankedHypothesis]:
        rows = session.scalars(select(HypothesisRow)
                               .where(HypothesisRow.incident_id == incident_id)
                               .order_by(HypothesisRow.id))
        return [_ranked(r) for r in rows]

    def latest(self, session: Session, incident_id: int, key: str) -> RankedHypothesis | None:
        """The newest stored hypothesis with this key, in any state."""
        service, _, fault = key.partition("/")
        row = session.scalar(select(HypothesisRow).where(
            HypothesisRow.incident_id == incident_id, HypothesisRow.service == service,
            HypothesisRow.fault_class == fault).order_by(HypothesisRow.id.desc()).limit(1))
        return None if row is None else _ranked(row)


def _event(row: AgentEventRow) -> AgentEvent:
    return AgentEvent(row.id, row.incident_id, row.agent, row.kind, row.summary, row.at,
                      row.to_agent, row.data, row.duration_ms)


class AgentEventRepo:
    def add(self, session: Session, *, incident_id: int | None, agent: str, kind: str,
            summary: str, at: datetime, to_agent: str = "",
            data: Mapping[str, Any] | None = None,
            duration_ms: float | None = None) -> AgentEvent:
        row = AgentEventRow(incident_id=incident_id, agent=agent[:64], kind=kind[:64],
                            to_agent=to_agent[:64], summary=summary, data=dict(data or {}),
                            at=at, duration_ms=duration_ms)
        session.add(row)
        session.flush()
        return _event(row)

    def for_incident(self, session: Session, incident_id: int, *, after_id: int = 0,
                     limit: int = 5000) -> list[AgentEvent]:
        """The incident's agent events in the order they were recorded."""
        rows = session.scalars(select(AgentEventRow)
                               .where(AgentEventRow.incident_id == incident_id,
                                      AgentEventRow.id > after_id)
                               .order_by(AgentEventRow.id).limit(limit))
        return [_event(r) for r in rows]

    def recent(self, session: Session, limit: int = 500) -> list[AgentEvent]:
        rows = session.scalars(select(AgentEventRow).order_by(AgentEventRow.id.desc())
                               .limit(limit))
        return [_event(r) for r in rows][::-1]


def _steer(row: SteeringRow) -> Steer:
    return Steer(row.id, row.incident_id, row.kind, row.value, row.user, row.at, row.active)


class SteeringRepo:
    def add(self, session: Session, incident_id: int, kind: str, value: str, user: str,
            at: datetime) -> Steer:
        if kind not in STEER_KINDS:
            raise ValueError(f"unknown steer {kind!r} (known: {', '.join(STEER_KINDS)})")
        row = SteeringRow(incident_id=incident_id, kind=kind, value=value, user=user, at=at)
        session.add(row)
        session.flush()
        return _steer(row)

    def active(self, session: Session, incident_id: int) -> list[Steer]:
        rows = session.scalars(select(SteeringRow)
                               .where(SteeringRow.incident_id == incident_id,
                                      SteeringRow.active.is_(True))
                               .order_by(SteeringRow.id))
        return [_steer(r) for r in rows]

    def steering(self, session: Session, incident_id: int) -> Steering:
        return Steering.of(self.active(session, incident_id))

    def deactivate(self, session: Session, ids: Iterable[int]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        done = session.execute(update(SteeringRow).where(SteeringRow.id.in_(ids))
                               .values(active=False))
        return int(getattr(done, "rowcount", 0) or 0)

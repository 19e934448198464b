"""The assessment as the wizard and `watchfloor assess` use it: evidence, placement,
shadow replay, and keeping each assessment for the trend.

One facade so the CLI and the GUI give the same placement, evidence and reasons from
the same code. Reading (evidence, placement, shadow) never writes; recording an
assessment is an operation like every other change, so it is role-checked, audited
(`assessment.record`) and announced with `OpChanges(assessments=True)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.assessment import Placement, place
from console.assessment_evidence import DEFAULT_WINDOW, AssessmentEvidence, compute_evidence
from console.assessment_model import Answers, MaturityModel, load_maturity_model
from console.events import OpChanges
from console.operations import Operation
from console.policy import Policy
from console.shadow import ShadowReport, replay
from console.storage.models import AssessmentRow

if TYPE_CHECKING:
    from console.service import WatchfloorService

SCHEMA = "watchfloor.assess/1"
RECORD_ACTION = "assessment.record"


@dataclass(frozen=True)
class AssessmentResult:
    at: datetime
    answers: Answers
    evidence: AssessmentEvidence
    placement: Placement
    shadow: ShadowReport | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.placement
        return {"schema": SCHEMA, "at": self.at.isoformat(), "level": p.level,
                "name": p.name, "answers_level": p.answers_level,
                "evidence_level": p.evidence_level, "claimed_level": p.claimed_level,
                "reasons": list(p.reasons), "contradictions": list(p.contradictions),
                "traps": [t.__dict__ for t in p.traps], "next_steps": list(p.next_steps),
                "move_up": p.move_up, "shadow_candidates": list(p.shadow_candidates),
                "answers": {"given": self.answers.given, "assessor": self.answers.assessor,
                            "values": dict(self.answers.values)},
                "evidence": self.evidence.as_dict(),
                "checks": p.as_dict()["checks"],
                "shadow": self.shadow.as_dict() if self.shadow is not None else None}


@dataclass(frozen=True)
class HistoryPoint:
    id: int
    at: datetime
    level: int
    evidence_level: int | None
    claimed_level: int | None
    assessor: str


class AssessmentRepo:
    def add(self, session: Session, result: AssessmentResult, assessor: str) -> int:
        data = result.as_dict()
        row = AssessmentRow(
            at=result.at, assessor=assessor[:200], level=result.placement.level,
            answers=data["answers"], evidence=data["evidence"],
            reasons=list(result.placement.reasons),
            claimed_level=result.placement.claimed_level,
            evidence_level=result.placement.evidence_level,
            details={k: data[k] for k in ("name", "answers_level", "contradictions", "traps",
                                          "next_steps", "move_up", "checks", "shadow",
                                          "shadow_candidates")})
        session.add(row)
        session.flush()
        return row.id

    def history(self, session: Session, limit: int = 200) -> list[HistoryPoint]:
        rows = session.scalars(select(AssessmentRow)
                               .order_by(AssessmentRow.at.desc(), AssessmentRow.id.desc())
                               .limit(limit))
        points = [HistoryPoint(r.id, r.at, r.level, r.evidence_level, r.claimed_level,
                               r.assessor) for r in rows]
        return points[::-1]

    def get(self, session: Session, assessment_id: int) -> dict[str, Any] | None:
        row = session.get(AssessmentRow, assessment_id)
        if row is None:
            return None
        return {"id": row.id, "at": row.at.isoformat(), "assessor": row.assessor,
                "level": row.level, "claimed_level": row.claimed_level,
                "evidence_level": row.evidence_level, "answers": row.answers,
                "evidence": row.evidence, "reasons": row.reasons, **(row.details or {})}


class AssessmentService:
    """Evidence, placement, shadow mode and history over one service's database."""

    def __init__(self, service: WatchfloorService, *, model: MaturityModel | None = None,
                 library: Mapping[str, Any] | None = None) -> None:
        self.service = service
        self.model = model or load_maturity_model()
        self._library = library
        self._repo = AssessmentRepo()

    @property
    def library(self) -> Mapping[str, Any]:
        if self._library is None:
            self._library = dict(self.service.engine.library)
        return self._library

    def evidence(self, window: timedelta = DEFAULT_WINDOW) -> AssessmentEvidence:
        """Blocks on the database: off the GUI thread."""
        policy = self.service.policy()
        with self.service.db.sessions() as session:
            return compute_evidence(session, now=self.service.clock.now(), policy=policy,
                                    library=self.library, window=window)

    def assess(self, answers: Answers, *, evidence: AssessmentEvidence | None = None,
               window: timedelta = DEFAULT_WINDOW) -> AssessmentResult:
        found = evidence if evidence is not None else self.evidence(window)
        return AssessmentResult(self.service.clock.now(), answers, found,
                                place(self.model, answers, found))

    def shadow(self, proposed: Policy, *, window: timedelta = DEFAULT_WINDOW,
               action_classes: tuple[str, ...] = (),
               ceiling: int | None = None) -> ShadowReport:
        """Replay the window under `proposed`; the ceiling is today's unless given."""
        current = self.service.policy()
        top = ceiling if ceiling is not None else self.service.status().autonomy_ceiling
        with self.service.db.sessions() as session:
            return replay(session, proposed, current=current, ceiling=top,
                          now=self.service.clock.now(), window=window,
                          action_classes=action_classes)

    def raised_policy(self, action_class: str, level: int = 3) -> Policy:
        """Today's policy with one action class raised: the usual shadow proposal."""
        current = self.service.policy()
        return current.model_copy(update={"levels": {**current.levels, action_class: level}})

    def record(self, result: AssessmentResult, *, as_user: str) -> int:
        """Keep the assessment (operator or above), audited; returns its id."""
        stored: list[int] = []

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            stored.append(self._repo.add(session, result, f"user:{as_user}"))
            return (OpChanges(assessments=True, ids=(str(stored[0]),)),
                    {"assessment": stored[0], "level": result.placement.level,
                     "evidence_level": result.placement.evidence_level,
                     "claimed_level": result.placement.claimed_level,
                     "shadow": result.shadow.summary() if result.shadow else None})

        self.service.runner.run(Operation(
            RECORD_ACTION, "assessment", "operator", apply,
            reason="; ".join(result.placement.reasons)[:2000],
            inputs={"answers": dict(result.answers.values),
                    "claimed_level": result.placement.claimed_level}), as_user)
        return stored[0]

    def history(self, limit: int = 200) -> list[HistoryPoint]:
        with self.service.db.sessions() as session:
            return self._repo.history(session, limit)

    def stored(self, assessment_id: int) -> dict[str, Any] | None:
        with self.service.db.sessions() as session:
            return self._repo.get(session, assessment_id)

"""Repositories of the execution lifecycle: recommendations, approvals, executions.

State changes that must happen once (claiming a queued recommendation, starting a step,
starting a rollback) are compare-and-set UPDATEs: the row changes only if it is still
in the state the caller saw, so two consoles or a restarted process can never both win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from console.domain import Execution, Recommendation
from console.storage.models import ApprovalRow, ExecutionRow, RecommendationRow, RollbackRow

IN_FLIGHT = ("intent", "running", "validating", "rolling_back")


class RecommendationRepo:
    def add(self, session: Session, **fields: Any) -> int:
        row = RecommendationRow(**fields)
        session.add(row)
        session.flush()
        return row.id

    def row(self, session: Session, rec_id: int, *,
            lock: bool = False) -> RecommendationRow | None:
        """With `lock`, the row is locked until the unit of work ends (SELECT ... FOR
        UPDATE; SQLite has one writer anyway) and read afresh: on PostgreSQL a second
        console deciding on the same recommendation waits here, then sees what the first
        one committed instead of acting on the state it read before."""
        if lock:
            return session.get(RecommendationRow, rec_id, with_for_update=True,
                               populate_existing=True)
        return session.get(RecommendationRow, rec_id)

    def get(self, session: Session, rec_id: int, now: datetime) -> Recommendation | None:
        row = session.get(RecommendationRow, rec_id)
        return None if row is None else self._to_domain(session, row, now)

    def recent(self, session: Session, now: datetime, states: Iterable[str] | None = None,
             limit: int = 500) -> list[Recommendation]:
        query = select(RecommendationRow).order_by(RecommendationRow.id.desc()).limit(limit)
        if states is not None:
            query = query.where(RecommendationRow.state.in_(tuple(states)))
        return [self._to_domain(session, r, now) for r in session.scalars(query)]

    def ids_in_state(self, session: Session, state: str) -> list[int]:
        return list(session.scalars(select(RecommendationRow.id)
                                    .where(RecommendationRow.state == state)
                                    .order_by(RecommendationRow.id)))

    def move(self, session: Session, rec_id: int, from_states: tuple[str, ...],
             to_state: str) -> bool:
        """Compare-and-set: True only for the one caller that made the change."""
        done = session.execute(update(RecommendationRow)
                               .where(RecommendationRow.id == rec_id,
                                      RecommendationRow.state.in_(from_states))
                               .values(state=to_state))
        return bool(getattr(done, "rowcount", 0) == 1)

    def cancel_autonomous(self, session: Session) -> list[int]:
        """Queued autonomous runs never start (the kill switch)."""
        ids = list(session.scalars(select(RecommendationRow.id)
                                   .where(RecommendationRow.state == "queued",
                                          RecommendationRow.autonomous.is_(True))))
        if ids:
            session.execute(update(RecommendationRow)
                            .where(RecommendationRow.id.in_(ids),
                                   RecommendationRow.state == "queued")
                            .values(state="cancelled"))
        return ids

    def valid_approvals(self, session: Session, row: RecommendationRow,
                        now: datetime) -> list[ApprovalRow]:
        rows = session.scalars(select(ApprovalRow)
                               .where(ApprovalRow.recommendation_id == row.id,
                                      ApprovalRow.decision == "approved",
                                      ApprovalRow.void.is_(False),
                                      ApprovalRow.preview_hash == row.preview_hash)
                               .order_by(ApprovalRow.id))
        return [a for a in rows if a.expires_at is None or a.expires_at > now]

    def add_approval(self, session: Session, **fields: Any) -> None:
        session.add(ApprovalRow(**fields))

    def void_approvals(self, session: Session, rec_id: int) -> int:
        done = session.execute(update(ApprovalRow)
                               .where(ApprovalRow.recommendation_id == rec_id,
                                      ApprovalRow.void.is_(False))
                               .values(void=True))
        return int(getattr(done, "rowcount", 0) or 0)

    def _to_domain(self, session: Session, r: RecommendationRow,
                   now: datetime) -> Recommendation:
        approvals = tuple((a.user, a.role) for a in self.valid_approvals(session, r, now))
        return Recommendation(
            id=r.id, runbook_id=r.runbook_id or "", action_class=r.action_class,
            target=r.target, params=r.params, preview=r.preview, preview_hash=r.preview_hash,
            confidence=r.confidence, explanation=r.explanation, state=r.state,
            requester=r.requester, risk=r.risk, autonomous=r.autonomous,
            created_at=r.created_at, expires_at=r.expires_at, incident_id=r.incident_id,
            approvals=approvals)


class ExecutionRepo:
    def add(self, session: Session, **fields: Any) -> int:
        row = ExecutionRow(**fields)
        session.add(row)
        session.flush()
        return row.id

    def row(self, session: Session, exec_id: int) -> ExecutionRow | None:
        return session.get(ExecutionRow, exec_id)

    def by_key(self, session: Session, key: str) -> ExecutionRow | None:
        return session.scalar(select(ExecutionRow).where(ExecutionRow.idempotency_key == key))

    def get(self, session: Session, exec_id: int) -> Execution | None:
        row = session.get(ExecutionRow, exec_id)
        return None if row is None else to_execution(row)

    def recent(self, session: Session, states: Iterable[str] | None = None,
             limit: int = 500) -> list[Execution]:
        query = select(ExecutionRow).order_by(ExecutionRow.id.desc()).limit(limit)
        if states is not None:
            query = query.where(ExecutionRow.state.in_(tuple(states)))
        return [to_execution(r) for r in session.scalars(query)]

    def move(self, session: Session, exec_id: int, from_states: tuple[str, ...],
             values: Mapping[str, Any], *, step: int | None = None) -> bool:
        """Compare-and-set on the state (and the step counter when given)."""
        query = update(ExecutionRow).where(ExecutionRow.id == exec_id,
                                           ExecutionRow.state.in_(from_states))
        if step is not None:
            query = query.where(ExecutionRow.step == step)
        done = session.execute(query.values(**values))
        return bool(getattr(done, "rowcount", 0) == 1)

    def history(self, session: Session, action_class: str, service: str,
                since: datetime) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
        """Start times of runs, and of failed runs, of one (action class, service)."""
        rows = session.execute(select(ExecutionRow.started_at, ExecutionRow.state)
                               .where(ExecutionRow.action == action_class,
                                      ExecutionRow.target == service,
                                      ExecutionRow.started_at >= since))
        runs, failures = [], []
        for at, state in rows:
            runs.append(at)
            if state in ("failed", "rolled_back", "rollback_failed"):
                failures.append(at)
        return tuple(runs), tuple(failures)

    def add_rollback(self, session: Session, **fields: Any) -> int:
        row = RollbackRow(**fields)
        session.add(row)
        session.flush()
        return row.id

    def rollback_row(self, session: Session, rollback_id: int) -> RollbackRow | None:
        return session.get(RollbackRow, rollback_id)

    def end_rollbacks(self, session: Session, exec_id: int, state: str) -> int:
        """Rollbacks of an execution still marked running end in `state` (a crash cut
        them short); how many there were."""
        done = session.execute(update(RollbackRow)
                               .where(RollbackRow.execution_id == exec_id,
                                      RollbackRow.state == "running")
                               .values(state=state))
        return int(getattr(done, "rowcount", 0) or 0)


def to_execution(r: ExecutionRow) -> Execution:
    return Execution(id=r.id, recommendation_id=r.recommendation_id, runbook_id=r.runbook_id,
                     action_class=r.action, target=r.target, initiator=r.initiator,
                     autonomous=r.autonomous, state=r.state, step=r.step, plan=r.plan,
                     result=r.result, started_at=r.started_at, finished_at=r.finished_at,
                     validate_by=r.validate_by)

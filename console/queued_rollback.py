"""A rollback asked for where its executor is not: queued for the process that has it.

A window that follows an engine process has no executor at all (console/engine_process.py),
and a follower of a team has no estate; the rollback its operator confirms is stored as a
`queued` row of `rollbacks` in the same operation that audits the request, and the
process that owns the executors (the leader's engine) runs it on its next drain. The run is
claimed by moving the execution to `rolling_back` and the queued row to `running` in one
transaction, both compare-and-set, so two engines (or a restarted one) never run it twice;
a request whose execution moved on meanwhile (rolled back by someone else, say) is
refused by the claim and marked so. A queued row outlives its engine: the next one
takes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from console.domain import ROLLBACK_FROM
from console.operations import Refused
from console.reconcile import unobserved
from console.storage.models import RollbackRow

if TYPE_CHECKING:
    from console.execution import ExecutionEngine
    from console.storage.models import ExecutionRow

QUEUED = "queued"


def elsewhere(engine: ExecutionEngine, row: ExecutionRow) -> bool:
    """True when some executor of the rollback is not in this process at all (the one
    that has it runs it); a different target of the same kind is not that."""
    names = {str(step["executor"]) for step in row.plan.get("rollback") or ()}
    return bool(names - set(engine.executors))


def someone_runs_it(engine: ExecutionEngine) -> bool:
    """Whether a queued rollback will be taken: this process is a window following its
    engine (it has no executor at all; its engine comes back when it dies), or a live
    team member leads. A headless command on a database nobody leads is refused instead,
    with what it lacks, rather than leaving a request nobody will run."""
    if not engine.executors:
        return True
    from console.leader import team_members

    try:
        return any(m.role == "leader" for m in team_members(engine.service.db))
    except Exception:  # no team table to read (an older database): nobody leads
        return False


def ask(engine: ExecutionEngine, session: Session, row: ExecutionRow, who: str) -> int:
    """Store the request in the caller's operation; returns the queued row's id."""
    if row.state not in ROLLBACK_FROM:
        raise Refused(f"execution {row.id} is {row.state}; it cannot be rolled back now")
    waiting = session.scalar(select(RollbackRow.id).where(
        RollbackRow.execution_id == row.id, RollbackRow.state == QUEUED))
    if waiting is not None:
        raise Refused(f"execution {row.id} is already queued to be rolled back")
    return engine._execs.add_rollback(session, execution_id=row.id, user=who, state=QUEUED,
                                      result={}, at=engine.service.clock.now())


def run_asked(engine: ExecutionEngine) -> list[int]:
    """Claim and run every queued rollback this process has the executors for; returns
    the executions rolled back (or tried)."""
    with engine.service.db.sessions() as session:
        asked = session.execute(select(RollbackRow.id, RollbackRow.execution_id,
                                       RollbackRow.user)
                                .where(RollbackRow.state == QUEUED)
                                .order_by(RollbackRow.id)).all()
    ran: list[int] = []
    for rollback_id, exec_id, who in asked:
        if _claim(engine, rollback_id, exec_id):
            engine._run_rollback(exec_id, rollback_id, who)
            ran.append(exec_id)
    return ran


def _claim(engine: ExecutionEngine, rollback_id: int, exec_id: int) -> bool:
    with engine.service.db.sessions() as session:
        row = engine._execs.row(session, exec_id)
        if row is None or elsewhere(engine, row) or not engine.can_run(
                {"steps": row.plan["rollback"]}):
            return False  # not this process's to run: it stays queued
        names = sorted({str(step["executor"]) for step in row.plan["rollback"]})
        other = unobserved(row.plan, engine.executors, names) \
            if "targets" in row.plan else None
        if other is not None:  # this executor is another estate or host than the one
            # the action changed: refused by name, never applied to what it did not change
            session.execute(update(RollbackRow)
                            .where(RollbackRow.id == rollback_id, RollbackRow.state == QUEUED)
                            .values(state="refused",
                                    result={"reason": f"not rolled back here: {other}"}))
            session.commit()
            return False
        taken = session.execute(update(RollbackRow)
                                .where(RollbackRow.id == rollback_id,
                                       RollbackRow.state == QUEUED)
                                .values(state="running"))
        if getattr(taken, "rowcount", 0) != 1:
            session.rollback()
            return False  # another engine took it
        if not engine._execs.move(session, exec_id, ROLLBACK_FROM,
                                  {"state": "rolling_back", "finished_at": None}):
            session.execute(update(RollbackRow).where(RollbackRow.id == rollback_id)
                            .values(state="refused",
                                    result={"reason": f"the execution was {row.state}"}))
            session.commit()
            return False
        session.commit()
    return True

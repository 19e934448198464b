"""A console's simulated clock resumes after what its database already holds.

The console's clock starts at the wall clock's time, and a scenario played faster than
real time runs it ahead of the wall clock. The next start on the same database then
began *before* the newest records: new records were stamped earlier than old ones, and
every "the last N hours up to now" read (the Outcomes pane's KPIs) left the previous
session's records out as if they were in the future, while reads without an upper bound
(the maturity wizard's evidence) counted them: Outcomes said no approval had been
answered while the wizard reported an eight-minute wait. Time on one database only
moves forward: the clock resumes just after the newest audit record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from console.clock import SimClock
from console.storage.db import Database
from console.storage.models import AuditRow

AFTER = timedelta(seconds=1)


def newest_record_at(db: Database) -> datetime | None:
    """When the newest audit record was written (every operation writes one)."""
    with db.sessions() as session:
        return session.scalar(select(func.max(AuditRow.at)))


def resume_after_stored(clock: SimClock, db: Database) -> float:
    """Move `clock` to just after the newest record when it is behind it; returns the
    seconds it moved (0 when the clock was ahead already)."""
    newest = newest_record_at(db)
    if newest is None:
        return 0.0
    behind = (newest + AFTER - clock.now()).total_seconds()
    if behind <= 0:
        return 0.0
    clock.advance(behind)
    return behind

"""Maintenance windows' reads and writes (console/maintenance.py says what they do).

A window applies while `starts_at <= now < ends_at` and nobody ended it: it stops
applying at its expiry by itself, with no job to run, and every reader asks with its
own `now` (a scenario's simulated clock, or the wall clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from console.storage.models import MaintenanceRow, SignalRow


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: int
    services: tuple[str, ...]
    incident_id: int | None
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    silence: dict[str, Any] = field(default_factory=dict)  # {alertmanager, id} or {}
    kept: int = 0  # alerts of its services that fired while it applied (listings fill it in)

    @property
    def until(self) -> datetime:
        """When it stops (or stopped) applying."""
        return self.ended_at if self.ended_at is not None else self.ends_at

    def applies(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until

    def state(self, now: datetime) -> str:
        if self.ended_at is not None and self.ended_at <= now:
            return "ended"
        if now >= self.ends_at:
            return "expired"
        return "active" if now >= self.starts_at else "scheduled"

    def describe(self) -> str:
        """The reason policy gives when the window holds an action back."""
        return (f"maintenance window #{self.id} by {self.created_by} until "
                f"{self.until.isoformat(timespec='minutes')}: {self.reason}")


def _window(row: MaintenanceRow) -> MaintenanceWindow:
    return MaintenanceWindow(row.id, tuple(row.services), row.incident_id, row.reason,
                             row.created_by, row.starts_at, row.ends_at, row.ended_at,
                             row.ended_by, dict(row.silence or {}))


class MaintenanceRepo:
    def add(self, session: Session, *, services: Iterable[str], incident_id: int | None,
            reason: str, created_by: str, starts_at: datetime, ends_at: datetime,
            silence: dict[str, Any]) -> int:
        row = MaintenanceRow(services=list(services), incident_id=incident_id, reason=reason,
                             created_by=created_by, starts_at=starts_at, ends_at=ends_at,
                             ended_at=None, ended_by=None, silence=silence)
        session.add(row)
        session.flush()
        return int(row.id)

    def row(self, session: Session, window_id: int, *, lock: bool = False) -> MaintenanceRow | None:
        stmt = select(MaintenanceRow).where(MaintenanceRow.id == window_id)
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    def get(self, session: Session, window_id: int) -> MaintenanceWindow | None:
        row = self.row(session, window_id)
        return None if row is None else _window(row)

    def listing(self, session: Session, now: datetime, *,
                include_over: bool = False) -> list[MaintenanceWindow]:
        """Newest first; without `include_over` only those not yet over (active or
        scheduled), so an expired window disappears from the list on its own."""
        stmt = select(MaintenanceRow).order_by(MaintenanceRow.id.desc())
        if not include_over:
            stmt = stmt.where(MaintenanceRow.ends_at > now, or_(
                MaintenanceRow.ended_at.is_(None), MaintenanceRow.ended_at > now))
        windows = [_window(r) for r in session.scalars(stmt)]
        return [replace(w, kept=self.kept_alerts(session, w)) for w in windows]

    def kept_alerts(self, session: Session, window: MaintenanceWindow) -> int:
        """How many alerts of its services fired while it applied: stored, shown, but
        kept out of the incidents (the night shift sees what the window held back)."""
        return int(session.scalar(
            select(func.count()).select_from(SignalRow)
            .where(SignalRow.service.in_(window.services), SignalRow.kind == "alert",
                   SignalRow.status == "firing", SignalRow.at >= window.starts_at,
                   SignalRow.at < window.until)) or 0)

    def applying(self, session: Session, now: datetime) -> list[MaintenanceWindow]:
        """The windows in force at `now`."""
        stmt = (select(MaintenanceRow)
                .where(MaintenanceRow.starts_at <= now, MaintenanceRow.ends_at > now,
                       or_(MaintenanceRow.ended_at.is_(None), MaintenanceRow.ended_at > now))
                .order_by(MaintenanceRow.id))
        return [_window(r) for r in session.scalars(stmt)]

    def covering(self, session: Session, service: str,
                 now: datetime) -> MaintenanceWindow | None:
        """The first window in force on `service` at `now` (None when none is)."""
        return next((w for w in self.applying(session, now) if service in w.services), None)

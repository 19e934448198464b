"""Maintenance windows: planned work on a service, told to the console beforehand.

While a window applies, the alerts of its services are still stored (kept, visible,
searchable) but open no incident, and nothing runs on those services on its own: an
agent's or a rule's action waits for a person, with the window named as the reason. A
person may still approve an action by hand — the window says "we are working on it",
not "nobody may touch it".

Each change (start, extend, end early) is an operation (role operator, audited,
denials included) that returns a change set. A window stops applying at its expiry by
itself: nothing has to run for it to end, and listings leave it out unless asked.

With an Alertmanager configured, a window can carry a silence of the same services for
the same time (console/silences.py), so nobody else is paged for the planned work
either; it is extended and expired with the window. The HTTP calls happen outside the
database transaction: the silence is made first and expired again if the window is then
refused, so no silence outlives a window that was never stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from console.domain import AlertStatus, Signal
from console.events import OpChanges
from console.operations import Operation, Refused
from console.policy import Decision, Request
from console.silences import TIMEOUT, SilenceError, Silences
from console.storage.models import IncidentRow
from console.storage.repos_maintenance import MaintenanceRepo, MaintenanceWindow

if TYPE_CHECKING:
    import httpx
    from console.service import WatchfloorService

ROLE = "operator"
MAX_MINUTES = 14 * 24 * 60  # two weeks: longer planned work is a freeze in the policy
MAX_REASON = 2000

__all__ = ["MaintenanceError", "MaintenanceOps", "MaintenanceWindow", "gate", "hold_back"]


class MaintenanceError(ValueError):
    """A request that cannot be used (no such window, a bad duration, Alertmanager
    refused the silence); nothing was stored."""


def _minutes(minutes: float, what: str) -> timedelta:
    if not 1 <= minutes <= MAX_MINUTES:  # also refuses nan
        raise MaintenanceError(f"{what}: minutes must be 1 to {MAX_MINUTES}, got {minutes:g}")
    return timedelta(minutes=minutes)


def _reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise MaintenanceError("a maintenance window needs a reason (what is being done)")
    if len(text) > MAX_REASON or "\x00" in text:
        raise MaintenanceError(f"the reason must be at most {MAX_REASON} characters "
                               "without NUL")
    return text


class MaintenanceOps:
    """The window operations over the service facade. `alertmanager` is the configured
    Alertmanager new silences go to (None: none is configured); a window's silence is
    extended and expired in the Alertmanager that holds it."""

    def __init__(self, service: WatchfloorService, alertmanager: str | None = None,
                 *, timeout: float = TIMEOUT) -> None:
        self.service = service
        self.alertmanager = alertmanager.rstrip("/") if alertmanager else None
        self._timeout = timeout
        self._http: httpx.Client | None = None  # one per process, made on first use
        self._repo = MaintenanceRepo()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # --- reads ------------------------------------------------------------------------

    def windows(self, *, include_over: bool = False) -> list[MaintenanceWindow]:
        with self.service.db.sessions() as session:
            return self._repo.listing(session, self.service.clock.now(),
                                      include_over=include_over)

    def window(self, window_id: int) -> MaintenanceWindow | None:
        with self.service.db.sessions() as session:
            return self._repo.get(session, window_id)

    # --- operations -------------------------------------------------------------------

    def start(self, *, reason: str, minutes: float, as_user: str,
              service: str | None = None, incident_id: int | None = None,
              silence: bool = False) -> MaintenanceWindow:
        """A window on one service, or on every service of an incident, from now."""
        if (service is None) == (incident_id is None):
            raise MaintenanceError("name a service or an incident, not both or neither")
        text = _reason(reason)
        length = _minutes(minutes, "maintenance start")
        services = self._services(service, incident_id)
        target = f"incident:{incident_id}" if incident_id is not None else f"service:{services[0]}"
        inputs = {"services": list(services), "incident": incident_id, "minutes": minutes,
                  "silence": silence}
        self.service.runner.require(
            Operation("maintenance.start", target, ROLE, lambda _s: (OpChanges(), {}),
                      reason=text, inputs=inputs), as_user)
        now = self.service.clock.now()
        ends = now + length
        made = self._silence(services, now, ends, as_user, text) if silence else {}

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            window_id = self._repo.add(session, services=services, incident_id=incident_id,
                                       reason=text, created_by=as_user, starts_at=now,
                                       ends_at=ends, silence=made)
            return (OpChanges(maintenance=True, ids=(str(window_id),)),
                    {"window": window_id, "ends_at": ends.isoformat(), "silence": made})

        try:
            outputs = self.service.runner.run(
                Operation("maintenance.start", target, ROLE, apply, reason=text,
                          inputs=inputs), as_user)
        except BaseException:
            self._expire_quietly(made)
            raise
        return self._get(int(outputs["window"]))

    def extend(self, window_id: int, minutes: float, *, as_user: str) -> MaintenanceWindow:
        """Push the expiry `minutes` further; the silence follows (Alertmanager may give
        it a new id). A window already over is refused: start a new one."""
        length = _minutes(minutes, f"maintenance extend #{window_id}")
        before = self._current(window_id)
        target = f"maintenance:{window_id}"
        inputs = {"minutes": minutes}
        self.service.runner.require(
            Operation("maintenance.extend", target, ROLE, lambda _s: (OpChanges(), {}),
                      inputs=inputs), as_user)
        ends = before.ends_at + length
        made = dict(before.silence)
        if before.silence.get("id"):
            made = self._silence(before.services, before.starts_at, ends, before.created_by,
                                 before.reason, made)

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            row = self._repo.row(session, window_id, lock=True)
            now = self.service.clock.now()
            if row is None or row.ended_at is not None or row.ends_at <= now:
                raise Refused(f"maintenance window #{window_id} is over; start a new one")
            old = row.ends_at
            row.ends_at, row.silence = ends, made
            return (OpChanges(maintenance=True, ids=(str(window_id),)),
                    {"ends_at": ends.isoformat(), "was": old.isoformat(), "silence": made})

        self.service.runner.run(Operation("maintenance.extend", target, ROLE, apply,
                                          inputs=inputs), as_user)
        return self._get(window_id)

    def end(self, window_id: int, *, as_user: str, reason: str = "") -> MaintenanceWindow:
        """End it now; its silence is expired with it. Should Alertmanager not answer,
        the window still ends (the console's side is what the person asked for) and the
        record says the silence was left to run to its own end."""
        before = self._current(window_id)
        target = f"maintenance:{window_id}"
        self.service.runner.require(
            Operation("maintenance.end", target, ROLE, lambda _s: (OpChanges(), {}),
                      reason=reason), as_user)
        silence = dict(before.silence)
        if silence.get("id"):
            try:
                self._client(silence.get("alertmanager")).expire(str(silence["id"]))
                silence["expired"] = True
            except (SilenceError, MaintenanceError) as exc:
                silence["error"] = str(exc)[:500]

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            row = self._repo.row(session, window_id, lock=True)
            now = self.service.clock.now()
            if row is None or row.ended_at is not None or row.ends_at <= now:
                raise Refused(f"maintenance window #{window_id} is already over")
            row.ended_at, row.ended_by, row.silence = now, as_user, silence
            return (OpChanges(maintenance=True, ids=(str(window_id),)),
                    {"ended_at": now.isoformat(), "silence": silence})

        self.service.runner.run(Operation("maintenance.end", target, ROLE, apply,
                                          reason=reason), as_user)
        return self._get(window_id)

    # --- helpers ----------------------------------------------------------------------

    def _services(self, service: str | None, incident_id: int | None) -> tuple[str, ...]:
        if service is not None:
            name = service.strip()
            if not name or len(name) > 200 or not name.isprintable():
                raise MaintenanceError(f"a service name is 1-200 printable characters, "
                                       f"got {service!r}")
            return (name,)
        with self.service.db.sessions() as session:
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise MaintenanceError(f"no incident {incident_id}")
            services = tuple(dict.fromkeys(row.services or ()))
        if not services:
            raise MaintenanceError(f"incident {incident_id} names no service")
        return services

    def _current(self, window_id: int) -> MaintenanceWindow:
        window = self.window(window_id)
        if window is None:
            raise MaintenanceError(f"no maintenance window #{window_id}")
        if window.state(self.service.clock.now()) in ("ended", "expired"):
            raise MaintenanceError(f"maintenance window #{window_id} is already over "
                                   f"({window.until.isoformat(timespec='minutes')})")
        return window

    def _get(self, window_id: int) -> MaintenanceWindow:
        window = self.window(window_id)
        assert window is not None  # just written
        return window

    def _client(self, url: object = None) -> Silences:
        target = str(url) if url else self.alertmanager
        if not target:
            raise MaintenanceError("no Alertmanager is configured for silences (--alertmanager "
                                   "URL, $WATCHFLOOR_ALERTMANAGER or Settings -> Sources)")
        if self._http is None:
            import httpx  # only when a silence is asked for: the engine loads no HTTP client

            self._http = httpx.Client(timeout=self._timeout)
        return Silences(target, self._http)

    def _silence(self, services: Iterable[str], starts: datetime, ends: datetime,
                 created_by: str, reason: str,
                 current: Mapping[str, Any] | None = None) -> dict[str, Any]:
        client = self._client(current.get("alertmanager") if current else None)
        try:
            silence_id = client.create(
                tuple(services), starts_at=starts, ends_at=ends, created_by=created_by,
                comment=f"Watchfloor maintenance: {reason}"[:1000],
                replaces=str(current["id"]) if current else None)
        except SilenceError as exc:
            raise MaintenanceError(f"the silence was not made, so neither was the change: "
                                   f"{exc}") from None
        return {"alertmanager": client.url, "id": silence_id}

    def _expire_quietly(self, silence: Mapping[str, Any]) -> None:
        if silence.get("id"):  # the window was not stored: neither may its silence stay
            with contextlib.suppress(SilenceError, MaintenanceError):  # else: it ends on time
                self._client(silence.get("alertmanager")).expire(str(silence["id"]))


def hold_back(service: WatchfloorService, signals: Iterable[Signal],
              now: datetime) -> list[Signal]:
    """The signals that may open or join incidents at `now`: a firing alert of a service
    under maintenance is left out (it is stored already); resolutions always pass, so an
    incident opened before the window can still resolve."""
    batch = list(signals)
    if not batch:
        return batch
    with service.db.sessions() as session:
        windows = MaintenanceRepo().applying(session, now)
    quiet = {name for w in windows for name in w.services}
    if not quiet:
        return batch
    return [s for s in batch if s.status is not AlertStatus.FIRING or s.service not in quiet]


def gate(decision: Decision, request: Request, window: MaintenanceWindow | None) -> Decision:
    """Policy's decision, held to the window: what an agent or a rule asked for on a
    service under maintenance needs a person, unless a person already approved it. A
    person's own request, and a denial, are left as they are."""
    if window is None or decision.outcome == "deny":
        return decision
    if not request.actor.startswith(("agent:", "rule:")):
        return decision
    people = [who for who in request.approved_by if who != request.actor]
    if people and decision.outcome == "allow":
        return decision
    return replace(decision, outcome="needs_approval",
                   reasons=(*decision.reasons, f"{window.describe()}: a person approves"),
                   approver_role=decision.approver_role or "operator")

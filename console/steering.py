"""The operator steers the agents working an incident: pin a hypothesis, exclude one,
exclude a service, or lift a steer.

Each is an operation (role operator, audited, denials included) that writes the steering
table and recomputes the states of the incident's current hypotheses in the same unit of
work, so the board, the audit and the agents never disagree about what the operator
said. The coordinator hears `SteeringChanged` and re-plans: the agents affected re-run
with the new steering.

Steers that contradict each other are resolved towards the newest one, and the lifted
steer is named in the audit record: pinning an excluded hypothesis lifts its exclusion,
excluding the pinned hypothesis (or its service) lifts the pin, and a new pin replaces
the old one (one pinned cause per incident: the recommender acts on it).

This module knows nothing of the agents (console never imports agents); the events it
publishes are the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from console.domain import AgentEvent, IncidentInfo, Severity
from console.events import Event, OpChanges
from console.operations import Operation, Refused
from console.service import WatchfloorService
from console.storage.models import IncidentRow
from console.storage.repos_agents import (
    STEER_KINDS,
    AgentEventRepo,
    HypothesisRepo,
    RankedHypothesis,
    Steer,
    Steering,
    SteeringRepo,
)

ROLE = "operator"


@dataclass(frozen=True, slots=True)
class SteeringChanged(Event):
    """An operator steered an incident. `changed_kinds` names the kinds of steer that were
    added or lifted (the coordinator re-runs the investigation when excluded services
    changed, and the agents that act on hypotheses otherwise); `hypotheses` is the
    incident's board after the change."""

    incident: IncidentInfo
    kind: str  # pin | exclude_hypothesis | exclude_service | clear
    value: str
    user: str
    steering: Steering
    hypotheses: tuple[RankedHypothesis, ...]
    changed_kinds: tuple[str, ...]

    @property
    def incident_id(self) -> int:
        return self.incident.id


def hypothesis_key(key: str) -> str:
    """`service/fault_class`, both parts non-empty; bad input is a ValueError (exit 2)."""
    service, sep, fault = key.strip().partition("/")
    if not sep or not service or not fault or "/" in fault or len(key) > 200:
        raise ValueError(f"a hypothesis is named service/fault_class, got {key!r}")
    return f"{service}/{fault}"


def service_name(service: str) -> str:
    service = service.strip()
    if not service or len(service) > 200 or not service.isprintable():
        raise ValueError(f"a service name is 1-200 printable characters, got {service!r}")
    return service


class SteeringOps:
    """The steering operations and the board's queries, over the service facade."""

    def __init__(self, service: WatchfloorService) -> None:
        self.service = service
        self._steers = SteeringRepo()
        self._hypotheses = HypothesisRepo()
        self._events = AgentEventRepo()

    # --- operations -------------------------------------------------------------------

    def pin_hypothesis(self, incident_id: int, key: str, *, as_user: str,
                       reason: str = "") -> OpChanges:
        """The operator names the cause; the recommender must act on it."""
        return self._steer(incident_id, "pin", hypothesis_key(key), as_user, reason)

    def exclude_hypothesis(self, incident_id: int, key: str, *, as_user: str,
                           reason: str = "") -> OpChanges:
        """The operator rules a cause out; it stays on the board, marked excluded."""
        return self._steer(incident_id, "exclude_hypothesis", hypothesis_key(key), as_user,
                           reason)

    def exclude_service(self, incident_id: int, service: str, *, as_user: str,
                        reason: str = "") -> OpChanges:
        """No hypothesis on the service stays live, and no agent runs a tool on it."""
        return self._steer(incident_id, "exclude_service", service_name(service), as_user,
                           reason)

    def clear_steer(self, incident_id: int, kind: str | None = None, value: str | None = None,
                    *, as_user: str, reason: str = "") -> OpChanges:
        """Lift the active steers of the incident that match `kind` and `value` (all of
        them when neither is given); refused when none matches."""
        if kind is not None and kind not in STEER_KINDS:
            raise ValueError(f"unknown steer {kind!r} (known: {', '.join(STEER_KINDS)})")
        holder: dict[str, Any] = {}

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            incident = self._incident(session, incident_id)
            lifted = [s for s in self._steers.active(session, incident_id)
                      if (kind is None or s.kind == kind) and (value is None or s.value == value)]
            if not lifted:
                raise Refused(f"no active steer on incident {incident_id} matches")
            self._steers.deactivate(session, [s.id for s in lifted])
            return self._settle(session, incident, lifted, holder)

        self.service.runner.run(Operation(
            "incident.steer.clear", f"incident:{incident_id}", ROLE, apply, reason=reason,
            inputs={"kind": kind, "value": value}), as_user)
        self._announce(holder, "clear", value or kind or "all", as_user)
        return holder["changes"]  # type: ignore[no-any-return]

    # --- queries ----------------------------------------------------------------------

    def steering(self, incident_id: int) -> Steering:
        with self.service.db.sessions() as session:
            return self._steers.steering(session, incident_id)

    def steers(self, incident_id: int) -> list[Steer]:
        with self.service.db.sessions() as session:
            return self._steers.active(session, incident_id)

    def hypotheses(self, incident_id: int) -> list[RankedHypothesis]:
        """Current hypotheses of the incident: pinned first, excluded shown but marked."""
        with self.service.db.sessions() as session:
            return self._hypotheses.current(session, incident_id)

    def agent_events(self, incident_id: int, *, after_id: int = 0,
                     limit: int = 5000) -> list[AgentEvent]:
        with self.service.db.sessions() as session:
            return self._events.for_incident(session, incident_id, after_id=after_id,
                                             limit=limit)

    # --- the one way a steer is made ------------------------------------------------

    def _steer(self, incident_id: int, kind: str, value: str, as_user: str,
               reason: str) -> OpChanges:
        holder: dict[str, Any] = {}

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            incident = self._incident(session, incident_id)
            active = self._steers.active(session, incident_id)
            if any(s.kind == kind and s.value == value for s in active):
                raise Refused(f"{value} is already {_DONE[kind]} on incident {incident_id}")
            if kind == "pin":
                if self._hypotheses.latest(session, incident_id, value) is None:
                    raise Refused(f"no hypothesis {value} on incident {incident_id} to pin")
                service = value.partition("/")[0]
                if any(s.kind == "exclude_service" and s.value == service for s in active):
                    raise Refused(f"service {service} is excluded on incident {incident_id}; "
                                  "lift that first")
            lifted = [s for s in active if _contradicts(kind, value, s)]
            self._steers.deactivate(session, [s.id for s in lifted])
            steer = self._steers.add(session, incident_id, kind, value, as_user,
                                     self.service.clock.now())
            holder["steer"] = steer.id
            return self._settle(session, incident, [*lifted, steer], holder)

        self.service.runner.run(Operation(
            f"incident.steer.{kind}", f"incident:{incident_id}", ROLE, apply, reason=reason,
            inputs={"kind": kind, "value": value}), as_user)
        self._announce(holder, kind, value, as_user)
        return holder["changes"]  # type: ignore[no-any-return]

    def _settle(self, session: Session, incident: IncidentInfo, touched: list[Steer],
                holder: dict[str, Any]) -> tuple[OpChanges, Mapping[str, Any]]:
        """Recompute the board under the new steering; what the audit record keeps."""
        steering = self._steers.steering(session, incident.id)
        changed = self._hypotheses.apply_steering(session, incident.id, steering,
                                                  self.service.clock.now())
        changes = OpChanges(incidents=True, ids=(str(incident.id),))
        holder.update(incident=incident, steering=steering, changes=changes,
                      kinds=tuple(sorted({s.kind for s in touched})),
                      hypotheses=tuple(self._hypotheses.current(session, incident.id)))
        lifted = [f"{s.kind} {s.value}" for s in touched if s.id != holder.get("steer")]
        return changes, {"steering": steering.as_dict(), "restated": changed,
                         "lifted": lifted}

    def _announce(self, holder: Mapping[str, Any], kind: str, value: str, user: str) -> None:
        self.service.bus.publish(SteeringChanged(
            holder["incident"], kind, value, user, holder["steering"], holder["hypotheses"],
            holder["kinds"]))

    @staticmethod
    def _incident(session: Session, incident_id: int) -> IncidentInfo:
        row = session.get(IncidentRow, incident_id)
        if row is None:
            raise Refused(f"no incident {incident_id}")
        return IncidentInfo(row.id, row.title, Severity(row.severity), row.state,
                            tuple(row.services), row.opened_at, row.resolved_at)


_DONE = {"pin": "pinned", "exclude_hypothesis": "excluded", "exclude_service": "excluded"}


def _contradicts(kind: str, value: str, other: Steer) -> bool:
    """Whether the new steer (kind, value) lifts the active steer `other`."""
    if kind == "pin":
        return other.kind == "pin" or (other.kind == "exclude_hypothesis"
                                       and other.value == value)
    if kind == "exclude_hypothesis":
        return other.kind == "pin" and other.value == value
    if kind == "exclude_service":
        return other.kind == "pin" and other.value.partition("/")[0] == value
    return False

"""Typed bus events. Every event is a frozen dataclass; panes and agents subscribe by type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from console.domain import AuditEntry, ChangeEvent, IncidentInfo, LogRecord, Signal

if TYPE_CHECKING:
    from console.storage.repos_causes import Cause


@dataclass(frozen=True, slots=True)
class OpChanges:
    """What an operation changed, so that each pane refreshes only its own collection."""

    incidents: bool = False
    signals: bool = False
    recommendations: bool = False
    executions: bool = False
    audit: bool = False
    settings: bool = False
    users: bool = False
    tickets: bool = False
    assessments: bool = False
    maintenance: bool = False
    metrics: bool = False  # the estate's metric samples (console/metric_samples.py)
    ids: tuple[str, ...] = ()

    def any(self) -> bool:
        return any((self.incidents, self.signals, self.recommendations, self.executions,
                    self.audit, self.settings, self.users, self.tickets, self.assessments,
                    self.maintenance, self.metrics))


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of all bus events."""


@dataclass(frozen=True, slots=True)
class OperationDone(Event):
    operation: str
    changes: OpChanges
    initiator: str
    result: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperationDenied(Event):
    operation: str
    initiator: str
    reason: str


@dataclass(frozen=True, slots=True)
class SignalsReceived(Event):
    signals: tuple[Signal, ...]


@dataclass(frozen=True, slots=True)
class ChangesReceived(Event):
    changes: tuple[ChangeEvent, ...]


@dataclass(frozen=True, slots=True)
class LogsReceived(Event):
    logs: tuple[LogRecord, ...]


@dataclass(frozen=True, slots=True)
class AuditAppended(Event):
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class EstateSnapshot(Event):
    """Current metrics of every service, published once per simulation step."""

    at: datetime
    metrics: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class ScenarioFinished(Event):
    scenario: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HandlerFailed(Event):
    """A subscriber raised; the failure is reported here instead of being lost."""

    event_type: str
    handler: str
    error: str


@dataclass(frozen=True, slots=True)
class IncidentsUpdated(Event):
    """Incidents were opened, grew, resolved or reopened (stored ids)."""

    incidents: tuple[IncidentInfo, ...]


@dataclass(frozen=True, slots=True)
class CausesChanged(Event):
    """An incident's causes, or what stands for each (its state, its recommendations and
    their runs), changed; `causes` is the whole current list, first found first, so a
    listener needs no read of its own."""

    incident_id: int
    causes: tuple[Cause, ...]


@dataclass(frozen=True, slots=True)
class SourceHealthChanged(Event):
    """A signal source became degraded (with why) or healthy again."""

    source: str
    state: str  # ok | degraded
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notification(Event):
    """Something a person should see now (a rule's notify step, an approval waiting)."""

    channel: str
    message: str
    severity: str = "info"


@dataclass(frozen=True, slots=True)
class RemoteChange(OperationDone):
    """An operation another console committed, read from the change feed
    (console/team_sync.py). It is an OperationDone, so every pane that refreshes on one
    refreshes on this; `origin` names the console, `seq` the feed row, `committed_at` the
    wall-clock time of its commit (so a reader can tell how late it heard)."""

    origin: str = ""
    seq: int = 0
    committed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeadershipChanged(Event):
    """Who leads the team, or who is in it, changed (console/team_seat.py): the leader
    runs the agents and the sources; the others follow the change feed."""

    console_id: str  # this console
    leading: bool  # this console leads
    leader: str = ""  # "user@host" of the console that leads now; "" while none does
    members: tuple[str, ...] = ()  # "user@host" of each connected console, the leader first

"""What Watchfloor asks of a ticketing system, whichever one it is.

The built-in store (console/itsm/store.py) is the default; ServiceNow, Jira and
PagerDuty adapters implement the same protocol over their HTTP APIs. Every call that
creates something takes an idempotency key: calling it again with the same key returns
the ticket made the first time instead of opening a second one (a retried request or a
crash between the call and our commit must never open two tickets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TicketKind = Literal["incident", "change"]


class TicketError(Exception):
    """The ticketing system refused or could not be reached after its retries."""


@dataclass(frozen=True)
class TicketRef:
    system: str  # builtin | servicenow | jira | pagerduty
    id: str  # the system's own id (sys_id, issue key, dedup_key, builtin number)
    kind: TicketKind = "incident"
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class TicketSystem(Protocol):
    name: str

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef: ...

    def update(self, ref: TicketRef, note: str) -> None: ...

    def route(self, ref: TicketRef, group: str) -> None: ...

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None: ...

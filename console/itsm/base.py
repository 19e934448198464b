"""What Watchfloor asks of a ticketing system, whichever one it is.

The built-in store (console/itsm/store.py) is the default; ServiceNow, Jira and
PagerDuty adapters implement the same protocol over their HTTP APIs. Every call that
creates something takes an idempotency key: calling it again with the same key returns
the ticket made the first time instead of opening a second one (a retried request or a
crash between the call and our commit must never open two tickets).
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    @property
    def name(self) -> str:
        """The name its tickets carry in `TicketRef.system` (builtin, servicenow...)."""
        ...

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef: ...

    def update(self, ref: TicketRef, note: str) -> None: ...

    def route(self, ref: TicketRef, group: str) -> None: ...

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first one included
    backoff: float = 0.5  # seconds before the 2nd attempt; doubles each time
    max_delay: float = 30.0  # no wait is longer, Retry-After included
    timeout: float = 10.0  # connect, read, write and pool, each
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before attempt `attempt + 1` (attempt counts from 1)."""
        wanted = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
        return max(0.0, min(wanted, self.max_delay))

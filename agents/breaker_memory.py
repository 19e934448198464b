"""What the circuit breaker decided before the console started again.

The breaker (agents/escalation.py) holds its causes, attempts and escalations in memory
while it runs, and writes every decision down as it takes it (console/escalations.py:
an audit record per judged outcome and per escalation). A console that starts again
would otherwise meet each earlier action as a fresh, unjudged attempt: it would judge
and record it a second time, and a cause already handed to a person would be open to
autonomous fixes again. `recall` reads those decisions back, within the breaker's own
windows, so a breaker opened before a restart stays open after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from console.escalations import ESCALATED_ACTION, OUTCOME_ACTION, stored_decisions
from console.storage.db import Database

_OUTCOMES = frozenset({"effective", "ineffective", "did_not_last"})


@dataclass(frozen=True, slots=True)
class Judged:
    """An action's outcome as the breaker recorded it."""

    outcome: str
    why: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Handover:
    """A cause of an incident handed to a person, and why."""

    incident_id: int
    service: str
    fault_class: str
    why: str


@dataclass
class Memory:
    judged: dict[int, Judged] = field(default_factory=dict)  # execution id -> latest
    handovers: list[Handover] = field(default_factory=list)  # oldest first


def recall(db: Database, since: datetime) -> Memory:
    """The outcomes and escalations recorded at or after `since` (the latest outcome of
    an execution wins: an effective fix may later have been found not to last)."""
    memory = Memory()
    for entry in stored_decisions(db, since):
        kind, _, ident = entry.target.partition(":")
        if not ident.isdigit():
            continue
        inputs, outputs = entry.inputs or {}, entry.outputs or {}
        if entry.action == OUTCOME_ACTION and kind == "execution":
            outcome = str(outputs.get("outcome", ""))
            if outcome in _OUTCOMES:
                memory.judged[int(ident)] = Judged(outcome, entry.reason, entry.at)
        elif entry.action == ESCALATED_ACTION and kind == "incident":
            service, fault = inputs.get("service"), inputs.get("fault_class")
            if service and fault:
                memory.handovers.append(Handover(int(ident), str(service), str(fault),
                                                 str(outputs.get("why") or entry.reason)))
    return memory

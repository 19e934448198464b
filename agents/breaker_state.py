"""What the circuit breaker (agents/escalation.py) holds per cause: each action on it and
its outcome, the incidents it was handed to a person on, and its answer to a proposal.

Kept apart from the breaker's logic so the console's restart (agents/breaker_memory.py)
and the tests build the same state the breaker does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agents.investigator_text import hhmmss


@dataclass
class Attempt:
    """One action on a cause and what came of it."""

    execution_id: int
    incident_id: int
    runbook_id: str
    autonomous: bool
    started_at: datetime
    state: str
    finished_at: datetime | None = None
    outcome: str = "pending"  # pending | effective | ineffective | did_not_last
    why: str = ""
    judged_at: datetime | None = None
    returning: int = 0  # checks in a row that saw an effective one's symptoms back

    @property
    def failed(self) -> bool:
        return self.outcome in ("ineffective", "did_not_last")

    def line(self) -> str:
        verdict = self.outcome.replace("_", " ")
        return (f"{self.runbook_id} #{self.execution_id} at {hhmmss(self.started_at)} "
                f"({'on its own' if self.autonomous else 'approved'}): {verdict}"
                + (f": {self.why}" if self.why else ""))


@dataclass
class Cause:
    service: str
    fault_class: str
    attempts: list[Attempt] = field(default_factory=list)
    escalated: dict[int, str] = field(default_factory=dict)  # incident -> reason

    @property
    def key(self) -> str:
        return f"{self.service}/{self.fault_class}"


@dataclass(frozen=True, slots=True)
class Review:
    """What the breaker lets a proposal do: run on its own, wait for a person, or
    nothing (`stop`), and why."""

    autonomous: bool
    stop: bool = False
    why: str = ""

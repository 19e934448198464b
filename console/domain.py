"""Domain types shared by the core, the agents and the panes.

They are frozen dataclasses so that they can travel on the event bus, be compared in
tests and be handed to another thread without copying. Repositories return these,
never ORM rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class SignalKind(StrEnum):
    ALERT = "alert"
    LOG = "log"
    CHANGE = "change"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint_of(name: str, labels: Mapping[str, str]) -> str:
    """Stable identity of an alert series: its name and its sorted labels."""
    body = json.dumps([name, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Signal:
    """One normalized observation: an alert state change or a notable log line.

    `service` is the service the signal is *about* (where it was observed), which is
    often not where the cause is.
    """

    source: str
    kind: SignalKind
    name: str
    service: str
    severity: Severity
    status: AlertStatus
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint_of(self.name, self.labels))


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A deploy, config change, feature-flag flip or scaling change on a service."""

    service: str
    kind: str  # deploy | config | feature_flag | scale
    description: str
    at: datetime
    author: str = "ci"
    version_from: str | None = None
    version_to: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            body = f"{self.service}|{self.kind}|{self.at.isoformat()}|{self.description}"
            object.__setattr__(self, "id", "chg-" + hashlib.sha256(body.encode()).hexdigest()[:12])


@dataclass(frozen=True, slots=True)
class LogRecord:
    service: str
    level: str  # DEBUG | INFO | WARN | ERROR
    message: str
    at: datetime
    instance: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record of the append-only audit chain (see console/audit.py)."""

    seq: int
    at: datetime
    actor: str  # "user:alice" or "agent:correlator" or "system"
    action: str
    target: str
    reason: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    decision: str  # allow | deny | needs_approval | n/a
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    id: int
    title: str
    severity: Severity
    state: str  # open | resolved
    services: tuple[str, ...]
    opened_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimelineNote:
    """One line of an incident's timeline (a grouping decision, an action, a note)."""

    at: datetime
    kind: str  # signal | change | agent | approval | action | validation | note
    summary: str
    ref: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """What an agent learned about one incident in one step, to be stored at once.

    `key` is the agent's own handle for the incident; `id` is the stored id, None
    until the first update of that incident has been stored.
    """

    key: int
    id: int | None
    title: str
    severity: Severity
    state: str
    services: tuple[str, ...]
    opened_at: datetime
    resolved_at: datetime | None
    notes: tuple[TimelineNote, ...] = ()
    audit: tuple[tuple[str, str], ...] = ()  # (action, reason) worth an audit record


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A runbook with filled parameters, its execution preview and who may approve it."""

    id: int
    runbook_id: str
    action_class: str
    target: str
    params: Mapping[str, Any]
    preview: Mapping[str, Any]
    preview_hash: str
    confidence: float
    explanation: str
    state: str  # pending | queued | executing | executed | rejected | expired | cancelled
    requester: str
    risk: str
    autonomous: bool
    created_at: datetime
    expires_at: datetime | None
    incident_id: int | None = None
    approvals: tuple[tuple[str, str], ...] = ()  # (user, role) of approvals still valid

    @property
    def basis(self) -> str:
        """What `confidence` rests on, in words (the explanation's `Basis:` line): the
        diagnosis' confidence and why, times the fix's expected success and its record."""
        for line in self.explanation.splitlines():
            if line.startswith("Basis: "):
                return line.removeprefix("Basis: ")
        return ""

    @property
    def confidence_parts(self) -> tuple[float, float] | None:
        """(diagnosis, fix success) whose product is `confidence`, when the basis says."""
        found = _BASIS_PARTS.search(self.basis)
        return (float(found[1]), float(found[2])) if found else None


_BASIS_PARTS = re.compile(r"^diagnosis ([0-9.]+) \(.*\) x fix success ([0-9.]+) \(")


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of a runbook: its plan (written before it ran), state and results."""

    id: int
    recommendation_id: int | None
    runbook_id: str
    action_class: str
    target: str
    initiator: str
    autonomous: bool
    state: str
    step: int
    plan: Mapping[str, Any]
    result: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime | None
    validate_by: datetime | None

    @property
    def reversible(self) -> bool:
        return bool(self.plan.get("rollback"))

    @property
    def can_roll_back(self) -> bool:
        return self.reversible and self.state in ROLLBACK_FROM


ROLLBACK_FROM = ("succeeded", "failed", "interrupted", "validating")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact behind a hypothesis or an answer, with a link to where it came from.

    `ref` is a link the console can open: `signal:<fingerprint>`, `change:<id>`,
    `metric:<service>/<metric>@<iso time>`, `log:<service>/<template id>`,
    `incident:<id>`, `execution:<id>`, `recommendation:<id>`, `runbook:<id>`,
    `knowledge:<id>`, `audit:<seq>`, `ticket:<number>`."""

    kind: str  # metric | change | log | alert | topology | trend | runbook | audit | ...
    summary: str
    ref: str
    weight: float = 0.0  # how much it moved the score (0 for context)


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """A candidate root cause of an incident: where, what kind, how sure, and why."""

    service: str
    fault_class: str  # a fault class of the runbook library (applies_to.faults)
    confidence: float  # calibrated: over many incidents, 0.8 is right 80% of the time
    evidence: tuple[Evidence, ...] = ()
    score: float = 0.0  # the investigator's raw score, before calibration
    signals: int = 0  # independent signals that corroborate it (metric, change, log...)
    # Which of the incident's causes it would be (an incident may have several at once):
    # 1, 2... in the investigator's ranking, the stored cause's ordinal once on the board;
    # 0 when nobody grouped it (one cause assumed).
    cause: int = 0
    # The zone, when several services lost instances in one zone together and this
    # hypothesis stands for that partition (named by the zone label the sources carry).
    zone: str = ""

    @property
    def key(self) -> str:
        return f"{self.service}/{self.fault_class}"


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """What the coordination view and the audit show of the agents' work: a message
    between agents, a hypothesis, a tool call, a status change, an error."""

    id: int
    incident_id: int | None
    agent: str
    kind: str  # message | hypothesis | tool_call | status | error | steer
    summary: str
    at: datetime
    to_agent: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None

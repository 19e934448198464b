"""SQLAlchemy 2.0 typed models: one table per core collection.

Portable by construction: generic types only (JSON, String, UTC datetime), so the same
models and migrations run on SQLite and PostgreSQL. The schema itself is created by
Alembic (console/storage/migrations); `Base.metadata` is the reference Alembic's
autogenerate compares against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite drops the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


intpk = Annotated[int, mapped_column(Integer, primary_key=True, autoincrement=True)]
utc = Annotated[datetime, mapped_column(UTCDateTime())]
utc_opt = Annotated[datetime | None, mapped_column(UTCDateTime(), nullable=True)]
name64 = Annotated[str, mapped_column(String(64))]
name200 = Annotated[str, mapped_column(String(200))]
jsondict = Annotated[dict[str, Any], mapped_column(JSON, default=dict)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[intpk]
    title: Mapped[name200]
    severity: Mapped[name64]
    state: Mapped[name64]
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    opened_at: Mapped[utc]
    resolved_at: Mapped[utc_opt]
    root_cause: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SignalRow(Base):
    __tablename__ = "signals"
    id: Mapped[intpk]
    source: Mapped[name64]
    kind: Mapped[name64]
    name: Mapped[name200]
    service: Mapped[name200] = mapped_column(index=True)
    severity: Mapped[name64]
    status: Mapped[name64]
    fingerprint: Mapped[name64] = mapped_column(index=True)
    at: Mapped[utc] = mapped_column(index=True)
    labels: Mapped[jsondict]
    annotations: Mapped[jsondict]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)


class ChangeRow(Base):
    __tablename__ = "changes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[name200] = mapped_column(index=True)
    kind: Mapped[name64]
    description: Mapped[str] = mapped_column(Text)
    author: Mapped[name200]
    version_from: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[utc] = mapped_column(index=True)


class TimelineEventRow(Base):
    __tablename__ = "timeline_events"
    id: Mapped[intpk]
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[utc]
    kind: Mapped[name64]  # signal | change | agent | approval | action | validation | note
    summary: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    data: Mapped[jsondict]


class RunbookRow(Base):
    __tablename__ = "runbooks"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[name200]
    version: Mapped[int] = mapped_column(Integer, default=1)
    risk_tier: Mapped[name64]
    owner: Mapped[name200]
    body: Mapped[jsondict]
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)


class RecommendationRow(Base):
    __tablename__ = "recommendations"
    id: Mapped[intpk]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    runbook_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[name64]
    target: Mapped[name200]
    params: Mapped[jsondict]
    preview: Mapped[jsondict]
    preview_hash: Mapped[name64]
    confidence: Mapped[float] = mapped_column(Float)
    explanation: Mapped[str] = mapped_column(Text)
    # pending | queued | executing | executed | rejected | expired | cancelled | denied
    state: Mapped[name64]
    created_at: Mapped[utc]
    expires_at: Mapped[utc_opt]
    requester: Mapped[str] = mapped_column(String(200), default="")  # user:NAME | agent:NAME
    action_class: Mapped[str] = mapped_column(String(64), default="")
    risk: Mapped[str] = mapped_column(String(16), default="medium")
    autonomous: Mapped[bool] = mapped_column(default=False)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    id: Mapped[intpk]
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    user: Mapped[name200]
    decision: Mapped[name64]  # approved | rejected
    reason: Mapped[str] = mapped_column(Text, default="")
    preview_hash: Mapped[name64]
    at: Mapped[utc]
    role: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[utc_opt]
    void: Mapped[bool] = mapped_column(default=False)  # the preview changed after it


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (UniqueConstraint("idempotency_key"),)
    id: Mapped[intpk]
    recommendation_id: Mapped[int | None] = mapped_column(
        ForeignKey("recommendations.id"), nullable=True
    )
    idempotency_key: Mapped[name200]
    action: Mapped[name64]
    target: Mapped[name200]
    params: Mapped[jsondict]
    initiator: Mapped[name200]
    autonomous: Mapped[bool] = mapped_column(default=False)
    # intent | running | validating | succeeded | failed | interrupted | rolling_back
    # | rolled_back | rollback_failed
    state: Mapped[name64]
    result: Mapped[jsondict]
    started_at: Mapped[utc]
    finished_at: Mapped[utc_opt]
    runbook_id: Mapped[str] = mapped_column(String(128), default="")
    plan: Mapped[jsondict]  # rendered steps, probe, rollback steps: written before running
    step: Mapped[int] = mapped_column(Integer, default=0)  # steps begun so far
    validate_by: Mapped[utc_opt]


class RollbackRow(Base):
    __tablename__ = "rollbacks"
    id: Mapped[intpk]
    execution_id: Mapped[int] = mapped_column(ForeignKey("executions.id"))
    user: Mapped[name200]
    state: Mapped[name64]
    result: Mapped[jsondict]
    at: Mapped[utc]


class AuditRow(Base):
    __tablename__ = "audit_records"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[utc]
    actor: Mapped[name200]
    action: Mapped[name200]
    target: Mapped[name200]
    reason: Mapped[str] = mapped_column(Text)
    inputs: Mapped[jsondict]
    outputs: Mapped[jsondict]
    decision: Mapped[name64]
    prev_hash: Mapped[name64]
    hash: Mapped[name64] = mapped_column(unique=True)


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[name200]
    role: Mapped[name64]  # viewer | operator | approver | admin
    created_at: Mapped[utc]
    # console/auth.py: "$scrypt$ln=..,r=..,p=..$salt$hash" (salt and parameters kept with
    # the hash, so they can be raised later); None: this person has no password yet.
    password_hash: Mapped[str | None] = mapped_column(String(512), nullable=True)
    password_set_at: Mapped[utc_opt]


class SignInThrottleRow(Base):
    """Consecutive failed sign-ins of one name or one workstation (console/auth.py), and
    the earliest time the next attempt is looked at. The key is a SHA-256 of the name as
    typed, so a password typed into the name field is never kept in plain text."""

    __tablename__ = "sign_in_throttle"
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # user | workstation
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[utc_opt]
    not_before: Mapped[utc_opt]


class AssessmentRow(Base):
    """One maturity self-assessment (console/assessment.py): the placement, the answers,
    the evidence it was checked against and why; kept to show the trend over time."""

    __tablename__ = "assessments"
    id: Mapped[intpk]
    at: Mapped[utc] = mapped_column(index=True)
    assessor: Mapped[name200]
    level: Mapped[int] = mapped_column(Integer)
    answers: Mapped[jsondict]
    evidence: Mapped[jsondict]
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    claimed_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evidence_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the rest of the placement: traps shown, next steps, per-level checks, shadow replay
    details: Mapped[jsondict]


class SettingRow(Base):
    """Operator-level settings that every console shares (autonomy ceiling, kill switch)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class InboundPayloadRow(Base):
    """Every accepted webhook delivery or imported file, kept before it is answered."""

    __tablename__ = "inbound_payloads"
    id: Mapped[intpk]
    source: Mapped[name64]
    digest: Mapped[name64] = mapped_column(unique=True)  # duplicate deliveries are no-ops
    received_at: Mapped[utc]
    body: Mapped[jsondict]
    signals: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[int] = mapped_column(Integer, default=0)


class DeadLetterRow(Base):
    """A rejected delivery, kept verbatim (truncated) with the reason, for review."""

    __tablename__ = "dead_letters"
    id: Mapped[intpk]
    source: Mapped[name64]
    received_at: Mapped[utc]
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)


class LogRow(Base):
    """An imported log line with the template drain3 mined for it."""

    __tablename__ = "log_records"
    # The investigator asks for a window of some services' lines: service, then time.
    __table_args__ = (Index("ix_log_records_service_at", "service", "at"),)
    id: Mapped[intpk]
    service: Mapped[name200]
    level: Mapped[name64]
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[utc] = mapped_column(index=True)
    instance: Mapped[name200]
    template: Mapped[str] = mapped_column(Text)
    template_id: Mapped[int] = mapped_column(Integer)


class KnowledgeRow(Base):
    """A document for retrieval (an imported Markdown runbook); never executed."""

    __tablename__ = "knowledge_docs"
    id: Mapped[intpk]
    digest: Mapped[name64] = mapped_column(unique=True)
    title: Mapped[name200]
    alert: Mapped[name200] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(Text)
    sections: Mapped[jsondict]
    extra: Mapped[jsondict]
    imported_at: Mapped[utc]


class TicketRow(Base):
    """A ticket of the built-in store (console/itsm/store.py); external systems keep their
    own. The idempotency key makes a retried open return the ticket made the first time."""

    __tablename__ = "tickets"
    id: Mapped[intpk]
    number: Mapped[name64] = mapped_column(unique=True)  # INC-0001 | CHG-0001
    seq: Mapped[int] = mapped_column(Integer)  # the number's counter, per kind
    kind: Mapped[name64]  # incident | change
    title: Mapped[name200]
    body: Mapped[str] = mapped_column(Text, default="")
    service: Mapped[name200]
    severity: Mapped[name64]
    state: Mapped[name64]  # open | routed | closed
    group: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    resolution: Mapped[str] = mapped_column(Text, default="")
    success: Mapped[bool | None] = mapped_column(nullable=True)
    idempotency_key: Mapped[name200] = mapped_column(unique=True)
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class HypothesisRow(Base):
    """The investigator's ranked causes of one incident; the newest ranking is `live`,
    older ones `superseded`; the operator may pin or exclude one (steering)."""

    __tablename__ = "hypotheses"
    id: Mapped[intpk]
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    agent: Mapped[name64]
    service: Mapped[name200]
    fault_class: Mapped[name64]
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    rank: Mapped[int] = mapped_column(Integer)
    signals: Mapped[int] = mapped_column(Integer, default=0)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[name64]  # live | superseded | pinned | excluded
    created_at: Mapped[utc]
    updated_at: Mapped[utc]
    cause: Mapped[int] = mapped_column(Integer, default=0)  # the cause's ordinal; 0: none


class CauseRow(Base):
    """One cause of an incident (an incident may have several at once): its current
    diagnosis, every hypothesis key it has held (what its recommendations were made
    for), and its state (console/storage/repos_causes.py)."""

    __tablename__ = "causes"
    __table_args__ = (UniqueConstraint("incident_id", "ordinal"),)
    id: Mapped[intpk]
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)  # 1 the first found, then 2...
    service: Mapped[name200]
    fault_class: Mapped[name64]
    confidence: Mapped[float] = mapped_column(Float)
    signals: Mapped[int] = mapped_column(Integer, default=0)
    keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # diagnosing | waiting | running | validating | resolved | rolled_back | needs_person
    # | withdrawn
    state: Mapped[name64]
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[utc]
    updated_at: Mapped[utc]
    # the zone a zone-wide cause stands for ("" when it is one service's)
    zone: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AgentEventRow(Base):
    """A message, hypothesis, tool call, status change or error of an agent."""

    __tablename__ = "agent_events"
    id: Mapped[intpk]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True,
                                                    index=True)
    agent: Mapped[name64]
    kind: Mapped[name64]
    to_agent: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[jsondict]
    at: Mapped[utc] = mapped_column(index=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)


class SteeringRow(Base):
    """An operator's steer of one incident: pin or exclude a hypothesis, exclude a service."""

    __tablename__ = "steering"
    id: Mapped[intpk]
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[name64]  # pin | exclude_hypothesis | exclude_service
    value: Mapped[name200]  # service/fault_class, or a service
    user: Mapped[name200]
    active: Mapped[bool] = mapped_column(default=True)
    at: Mapped[utc]


class ReportRow(Base):
    """A document the scribe wrote: a stakeholder update draft or a post-incident report."""

    __tablename__ = "reports"
    id: Mapped[intpk]
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[name64]  # stakeholder_update | postmortem
    title: Mapped[name200]
    markdown: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    data: Mapped[jsondict]
    created_at: Mapped[utc]


class PlaybookDraftRow(Base):
    """A playbook the playbook agent drafted where no runbook fitted: never run until it
    passed the policy lint and a dry run and a person signed it off."""

    __tablename__ = "playbook_drafts"
    id: Mapped[intpk]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    runbook_id: Mapped[name200]
    fault_class: Mapped[name64]
    yaml: Mapped[str] = mapped_column(Text)  # the runbook, in the library's YAML format
    state: Mapped[name64]  # draft | linted | dry_run_passed | signed_off | rejected
    lint: Mapped[jsondict]
    dry_run: Mapped[jsondict]
    signed_off_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[utc]
    updated_at: Mapped[utc]


class EvalRunRow(Base):
    """One `watchfloor eval`: the agents replayed against scenarios, with the scores."""

    __tablename__ = "eval_runs"
    id: Mapped[intpk]
    at: Mapped[utc]
    scope: Mapped[jsondict]  # scenarios and seeds replayed
    scores: Mapped[jsondict]  # accuracy, calibration, playbook selection, would-be actions
    cases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ChangeFeedRow(Base):
    """One committed change, written in the transaction that made it (console/team_sync.py):
    every console reads the rows after the last it saw and republishes the others'. `seq`
    grows in commit order (the writers are serialized), so "after the last seen" misses
    nothing."""

    __tablename__ = "change_feed"
    # a pruned seq is never handed out again
    __table_args__ = ({"sqlite_autoincrement": True},)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=True)
    at: Mapped[utc] = mapped_column(index=True)  # wall clock at commit (latency, retention)
    origin: Mapped[name200]  # the console that made the change
    operation: Mapped[name200]
    changes: Mapped[jsondict]  # the OpChanges fields
    initiator: Mapped[name200]


class TeamMemberRow(Base):
    """A console of the team (console/leader.py): who it is, whether it leads (runs the
    agents and the sources), and its last heartbeat."""

    __tablename__ = "team_members"
    console_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user: Mapped[name200]
    host: Mapped[name200]
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[name64]  # leader | follower
    started_at: Mapped[utc]
    heartbeat_at: Mapped[utc] = mapped_column(index=True)
    leader_since: Mapped[utc_opt]
    clock_at: Mapped[utc_opt]  # the console's clock at its heartbeat (a simulated estate's)
    # console (a window that may lead) | window (follows an engine) | engine (headless)
    kind: Mapped[name64] = mapped_column(server_default="console")


class CorrelationBacklogRow(Base):
    """A stored delivery whose signals are not correlated yet (console/correlation.py).
    Written in the delivery's own transaction, deleted once its signals are correlated:
    what a crash or a lost leadership leaves here is correlated by the next leader."""

    __tablename__ = "correlation_backlog"
    delivery_id: Mapped[int] = mapped_column(ForeignKey("inbound_payloads.id"),
                                             primary_key=True, autoincrement=False)
    queued_at: Mapped[utc]


class MaintenanceRow(Base):
    """A maintenance window (console/maintenance.py): while it applies, its services'
    alerts are kept but open no incident, and nothing runs on them on its own. It stops
    applying at `ends_at` by itself; `ended_at` is set when a person ends it early."""

    __tablename__ = "maintenance_windows"
    id: Mapped[intpk]
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[name200]
    starts_at: Mapped[utc]
    ends_at: Mapped[utc] = mapped_column(index=True)
    ended_at: Mapped[utc_opt]
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    silence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MetricSampleRow(Base):
    """One service's metrics at one moment of the estate, as the leading console saw them
    (console/metric_samples.py): what another console's Services and Metrics panes and
    incident plot draw. Only the newest rows are kept."""

    __tablename__ = "metric_samples"
    # an id is never handed out twice, even after the newest rows were pruned
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[intpk]
    at: Mapped[utc] = mapped_column(index=True)  # the estate's time of the sample
    service: Mapped[name200]
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)

"""One runner for every mutation: check who may, apply, audit, commit, publish.

An operation is data (name, target, the role it needs, inputs) plus a function that
applies it to a session and says what changed. The runner is the only place that
commits a user-initiated change, so every change is audited, denials included, and
every pane hears about it through one `OperationDone` event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from console.audit import AuditLog
from console.bus import EventBus
from console.clock import Clock
from console.events import AuditAppended, OpChanges, OperationDenied, OperationDone
from console.storage.db import Database
from console.storage.repos import UserRepo, role_rank
from console.team_sync import ChangeFeed, tag_operation

Apply = Callable[[Session], tuple[OpChanges, Mapping[str, Any]]]


class PermissionDenied(Exception):
    """The actor may not run this operation; the denial is already audited."""


class Refused(Exception):
    """The operation looked at the world and declined (an expired recommendation, a
    preview that changed). What it changed on the way (a refreshed preview, voided
    approvals) is committed with the audited refusal; nothing else is."""

    def __init__(self, reason: str, changes: OpChanges | None = None,
                 outputs: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.changes = changes or OpChanges()
        self.outputs = dict(outputs or {})


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    target: str
    required_role: str
    apply: Apply
    reason: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)


class OperationRunner:
    def __init__(self, db: Database, audit: AuditLog, bus: EventBus, clock: Clock) -> None:
        self._db = db
        self._audit = audit
        self._bus = bus
        self._clock = clock
        self._users = UserRepo()
        # Every unit of work on this database writes its change-feed row with it, so the
        # other consoles of a team see it (console/team_sync.py); idempotent per database.
        ChangeFeed.install(db)

    def require(self, op: Operation, actor: str) -> None:
        """Only the role check of `op`: a denial is audited and raised, an allowed actor
        passes without a record (the caller writes its own)."""
        with self._db.sessions() as session:
            self._refuse_if_denied(session, op, actor)

    def _refuse_if_denied(self, session: Any, op: Operation, actor: str) -> None:
        role = self._users.role_of(session, actor)
        denial = self._denial(op, actor, role)
        if denial:
            entry = self._audit.append(
                session, actor=f"user:{actor}", action=op.name, target=op.target,
                reason=op.reason, inputs=op.inputs, outputs={"denied": denial},
                decision="deny", at=self._clock.now())
            session.commit()
            self._bus.publish(AuditAppended(entry))
            self._bus.publish(OperationDenied(op.name, actor, denial))
            raise PermissionDenied(denial)

    def run(self, op: Operation, actor: str) -> Mapping[str, Any]:
        with self._db.sessions() as session:
            self._refuse_if_denied(session, op, actor)
            try:
                changes, outputs = op.apply(session)
            except Refused as refused:
                entry = self._audit.append(
                    session, actor=f"user:{actor}", action=op.name, target=op.target,
                    reason=op.reason, inputs=op.inputs,
                    outputs={"refused": refused.reason, **refused.outputs}, decision="deny",
                    at=self._clock.now())
                tag_operation(session, op.name, refused.changes, actor)
                session.commit()
                self._bus.publish(AuditAppended(entry))
                self._bus.publish(OperationDenied(op.name, actor, refused.reason))
                if refused.changes.any():
                    self._bus.publish(OperationDone(op.name, refused.changes, actor,
                                                    {"refused": refused.reason}))
                raise
            entry = self._audit.append(
                session, actor=f"user:{actor}", action=op.name, target=op.target,
                reason=op.reason, inputs=op.inputs, outputs=outputs, decision="allow",
                at=self._clock.now())
            tag_operation(session, op.name, changes, actor)
            session.commit()
        self._bus.publish(AuditAppended(entry))
        self._bus.publish(OperationDone(op.name, changes, actor, dict(outputs)))
        return outputs

    @staticmethod
    def _denial(op: Operation, actor: str, role: str | None) -> str:
        if role is None:
            return f"{actor!r} is not a known user; an admin must add them first"
        if role_rank(role) < role_rank(op.required_role):
            return f"{op.name} needs role {op.required_role}; {actor!r} is {role}"
        return ""

"""The service facade: the one surface the GUI, the CLI and tests drive the system through."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from console.audit import (
    AuditDraft,
    AuditLog,
    VerifyResult,
    canonical_json,
)
from console.audit_pages import AuditPageReader
from console.auth import Authenticator
from console.bus import EventBus
from console.clock import Clock
from console.domain import (
    AuditEntry,
    ChangeEvent,
    Execution,
    IncidentInfo,
    IncidentUpdate,
    LogRecord,
    Recommendation,
    Signal,
    TimelineNote,
)
from console.events import (
    AuditAppended,
    ChangesReceived,
    IncidentsUpdated,
    LogsReceived,
    OpChanges,
    SignalsReceived,
)
from console.execution import ExecutionEngine
from console.operations import Operation, OperationRunner, Refused
from console.policy import Policy
from console.storage.db import Database
from console.storage.repos import (
    ROLES,
    ChangeRepo,
    InboundRepo,
    IncidentRepo,
    KnowledgeRepo,
    LogRepo,
    SettingsRepo,
    SignalRepo,
    UserRepo,
)
from console.storage.repos_backlog import BacklogRepo
from console.storage.repos_exec import RecommendationRepo
from console.storage.repos_retrieval import RetrievalRepo
from console.team_sync import tag_signals

MAX_LEVEL = 5


@dataclass(frozen=True, slots=True)
class Status:
    autonomy_ceiling: int
    kill_switch: bool

    @property
    def effective_ceiling(self) -> int:
        """The kill switch drops every agent to level 0 at once."""
        return 0 if self.kill_switch else self.autonomy_ceiling


@dataclass(frozen=True, slots=True)
class IncidentActivity:
    """What the console's incident timeline shows of one incident, read in one unit of
    work so its parts agree: the stored notes, the signals and changes of its services
    from a while before it opened, its recommendations, their runs, and the audit
    records about those (approvals, rejections, steps, validations, rollbacks)."""

    incident: IncidentInfo
    notes: tuple[TimelineNote, ...]
    signals: tuple[Signal, ...]  # oldest first
    changes: tuple[ChangeEvent, ...]
    recommendations: tuple[Recommendation, ...]
    executions: tuple[Execution, ...]
    audit: tuple[AuditEntry, ...]  # chain order
    # The stored id of each of `notes` (empty when not known), and the id they were read
    # after (0: `notes` is the whole timeline; otherwise only what followed that note).
    note_ids: tuple[int, ...] = ()
    notes_after: int = 0
    # The id of the last signal row the read covered: with `after_signal_id`, `signals`
    # are only those stored after the previous read's (0: the newest `limit` of them).
    last_signal_id: int = 0

    @property
    def last_note_id(self) -> int:
        """The id to read after next time (`notes_after` when no note was new)."""
        return self.note_ids[-1] if self.note_ids else self.notes_after


class WatchfloorService:
    def __init__(self, db: Database, bus: EventBus, clock: Clock,
                 audit: AuditLog | None = None) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.audit = audit or AuditLog()
        self.runner = OperationRunner(db, self.audit, bus, clock)
        self._signals = SignalRepo()
        self._changes = ChangeRepo()
        self._settings = SettingsRepo()
        self._users = UserRepo()
        self._incidents = IncidentRepo()
        self._pending_audit: list[AuditEntry] = []
        self._inbound = InboundRepo()
        self._logs = LogRepo()
        self._knowledge = KnowledgeRepo()
        self._recommendations = RecommendationRepo()
        self._engine: ExecutionEngine | None = None
        self._auth: Authenticator | None = None
        # Set by the composition root before the engine is first used (console.runtime).
        self.change_gate: Any = None

    @property
    def has_engine(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> ExecutionEngine:
        """The execution lifecycle (recommendations, approvals, runs, rollbacks)."""
        if self._engine is None:
            from console.actions.command import CommandExecutor
            from console.actions.lazy import LazyExecutor
            from console.actions.runbooks import load_library

            # The estate's executor is added by the runtime that plays it, a Prometheus
            # probe only where one is configured; these two need nothing but the host
            # (the HTTP one is made when a step or probe first needs it).
            self._engine = ExecutionEngine(self, load_library(), {
                "command": CommandExecutor(), "http": LazyExecutor("http", _http_executor)},
                change_gate=self.change_gate)
        return self._engine

    # --- people -------------------------------------------------------------------

    @property
    def auth(self) -> Authenticator:
        """Sign-in, first run and passwords (console/auth.py)."""
        if self._auth is None:
            self._auth = Authenticator(self)
        return self._auth

    def bootstrap_admin(self, name: str) -> bool:
        """On a new database the local operator becomes its first admin (audited). Two
        consoles starting on one new database at once: one makes it, the other's attempt
        is refused by the unique name or rolled back, and returns False."""
        from sqlalchemy.exc import IntegrityError

        with self.db.sessions() as session:
            if self._users.count(session):
                return False
            self._users.add(session, name, "admin")
            entry = self.audit.append(session, actor="system", action="user.bootstrap",
                                      target=name, reason="first user of a new database",
                                      outputs={"role": "admin"}, at=self.clock.now())
            try:
                session.commit()
            except IntegrityError:  # another console made the first user meanwhile
                session.rollback()
                return False
        self.bus.publish(AuditAppended(entry))
        return True

    def add_user(self, name: str, role: str, *, as_user: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})")

        def apply(session: Any) -> tuple[OpChanges, Mapping[str, Any]]:
            before = self._users.role_of(session, name)
            if before == "admin" and role != "admin":
                self._keep_an_admin(session, name)
            self._users.add(session, name, role)
            return OpChanges(users=True, ids=(name,)), {"role": role, "before": before}

        self.runner.run(Operation("user.set_role", name, "admin", apply,
                                  inputs={"role": role}), as_user)

    @staticmethod
    def _keep_an_admin(session: Any, leaving: str) -> None:
        """Refuse to demote the last admin who can sign in (one with a password, once
        anyone has one): nobody could manage users or release the kill switch after."""
        from sqlalchemy import select

        from console.storage.models import UserRow

        admins = session.execute(select(UserRow.name, UserRow.password_hash)
                                 .where(UserRow.role == "admin")).all()
        with_password = session.scalar(select(UserRow.name).where(
            UserRow.password_hash.is_not(None)).limit(1)) is not None
        others = [n for n, hashed in admins if n != leaving and
                  (hashed is not None or not with_password)]
        if not others:
            raise Refused(f"{leaving} is the last admin who can sign in; make another "
                          "admin first")

    def role_of(self, name: str) -> str | None:
        with self.db.sessions() as session:
            return self._users.role_of(session, name)

    def users(self) -> list[tuple[str, str]]:
        with self.db.sessions() as session:
            return list(self._users.all(session))

    # --- autonomy -----------------------------------------------------------------

    def status(self) -> Status:
        with self.db.sessions() as session:
            return Status(int(self._settings.get(session, "autonomy.ceiling")),
                          bool(self._settings.get(session, "autonomy.kill_switch")))

    def set_kill_switch(self, on: bool, *, as_user: str, reason: str = "") -> Status:
        def apply(session: Any) -> tuple[OpChanges, Mapping[str, Any]]:
            before = bool(self._settings.get(session, "autonomy.kill_switch"))
            self._settings.set(session, "autonomy.kill_switch", on)
            # Every agent drops to level 0 at once: what they queued to run never starts.
            cancelled = self._recommendations.cancel_autonomous(session) if on else []
            return (OpChanges(settings=True, recommendations=bool(cancelled),
                              ids=tuple(map(str, cancelled))),
                    {"before": before, "after": on, "cancelled": cancelled})

        # Anyone on watch may stop the agents; only an admin may let them go again.
        needed = "operator" if on else "admin"
        self.runner.run(Operation("autonomy.kill_switch", "global", needed, apply,
                                  reason=reason, inputs={"on": on}), as_user)
        return self.status()

    def set_autonomy_ceiling(self, level: int, *, as_user: str, reason: str = "") -> Status:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
            raise ValueError(f"autonomy ceiling must be an integer 0-{MAX_LEVEL}, got {level!r}")

        def apply(session: Any) -> tuple[OpChanges, Mapping[str, Any]]:
            before = int(self._settings.get(session, "autonomy.ceiling"))
            self._settings.set(session, "autonomy.ceiling", level)
            return OpChanges(settings=True), {"before": before, "after": level}

        self.runner.run(Operation("autonomy.set_ceiling", "global", "admin", apply,
                                  reason=reason, inputs={"level": level}), as_user)
        return self.status()

    # --- policy -------------------------------------------------------------------

    def policy(self) -> Policy:
        """The policy in force: the database's copy, or the defaults on a new database."""
        with self.db.sessions() as session:
            stored = self._settings.get(session, "policy")
        return Policy() if stored is None else Policy.model_validate(stored)

    def set_policy(self, policy: Policy, *, as_user: str, reason: str = "") -> Policy:
        """Replace the policy (admin); the audit record keeps before and after."""
        after = policy.model_dump(mode="json")

        def apply(session: Any) -> tuple[OpChanges, Mapping[str, Any]]:
            before = self._settings.get(session, "policy") or Policy().model_dump(mode="json")
            self._settings.set(session, "policy", after)
            changed = sorted(k for k in after if after[k] != before.get(k))
            return OpChanges(settings=True, ids=("policy",)), {"changed": changed,
                                                              "before": before, "after": after}

        self.runner.run(Operation("policy.set", "policy", "admin", apply, reason=reason,
                                  inputs={"policy": after}), as_user)
        return policy

    # --- signals in ---------------------------------------------------------------

    def ingest(self, signals: Iterable[Signal] = (), changes: Iterable[ChangeEvent] = (),
               logs: Iterable[LogRecord] = ()) -> tuple[int, int]:
        """Store normalized signals and changes in one transaction, then tell the panes."""
        signals, changes, logs = tuple(signals), tuple(changes), tuple(logs)
        counts = self.store(signals, changes)
        self.announce(signals, changes, logs)
        return counts

    def store(self, signals: Iterable[Signal], changes: Iterable[ChangeEvent],
              logs: Iterable[Any] = ()) -> tuple[int, int]:
        """The database half of `ingest`; safe to run in a worker thread. `logs` are mined
        lines (console.sources.logs.MinedLog), stored with their templates."""
        with self.db.sessions() as session:
            n_sig = self._add_signals(session, signals)
            n_chg = self._changes.add_many(session, changes)
            self._logs.add_many(session, logs)
            session.commit()
        return n_sig, n_chg

    def _add_signals(self, session: Session, signals: Iterable[Signal]) -> int:
        """The change-feed row of this transaction names the signals' id range, so the
        other consoles of a team read them (console/team_sync.py `tag_signals`)."""
        signals = tuple(signals)
        span = self._signals.add_many(session, signals)
        if span is not None:
            tag_signals(session, *span)
        return len(signals)

    def announce(self, signals: tuple[Signal, ...], changes: tuple[ChangeEvent, ...],
                 logs: tuple[LogRecord, ...]) -> None:
        """The bus half of `ingest`; runs on the thread that owns the event loop."""
        if signals:
            self.bus.publish(SignalsReceived(signals))
        if changes:
            self.bus.publish(ChangesReceived(changes))
        if logs:
            self.bus.publish(LogsReceived(logs))

    def signals_between(self, low: int, high: int,
                        limit: int = 5000) -> list[tuple[int, Signal]]:
        """Stored signals by id range, oldest first, at most the newest `limit` of it
        (what another console's feed row names, console/team_sync.py `tag_signals`; a
        range is one store's, so the limit only bounds a bad row)."""
        with self.db.sessions() as session:
            return self._signals.between(session, low, high, limit)

    def accept_payload(self, source: str, body: Any, signals: Iterable[Signal] = (),
                       changes: Iterable[ChangeEvent] = (), logs: Iterable[Any] = (), *,
                       defer: bool = False) -> int | None:
        """Keep a delivery and what it normalized to, all in one transaction (worker-thread
        safe); returns the stored delivery's id. A delivery seen before (same canonical
        body) stores nothing: returns None. `defer`: its signals are correlated later, off
        the sender's path; a correlation backlog row stored with it says so until then
        (console/correlation.py), so a crash in between loses nothing."""
        digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        signals, changes, logs = tuple(signals), tuple(changes), tuple(logs)
        with self.db.sessions() as session:
            if self._inbound.exists(session, digest):
                return None
            try:
                self._logs.add_many(session, logs)
                delivery = self._inbound.add(session, source, digest, body, self.clock.now(),
                                             len(signals), len(changes))
                if defer and signals:
                    BacklogRepo().add(session, delivery, self.clock.now())
                self._add_signals(session, signals)
                self._changes.add_many(session, changes)
                session.commit()
            except IntegrityError:  # the same delivery raced us: it is stored once
                session.rollback()
                return None
        return delivery

    def dead_letter(self, source: str, reason: str, raw: bytes | str) -> None:
        """Keep a rejected delivery for review (the first 64 KiB, as text)."""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        # PostgreSQL text cannot hold NUL; a rejected payload may (its reason quotes it).
        reason, text = (value.replace("\x00", "\\x00") for value in (reason, text))
        with self.db.sessions() as session:
            self._inbound.dead_letter(session, source, reason[:2000], text[:65536], len(raw),
                                      self.clock.now())
            session.commit()

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        with self.db.sessions() as session:
            return self._inbound.dead_letters(session, limit)

    def log_templates(self, limit: int = 100) -> list[tuple[str, int]]:
        with self.db.sessions() as session:
            return self._logs.templates(session, limit)

    def import_knowledge(self, docs: Iterable[Any]) -> int:
        """Store documents for retrieval in one transaction; returns how many were new."""
        with self.db.sessions() as session:
            added = self._knowledge.add_new(session, docs, self.clock.now())
            session.commit()
        return added

    def knowledge(self, limit: int = 500) -> list[tuple[str, str, list[str]]]:
        with self.db.sessions() as session:
            return self._knowledge.all(session, limit)

    def payloads(self, source: str, limit: int = 100) -> list[Any]:
        """Stored deliveries of one source, oldest first (for review and re-import)."""
        with self.db.sessions() as session:
            return self._inbound.bodies(session, source, limit)

    def payload_count(self) -> int:
        with self.db.sessions() as session:
            return self._inbound.count(session)

    def recent_signals(self, limit: int = 500) -> list[Signal]:
        with self.db.sessions() as session:
            return self._signals.recent(session, limit)

    def signal_count(self) -> int:
        with self.db.sessions() as session:
            return self._signals.count(session)

    def recent_changes(self, limit: int = 200) -> list[ChangeEvent]:
        with self.db.sessions() as session:
            return self._changes.recent(session, limit)

    # --- incidents ----------------------------------------------------------------

    def save_incidents(self, updates: Iterable[IncidentUpdate],
                       actor: str) -> list[IncidentInfo]:
        """Store an agent's incident updates and their audit records in one transaction
        (safe in a worker thread); returns the stored incidents for `announce_incidents`."""
        saved: list[IncidentInfo] = []
        drafts: list[AuditDraft] = []
        updates = tuple(updates)
        with self.db.sessions() as session:
            ids = self._incidents.save_many(session, updates)
            for incident_id, update in zip(ids, updates, strict=True):
                drafts.extend(AuditDraft(actor, action, f"incident:{incident_id}", reason,
                                         {"services": list(update.services)},
                                         {"state": update.state}, at=self.clock.now())
                              for action, reason in update.audit)
                saved.append(IncidentInfo(incident_id, update.title, update.severity,
                                          update.state, update.services, update.opened_at,
                                          update.resolved_at))
            entries = self.audit.append_many(session, drafts)
            session.commit()
        self._pending_audit.extend(entries)
        return saved

    def announce_incidents(self, incidents: Iterable[IncidentInfo]) -> None:
        incidents = tuple(incidents)
        for entry in self._pending_audit:
            self.bus.publish(AuditAppended(entry))
        self._pending_audit.clear()
        if incidents:
            self.bus.publish(IncidentsUpdated(incidents))

    def incidents(self, limit: int = 500, *,
                  ids: Iterable[int] | None = None) -> list[IncidentInfo]:
        """The newest incidents first; with `ids`, only those (that exist)."""
        with self.db.sessions() as session:
            return self._incidents.all(session, limit, ids=ids)

    def incident_timeline(self, incident_id: int) -> list[TimelineNote]:
        with self.db.sessions() as session:
            return self._incidents.timeline(session, incident_id)

    def incident_activity(self, incident_id: int, *, lead_s: float = 1800.0,
                          limit: int = 1000, after_note_id: int = 0,
                          after_signal_id: int = 0) -> IncidentActivity | None:
        """Read only: everything about one incident a timeline shows (None when there is
        no such incident). Signals and changes count from `lead_s` before it opened, so
        the deploy that caused it is on its timeline too. With `after_note_id`, only the
        stored notes after that one are read (a reader that holds the earlier ones asks
        for what is new; the timeline grows without bound, the other parts are capped
        by `limit`). With `after_signal_id`, likewise only the signals stored after that
        one (a storm's timeline is read in steps of what is new, not again and again)."""
        repo = RetrievalRepo()
        with self.db.sessions() as session:
            info = repo.incident(session, incident_id)
            if info is None:
                return None
            now = self.clock.now()
            start = info.opened_at - timedelta(seconds=lead_s)
            end = max(now, info.resolved_at or now)
            recs = repo.recommendations(session, now, incident_id=incident_id, limit=limit)
            runs = repo.executions(session, incident_id=incident_id, limit=limit)
            targets = [f"recommendation:{r.id}" for r in recs] + \
                [f"execution:{e.id}" for e in runs]
            notes = self._incidents.timeline_after(session, incident_id, after_note_id)
            if after_signal_id:
                read = repo.signals_after(session, start, end, after_signal_id,
                                          services=info.services, limit=limit)
                signals = tuple(sig for _id, sig in read)
                last_signal = read[-1][0] if read else after_signal_id
            else:
                last_signal = repo.last_signal_id(session)  # before the read: none missed
                signals = tuple(repo.signals_between(session, start, end,
                                                     services=info.services, limit=limit))
            return IncidentActivity(
                info, tuple(note for _id, note in notes), signals,
                tuple(repo.changes_between(session, start, end, services=info.services,
                                           limit=limit)),
                tuple(recs), tuple(runs), tuple(repo.audit_for(session, targets, limit)),
                tuple(note_id for note_id, _note in notes), after_note_id, last_signal)

    # --- audit --------------------------------------------------------------------

    def record(self, *, actor: str, action: str, target: str = "", reason: str = "",
               inputs: Mapping[str, Any] | None = None,
               outputs: Mapping[str, Any] | None = None) -> AuditEntry:
        """Audit something that is not an operation (a scenario started, an agent step)."""
        with self.db.sessions() as session:
            entry = self.audit.append(session, actor=actor, action=action, target=target,
                                      reason=reason, inputs=inputs, outputs=outputs,
                                      at=self.clock.now())
            session.commit()
        self.bus.publish(AuditAppended(entry))
        return entry

    def audit_entries(self, after: int = 0) -> list[AuditEntry]:
        """The audit chain, oldest first; with `after`, only the records after that seq
        (what another console appended since this one last looked)."""
        with self.db.sessions() as session:
            return self.audit.entries(session, after=after)

    def audit_pages(self) -> AuditPageReader:
        """The audit records by seq, a page at a time (console/audit_pages.py): what
        the window's browser reads instead of the whole chain."""
        return AuditPageReader(self.db)

    def verify_audit(self) -> VerifyResult:
        """The chain, this workstation's checkpoints of it and the rows it vouches for
        (console/audit_checks.py)."""
        from console.audit_checks import verify_database

        return verify_database(self.db, self.audit)

    def export_audit(self, out: Path, key_path: Path | None = None, *,
                     progress: Callable[[int, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> tuple[int, str]:
        """Write a signed bundle of version 2, streamed as `audit export` writes it (no
        whole log in memory); returns the record count and the signing key's
        fingerprint. `progress` hears (written, total) after each batch; `cancelled`
        stops it (console.audit_bundle_export.ExportCancelled, no file left)."""
        from console.audit_bundle_export import export_stream
        from console.audit_trust import workstation_key  # also lists it as trusted

        key = workstation_key(key_path)
        with self.db.sessions() as session:
            manifest = export_stream(session, out, key, source=self.db.url,
                                     progress=progress, cancelled=cancelled)
        return int(manifest["records"]["count"]), str(manifest["key_id"])


def _http_executor() -> Any:
    from console.actions.http import HttpExecutor

    return HttpExecutor()

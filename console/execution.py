"""The execution lifecycle: plan, preview, approve, run once, validate, roll back.

Nothing runs that policy did not allow, that nobody could see beforehand, or that
cannot be checked and undone:
- a recommendation carries the preview of exactly what will run; an approval is bound
  to the SHA-256 of that preview, and a preview that changed voids it;
- the intent (every rendered step, the validation, the rollback) is committed before
  the first step runs, each step is claimed with a compare-and-set before it runs, so
  a crash or a second console can never run a step twice;
- validation repeats until it passes or its deadline passes; a failed validation rolls
  back on its own where policy says so, otherwise rollback is offered;
- on start, `reconcile()` settles whatever a crash left in flight without re-running it
  (console/reconcile.py); the intent records what each executor acts on, so a check or
  a rollback is never made on another target than the one the action changed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from console import queued_rollback
from console.actions.base import (
    PROBE_EXECUTOR,
    Executor,
    ExecutorError,
    ProbeResult,
    StepResult,
    target_of,
)
from console.actions.runbooks import Runbook, check_arguments, render_step
from console.audit import canonical_json, plain
from console.domain import AuditEntry, Execution, Recommendation
from console.events import AuditAppended, OpChanges, OperationDone
from console.maintenance import gate as maintenance_gate
from console.operations import Operation, Refused
from console.policy import Decision, History, Policy, Request, decide
from console.reconcile import Reconciler, probe_executor, targets, unobserved
from console.storage.repos import UserRepo
from console.storage.repos_exec import IN_FLIGHT, ExecutionRepo, RecommendationRepo
from console.storage.repos_maintenance import MaintenanceRepo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from console.service import WatchfloorService

OPEN_STATES = ("pending", "queued")
SYSTEM = "system:lifecycle"


class ExecutionError(ValueError):
    """A request the lifecycle cannot accept (unknown runbook, bad parameters...)."""


@dataclass(frozen=True)
class Plan:
    runbook: Runbook
    params: dict[str, Any]
    target: str
    steps: list[dict[str, Any]]
    probe: dict[str, Any]
    rollback: list[dict[str, Any]] | None
    preconditions: list[dict[str, Any]]
    preview: dict[str, Any]
    hash: str

    def stored(self) -> dict[str, Any]:
        return plain({"runbook": self.runbook.id, "title": self.runbook.title,
                      "action_class": self.runbook.action_class, "risk": self.runbook.risk,
                      "target": self.target, "params": self.params, "steps": self.steps,
                      "preconditions": self.preconditions,
                      "probe": self.probe, "deadline": self.runbook.validation.deadline,
                      "rollback": self.rollback, "preview_hash": self.hash})


def _rendered(step: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"executor": step.executor, **render_step(step, dict(params))}


def preview_hash(preview: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(plain(preview)).encode()).hexdigest()


def _not_before(now: datetime, started_at: datetime) -> datetime:
    """The finish as this process's clock reads it, but never before the start: the start
    may have been read from another clock (a crashed console in real time settled by one
    playing a scenario months behind, or the other way round)."""
    return max(now, started_at)


class ExecutionEngine:
    """Owned by one process; executors it lacks (the estate lives in the console that
    plays it) leave work queued for the process that has them."""

    actor = SYSTEM  # who the lifecycle's own records name

    def __init__(self, service: WatchfloorService, library: Mapping[str, Runbook],
                 executors: Mapping[str, Executor] | None = None, *,
                 change_gate: Any = None) -> None:
        self.service = service
        self.library = dict(library)
        self.executors: dict[str, Executor] = dict(executors or {})
        self.change_gate = change_gate
        self._recs = RecommendationRepo()
        self._execs = ExecutionRepo()
        self._users = UserRepo()
        self._lock = threading.RLock()  # one validation/rollback pass at a time

    # --- planning -------------------------------------------------------------------

    def plan(self, runbook_id: str, params: Mapping[str, Any]) -> Plan:
        """Check the parameters against the runbook and render what would run."""
        runbook = self.library.get(runbook_id)
        if runbook is None:
            raise ExecutionError(f"no runbook {runbook_id!r}")
        known = getattr(self.executors.get("estate"), "services", None)
        try:
            checked = check_arguments(runbook, dict(params), known)
        except ValueError as exc:
            raise ExecutionError(str(exc)) from None
        from console.actions.runbooks import render, render_probe

        steps = [_rendered(s, checked) for s in runbook.steps]
        rollback = (None if runbook.rollback == "none"
                    else [_rendered(s, checked) for s in runbook.rollback])
        probe = render_probe(runbook.validation, checked)
        preconditions = [{"kind": "check", "service": render(c.service, checked),
                          "metric": c.metric, "op": c.op, "threshold": c.threshold}
                         for c in runbook.preconditions]
        target = next((str(checked[n]) for n, p in runbook.parameters.items()
                       if p.type == "service"), "-")
        effects = [self._effect(step) for step in steps]
        preview = plain({
            "runbook": runbook.id, "title": runbook.title,
            "summary": runbook.preview.format(**checked), "action_class": runbook.action_class,
            "risk": runbook.risk, "blast_radius": runbook.blast_radius, "targets": [target],
            "params": checked, "preconditions": preconditions, "steps": effects,
            "validation": {"probe": probe, "deadline_s": runbook.validation.deadline},
            "rollback": rollback if rollback is not None else "none"})
        return Plan(runbook, checked, target, steps, probe, rollback, preconditions, preview,
                    preview_hash(preview))

    def _effect(self, step: Mapping[str, Any]) -> dict[str, Any]:
        executor = self.executors.get(str(step["executor"]))
        if executor is None:  # the owning console computes the full preview
            return {"step": dict(step), "effect": None}
        try:
            return {"step": dict(step), "effect": executor.preview(step)}
        except ExecutorError as exc:
            raise ExecutionError(f"cannot preview {step['executor']} step: {exc}") from None

    def can_run(self, plan: Mapping[str, Any]) -> bool:
        needed = {str(s["executor"]) for s in plan.get("steps", [])}
        return needed <= set(self.executors)

    # --- recommendations --------------------------------------------------------------

    def propose(self, runbook_id: str, params: Mapping[str, Any], *, requester: str,
                confidence: float = 1.0, explanation: str = "",
                incident_id: int | None = None, autonomous: bool = False) -> int:
        """Queue a recommendation with its preview. An autonomous one is decided by policy
        at once: allowed → queued to run, otherwise it waits for a person."""
        if not 0.0 <= confidence <= 1.0:
            raise ExecutionError(f"confidence must be 0..1, got {confidence!r}")
        if requester.startswith("user:"):  # a person recommends only from operator up
            self.service.runner.require(Operation(
                "recommendation.create", f"runbook:{runbook_id}"[:200], "operator",
                lambda _session: (OpChanges(), {}), reason=explanation[:2000],
                inputs={"runbook": runbook_id, "params": plain(dict(params))}),
                requester.removeprefix("user:"))
        plan = self.plan(runbook_id, params)
        now = self.service.clock.now()
        policy = self.service.policy()
        entries: list[AuditEntry] = []
        with self.service.db.sessions() as session:
            rec_id = self._recs.add(
                session, incident_id=incident_id, runbook_id=plan.runbook.id,
                action=plan.runbook.action_class, action_class=plan.runbook.action_class,
                target=plan.target, params=plain(plan.params), preview=plan.preview,
                preview_hash=plan.hash, confidence=confidence, explanation=explanation,
                state="pending", created_at=now, requester=requester, risk=plan.runbook.risk,
                autonomous=autonomous,
                expires_at=now + timedelta(seconds=policy.recommendation_ttl))
            entries.append(self.service.audit.append(
                session, actor=requester, action="recommendation.create",
                target=f"recommendation:{rec_id}", reason=explanation[:2000],
                inputs={"runbook": plan.runbook.id, "params": plan.params,
                        "confidence": confidence},
                outputs={"preview_hash": plan.hash}, at=now))
            if autonomous:
                decision = self._decide(session, self._recs.row(session, rec_id), now, policy)
                entries.append(self._audit_decision(session, rec_id, requester, decision, now))
                if decision.outcome == "allow":
                    self._recs.move(session, rec_id, ("pending",), "queued")
                elif decision.outcome == "deny":
                    self._recs.move(session, rec_id, ("pending",), "denied")
            session.commit()
        self._announce(entries, OpChanges(recommendations=True, ids=(str(rec_id),)))
        return rec_id

    def approve(self, rec_id: int, *, as_user: str, preview_hash: str) -> dict[str, Any]:
        """Approve the preview the approver saw; runs it when policy is then satisfied.
        An empty hash names no preview: it is bad input, never "whatever is current"."""
        if not preview_hash.strip():
            raise ExecutionError("the preview hash is empty: approve names the preview "
                                 "that was reviewed, by its full hash")
        extra: list[AuditEntry] = []

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            now = self.service.clock.now()
            row = self._open_row(session, rec_id, now)
            fresh = self._refresh(session, row)
            if preview_hash not in (row.preview_hash,) or fresh:
                raise Refused("the preview changed since it was shown; approve the new one",
                              OpChanges(recommendations=True, ids=(str(rec_id),)),
                              {"preview_hash": row.preview_hash})
            self._refuse_repeat(session, row, as_user, now)
            policy = self.service.policy()
            role = self._users.role_of(session, as_user) or ""
            self._recs.add_approval(session, recommendation_id=rec_id, user=as_user,
                                    decision="approved", reason="", role=role,
                                    preview_hash=row.preview_hash, at=now,
                                    expires_at=now + timedelta(seconds=policy.approval_ttl))
            session.flush()
            decision = self._decide(session, row, now, policy)
            extra.append(self._audit_decision(session, rec_id, f"user:{as_user}", decision,
                                              now))
            if decision.outcome == "allow":
                row.state = "queued"
            return (OpChanges(recommendations=True, ids=(str(rec_id),)),
                    {"decision": decision.outcome, "reasons": list(decision.reasons),
                     "approver_role": decision.approver_role, "state": row.state})

        outputs = self.service.runner.run(
            Operation("recommendation.approve", f"recommendation:{rec_id}", "operator", apply,
                      inputs={"preview_hash": preview_hash}), as_user)
        self._announce(extra, None)
        result = dict(outputs)
        if result["state"] == "queued":
            result["execution"] = self.run_queued(rec_id, initiator=f"user:{as_user}")
        return result

    def reject(self, rec_id: int, *, as_user: str, reason: str) -> None:
        if not reason.strip():
            raise ExecutionError("a rejection needs a reason")

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            now = self.service.clock.now()
            row = self._open_row(session, rec_id, now)
            self._recs.add_approval(session, recommendation_id=rec_id, user=as_user,
                                    decision="rejected", reason=reason[:2000],
                                    role=self._users.role_of(session, as_user) or "",
                                    preview_hash=row.preview_hash, at=now, expires_at=None)
            row.state = "rejected"
            return OpChanges(recommendations=True, ids=(str(rec_id),)), {"state": "rejected"}

        self.service.runner.run(Operation("recommendation.reject", f"recommendation:{rec_id}",
                                          "operator", apply, reason=reason[:2000]), as_user)

    def _refuse_repeat(self, session: Session, row: Any, user: str, now: datetime) -> None:
        """A standing approval of this preview by the same person: refused, not stored
        again. Refused rather than ignored, so the person learns their second click
        moves nothing (someone else must approve) and the attempt is on the record; a
        second row would show them twice and could pass for a second person."""
        mine = [a for a in self._recs.valid_approvals(session, row, now) if a.user == user]
        if mine:
            raise Refused(f"{user} already approved recommendation {row.id} at "
                          f"{mine[0].at.isoformat()}; an approval counts once per person, "
                          "so another person must approve it",
                          outputs={"approved_at": mine[0].at.isoformat()})

    def _open_row(self, session: Session, rec_id: int, now: datetime) -> Any:
        # Locked: approvers in other consoles wait, then find it no longer pending.
        row = self._recs.row(session, rec_id, lock=True)
        if row is None:
            raise ExecutionError(f"no recommendation {rec_id}")
        if row.state == "pending" and row.expires_at is not None and row.expires_at <= now:
            row.state = "expired"
            raise Refused(f"recommendation {rec_id} expired at {row.expires_at.isoformat()}",
                          OpChanges(recommendations=True, ids=(str(rec_id),)))
        if row.state in ("queued", "executing", "executed"):
            raise Refused(f"recommendation {rec_id} is {row.state}, not pending: it was "
                          "already approved and claimed for its one execution")
        if row.state != "pending":
            raise Refused(f"recommendation {rec_id} is {row.state}, not pending")
        return row

    def _refresh(self, session: Session, row: Any) -> bool:
        """Recompute the preview where this process can; True when it changed (the row
        then holds the new preview and every earlier approval is void)."""
        if not self.can_run({"steps": [e["step"] for e in row.preview.get("steps", [])]}):
            return False
        try:
            plan = self.plan(row.runbook_id, row.params)
        except ExecutionError:
            return False
        if plan.hash == row.preview_hash:
            return False
        row.preview, row.preview_hash = plan.preview, plan.hash
        self._recs.void_approvals(session, row.id)
        return True

    def _decide(self, session: Session, row: Any, now: datetime, policy: Policy) -> Decision:
        status = self.service.status()
        approvals = self._recs.valid_approvals(session, row, now)
        requester = row.requester
        role = (self._users.role_of(session, requester.removeprefix("user:"))
                if requester.startswith("user:") else None)
        span = max([lim.per for lim in policy.rate_limits.values()] + [policy.breaker.window])
        runs, failures = self._execs.history(session, row.action_class, row.target,
                                             now - timedelta(seconds=span))
        request = Request(actor=requester, role=role, action_class=row.action_class,
                          service=row.target, risk=row.risk,
                          blast_radius=int(row.preview.get("blast_radius", 1)),
                          confidence=row.confidence,
                          approved_by=tuple(f"user:{a.user}" for a in approvals),
                          approver_roles=tuple(a.role for a in approvals))
        decision = decide(policy, request, ceiling=status.autonomy_ceiling,
                          kill_switch=status.kill_switch, now=now,
                          history=History(runs, failures))
        # A maintenance window on the target holds an agent's or a rule's action for a person
        return maintenance_gate(decision, request,
                                MaintenanceRepo().covering(session, row.target, now))

    def _audit_decision(self, session: Session, rec_id: int, actor: str,
                        decision: Decision, now: datetime) -> AuditEntry:
        return self.service.audit.append(
            session, actor=actor, action="policy.decide", target=f"recommendation:{rec_id}",
            reason="; ".join(decision.reasons)[:2000], decision=decision.outcome,
            outputs={"level": decision.level, "budget": decision.budget,
                     "approver_role": decision.approver_role,
                     "approver_not": decision.approver_not}, at=now)

    def _announce(self, entries: list[AuditEntry], changes: OpChanges | None,
                  operation: str = "lifecycle") -> None:
        for entry in entries:
            self.service.bus.publish(AuditAppended(entry))
        if changes is not None:
            self.service.bus.publish(OperationDone(operation, changes, SYSTEM))

    def recommendations(self, states: tuple[str, ...] | None = None) -> list[Recommendation]:
        with self.service.db.sessions() as session:
            return self._recs.recent(session, self.service.clock.now(), states)

    def recommendation(self, rec_id: int) -> Recommendation | None:
        with self.service.db.sessions() as session:
            return self._recs.get(session, rec_id, self.service.clock.now())

    def standing(self, rec_id: int) -> tuple[Decision, bool | None] | None:
        """Read only, for the approval queue: what policy says of a recommendation now
        (with the approvals it holds), and whether its preview still matches what would
        run (None when this process cannot recompute it). Nothing is written or voided;
        `approve` checks both again itself."""
        with self.service.db.sessions() as session:
            row = self._recs.row(session, rec_id)
            if row is None:
                return None
            decision = self._decide(session, row, self.service.clock.now(),
                                    self.service.policy())
            steps = [e["step"] for e in row.preview.get("steps", [])]
            current: bool | None = None
            if self.can_run({"steps": steps}):
                try:
                    current = self.plan(row.runbook_id or "", row.params).hash == row.preview_hash
                except ExecutionError:
                    current = False
            session.rollback()
        return decision, current

    def executions(self, states: tuple[str, ...] | None = None) -> list[Execution]:
        with self.service.db.sessions() as session:
            return self._execs.recent(session, states)

    def execution(self, exec_id: int) -> Execution | None:
        with self.service.db.sessions() as session:
            return self._execs.get(session, exec_id)

    # --- running ----------------------------------------------------------------------

    def drain(self) -> list[int]:
        """Complete previews made elsewhere, then run every queued recommendation this
        process can run (returns their execution ids), then every queued rollback."""
        self._complete_previews()
        with self.service.db.sessions() as session:
            queued = self._recs.ids_in_state(session, "queued")
        ran = [e for e in (self.run_queued(r, initiator=SYSTEM) for r in queued)
               if e is not None]
        queued_rollback.run_asked(self)  # rollbacks asked where their executor is not
        return ran

    def _complete_previews(self) -> None:
        """A recommendation made where an executor was missing (a CLI proposing an estate
        action) has no target state in its preview; the process that owns the executor
        fills it in. An approval of the incomplete preview is void: nobody saw the target."""
        entries: list[AuditEntry] = []
        ids: list[str] = []
        with self.service.db.sessions() as session:
            for rec_id in self._recs.ids_in_state(session, "pending"):
                row = self._recs.row(session, rec_id)
                if row is None or all(e.get("effect") is not None
                                      for e in row.preview.get("steps", [])):
                    continue
                if self._refresh(session, row):
                    ids.append(str(rec_id))
                    entries.append(self.service.audit.append(
                        session, actor=SYSTEM, action="recommendation.preview_completed",
                        target=f"recommendation:{rec_id}",
                        outputs={"preview_hash": row.preview_hash},
                        at=self.service.clock.now()))
                # One commit per recommendation: the audit head is locked only after the
                # recommendation (as approve locks them), never while waiting for another
                # recommendation, which could deadlock with an approver on PostgreSQL.
                session.commit()
            session.commit()
        if ids:
            self._announce(entries, OpChanges(recommendations=True, ids=tuple(ids)))

    def run_queued(self, rec_id: int, *, initiator: str) -> int | None:
        """Claim a queued recommendation and run it once; None when another process has
        it, this process lacks its executor, or policy or the preview stopped it."""
        now = self.service.clock.now()
        entries: list[AuditEntry] = []
        with self.service.db.sessions() as session:
            # Locked: a second process claiming the same run waits here, then finds it
            # executing and leaves it (the compare-and-set below would refuse it too,
            # but it must not first rewrite the state it read before the claim).
            row = self._recs.row(session, rec_id, lock=True)
            if row is None or row.state != "queued" or \
                    not self.can_run({"steps": [e["step"] for e in row.preview["steps"]]}):
                return None
            if self._refresh(session, row):
                row.state = "pending"
                entries.append(self.service.audit.append(
                    session, actor=SYSTEM, action="recommendation.stale",
                    target=f"recommendation:{rec_id}", decision="deny",
                    reason="the target changed after approval; approvals are void", at=now))
                session.commit()
                self._announce(entries, OpChanges(recommendations=True, ids=(str(rec_id),)))
                return None
            policy = self.service.policy()
            decision = self._decide(session, row, now, policy)
            if decision.outcome != "allow":
                entries.append(self._audit_decision(session, rec_id, SYSTEM, decision, now))
                row.state = "cancelled" if row.autonomous else "pending"
                session.commit()
                self._announce(entries, OpChanges(recommendations=True, ids=(str(rec_id),)))
                return None
            if not self._recs.move(session, rec_id, ("queued",), "executing"):
                return None
            plan = self.plan(row.runbook_id or "", row.params)
            stored = {**plan.stored(), "targets": targets(plan.stored(), self.executors)}
            exec_id = self._execs.add(
                session, recommendation_id=rec_id, idempotency_key=f"rec:{rec_id}",
                action=row.action_class, target=row.target, params=row.params,
                initiator=initiator, state="intent",
                # autonomous: it runs without anyone's approval, not merely an agent's idea
                autonomous=row.autonomous and not self._recs.valid_approvals(session, row, now),
                result={"steps": []}, started_at=now, finished_at=None,
                runbook_id=row.runbook_id, plan=stored, step=0, validate_by=None)
            entries.append(self.service.audit.append(
                session, actor=initiator, action="execution.intent",
                target=f"execution:{exec_id}", decision="allow",
                reason="; ".join(decision.reasons)[:2000],
                inputs={"recommendation": rec_id, "plan": stored}, at=now))
            session.commit()
        self._announce(entries, OpChanges(recommendations=True, executions=True,
                                          ids=(str(rec_id), str(exec_id))))
        self._run_steps(exec_id, policy)
        return exec_id

    def _run_steps(self, exec_id: int, policy: Policy) -> None:
        with self.service.db.sessions() as session:
            row = self._execs.row(session, exec_id)
            assert row is not None
            plan = dict(row.plan)
        if policy.needs_change_record(str(plan["action_class"])) and \
                not self._open_change(exec_id, plan):
            return
        unmet = self._unmet_precondition(plan)
        if unmet is not None:
            self._finish(exec_id, "failed", f"precondition not met, nothing ran: {unmet}", [],
                         rollback_offered=False)
            return
        results: list[dict[str, Any]] = []
        for index, step in enumerate(plan["steps"]):
            with self.service.db.sessions() as session:
                claimed = self._execs.move(session, exec_id, ("intent", "running"),
                                           {"state": "running", "step": index + 1},
                                           step=index)
                session.commit()
            if not claimed:
                return  # reconciled or taken by someone else: never run a step twice
            outcome = self._call(step, rollback=False)
            results.append({"step": index, "ok": outcome.ok, "message": outcome.message,
                            "output": plain(outcome.output)})
            if not outcome.ok:
                self._finish(exec_id, "failed", f"step {index + 1} failed: {outcome.message}",
                             results, rollback_offered=index > 0)
                return
        deadline = self.service.clock.now() + timedelta(seconds=float(plan["deadline"]))
        with self.service.db.sessions() as session:
            row = self._execs.row(session, exec_id)
            assert row is not None
            self._execs.move(session, exec_id, ("running",),
                             {"state": "validating", "validate_by": deadline,
                              "result": {**row.result, "steps": results}})
            entry = self.service.audit.append(
                session, actor=SYSTEM, action="execution.executed",
                target=f"execution:{exec_id}", outputs={"steps": results},
                at=self.service.clock.now())
            session.commit()
        self._announce([entry], OpChanges(executions=True, ids=(str(exec_id),)))
        self.validate(exec_id)

    def _unmet_precondition(self, plan: Mapping[str, Any]) -> str | None:
        """The first precondition that does not hold now (or cannot be checked here)."""
        for probe in plan.get("preconditions", []):
            result = self._probe(probe)
            if result is None:
                return f"{probe.get('metric')} of {probe.get('service')} cannot be checked here"
            if not result.passed:
                return result.detail
        return None

    def _call(self, step: Mapping[str, Any], *, rollback: bool) -> StepResult:
        executor = self.executors[str(step["executor"])]
        try:
            return executor.rollback(step) if rollback else executor.execute(step)
        except ExecutorError as exc:
            return StepResult(False, str(exc))
        except Exception as exc:  # an executor bug is a failed step, never a lost record
            return StepResult(False, f"{type(exc).__name__}: {exc}")

    def _open_change(self, exec_id: int, plan: Mapping[str, Any]) -> bool:
        try:
            ref = self.change_gate.open_change(
                str(plan["action_class"]), f"{plan['title']} on {plan['target']}",
                canonical_json(plain(plan)), f"exec:{exec_id}")
        except Exception as exc:  # no change record, no run
            self._finish(exec_id, "failed", f"no change record could be opened: {exc}", [],
                         rollback_offered=False)
            return False
        with self.service.db.sessions() as session:
            row = self._execs.row(session, exec_id)
            assert row is not None
            row.result = {**row.result, "change": plain({
                "system": ref.system, "id": ref.id, "url": ref.url, "extra": dict(ref.extra)})}
            session.commit()
        return True

    def _finish(self, exec_id: int, state: str, why: str, steps: list[dict[str, Any]] | None,
                *, rollback_offered: bool, validation: ProbeResult | None = None,
                open_rollbacks: str | None = None) -> None:
        """`open_rollbacks`: the state a rollback still marked running ends in."""
        now = self.service.clock.now()
        with self.service.db.sessions() as session:
            row = self._execs.row(session, exec_id)
            assert row is not None
            result = dict(row.result)
            if steps is not None:
                result["steps"] = steps
            # When the action itself ended: `finished_at` moves on if it is rolled back
            # later, and the action's own duration must not grow with it.
            result.update(outcome=why, rollback_offered=rollback_offered and
                          bool(row.plan.get("rollback")),
                          ran_until=_not_before(now, row.started_at).isoformat())
            if validation is not None:
                result["validation"] = {
                    "passed": validation.passed, "detail": validation.detail,
                    "value": validation.value,
                    "target": target_of(self.executors.get(probe_executor(row.plan)))}
            if not self._execs.move(session, exec_id, IN_FLIGHT,
                                    {"state": state, "result": result,
                                     "finished_at": _not_before(now, row.started_at)}):
                return
            if open_rollbacks is not None:
                self._execs.end_rollbacks(session, exec_id, open_rollbacks)
            if row.recommendation_id is not None:
                self._recs.move(session, row.recommendation_id, ("executing",), "executed")
            entry = self.service.audit.append(
                session, actor=SYSTEM, action=f"execution.{state}", target=f"execution:{exec_id}",
                reason=why[:2000], outputs=result, at=now)
            session.commit()
            change = result.get("change")
        self._announce([entry], OpChanges(executions=True, recommendations=True,
                                          ids=(str(exec_id),)))
        if change and self.change_gate is not None:
            self._close_change(change, state, why)

    def _close_change(self, change: Mapping[str, Any], state: str, why: str) -> None:
        from console.itsm.base import TicketRef

        try:
            ref = TicketRef(str(change["system"]), str(change["id"]), "change",
                            str(change.get("url") or ""), dict(change.get("extra") or {}))
            self.change_gate.close_change(ref, why, state == "succeeded")
        except Exception as exc:
            self.service.record(actor=SYSTEM, action="change.close_failed",
                                target=f"change:{change['id']}", reason=str(exc)[:2000])

    # --- validation -------------------------------------------------------------------

    def poll(self) -> None:
        """One validation attempt for every execution that is validating; run queued work."""
        self.drain()
        for execution in self.executions(("validating",)):
            self.validate(execution.id)

    def validate(self, exec_id: int) -> str | None:
        with self._lock:
            execution = self.execution(exec_id)
            if execution is None or execution.state != "validating":
                return None
            if unobserved(execution.plan, self.executors,
                          [probe_executor(execution.plan)]) is not None:
                # Not the target the action changed (another estate, another host): the
                # console that has it checks it, or a reconcile interrupts it.
                return "validating"
            probe = dict(execution.plan["probe"])
            result = self._probe(probe)
            if result is None:
                return "validating"  # this process cannot check it; the owner will
            now = self.service.clock.now()
            if result.passed:
                self._finish(exec_id, "succeeded", f"validated: {result.detail}", None,
                             rollback_offered=True, validation=result)
                return "succeeded"
            if execution.validate_by is not None and now < execution.validate_by:
                return "validating"
            self._finish(exec_id, "failed", f"validation failed by its deadline: "
                         f"{result.detail}", None, rollback_offered=True, validation=result)
            if execution.reversible and \
                    self.service.policy().rolls_back_on_failure(execution.action_class):
                self._rollback_now(exec_id, SYSTEM, auto=True)
            return "failed"

    def _probe(self, probe: Mapping[str, Any]) -> ProbeResult | None:
        executor = self.executors.get(PROBE_EXECUTOR.get(str(probe.get("kind")), ""))
        if executor is None:
            return None
        try:
            return executor.validate(probe)
        except ExecutorError as exc:
            return ProbeResult(False, f"the check could not run: {exc}")
        except Exception as exc:
            return ProbeResult(False, f"the check failed: {type(exc).__name__}: {exc}")

    # --- rollback ---------------------------------------------------------------------

    def rollback(self, exec_id: int, *, as_user: str) -> str:
        """Roll back a completed action in one operation (operator or above)."""
        claimed: list[int] = []
        asked: list[int] = []

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            row = self._execs.row(session, exec_id)
            if row is None:
                raise ExecutionError(f"no execution {exec_id}")
            if not row.plan.get("rollback"):
                raise Refused(f"execution {exec_id} ({row.runbook_id}) has no rollback path")
            if queued_rollback.elsewhere(self, row) and queued_rollback.someone_runs_it(self):
                # the process that has the executor runs it
                asked.append(queued_rollback.ask(self, session, row, f"user:{as_user}"))
                return (OpChanges(executions=True, ids=(str(exec_id),)),
                        {"state": "rollback_queued"})
            names = sorted({str(step["executor"]) for step in row.plan["rollback"]})
            elsewhere = unobserved(row.plan, self.executors, names) \
                if "targets" in row.plan else None  # older intents: as before
            if elsewhere is not None:
                raise Refused(f"execution {exec_id} is not rolled back here: {elsewhere}")
            if not self.can_run({"steps": row.plan["rollback"]}):
                raise Refused("this console cannot reach the executor of the rollback")
            claimed.append(self._claim_rollback(session, exec_id, f"user:{as_user}"))
            return OpChanges(executions=True, ids=(str(exec_id),)), {"state": "rolling_back"}

        self.service.runner.run(Operation("execution.rollback", f"execution:{exec_id}",
                                          "operator", apply), as_user)
        if asked:
            return "rollback_queued"
        return self._run_rollback(exec_id, claimed[0], f"user:{as_user}")

    def _claim_rollback(self, session: Session, exec_id: int, who: str) -> int:
        from console.domain import ROLLBACK_FROM

        row = self._execs.row(session, exec_id)
        assert row is not None
        if not self._execs.move(session, exec_id, ROLLBACK_FROM,
                                {"state": "rolling_back", "finished_at": None}):
            raise Refused(f"execution {exec_id} is {row.state}; it cannot be rolled back now")
        return self._execs.add_rollback(session, execution_id=exec_id, user=who,
                                        state="running", result={},
                                        at=self.service.clock.now())

    def _rollback_now(self, exec_id: int, who: str, *, auto: bool) -> str:
        with self.service.db.sessions() as session:
            try:
                rollback_id = self._claim_rollback(session, exec_id, who)
            except Refused:
                return "refused"
            entry = self.service.audit.append(
                session, actor=who, action="execution.rollback", target=f"execution:{exec_id}",
                reason="validation failed" if auto else "", decision="allow",
                at=self.service.clock.now())
            session.commit()
        self._announce([entry], OpChanges(executions=True, ids=(str(exec_id),)))
        return self._run_rollback(exec_id, rollback_id, who)

    def _run_rollback(self, exec_id: int, rollback_id: int, who: str) -> str:
        execution = self.execution(exec_id)
        assert execution is not None
        results = []
        ok = True
        for index, step in enumerate(execution.plan["rollback"]):
            outcome = self._call(step, rollback=True)
            results.append({"step": index, "ok": outcome.ok, "message": outcome.message})
            if not outcome.ok:
                ok = False
                break
        state = "rolled_back" if ok else "rollback_failed"
        now = self.service.clock.now()
        with self.service.db.sessions() as session:
            rb = self._execs.rollback_row(session, rollback_id)
            assert rb is not None
            rb.state, rb.result = ("done" if ok else "failed"), {"steps": results}
            row = self._execs.row(session, exec_id)
            assert row is not None
            self._execs.move(session, exec_id, ("rolling_back",),
                             {"state": state, "finished_at": _not_before(now, row.started_at),
                              "result": {**row.result, "rollback": results}})
            entry = self.service.audit.append(
                session, actor=who, action=f"execution.{state}", target=f"execution:{exec_id}",
                outputs={"steps": results}, at=now)
            session.commit()
        self._announce([entry], OpChanges(executions=True, ids=(str(exec_id),)))
        return state

    # --- after a crash ------------------------------------------------------------------

    def reconcile(self, *, wait: bool = False) -> list[tuple[int, str]]:
        """Settle what a crash left in flight (console/reconcile.py); with `wait`, a
        validation taken up again is seen to its end before this returns."""
        return Reconciler(self).reconcile(wait=wait)

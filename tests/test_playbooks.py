"""The playbook agent on the embedded estate: discovery picks the library's runbook for a
diagnosis; where none fits, a draft is written from the action catalog, linted, dry-run
against the live estate, signed off by a person and only then adopted and proposable; a
broken draft is stored rejected; every step is audited and the chain holds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from agents.playbooks import PlaybookAgent, PlaybookError, Remedy
from agents.recommender import Recommender
from console.actions.runbooks import load_runbook_text
from console.domain import (
    AlertStatus,
    Hypothesis,
    IncidentUpdate,
    Severity,
    Signal,
    SignalKind,
    TimelineNote,
)
from console.execution import ExecutionEngine, ExecutionError
from console.operations import PermissionDenied, Refused
from console.runtime import Runtime, ScenarioDriver

PEOPLE = {"bob": "operator", "carol": "approver", "victor": "viewer"}


@dataclass
class World:
    runtime: Runtime
    driver: ScenarioDriver

    @property
    def service(self) -> Any:
        return self.runtime.service

    @property
    def engine(self) -> ExecutionEngine:
        return self.runtime.service.engine

    @property
    def estate(self) -> Any:
        return self.driver.player.estate

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.actor, e.decision) for e in self.service.audit_entries()]

    def incident(self, service: str, alerts: Sequence[str] = ()) -> int:
        now = self.runtime.clock.now()
        notes = []
        for name in alerts:
            sig = Signal("estate", SignalKind.ALERT, name, service, Severity.WARNING,
                         AlertStatus.FIRING, now,
                         {"alertname": name, "service": service, "instance": f"{service}-0"})
            self.service.ingest(signals=[sig])
            notes.append(TimelineNote(now, "agent", f"open: {service}", sig.fingerprint))
        key = len(self.service.incidents()) + 1000
        info = self.service.save_incidents([IncidentUpdate(
            key, None, f"alerts on {service}", Severity.WARNING, "open", (service,), now,
            None, tuple(notes))], actor="agent:correlator")
        return int(info[0].id)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    runtime = Runtime(db_url)
    runtime.service.bootstrap_admin("alice")
    for name, role in PEOPLE.items():
        runtime.service.add_user(name, role, as_user="alice")
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    yield World(runtime, driver)
    runtime.close()


def hyp(service: str, fault: str, confidence: float = 0.85) -> Hypothesis:
    return Hypothesis(service, fault, confidence, signals=1)


@pytest.mark.parametrize(("service", "fault", "expected"), [
    ("payments", "bad_deploy", "rollback-deploy"),
    ("payments", "config_error", "rollback-deploy"),
    ("search", "disk_filling", "free-disk"),
    ("frontend", "traffic_surge", "scale-out"),
    ("auth", "certificate_expiry", "rotate-certificate"),
    ("inventory", "connection_pool_exhaustion", "restart-service"),
])
def test_discovery_picks_the_librarys_runbook(world: World, service: str, fault: str,
                                              expected: str) -> None:
    agent = PlaybookAgent(world.service)
    alone = agent.discover(hyp(service, fault))
    assert alone.runbook_id == expected
    assert alone.fault_class == fault
    assert expected in alone.candidates
    on_incident = agent.discover(hyp(service, fault),
                                 world.incident(service, alerts=("HighErrorRate",)))
    assert on_incident.runbook_id == expected
    assert on_incident.alerts == ("HighErrorRate",)
    assert "recommender chooses" in on_incident.reason
    assert ("playbook.discover", "agent:playbook", "n/a") in world.actions()


def test_discovery_finds_nothing_for_an_unknown_fault(world: World) -> None:
    found = PlaybookAgent(world.service).discover(
        hyp("search", "cosmic_rays"), world.incident("search", alerts=("DiskFull",)))
    assert found.runbook_id is None
    assert "no runbook in the library remedies cosmic_rays" in found.reason
    assert "free-disk" in found.alert_matches  # it answers the alert, not the cause


def test_a_missing_playbook_is_drafted_reviewed_and_adopted(world: World) -> None:
    del world.engine.library["scale-out"]  # the engine's copy: a reduced library
    agent = PlaybookAgent(world.service)
    recommender = Recommender(world.service, world.engine.library)
    h = hyp("frontend", "traffic_surge")
    found = agent.discover(h)
    assert found.runbook_id is None

    draft_id = agent.draft(h, world.incident("frontend"))
    draft = agent.get(draft_id)
    assert draft.state == "draft"
    assert draft.runbook_id == "gen-traffic-surge"
    rb = load_runbook_text(draft.yaml, "draft")  # the library's format
    assert rb.parameters["count"].type == "int"
    assert rb.validation.check is not None
    assert rb.validation.deadline == 300
    assert rb.rollback != "none"
    assert rb.risk == "medium"
    assert rb.blast_radius == 1

    def refused_to_propose() -> None:
        assert rb.id not in world.engine.library
        with pytest.raises(ExecutionError, match="no runbook"):
            world.engine.propose(rb.id, {"service": "frontend", "count": 2},
                                 requester="agent:recommender")

    refused_to_propose()
    lint = agent.lint(draft_id)
    assert lint.ok, lint.checks
    assert {rule for rule, _, _ in lint.checks} >= {
        "loads", "action_class", "risk", "blast_radius", "rollback", "placeholders"}
    assert agent.get(draft_id).state == "linted"
    with pytest.raises(Refused, match="after the lint and a dry run"):
        agent.sign_off(draft_id, "carol")  # no dry run yet

    before = world.estate.describe("frontend")
    with pytest.raises(PlaybookError, match="dry run"):
        agent.dry_run(draft_id, {"service": "frontend", "count": 99})  # out of range
    record = agent.dry_run(draft_id, {"service": "frontend", "count": 2})
    assert record["ok"]
    assert record["preview"]["steps"][0]["effect"]["target_state"] == before
    assert record["preview"]["rollback"][0]["action"] == "scale_in"
    assert world.estate.describe("frontend") == before  # nothing ran
    assert world.engine.executions() == []
    assert agent.get(draft_id).dry_run["preview_hash"] == record["preview_hash"]

    with pytest.raises(PlaybookError, match="signed-off"):
        agent.adopt(draft_id)
    for who in ("victor", "bob", "agent:playbook"):
        with pytest.raises(PermissionDenied):
            agent.sign_off(draft_id, who)
    refused_to_propose()
    incident = world.incident("frontend")
    assert recommender.plan(incident, [h])[0].runbook_id is None

    agent.sign_off(draft_id, "carol")
    assert agent.get(draft_id).state == "signed_off"
    assert agent.get(draft_id).signed_off_by == "carol"
    refused_to_propose()  # signed off, not yet adopted

    assert agent.adopt(draft_id).id == rb.id
    assert world.engine.library[rb.id] == rb
    assert agent.discover(h).runbook_id == rb.id
    assert recommender.plan(incident, [h])[0].runbook_id == rb.id
    rec_id = world.engine.propose(rb.id, {"service": "frontend", "count": 2},
                                  requester="agent:recommender", confidence=0.8)
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.state == "pending"

    actions = world.actions()
    for step in ("playbook.draft", "playbook.lint", "playbook.dry_run", "playbook.adopt"):
        assert (step, "agent:playbook", "n/a" if step == "playbook.adopt" else "allow") \
            in actions
    assert ("playbook.dry_run", "agent:playbook", "deny") in actions
    assert ("playbook.adopt", "agent:playbook", "deny") in actions
    assert ("playbook.sign_off", "user:carol", "allow") in actions
    for who in ("victor", "bob", "carol"):
        assert ("playbook.sign_off", f"user:{who}", "deny") in actions
    assert ("playbook.sign_off", "user:agent:playbook", "deny") in actions
    assert world.service.verify_audit().ok


def test_an_agent_registered_as_a_user_still_cannot_sign_off(world: World) -> None:
    del world.engine.library["free-disk"]
    world.service.add_user("agent:playbook", "approver", as_user="alice")
    agent = PlaybookAgent(world.service)
    draft_id = agent.draft(hyp("search", "disk_filling"))
    assert agent.lint(draft_id).ok
    agent.dry_run(draft_id, {"service": "search"})
    with pytest.raises(Refused, match="not a person"):
        agent.sign_off(draft_id, "agent:playbook")
    assert agent.get(draft_id).state == "dry_run_passed"


def test_an_irreversible_draft_is_high_risk(world: World) -> None:
    del world.engine.library["rotate-certificate"]
    agent = PlaybookAgent(world.service)
    assert agent.discover(hyp("auth", "certificate_expiry")).runbook_id is None
    draft_id = agent.draft(hyp("auth", "certificate_expiry"))
    rb = load_runbook_text(agent.get(draft_id).yaml, "draft")
    assert rb.rollback == "none"
    assert rb.risk == "high"
    assert agent.lint(draft_id).ok


def test_a_broken_draft_is_stored_rejected(world: World) -> None:
    del world.engine.library["scale-out"]
    bogus = Remedy("reboot_universe", "scale", "Reboot everything", ("saturation", "<", 0.8))
    agent = PlaybookAgent(world.service, remedies={"traffic_surge": bogus})
    draft_id = agent.draft(hyp("frontend", "traffic_surge"))
    draft = agent.get(draft_id)
    assert draft.state == "rejected"
    assert "reboot_universe" in draft.lint["error"]
    with pytest.raises(PlaybookError, match="rejected"):
        agent.lint(draft_id)
    with pytest.raises(PlaybookError, match="rejected"):
        agent.dry_run(draft_id, {"service": "frontend"})
    with pytest.raises(Refused):
        agent.sign_off(draft_id, "carol")
    assert "gen-traffic-surge" not in world.engine.library

    unknown = agent.get(agent.draft(hyp("cart", "cosmic_rays")))
    assert unknown.state == "rejected"
    assert "no action" in unknown.lint["error"]

    undeclared = agent.get(agent.submit(
        _yaml(preview="Restart {service} on {zone}"), "connection_pool_exhaustion"))
    assert undeclared.state == "rejected"
    assert "zone" in undeclared.lint["error"]
    actions = world.actions()
    assert actions.count(("playbook.draft", "agent:playbook", "deny")) == 3
    assert world.service.verify_audit().ok


def test_the_lint_rejects_what_policy_would_not_take(world: World) -> None:
    agent = PlaybookAgent(world.service)
    draft_id = agent.submit(_yaml(risk="low", blast_radius=3), "connection_pool_exhaustion")
    assert agent.get(draft_id).state == "draft"  # it loads
    lint = agent.lint(draft_id)
    failed = {rule for rule, passed, _ in lint.checks if not passed}
    assert failed == {"risk", "blast_radius", "rollback"}
    assert agent.get(draft_id).state == "rejected"
    shadow = agent.submit(_yaml(id="restart-service", risk="high"), "connection_pool_exhaustion")
    assert {r for r, p, _ in agent.lint(shadow).checks if not p} == {"id"}
    assert world.service.verify_audit().ok


def _yaml(*, id: str = "gen-restart-pools", preview: str = "Restart {service}",
          risk: str = "medium", blast_radius: int = 1) -> str:
    return f"""\
id: {id}
title: Restart a service
action_class: restart
applies_to: {{faults: [connection_pool_exhaustion]}}
parameters:
  service: {{type: service}}
steps:
  - {{executor: estate, action: restart, args: {{service: "{{service}}"}}}}
preview: "{preview}"
validation:
  check: {{service: "{{service}}", metric: error_rate, op: "<", threshold: 0.02}}
  deadline: 5m
rollback: none
risk: {risk}
blast_radius: {blast_radius}
owner: platform
"""

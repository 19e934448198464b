"""The recommender on the embedded estate: the right runbook for every fault class with
its parameters filled from the evidence, a preview and a why-not for each alternative;
autonomy only for a corroborated, confident diagnosis where policy allows; the kill
switch; no duplicates; the operator's pins and exclusions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from agents.learner import Learner
from agents.recommender import Recommender
from console.actions.runbooks import load_runbook_text
from console.domain import (
    AlertStatus,
    ChangeEvent,
    Evidence,
    Hypothesis,
    IncidentUpdate,
    Severity,
    Signal,
    SignalKind,
    TimelineNote,
)
from console.execution import ExecutionEngine
from console.policy import Policy
from console.runtime import Runtime, ScenarioDriver

PEOPLE = {"bob": "operator", "carol": "approver"}


@dataclass
class World:
    runtime: Runtime
    driver: ScenarioDriver
    learner: Learner
    recommender: Recommender

    @property
    def engine(self) -> ExecutionEngine:
        return self.runtime.service.engine

    @property
    def estate(self) -> Any:
        return self.driver.player.estate

    @property
    def now(self) -> datetime:
        return self.runtime.clock.now()  # type: ignore[no-any-return]

    def set_policy(self, **fields: Any) -> None:
        self.runtime.service.set_policy(Policy(**fields), as_user="alice")

    def incident(self, *services: str, alerts: Sequence[str] = ()) -> int:
        """An open incident on these services (with these alerts of the first one), as
        the correlator would store it."""
        key = len(self.runtime.service.incidents()) + 1000
        notes = tuple(TimelineNote(self.now, "agent", f"open: {services[0]}",
                                   self.signal(name, services[0], f"{services[0]}-0"))
                      for name in alerts)
        info = self.runtime.service.save_incidents([IncidentUpdate(
            key, None, f"alerts on {', '.join(services)}", Severity.WARNING, "open", services,
            self.now, None, notes)], actor="agent:correlator")
        return info[0].id

    def change(self, service: str, kind: str, description: str, **extra: Any) -> str:
        change = ChangeEvent(service, kind, description, self.now, **extra)
        self.runtime.service.ingest(changes=[change])
        return change.id

    def signal(self, name: str, service: str, instance: str) -> str:
        sig = Signal("estate", SignalKind.ALERT, name, service, Severity.WARNING,
                     AlertStatus.FIRING, self.now,
                     {"alertname": name, "service": service, "instance": instance})
        self.runtime.service.ingest(signals=[sig])
        return sig.fingerprint

    def recommend(self, incident: int, *hypotheses: Hypothesis, **kw: Any) -> list[int]:
        return self.recommender.recommend(incident, hypotheses, **kw)

    def rec(self, rec_id: int) -> Any:
        rec = self.engine.recommendation(rec_id)
        assert rec is not None
        return rec


def make_world(db_url: str, scenario: str, *, seed: int = 7, warmup: float = 60.0,
               metrics: Any = None) -> World:
    runtime = Runtime(db_url)
    runtime.service.bootstrap_admin("alice")
    for name, role in PEOPLE.items():
        runtime.service.add_user(name, role, as_user="alice")
    driver = ScenarioDriver(runtime, scenario, seed=seed)
    if warmup:
        driver.step(warmup)
    learner = Learner(runtime.service, driver.metrics)
    recommender = Recommender(runtime.service, runtime.service.engine.library,
                              learner=learner, metrics=metrics or driver.metrics)
    return World(runtime, driver, learner, recommender)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url, "quiet-day")
    yield w
    w.runtime.close()


def hyp(service: str, fault: str, confidence: float = 0.85, signals: int = 1,
        evidence: Sequence[Evidence] = ()) -> Hypothesis:
    return Hypothesis(service, fault, confidence, tuple(evidence), signals=signals)


def alternatives(world: World) -> dict[str, str]:
    assert world.recommender.last
    return {a.runbook_id: a.why for a in world.recommender.last[0].alternatives}


# --- the right runbook for every fault class -----------------------------------------------

def _deploy(w: World) -> list[Evidence]:
    ref = w.change("payments", "deploy", "deploy payments v41 -> v42", version_from="v41",
                   version_to="v42")
    return [Evidence("change", "payments v41 -> v42 just before the errors", f"change:{ref}",
                     0.6)]


def _flag_on(w: World) -> list[Evidence]:
    ref = w.change("payments", "feature_flag", "enable feature flag dynamic-pricing on payments",
                   author="product")
    return [Evidence("change", "dynamic-pricing turned on", f"change:{ref}", 0.5)]


def _disk(w: World) -> list[Evidence]:
    fp = w.signal("DiskSpaceLow", "search", "search-1")
    return [Evidence("alert", "search-1 disk 88% full", f"signal:{fp}", 0.7)]


def _none(w: World) -> list[Evidence]:
    return []


CASES: list[tuple[str, str, Any, str, Mapping[str, Any], tuple[str, ...]]] = [
    ("bad_deploy", "payments", _deploy, "rollback-deploy", {"service": "payments"},
     ("restart-service", "scale-out")),
    ("config_error", "checkout", _none, "rollback-deploy", {"service": "checkout"},
     ("restart-service",)),
    ("memory_leak", "recommendations", _none, "rollback-deploy",
     {"service": "recommendations"}, ("restart-service", "scale-out")),
    ("cpu_saturation", "payments", _flag_on, "toggle-feature-flag",
     {"service": "payments", "flag": "dynamic-pricing", "enabled": False}, ("scale-out",)),
    ("slow_dependency", "orders-db", _none, "failover", {"service": "orders-db"},
     ("restart-service",)),
    ("connection_pool_exhaustion", "inventory", _none, "restart-service",
     {"service": "inventory"}, ("scale-out",)),
    ("disk_filling", "search", _disk, "free-disk", {"service": "search"},
     ("restart-service",)),
    ("queue_backlog", "fulfilment-worker", _none, "restart-service",
     {"service": "fulfilment-worker"}, ("clear-queue",)),
    ("certificate_expiry", "auth", _none, "rotate-certificate", {"service": "auth"},
     ("restart-service",)),
    ("cache_stampede", "product-cache", _none, "toggle-feature-flag",
     {"service": "product-cache", "flag": "request-coalescing", "enabled": True},
     ("flush-cache",)),
    ("network_partition", "cart", _none, "failover", {"service": "cart"},
     ("restart-service",)),
    ("traffic_surge", "frontend", _none, "scale-out", {"service": "frontend"},
     ("restart-service",)),
]


@pytest.mark.parametrize(("fault", "service", "evidence", "runbook", "params", "others"),
                         CASES, ids=[c[0] for c in CASES])
def test_each_fault_class_gets_its_fix_with_a_preview_and_why_not(
        world: World, fault: str, service: str, evidence: Any, runbook: str,
        params: Mapping[str, Any], others: tuple[str, ...]) -> None:
    incident = world.incident(service)
    h = hyp(service, fault, 0.8, evidence=evidence(world))
    ids = world.recommend(incident, h)
    assert len(ids) == 1
    rec = world.rec(ids[0])
    assert rec.runbook_id == runbook
    assert {k: rec.params[k] for k in params} == dict(params)
    assert rec.requester == "agent:recommender"
    assert rec.incident_id == incident
    assert rec.state == "pending"
    assert rec.preview["runbook"] == runbook
    assert rec.preview["steps"][0]["effect"]["target_state"]["kind"]  # the estate's view
    assert 0 < rec.confidence <= 0.8
    why_not = alternatives(world)
    for other in others:
        assert other in why_not, why_not
        assert f"Not {other}: " in rec.explanation
    assert f"Chose {runbook}" in rec.explanation
    assert "waits for a person" in rec.explanation  # one signal: never on its own


def test_the_flag_of_a_cpu_saturation_comes_from_the_change_feed(world: World) -> None:
    world.change("payments", "feature_flag", "enable feature flag dynamic-pricing on payments")
    ids = world.recommend(world.incident("payments"), hyp("payments", "cpu_saturation"))
    rec = world.rec(ids[0])
    assert rec.params == {"service": "payments", "flag": "dynamic-pricing", "enabled": False}
    assert "only eases" in alternatives(world)["scale-out"]


def test_scale_out_is_sized_from_the_saturation_metric(db_url: str) -> None:
    class Saturated:
        def services(self) -> list[str]:
            return ["frontend", "cart"]

        def series(self, service: str, metric: str, start: datetime,
                   end: datetime) -> list[tuple[datetime, float]]:
            return []

        def latest(self, service: str) -> dict[str, float]:
            return {"saturation": 1.5, "instances_ready": 6.0}

    w = make_world(db_url, "quiet-day", metrics=Saturated())
    try:
        ids = w.recommend(w.incident("frontend"), hyp("frontend", "traffic_surge"))
        rec = w.rec(ids[0])
        assert rec.params["count"] == 7  # 6 x 1.5 / 0.7 = 12.9 -> 13 instances
        assert "6 instance(s) ready at saturation 1.50" in rec.explanation
    finally:
        w.runtime.close()


def test_instance_and_version_parameters_come_from_the_evidence(world: World) -> None:
    custom = {
        "free-disk-instance": """
id: free-disk-instance
title: Free disk on one instance
action_class: disk_hygiene
applies_to: {faults: [disk_filling]}
parameters: {service: {type: service}, instance: {type: instance}}
steps: [{executor: command, argv: [/bin/true, "{service}", "{instance}"]}]
preview: "Free disk on {instance} of {service}"
validation: {command: {argv: [/bin/true]}, deadline: 1m}
rollback: none
risk: low
blast_radius: 1
owner: platform
""",
        "pin-version": """
id: pin-version
title: Redeploy the previous version
action_class: deploy_rollback
applies_to: {faults: [bad_deploy]}
parameters: {service: {type: service}, version: {type: version}}
steps: [{executor: command, argv: [/bin/true, "{service}", "{version}"]}]
preview: "Deploy {version} on {service}"
validation: {command: {argv: [/bin/true]}, deadline: 1m}
rollback: none
risk: high
blast_radius: 1
owner: platform
"""}
    library = {rid: load_runbook_text(text, f"{rid}.yaml") for rid, text in custom.items()}
    world.engine.library.update(library)
    world.recommender.library = library
    disk = world.recommend(world.incident("search"),
                           hyp("search", "disk_filling", evidence=_disk(world)))
    assert world.rec(disk[0]).params == {"service": "search", "instance": "search-1"}
    deploy = world.recommend(world.incident("payments"),
                             hyp("payments", "bad_deploy", evidence=_deploy(world)))
    assert world.rec(deploy[0]).params == {"service": "payments", "version": "v41"}
    # no evidence names an instance: that runbook cannot be filled, nothing is guessed
    assert world.recommend(world.incident("cart"), hyp("search", "disk_filling")) == []
    assert "names the instance" in alternatives(world)["free-disk-instance"]


def test_runbooks_that_only_answer_the_alerts_are_named_too(world: World) -> None:
    incident = world.incident("search", alerts=("HighErrorRate", "DiskFull"))
    [rec_id] = world.recommend(incident, hyp("search", "disk_filling"))
    assert world.rec(rec_id).runbook_id == "free-disk"
    why_not = alternatives(world)
    assert why_not["rollback-deploy"] == ("it answers the alert HighErrorRate, not the cause: "
                                          "it is no remedy for disk_filling")
    assert why_not["restart-service"] == "a restart frees no disk"


def test_nothing_fits_an_unknown_fault_class(world: World) -> None:
    assert world.recommend(world.incident("cart"), hyp("cart", "cosmic_rays")) == []
    assert "no runbook in the library remedies cosmic_rays" in \
        (world.recommender.last[0].skipped or "")


# --- one recommendation at a time ------------------------------------------------------------

def test_no_duplicate_while_one_waits(world: World) -> None:
    incident = world.incident("inventory")
    first = world.recommend(incident, hyp("inventory", "connection_pool_exhaustion"))
    assert len(first) == 1
    assert world.recommend(incident, hyp("inventory", "connection_pool_exhaustion", 0.95, 3)) \
        == []
    assert "already recommendation" in (world.recommender.last[0].skipped or "")
    # another incident is another recommendation
    assert len(world.recommend(world.incident("inventory"),
                               hyp("inventory", "connection_pool_exhaustion"))) == 1


def test_a_rejected_one_returns_only_when_the_diagnosis_changes(world: World) -> None:
    incident = world.incident("inventory")
    h = hyp("inventory", "connection_pool_exhaustion", 0.6, 1)
    [rec_id] = world.recommend(incident, h)
    world.engine.reject(rec_id, as_user="bob", reason="pool looks fine to me")
    assert world.recommend(incident, h) == []
    assert "was rejected for the same diagnosis" in (world.recommender.last[0].skipped or "")
    assert world.recommend(incident, hyp("inventory", "connection_pool_exhaustion", 0.65)) == []
    again = world.recommend(incident, hyp("inventory", "connection_pool_exhaustion", 0.6, 2))
    assert len(again) == 1
    assert again[0] != rec_id


def test_an_expired_one_counts_as_decided(world: World) -> None:
    world.set_policy(recommendation_ttl=60.0)
    incident = world.incident("auth")
    assert len(world.recommend(incident, hyp("auth", "certificate_expiry"))) == 1
    world.driver.step(120)
    assert world.recommend(incident, hyp("auth", "certificate_expiry")) == []
    assert "was expired" in (world.recommender.last[0].skipped or "")
    assert len(world.recommend(incident, hyp("auth", "certificate_expiry", 0.99))) == 1


# --- steering --------------------------------------------------------------------------------

def test_a_pinned_hypothesis_is_the_one_acted_on(world: World) -> None:
    incident = world.incident("payments", "payments-db")
    best, pinned = hyp("payments", "bad_deploy", 0.8), hyp("payments-db", "slow_dependency", 0.1)
    [rec_id] = world.recommend(incident, best, pinned, pinned="payments-db/slow_dependency")
    rec = world.rec(rec_id)
    assert (rec.runbook_id, rec.target) == ("failover", "payments-db")
    assert "Not acting on payments/bad_deploy (0.80): the operator pinned" in rec.explanation
    # a pin the investigator never ranked still gets its remedy
    [other] = world.recommend(world.incident("cart"), best, pinned="cart/network_partition")
    assert world.rec(other).target == "cart"


def test_excluded_services_get_nothing(world: World) -> None:
    incident = world.incident("payments", "payments-db")
    best, second = hyp("payments", "bad_deploy", 0.8), hyp("payments-db", "slow_dependency", 0.3)
    [rec_id] = world.recommend(incident, best, second, excluded_services={"payments"})
    assert world.rec(rec_id).target == "payments-db"
    assert "the operator excluded payments" in world.rec(rec_id).explanation
    assert world.recommend(world.incident("payments"), best, pinned="payments/bad_deploy",
                           excluded_services=["payments"]) == []
    assert world.recommend(world.incident("x"), best, second,
                           excluded_services=["payments", "payments-db"]) == []


def test_two_causes_at_once_get_one_remedy_each(world: World) -> None:
    incident = world.incident("cart", "payments-db")
    ids = world.recommend(incident, hyp("cart", "bad_deploy", 0.7),
                          hyp("payments-db", "slow_dependency", 0.6),
                          hyp("cart", "config_error", 0.55), hyp("search", "disk_filling", 0.2))
    assert sorted((world.rec(i).runbook_id, world.rec(i).target) for i in ids) == \
        [("failover", "payments-db"), ("rollback-deploy", "cart")]


# --- autonomy ----------------------------------------------------------------------------------

@pytest.fixture
def disk_world(db_url: str) -> Iterator[World]:
    w = make_world(db_url, "disk-filling", warmup=20 * 60.0)
    w.set_policy(levels={"disk_hygiene": 3})
    w.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    yield w
    w.runtime.close()


def _disk_now(w: World) -> float:
    return float(w.estate.metrics("search")["disk"])


def test_a_corroborated_confident_diagnosis_runs_on_its_own_and_validates(
        disk_world: World) -> None:
    w = disk_world
    before = _disk_now(w)
    assert before > 70
    [rec_id] = w.recommend(w.incident("search"), hyp("search", "disk_filling", 0.92, 3))
    rec = w.rec(rec_id)
    assert (rec.autonomous, rec.state) == (True, "queued")
    assert "3 independent signals (policy needs 2) at 0.92" in rec.explanation
    assert "is at level 3 and low risk is autonomous, so it runs on its own" in rec.explanation
    for _ in range(10):
        w.driver.step(15)
        execution = next(iter(w.engine.executions()), None)
        if execution is not None and execution.state == "succeeded":
            break
    assert execution is not None
    assert (execution.state, execution.autonomous, execution.runbook_id) == \
        ("succeeded", True, "free-disk")
    assert execution.result["validation"]["passed"]
    assert _disk_now(w) < 85 < before + 20
    actions = [e.action for e in w.runtime.service.audit_entries()]
    assert actions.index("recommendation.create") < actions.index("execution.intent") < \
        actions.index("execution.succeeded")
    assert "recommendation.diagnosis" in actions


@pytest.mark.parametrize(("confidence", "signals", "why"), [
    (0.92, 1, "only 1 independent signal(s) corroborate it (policy needs 2)"),
    (0.6, 3, "confidence 0.60 is under the autonomy threshold 0.80"),
], ids=["one-signal", "low-confidence"])
def test_a_weak_diagnosis_waits_for_a_person(disk_world: World, confidence: float,
                                             signals: int, why: str) -> None:
    w = disk_world
    [rec_id] = w.recommend(w.incident("search"), hyp("search", "disk_filling", confidence,
                                                     signals))
    rec = w.rec(rec_id)
    assert (rec.state, rec.autonomous) == ("pending", False)
    assert why in rec.explanation
    w.driver.step(60)
    assert w.engine.executions() == []


def test_at_level_2_policy_keeps_it_for_a_person(disk_world: World) -> None:
    w = disk_world
    w.set_policy(levels={"disk_hygiene": 2})
    [rec_id] = w.recommend(w.incident("search"), hyp("search", "disk_filling", 0.95, 4))
    rec = w.rec(rec_id)
    assert (rec.state, rec.autonomous) == ("pending", True)  # policy said: needs approval
    assert "disk_hygiene on search is at level 2 (it takes 3), so it waits" in rec.explanation
    decision = next(e for e in w.runtime.service.audit_entries()
                    if e.action == "policy.decide")
    assert decision.decision == "needs_approval"
    w.driver.step(60)
    assert w.engine.executions() == []
    out = w.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert out["decision"] == "allow"


def test_the_kill_switch_stops_everything(disk_world: World) -> None:
    w = disk_world
    incident = w.incident("search")
    w.runtime.service.set_kill_switch(True, as_user="bob", reason="hands off")
    assert w.recommend(incident, hyp("search", "disk_filling", 0.95, 4)) == []
    assert "kill switch" in (w.recommender.last[0].skipped or "")
    w.runtime.service.set_kill_switch(False, as_user="alice")
    [queued] = w.recommend(incident, hyp("search", "disk_filling", 0.95, 4))
    assert w.rec(queued).state == "queued"
    w.runtime.service.set_kill_switch(True, as_user="bob", reason="hands off again")
    assert w.rec(queued).state == "cancelled"
    w.driver.step(60)
    assert w.engine.executions() == []


def test_a_remedy_that_only_eases_never_runs_on_its_own(world: World) -> None:
    world.set_policy(levels={"feature_flag": 1, "scale": 3})
    world.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    _flag_on(world)
    [rec_id] = world.recommend(world.incident("payments"),
                               hyp("payments", "cpu_saturation", 0.95, 4))
    rec = world.rec(rec_id)
    assert rec.runbook_id == "scale-out"
    assert (rec.state, rec.autonomous) == ("pending", False)
    assert "only eases cpu_saturation" in rec.explanation
    assert "feature_flag on payments is at level 1" in alternatives(world)["toggle-feature-flag"]


def test_confidence_is_the_diagnosis_times_the_learned_success(world: World) -> None:
    [rec_id] = world.recommend(world.incident("auth"), hyp("auth", "certificate_expiry", 0.8))
    assert world.rec(rec_id).confidence == pytest.approx(0.4)  # no history: Beta(1, 1)
    assert "Beta(1, 1): 0 succeeded, 0 failed" in world.rec(rec_id).explanation


# --- high risk: what applies, a grant or the need for an approver ---------------------------

def _slow_orders_db(w: World, **policy: Any) -> Any:
    w.set_policy(levels={"failover": 3}, **policy)
    w.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    incident = w.incident("orders-db")
    w.driver.step(180)  # past policy's min_persistence since the incident opened
    [rec_id] = w.recommend(incident, hyp("orders-db", "slow_dependency", 0.95, 3))
    return w.rec(rec_id)


def test_a_high_risk_grant_is_named_where_it_applies(world: World) -> None:
    rec = _slow_orders_db(world, high_risk_autonomy={"failover": ("orders-db",)})
    assert rec.runbook_id == "failover"
    assert "not an autonomous tier" not in rec.explanation
    assert "an admin granted high-risk failover on orders-db level 3 (policy " \
        "high_risk_autonomy), so it runs on its own" in rec.explanation
    assert (rec.autonomous, rec.state) == (True, "queued")


def test_high_risk_without_a_grant_says_it_needs_an_approver(world: World) -> None:
    rec = _slow_orders_db(world, high_risk_autonomy={"failover": ("cart-db",)},
                          autonomous_risk=("low", "high"))
    assert "high risk needs an approver: no admin granted failover on orders-db level 3" \
        in rec.explanation
    assert "so it waits for a person" in rec.explanation
    assert rec.state == "pending"

"""The execution lifecycle on the embedded estate: previews bound to approvals, intent
before action, validation with a deadline, automatic and manual rollback, the kill
switch, and every role against every operation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.actions.runbooks import load_library, load_runbook_text
from console.execution import ExecutionEngine, ExecutionError
from console.operations import PermissionDenied, Refused
from console.policy import Policy, PolicyError, load_policy, load_policy_text
from console.runtime import Runtime, ScenarioDriver

PEOPLE = {"bob": "operator", "carol": "approver", "victor": "viewer", "dave": "operator"}


@dataclass
class World:
    runtime: Runtime
    driver: ScenarioDriver

    @property
    def engine(self) -> ExecutionEngine:
        return self.runtime.service.engine

    @property
    def estate(self) -> Any:
        return self.driver.player.estate

    def set_policy(self, **fields: Any) -> None:
        self.runtime.service.set_policy(Policy(**fields), as_user="alice")

    def actions(self) -> list[str]:
        return [e.action for e in self.runtime.service.audit_entries()]


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


def instances(world: World, service: str) -> int:
    return len(world.estate.describe(service)["instances"])


def test_a_recommendation_carries_its_preview_and_nothing_runs(world: World) -> None:
    before = world.estate.describe("cart")
    rec_id = world.engine.propose("scale-out", {"service": "cart", "count": 2},
                                  requester="agent:recommender", confidence=0.8,
                                  explanation="saturation climbing")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.state == "pending"
    assert rec.preview["summary"] == "Add 2 instance(s) to cart"
    assert rec.preview["steps"][0]["effect"]["target_state"] == before
    assert rec.preview["rollback"][0]["action"] == "scale_in"
    assert rec.preview["validation"]["probe"]["kind"] == "check"
    assert len(rec.preview_hash) == 64
    assert world.estate.describe("cart") == before  # a preview changes nothing
    assert world.engine.executions() == []


def test_approval_runs_once_with_the_intent_written_first(world: World) -> None:
    rec_id = world.engine.propose("scale-out", {"service": "cart", "count": 2},
                                  requester="agent:recommender", confidence=0.9)
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    before = instances(world, "cart")
    out = world.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert out["decision"] == "allow"
    assert out["execution"] is not None
    assert instances(world, "cart") == before + 2
    execution = world.engine.execution(out["execution"])
    assert execution is not None
    assert execution.state in ("validating", "succeeded")
    assert execution.plan["steps"][0]["action"] == "scale_out"
    actions = world.actions()
    assert actions.index("execution.intent") < actions.index("execution.executed")
    assert "policy.decide" in actions
    # a second approval of the same recommendation runs nothing
    with pytest.raises(Refused, match="not pending"):
        world.engine.approve(rec_id, as_user="dave", preview_hash=rec.preview_hash)
    assert world.engine.drain() == []
    assert instances(world, "cart") == before + 2
    assert len(world.engine.executions()) == 1


def test_validation_passes_as_the_estate_settles(world: World) -> None:
    rec_id = world.engine.propose("scale-out", {"service": "search", "count": 1},
                                  requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    for _ in range(10):
        world.driver.step(15)
    execution = world.engine.execution(exec_id)
    assert execution is not None
    assert execution.state == "succeeded"
    assert execution.result["validation"]["passed"] is True
    assert "saturation of search" in execution.result["validation"]["detail"]


def test_an_approval_is_void_when_the_target_changed(world: World) -> None:
    rec_id = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                  requester="agent:recommender")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    seen = rec.preview_hash
    world.driver.player.apply_action("scale_out", "cart", {"count": 3})  # someone else acted
    before = instances(world, "cart")
    with pytest.raises(Refused, match="preview changed"):
        world.engine.approve(rec_id, as_user="bob", preview_hash=seen)
    assert instances(world, "cart") == before  # nothing ran
    fresh = world.engine.recommendation(rec_id)
    assert fresh is not None
    assert fresh.preview_hash != seen
    assert fresh.state == "pending"
    assert len(fresh.preview["steps"][0]["effect"]["target_state"]["instances"]) == before
    out = world.engine.approve(rec_id, as_user="bob", preview_hash=fresh.preview_hash)
    assert out["execution"] is not None
    assert instances(world, "cart") == before + 1


def test_a_change_between_approval_and_start_sends_it_back(world: World) -> None:
    """Four-eyes: approved by one, the target changes, the second approval is refused."""
    rec_id = world.engine.propose("rollback-deploy", {"service": "payments"},
                                  requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.risk == "high"
    first = world.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert first["decision"] == "needs_approval"
    assert first["approver_role"] == "approver"
    world.estate.deploy("payments", "v99", author="ci")
    with pytest.raises(Refused, match="preview changed"):
        world.engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    fresh = world.engine.recommendation(rec_id)
    assert fresh is not None
    assert fresh.approvals == ()


def test_high_risk_needs_an_approver_other_than_the_requester(world: World) -> None:
    world.estate.deploy("payments", "v2", author="ci")
    rec_id = world.engine.propose("rollback-deploy", {"service": "payments"},
                                  requester="user:carol")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    own = world.engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    assert own["decision"] == "needs_approval"
    assert own.get("execution") is None
    operator = world.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert operator["decision"] == "needs_approval"  # an operator is not an approver
    other = world.engine.approve(rec_id, as_user="alice", preview_hash=rec.preview_hash)
    assert other["decision"] == "allow"
    assert other["execution"] is not None
    assert world.estate.describe("payments")["version"] != "v2"


def test_recommendations_and_approvals_expire(world: World) -> None:
    world.set_policy(recommendation_ttl=600.0, approval_ttl=60.0)
    rec_id = world.engine.propose("rollback-deploy", {"service": "payments"},
                                  requester="agent:recommender")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    world.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert world.engine.recommendation(rec_id).approvals == (("bob", "operator"),)  # type: ignore[union-attr]
    world.driver.step(120)
    assert world.engine.recommendation(rec_id).approvals == ()  # type: ignore[union-attr]
    world.driver.step(600)
    with pytest.raises(Refused, match="expired"):
        world.engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    assert world.engine.recommendation(rec_id).state == "expired"  # type: ignore[union-attr]
    assert world.engine.executions() == []


def test_reject_needs_a_reason_and_is_audited(world: World) -> None:
    rec_id = world.engine.propose("restart-service", {"service": "cart"},
                                  requester="agent:recommender")
    with pytest.raises(ExecutionError, match="reason"):
        world.engine.reject(rec_id, as_user="bob", reason="  ")
    world.engine.reject(rec_id, as_user="bob", reason="wrong service")
    assert world.engine.recommendation(rec_id).state == "rejected"  # type: ignore[union-attr]
    last = world.runtime.service.audit_entries()[-1]
    assert (last.action, last.reason, last.actor) == ("recommendation.reject",
                                                      "wrong service", "user:bob")


@pytest.mark.parametrize("label", ["cart; rm -rf ~", "$(touch PWNED)", "cart`id`",
                                   "cart | cat /etc/passwd", "cart\nrestart all"])
def test_alert_text_never_reaches_an_executor_unchecked(world: World, label: str) -> None:
    with pytest.raises(ExecutionError, match="parameter service"):
        world.engine.propose("restart-service", {"service": label},
                             requester="agent:recommender")
    assert world.engine.recommendations() == []


def test_failed_validation_rolls_back_and_restores_the_prior_state(world: World) -> None:
    strict = load_runbook_text(STRICT_SCALE_OUT, "strict.yaml")
    world.engine.library[strict.id] = strict
    before = world.estate.describe("cart")
    rec_id = world.engine.propose(strict.id, {"service": "cart"}, requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    assert len(world.estate.describe("cart")["instances"]) == len(before["instances"]) + 1
    for _ in range(6):
        world.driver.step(15)
    execution = world.engine.execution(exec_id)
    assert execution is not None
    assert execution.state == "rolled_back"
    assert world.estate.describe("cart") == before
    assert {"execution.failed", "execution.rollback", "execution.rolled_back"} <= \
        set(world.actions())


def test_without_auto_rollback_a_person_rolls_back_once(world: World) -> None:
    world.set_policy(auto_rollback=())
    strict = load_runbook_text(STRICT_SCALE_OUT, "strict.yaml")
    world.engine.library[strict.id] = strict
    before = world.estate.describe("cart")
    rec_id = world.engine.propose(strict.id, {"service": "cart"}, requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    for _ in range(6):
        world.driver.step(15)
    execution = world.engine.execution(exec_id)
    assert execution is not None
    assert execution.state == "failed"
    assert execution.result["rollback_offered"] is True
    assert execution.can_roll_back
    with pytest.raises(PermissionDenied):
        world.engine.rollback(exec_id, as_user="victor")
    assert world.engine.rollback(exec_id, as_user="bob") == "rolled_back"
    assert world.estate.describe("cart") == before
    with pytest.raises(Refused, match="cannot be rolled back"):
        world.engine.rollback(exec_id, as_user="bob")
    assert world.estate.describe("cart") == before  # not rolled back twice


def test_an_action_without_a_rollback_path_says_so(world: World) -> None:
    rec_id = world.engine.propose("restart-service", {"service": "cart"}, requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    with pytest.raises(Refused, match="no rollback path"):
        world.engine.rollback(exec_id, as_user="bob")


def test_autonomous_runs_only_where_policy_allows(world: World) -> None:
    world.set_policy(levels={"scale": 3}, default_level=2)
    world.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    allowed = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                   requester="agent:recommender", autonomous=True)
    waiting = world.engine.propose("restart-service", {"service": "cart"},
                                   requester="agent:recommender", autonomous=True)
    assert world.engine.recommendation(allowed).state == "queued"  # type: ignore[union-attr]
    assert world.engine.recommendation(waiting).state == "pending"  # type: ignore[union-attr]
    world.driver.step(15)  # the driver's poll runs what is queued
    assert [e.recommendation_id for e in world.engine.executions()] == [allowed]
    assert world.engine.executions()[0].autonomous


def test_kill_switch_cancels_queued_autonomous_runs(world: World) -> None:
    world.set_policy(levels={"scale": 3})
    world.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    queued = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                  requester="agent:recommender", autonomous=True)
    before = instances(world, "cart")
    world.runtime.service.set_kill_switch(True, as_user="bob", reason="weird night")
    assert world.engine.recommendation(queued).state == "cancelled"  # type: ignore[union-attr]
    world.driver.step(15)
    assert instances(world, "cart") == before
    assert world.engine.executions() == []
    refused = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                   requester="agent:recommender", autonomous=True)
    assert world.engine.recommendation(refused).state == "denied"  # type: ignore[union-attr]
    kill = next(e for e in world.runtime.service.audit_entries()
                if e.action == "autonomy.kill_switch")
    assert kill.outputs["cancelled"] == [queued]
    with pytest.raises(PermissionDenied):
        world.runtime.service.set_kill_switch(False, as_user="carol")


def test_policy_lives_in_the_database_and_changes_by_operation(world: World,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("default_level: 1\nlevels: {scale: 3}\nauto_rollback: []\n")
    policy = load_policy(path)
    with pytest.raises(PermissionDenied):
        world.runtime.service.set_policy(policy, as_user="carol")
    world.runtime.service.set_policy(policy, as_user="alice", reason="night shift")
    assert world.runtime.service.policy() == policy
    entry = world.runtime.service.audit_entries()[-1]
    assert entry.action == "policy.set"
    assert "auto_rollback" in entry.outputs["changed"]
    with pytest.raises(PolicyError, match=r"bad.yaml:2: levels.scale"):
        load_policy_text("default_level: 1\nlevels: {scale: nine}\n", "bad.yaml")


def test_a_change_record_is_opened_before_and_closed_after(world: World) -> None:
    calls: list[tuple[str, Any]] = []

    class Gate:
        def open_change(self, action_class: str, summary: str, details: str,
                        key: str) -> Any:
            from console.itsm.base import TicketRef

            calls.append(("open", (action_class, key, instances(world, "cart"))))
            return TicketRef("builtin", "CHG-1", "change")

        def close_change(self, ref: Any, outcome: str, success: bool) -> None:
            calls.append(("close", (ref.id, success)))

    world.engine.change_gate = Gate()
    world.set_policy(change_records=("scale",))
    before = instances(world, "cart")
    rec_id = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                  requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    for _ in range(8):
        world.driver.step(15)
    assert calls[0] == ("open", ("scale", f"exec:{exec_id}", before))
    assert calls[-1] == ("close", ("CHG-1", True))


def test_no_change_record_no_run(world: World) -> None:
    class Broken:
        def open_change(self, *args: Any) -> Any:
            raise RuntimeError("ServiceNow said 503")

    world.engine.change_gate = Broken()
    world.set_policy(change_records=("*",))
    before = instances(world, "cart")
    rec_id = world.engine.propose("scale-out", {"service": "cart", "count": 1},
                                  requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    execution = world.engine.execution(exec_id)
    assert execution is not None
    assert execution.state == "failed"
    assert "no change record" in execution.result["outcome"]
    assert instances(world, "cart") == before


def test_every_shipped_runbook_previews_on_the_estate(world: World) -> None:
    params = {"toggle-feature-flag": {"flag": "new_checkout", "enabled": False}}
    for book in load_library().values():
        given = {"service": "cart", **params.get(book.id, {})}
        plan = world.engine.plan(book.id, given)
        assert plan.preview["steps"]
        assert plan.hash


# --- every role against every operation ------------------------------------------------

OPERATIONS = ["propose", "approve", "reject", "rollback", "kill_on", "kill_off", "set_policy",
              "set_ceiling", "add_user"]
MINIMUM = {"propose": "operator", "approve": "operator", "reject": "operator",
           "rollback": "operator", "kill_on": "operator", "kill_off": "admin",
           "set_policy": "admin", "set_ceiling": "admin", "add_user": "admin"}
RANK = ["viewer", "operator", "approver", "admin"]
WHO = {"viewer": "victor", "operator": "bob", "approver": "carol", "admin": "alice"}


def _attempt(world: World, operation: str, user: str) -> None:
    engine, service = world.engine, world.runtime.service
    if operation == "propose":
        engine.propose("scale-out", {"service": "cart", "count": 1}, requester=f"user:{user}")
    elif operation in ("approve", "reject"):
        rec_id = engine.propose("scale-out", {"service": "cart", "count": 1},
                                requester="agent:recommender")
        rec = engine.recommendation(rec_id)
        assert rec is not None
        if operation == "approve":
            engine.approve(rec_id, as_user=user, preview_hash=rec.preview_hash)
        else:
            engine.reject(rec_id, as_user=user, reason="no")
    elif operation == "rollback":
        rec_id = engine.propose("scale-out", {"service": "cart", "count": 1},
                                requester="user:bob")
        rec = engine.recommendation(rec_id)
        assert rec is not None
        exec_id = engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
        engine.rollback(exec_id["execution"], as_user=user)
    elif operation == "kill_on":
        service.set_kill_switch(True, as_user=user)
    elif operation == "kill_off":
        service.set_kill_switch(True, as_user="alice")
        service.set_kill_switch(False, as_user=user)
    elif operation == "set_policy":
        service.set_policy(Policy(default_level=1), as_user=user)
    elif operation == "set_ceiling":
        service.set_autonomy_ceiling(1, as_user=user)
    else:
        service.add_user("newbie", "admin", as_user=user)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", RANK)
def test_role_operation_matrix_has_no_escalation(world: World, role: str,
                                                 operation: str) -> None:
    allowed = RANK.index(role) >= RANK.index(MINIMUM[operation])
    before = world.runtime.service.status()
    if allowed:
        _attempt(world, operation, WHO[role])
    else:
        with pytest.raises(PermissionDenied):
            _attempt(world, operation, WHO[role])
        last = world.runtime.service.audit_entries()[-1]
        assert last.decision == "deny"
        assert last.actor == f"user:{WHO[role]}"
        if operation == "kill_off":
            assert world.runtime.service.status().kill_switch is True
        elif operation in ("set_ceiling", "kill_on"):
            assert world.runtime.service.status() == before
        assert world.runtime.service.role_of("newbie") is None
        if operation == "propose":
            assert world.engine.recommendations() == []
    assert world.runtime.service.verify_audit().ok


STRICT_SCALE_OUT = """
id: scale-out-strict
title: Add an instance, with a validation that cannot pass
action_class: scale
parameters:
  service: {type: service}
steps:
  - {executor: estate, action: scale_out, args: {service: "{service}", count: "1"}}
preview: "Add 1 instance to {service}"
validation:
  check: {service: "{service}", metric: saturation, op: "<", threshold: -1}
  deadline: 45s
rollback:
  - {executor: estate, action: scale_in, args: {service: "{service}", count: "1"}}
risk: low
blast_radius: 1
owner: test
"""


GUARDED_SCALE_OUT = STRICT_SCALE_OUT.replace("id: scale-out-strict", "id: scale-out-guarded") \
    .replace("parameters:", "preconditions:\n  - {service: \"{service}\", metric: saturation, "
             "op: \">\", threshold: OVER}\nparameters:")


@pytest.mark.parametrize(("threshold", "runs"), [(-1.0, True), (5.0, False)])
def test_preconditions_are_checked_before_the_first_step(world: World, threshold: float,
                                                         runs: bool) -> None:
    guarded = load_runbook_text(GUARDED_SCALE_OUT.replace("OVER", str(threshold)), "g.yaml")
    world.engine.library[guarded.id] = guarded
    before = instances(world, "cart")
    rec_id = world.engine.propose(guarded.id, {"service": "cart"}, requester="user:bob")
    rec = world.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.preview["preconditions"][0]["metric"] == "saturation"
    exec_id = world.engine.approve(rec_id, as_user="bob",
                                   preview_hash=rec.preview_hash)["execution"]
    execution = world.engine.execution(exec_id)
    assert execution is not None
    assert instances(world, "cart") == before + (1 if runs else 0)
    if not runs:
        assert execution.state == "failed"
        assert execution.result["outcome"].startswith("precondition not met, nothing ran")
        assert execution.result["rollback_offered"] is False


def test_the_readme_policy_example_loads() -> None:
    from tests.helpers import readme_yaml

    policy = load_policy_text(readme_yaml("default_level: 2"), "README.md")
    assert policy.level("restart", "payments") == 1
    assert policy.level("disk_hygiene", "search") == 3
    assert policy.rate_limits["restart"].per == 1800
    assert policy.needs_change_record("deploy_rollback")
    assert policy.budget(0.75) == 3

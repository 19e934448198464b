"""What an approval must name and who it counts for: an empty preview hash names no
preview and is bad input (tests/test_approval_cli.py has `watchfloor approve`'s side),
and a person's second approval of the same preview is refused, stored once and never
taken for the second person of four eyes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.execution import ExecutionEngine, ExecutionError
from console.operations import Refused
from console.runtime import Runtime, ScenarioDriver

PEOPLE = {"bob": "operator", "carol": "approver"}


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Runtime, ScenarioDriver]]:
    runtime = Runtime(db_url)
    runtime.service.bootstrap_admin("alice")
    for name, role in PEOPLE.items():
        runtime.service.add_user(name, role, as_user="alice")
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    yield runtime, driver
    runtime.close()


def _approvals(runtime: Runtime) -> list[tuple[str, str]]:
    return [(e.actor, e.decision) for e in runtime.service.audit_entries()
            if e.action == "recommendation.approve"]


# --- an empty preview hash ------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_the_service_refuses_an_empty_preview_hash(world: tuple[Runtime, ScenarioDriver],
                                                   blank: str) -> None:
    runtime, _ = world
    engine: ExecutionEngine = runtime.service.engine
    rec_id = engine.propose("scale-out", {"service": "cart", "count": 1},
                            requester="agent:recommender")
    with pytest.raises(ExecutionError, match="preview hash is empty"):
        engine.approve(rec_id, as_user="bob", preview_hash=blank)
    rec = engine.recommendation(rec_id)
    assert rec is not None
    assert (rec.state, rec.approvals) == ("pending", ())
    assert _approvals(runtime) == []
    assert engine.executions() == []


# --- one approval per person ------------------------------------------------------------


def test_a_second_approval_by_the_same_person_is_refused_and_never_counts_twice(
        world: tuple[Runtime, ScenarioDriver]) -> None:
    runtime, driver = world
    engine = runtime.service.engine
    driver.player.estate.deploy("payments", "v2", author="ci")
    rec_id = engine.propose("rollback-deploy", {"service": "payments"},
                            requester="user:carol")
    rec = engine.recommendation(rec_id)
    assert rec is not None
    assert rec.risk == "high"  # four eyes: the requester and another approver
    own = engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    assert own["decision"] == "needs_approval"
    with pytest.raises(Refused, match="carol already approved"):
        engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    again = engine.recommendation(rec_id)
    assert again is not None
    assert (again.state, again.approvals) == ("pending", (("carol", "approver"),))
    refused = [e for e in runtime.service.audit_entries()
               if e.action == "recommendation.approve" and e.decision == "deny"]
    assert [(e.actor, e.target) for e in refused] == [("user:carol",
                                                       f"recommendation:{rec_id}")]
    assert "another person" in refused[0].outputs["refused"]
    decisions = [e for e in runtime.service.audit_entries()
                 if e.action == "policy.decide" and e.target == f"recommendation:{rec_id}"]
    assert len(decisions) == 1  # the refused repeat was not put to policy
    other = engine.approve(rec_id, as_user="alice", preview_hash=rec.preview_hash)
    assert other["decision"] == "allow"
    assert runtime.service.verify_audit().ok


def test_an_approval_that_lapsed_may_be_given_again(
        world: tuple[Runtime, ScenarioDriver]) -> None:
    """Only a standing approval blocks a repeat: once it expired, the same person may
    approve the same preview again (and that one counts)."""
    from console.policy import Policy

    runtime, driver = world
    runtime.service.set_policy(Policy(approval_ttl=60.0), as_user="alice")
    engine = runtime.service.engine
    driver.player.estate.deploy("payments", "v2", author="ci")
    rec_id = engine.propose("rollback-deploy", {"service": "payments"},
                            requester="user:carol")
    rec = engine.recommendation(rec_id)
    assert rec is not None
    engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    runtime.clock.advance(120)  # the estate stands still: the preview stays the same
    rec = engine.recommendation(rec_id)
    assert rec is not None
    assert rec.approvals == ()
    out = engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert out["decision"] == "needs_approval"  # an operator is not an approver
    again = engine.recommendation(rec_id)
    assert again is not None
    assert again.approvals == (("bob", "operator"),)

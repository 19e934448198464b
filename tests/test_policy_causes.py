"""Policy's limits on acting where acting does not help (the circuit breaker per cause
and per incident) and the admin's grant of level 3 to a high-risk class on named
services: defaults, validation, decisions, and the audit of a change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.policy import Causes, Policy, PolicyError, Request, decide, load_policy_text

NOW = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)


def agent(action_class: str, service: str, risk: str = "high",
          actor: str = "agent:recommender") -> Request:
    return Request(actor=actor, role=None, action_class=action_class, service=service,
                   risk=risk, blast_radius=1)  # type: ignore[arg-type]


def test_the_default_breaker_is_one_autonomous_attempt_per_cause_and_three_an_hour() -> None:
    causes = Policy().causes
    assert causes.autonomous_attempts == 1
    assert causes.ineffective == 2
    assert causes.window == 3600.0
    # tightening as the diagnosis is less sure
    assert [causes.incident_budget(c) for c in (0.99, 0.9, 0.8, 0.7, 0.5, 0.0)] == \
        [3, 3, 2, 2, 1, 1]


def test_breaker_limits_are_read_from_a_policy_file_and_checked() -> None:
    policy = load_policy_text(
        "causes:\n  autonomous_attempts: 0\n  ineffective: 1\n  window: 30m\n"
        "  incident_budgets: [{confidence: 0.5, actions: 5}]\n", "policy.yaml")
    assert policy.causes == Causes(autonomous_attempts=0, ineffective=1, window=1800.0,
                                   incident_budgets=({"confidence": 0.5, "actions": 5},))
    assert policy.causes.incident_budget(0.4) == 0
    with pytest.raises(PolicyError, match=r"policy.yaml:2: causes.ineffective"):
        load_policy_text("causes:\n  ineffective: 0\n", "policy.yaml")
    with pytest.raises(PolicyError, match=r"causes.observe"):
        load_policy_text("causes:\n  observe: -5\n", "policy.yaml")


def test_high_risk_needs_a_person_by_default_even_at_level_three() -> None:
    policy = Policy(levels={"failover": 3})
    decision = decide(policy, agent("failover", "orders-db"), ceiling=5, kill_switch=False,
                      now=NOW)
    assert decision.outcome == "needs_approval"
    assert decision.approver_role == "approver"


def test_an_admin_may_grant_a_high_risk_class_level_three_on_named_services() -> None:
    policy = Policy(levels={"failover": 3}, service_levels={"cart-db": {"failover": 2}},
                    high_risk_autonomy={"failover": ("orders-db", "cart-db")})
    granted = decide(policy, agent("failover", "orders-db"), ceiling=5, kill_switch=False,
                     now=NOW)
    assert granted.outcome == "allow"
    assert any("granted by policy" in r for r in granted.reasons)
    # only the named services, only that class, only at level 3, under the ceiling
    for request, ceiling in ((agent("failover", "payments-db"), 5),
                             (agent("deploy_rollback", "orders-db"), 5),
                             (agent("failover", "cart-db"), 5),
                             (agent("failover", "orders-db"), 2)):
        assert decide(policy, request, ceiling=ceiling, kill_switch=False,
                      now=NOW).outcome == "needs_approval", request
    # a level-1 rule is no agent judgment: the grant does not cover it
    rule = agent("failover", "orders-db", actor="rule:page-db")
    assert decide(policy, rule, ceiling=5, kill_switch=False, now=NOW).outcome == \
        "needs_approval"
    # the kill switch still stops it
    assert decide(policy, agent("failover", "orders-db"), ceiling=5, kill_switch=True,
                  now=NOW).outcome == "deny"


def test_a_grant_is_an_audited_policy_change(runtime: object) -> None:
    service = runtime.service  # type: ignore[attr-defined]
    service.set_policy(Policy(high_risk_autonomy={"failover": ("orders-db",)}),
                       as_user="alice", reason="orders-db failover drilled monthly")
    assert service.policy().high_risk_autonomy == {"failover": ("orders-db",)}
    record = [e for e in service.audit_entries() if e.action == "policy.set"][-1]
    assert record.actor == "user:alice"
    assert "high_risk_autonomy" in record.outputs["changed"]
    assert record.outputs["after"]["high_risk_autonomy"] == {"failover": ["orders-db"]}

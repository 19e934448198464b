"""The policy engine: every role x operation, agents under levels and the kill switch,
freezes, windows, rate limits, breakers and blast budgets — with reasons, never silent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from console.policy import History, Policy, Request, decide

NOW = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
POLICY = Policy(levels={"disk_hygiene": 3, "deploy_rollback": 2, "restart": 3},
                service_levels={"payments": {"restart": 2}})


def person(name: str, role: str, risk: str = "low", **kw: object) -> Request:
    return Request(actor=f"user:{name}", role=role, action_class="restart", service="search",
                   risk=risk, blast_radius=1, **kw)  # type: ignore[arg-type]


def agent(action_class: str = "disk_hygiene", service: str = "search", risk: str = "low",
          **kw: object) -> Request:
    return Request(actor="agent:recommender", role=None, action_class=action_class,
                   service=service, risk=risk, blast_radius=1, **kw)  # type: ignore[arg-type]


EXPECTED = {  # (role, risk) -> outcome when a person asks to run it, nobody else approved
    ("viewer", "low"): "deny", ("viewer", "medium"): "deny", ("viewer", "high"): "deny",
    ("operator", "low"): "allow", ("operator", "medium"): "allow",
    ("operator", "high"): "needs_approval",
    ("approver", "low"): "allow", ("approver", "medium"): "allow",
    ("approver", "high"): "needs_approval",
    ("admin", "low"): "allow", ("admin", "medium"): "allow", ("admin", "high"): "needs_approval",
}


@pytest.mark.parametrize(("role", "risk"), list(product(
    ["viewer", "operator", "approver", "admin"], ["low", "medium", "high"])))
def test_role_by_risk_matrix_has_no_escalation(role: str, risk: str) -> None:
    decision = decide(POLICY, person("pat", role, risk), ceiling=5, kill_switch=False, now=NOW)
    assert decision.outcome == EXPECTED[(role, risk)]
    assert decision.reasons
    # approving your own high-risk request never counts, whatever your role
    self_approved = person("pat", role, risk, approved_by=("user:pat",),
                           approver_roles=(role,))
    again = decide(POLICY, self_approved, ceiling=5, kill_switch=False, now=NOW)
    assert again.outcome == EXPECTED[(role, risk)]


@pytest.mark.parametrize(("approver_role", "outcome"), [
    ("viewer", "needs_approval"), ("operator", "needs_approval"),
    ("approver", "allow"), ("admin", "allow")])
def test_high_risk_needs_another_person_with_the_approver_role(approver_role: str,
                                                               outcome: str) -> None:
    request = person("olga", "operator", "high", approved_by=("user:abe",),
                     approver_roles=(approver_role,))
    decision = decide(POLICY, request, ceiling=5, kill_switch=False, now=NOW)
    assert decision.outcome == outcome
    if outcome == "needs_approval":
        assert decision.approver_role == "approver"
        assert decision.approver_not == "user:olga"


def test_unknown_person_is_denied() -> None:
    decision = decide(POLICY, person("ghost", "root"), ceiling=5, kill_switch=False, now=NOW)
    assert decision.outcome == "deny"


def test_agents_run_alone_only_at_level_three_for_allowed_risk() -> None:
    assert decide(POLICY, agent(), ceiling=5, kill_switch=False, now=NOW).outcome == "allow"
    # the per-service level overrides the class: restarts of payments stay at level 2
    pay = decide(POLICY, agent("restart", "payments"), ceiling=5, kill_switch=False, now=NOW)
    assert pay.outcome == "needs_approval"
    assert pay.level == 2
    # the global ceiling caps every class
    capped = decide(POLICY, agent(), ceiling=2, kill_switch=False, now=NOW)
    assert capped.outcome == "needs_approval"
    # medium risk is not autonomous under this policy even at level 3
    medium = decide(POLICY, agent(risk="medium"), ceiling=5, kill_switch=False, now=NOW)
    assert medium.outcome == "needs_approval"
    approved = agent(risk="medium", approved_by=("user:olga",), approver_roles=("operator",))
    assert decide(POLICY, approved, ceiling=5, kill_switch=False, now=NOW).outcome == "allow"


def test_kill_switch_and_ceiling_zero_stop_agents_but_not_people() -> None:
    for kill, ceiling in ((True, 5), (False, 0)):
        stopped = decide(POLICY, agent(), ceiling=ceiling, kill_switch=kill, now=NOW)
        assert stopped.outcome == "deny"
        assert "kill switch" in stopped.reasons[-1] or "ceiling is 0" in stopped.reasons[-1]
        assert decide(POLICY, person("olga", "operator"), ceiling=ceiling, kill_switch=kill,
                      now=NOW).outcome == "allow"


def test_freeze_and_change_window() -> None:
    policy = Policy.model_validate({
        "levels": {"disk_hygiene": 3},
        "freezes": [{"reason": "Black Friday", "start": "2026-01-05T00:00:00Z",
                     "end": "2026-01-06T00:00:00Z", "action_classes": ["deploy_rollback"]}],
        "change_windows": [{"action_classes": ["scale"], "start": "09:00", "end": "17:00"}]})
    frozen = decide(policy, agent("deploy_rollback", risk="high"), ceiling=5,
                    kill_switch=False, now=NOW)
    assert frozen.outcome == "deny"
    assert "Black Friday" in frozen.reasons[-1]
    night = decide(policy, person("olga", "operator") .__class__(
        actor="user:olga", role="operator", action_class="scale", service="search",
        risk="low", blast_radius=1), ceiling=5, kill_switch=False, now=NOW)
    assert night.outcome == "deny"
    assert "09:00" in night.reasons[-1]
    day = decide(policy, Request("user:olga", "operator", "scale", "search", "low", 1),
                 ceiling=5, kill_switch=False, now=NOW.replace(hour=10))
    assert day.outcome == "allow"


def test_rate_limit_and_circuit_breaker() -> None:
    policy = Policy.model_validate({"levels": {"disk_hygiene": 3},
                                    "rate_limits": {"disk_hygiene": {"max": 2, "per": "1h"}},
                                    "breaker": {"failures": 2, "window": "1h",
                                                "cooldown": "30m"}})
    runs = History(runs=(NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)))
    limited = decide(policy, agent(), ceiling=5, kill_switch=False, now=NOW, history=runs)
    assert limited.outcome == "deny"
    assert "rate limit" in limited.reasons[-1]
    old = History(runs=(NOW - timedelta(hours=2), NOW - timedelta(minutes=10)))
    assert decide(policy, agent(), ceiling=5, kill_switch=False, now=NOW,
                  history=old).outcome == "allow"
    failing = History(failures=(NOW - timedelta(minutes=20), NOW - timedelta(minutes=5)))
    broken = decide(policy, agent(), ceiling=5, kill_switch=False, now=NOW, history=failing)
    assert broken.outcome == "deny"
    assert "circuit open" in broken.reasons[-1]
    cooled = History(failures=(NOW - timedelta(minutes=50), NOW - timedelta(minutes=40)))
    assert decide(policy, agent(), ceiling=5, kill_switch=False, now=NOW,
                  history=cooled).outcome == "allow"


@pytest.mark.parametrize(("confidence", "blast", "outcome"), [
    (0.95, 10, "allow"), (0.95, 11, "deny"), (0.8, 3, "allow"), (0.8, 4, "deny"),
    (0.5, 1, "allow"), (0.5, 2, "deny")])
def test_blast_budget_shrinks_as_confidence_falls(confidence: float, blast: int,
                                                  outcome: str) -> None:
    request = Request("agent:recommender", None, "disk_hygiene", "search", "low", blast,
                      confidence)
    assert decide(POLICY, request, ceiling=5, kill_switch=False, now=NOW).outcome == outcome


def test_bad_policy_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="level of restart must be 0-5"):
        Policy.model_validate({"levels": {"restart": 7}})
    with pytest.raises(ValidationError, match="end after it starts"):
        Policy.model_validate({"freezes": [{"reason": "x", "start": "2026-01-02T00:00:00Z",
                                            "end": "2026-01-01T00:00:00Z"}]})


@pytest.mark.parametrize(("level", "risk", "kill", "outcome"), [
    (0, "low", False, "needs_approval"),   # level 0: answers only, a rule runs nothing alone
    (1, "low", False, "allow"),            # level 1: a fixed rule runs its low-risk runbook
    (1, "medium", False, "needs_approval"),
    (1, "high", False, "needs_approval"),
    (3, "low", True, "deny"),              # the kill switch stops rules like agents
])
def test_a_level_1_rule_runs_fixed_low_risk_runbooks_only(level: int, risk: str, kill: bool,
                                                          outcome: str) -> None:
    request = Request(actor="rule:disk-full", role=None, action_class="disk_hygiene",
                      service="search", risk=risk, blast_radius=1)  # type: ignore[arg-type]
    policy = Policy(default_level=level, levels={})
    decision = decide(policy, request, ceiling=5, kill_switch=kill, now=NOW)
    assert decision.outcome == outcome, decision.reasons
    assert decision.reasons

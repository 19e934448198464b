"""Maintenance windows: alerts kept but opening no incident, autonomy held for a person,
each change an audited operation, and a window that ends on its own at its expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.correlator_agent import CorrelatorAgent
from console.maintenance import MaintenanceError, MaintenanceOps, gate
from console.operations import PermissionDenied
from console.policy import Decision, Policy, Request
from console.runtime import Runtime, ScenarioDriver
from console.storage.repos_maintenance import MaintenanceWindow
from tests.test_correlator import alert

TOPOLOGY = {"frontend": ["checkout"], "checkout": ["payments"], "payments": []}


@pytest.fixture
def ops(runtime: Runtime) -> MaintenanceOps:
    runtime.service.add_user("bob", "operator", as_user="alice")
    runtime.service.add_user("victor", "viewer", as_user="alice")
    return MaintenanceOps(runtime.service)


def _actions(runtime: Runtime) -> list[tuple[str, str, str]]:
    return [(e.action, e.actor, e.decision) for e in runtime.service.audit_entries()
            if e.action.startswith("maintenance.")]


def test_alerts_under_maintenance_are_kept_but_open_no_incident(runtime: Runtime,
                                                                ops: MaintenanceOps) -> None:
    clock = runtime.clock
    agent = CorrelatorAgent(runtime.service, TOPOLOGY)
    window = ops.start(service="payments", reason="database upgrade", minutes=30,
                       as_user="bob")
    during = [alert("HighErrorRate", "payments", 5)]
    runtime.service.store(during, (), ())
    assert agent.handle(during, clock.now()) == []
    assert runtime.service.incidents() == []
    assert [s.name for s in runtime.service.recent_signals()] == ["HighErrorRate"]  # kept
    assert [w.kept for w in ops.windows()] == [1]  # and counted on the window
    # Another service's alert is not held back.
    opened = agent.handle([alert("HighLatency", "frontend", 6)], clock.now())
    assert [i.services for i in opened] == [("frontend",)]
    # At its expiry the window stops applying by itself: the next alert opens an incident.
    clock.set(window.ends_at)
    later = agent.handle([alert("InstanceDown", "payments", 40)], clock.now())
    assert any("payments" in i.services for i in later)


def test_start_extend_end_are_audited_operations(runtime: Runtime,
                                                 ops: MaintenanceOps) -> None:
    window = ops.start(service="cart", reason="kernel patch", minutes=20, as_user="bob")
    assert window.state(runtime.clock.now()) == "active"
    assert (window.created_by, window.services) == ("bob", ("cart",))
    longer = ops.extend(window.id, 15, as_user="bob")
    assert longer.ends_at == window.ends_at + timedelta(minutes=15)
    ended = ops.end(window.id, as_user="bob", reason="done early")
    assert (ended.state(runtime.clock.now()), ended.ended_by) == ("ended", "bob")
    assert _actions(runtime) == [("maintenance.start", "user:bob", "allow"),
                                 ("maintenance.extend", "user:bob", "allow"),
                                 ("maintenance.end", "user:bob", "allow")]
    start = next(e for e in runtime.service.audit_entries() if e.action == "maintenance.start")
    assert (start.reason, start.target) == ("kernel patch", "service:cart")
    with pytest.raises(MaintenanceError, match="already over"):
        ops.extend(window.id, 5, as_user="bob")
    with pytest.raises(MaintenanceError, match="already over"):
        ops.end(window.id, as_user="bob")
    assert runtime.service.verify_audit().ok


def test_listing_hides_windows_that_are_over_unless_asked(runtime: Runtime,
                                                          ops: MaintenanceOps) -> None:
    short = ops.start(service="cart", reason="a", minutes=10, as_user="bob")
    long = ops.start(service="search", reason="b", minutes=60, as_user="bob")
    ended = ops.start(service="catalog", reason="c", minutes=60, as_user="bob")
    ops.end(ended.id, as_user="bob")
    assert [w.id for w in ops.windows()] == [long.id, short.id]
    runtime.clock.set(runtime.clock.now() + timedelta(minutes=10))
    assert [w.id for w in ops.windows()] == [long.id]
    assert [w.id for w in ops.windows(include_over=True)] == [ended.id, long.id, short.id]
    assert ops.window(short.id).state(runtime.clock.now()) == "expired"  # type: ignore[union-attr]


def test_a_window_from_an_incident_covers_its_services(runtime: Runtime,
                                                       ops: MaintenanceOps) -> None:
    agent = CorrelatorAgent(runtime.service, TOPOLOGY)
    now = runtime.clock.now()
    opened = agent.handle([alert("HighErrorRate", "payments", 0),
                           alert("HighErrorRate", "checkout", 1)], now)
    window = ops.start(incident_id=opened[0].id, reason="failover drill", minutes=30,
                       as_user="bob")
    assert set(window.services) == {"payments", "checkout"}
    assert window.incident_id == opened[0].id
    with pytest.raises(MaintenanceError, match="no incident 99"):
        ops.start(incident_id=99, reason="x", minutes=5, as_user="bob")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"service": "cart", "reason": " ", "minutes": 5}, "needs a reason"),
    ({"service": "cart", "reason": "x", "minutes": 0}, "minutes must be 1 to"),
    ({"service": "cart", "reason": "x", "minutes": float("nan")}, "minutes must be 1 to"),
    ({"reason": "x", "minutes": 5}, "name a service or an incident"),
    ({"service": "cart", "incident_id": 1, "reason": "x", "minutes": 5}, "not both"),
    ({"service": "cart", "reason": "x", "minutes": 5, "silence": True},
     "no Alertmanager is configured"),
])
def test_bad_requests_are_refused_and_store_nothing(runtime: Runtime, ops: MaintenanceOps,
                                                    kwargs: dict, message: str) -> None:
    with pytest.raises(MaintenanceError, match=message):
        ops.start(as_user="bob", **kwargs)
    assert ops.windows(include_over=True) == []
    assert _actions(runtime) == []


def test_a_viewer_may_not_start_a_window_and_the_denial_is_audited(
        runtime: Runtime, ops: MaintenanceOps) -> None:
    with pytest.raises(PermissionDenied, match="needs role operator"):
        ops.start(service="cart", reason="x", minutes=5, as_user="victor")
    assert ops.windows(include_over=True) == []
    assert _actions(runtime) == [("maintenance.start", "user:victor", "deny")]


@pytest.fixture
def estate(runtime: Runtime) -> ScenarioDriver:
    runtime.service.add_user("bob", "operator", as_user="alice")
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    runtime.service.set_policy(Policy(levels={"scale": 3}), as_user="alice")
    runtime.service.set_autonomy_ceiling(3, as_user="alice")
    return driver


def test_no_autonomous_action_on_a_service_under_maintenance(runtime: Runtime,
                                                             estate: ScenarioDriver) -> None:
    engine = runtime.service.engine
    ops = MaintenanceOps(runtime.service)
    window = ops.start(service="cart", reason="resizing the pool", minutes=30, as_user="bob")
    held = engine.propose("scale-out", {"service": "cart", "count": 1},
                          requester="agent:recommender", autonomous=True)
    elsewhere = engine.propose("scale-out", {"service": "search", "count": 1},
                               requester="agent:recommender", autonomous=True)
    assert engine.recommendation(held).state == "pending"  # type: ignore[union-attr]
    assert engine.recommendation(elsewhere).state == "queued"  # type: ignore[union-attr]
    decision = next(e for e in runtime.service.audit_entries()
                    if e.action == "policy.decide" and e.target == f"recommendation:{held}")
    assert f"maintenance window #{window.id} by bob until" in decision.reason
    assert decision.decision == "needs_approval"
    # A person may still approve it by hand.
    rec = engine.recommendation(held)
    result = engine.approve(held, as_user="bob", preview_hash=rec.preview_hash)  # type: ignore[union-attr]
    assert result["state"] == "queued"


def test_the_gate_leaves_people_and_denials_alone() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    window = MaintenanceWindow(4, ("cart",), None, "patching", "alice", now,
                               now + timedelta(hours=1), None, None)
    allow = Decision("allow", ("fine",))
    agent = Request("agent:recommender", None, "scale", "cart", "low", 1)
    person = Request("user:bob", "operator", "scale", "cart", "low", 1)
    approved = Request("agent:recommender", None, "scale", "cart", "low", 1,
                       approved_by=("user:bob",), approver_roles=("operator",))
    held = gate(allow, agent, window)
    assert held.outcome == "needs_approval"
    assert held.reasons[-1].startswith("maintenance window #4 by alice until 2026-01-05T01:00")
    assert gate(allow, person, window) is allow
    assert gate(allow, approved, window) is allow
    assert gate(allow, agent, None) is allow
    deny = Decision("deny", ("kill switch",))
    assert gate(deny, agent, window) is deny

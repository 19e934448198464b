"""The team knows what it did and stops instead of flailing, end to end on the estate at
`--autonomy 3 --approve all`: an action's outcome is judged from the cause's symptoms,
the team's own restart is not taken for a new fault, a cause whose fix does not hold or
that nothing ends is handed to a person (reason, what was tried, a page on the ticket
system, the scribe's update), and nothing more is tried on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.recommender import NOT_A_FIX
from console.escalations import NEEDS_PERSON, escalations
from console.itsm.store import BuiltinTicketStore
from console.runtime import Runtime, run_headless

POOL = """name: {name}
description: orders leaks connections{extra}
estate: default
duration: {duration}
seed: 7
timeline:
  - {{at: 5m, type: fault, kind: connection_pool_exhaustion, service: orders,
     params: {{rate_per_min: 0.2, recurs: {recurs}}}}}
"""


def _scenario(tmp_path: Path, name: str, *, recurs: bool, duration: str = "35m") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(POOL.format(name=name, extra="; a restart only delays it" if recurs
                                else "", duration=duration, recurs=str(recurs).lower()),
                    encoding="utf-8")
    return str(path)


def _run(scenario: str, db_url: str) -> dict[str, Any]:
    return run_headless(scenario, db_url=db_url, autonomy=3, approve="all")


def _actions(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for inc in summary["incidents"] for a in inc["actions"]]


def _ineffective_per_cause(summary: dict[str, Any]) -> Counter[str]:
    runbook_cause = {}
    for inc in summary["incidents"]:
        for a in inc["actions"]:
            runbook_cause[a["id"]] = a["target"]
    return Counter(runbook_cause[a["id"]] for a in _actions(summary)
                   if a["outcome"] in ("ineffective", "did_not_last"))


def test_a_fix_that_does_not_hold_is_tried_once_then_escalated_with_a_page(
        tmp_path: Path, db_url: str) -> None:
    summary = _run(_scenario(tmp_path, "pool-recurs", recurs=True), db_url)
    actions = _actions(summary)
    assert [a["runbook"] for a in actions] == ["restart-service"]
    assert actions[0]["outcome"] == "ineffective"
    assert "pool_usage of orders is still" in actions[0]["outcome_why"]
    # no failover, no scale-out: nothing invented from the restart's own wake
    assert not any(a["runbook"] in ("failover", "scale-out") for a in summary["actions"])
    escalated = [inc for inc in summary["incidents"] if inc["escalated"]]
    # the incident the restart was for; another incident about the same cause (its
    # callers' alerts) says so without a second page
    assert escalated and all("the same cause as incident" in inc["needs_person"]["reason"]
                             and inc["needs_person"]["ticket"] is None
                             for inc in escalated[1:])
    needs = escalated[0]["needs_person"]
    assert needs["reason"].startswith(NEEDS_PERSON)
    assert "its fixes did not work" in needs["reason"]
    assert len(needs["tried"]) == 1
    assert needs["tried"][0].startswith("restart-service #")
    assert "ineffective" in needs["tried"][0]
    assert needs["ticket"] and needs["ticket"].startswith("builtin:")
    stored = [c for c in escalated[0]["causes"]
              if (c["service"], c["fault_class"]) == ("orders", "connection_pool_exhaustion")]
    assert stored and stored[0]["state"] == "needs_person"
    assert stored[0]["note"].startswith(NEEDS_PERSON)
    assert summary["audit"]["chain_ok"]
    rt = Runtime(db_url)
    try:
        incident_id = escalated[0]["id"]
        notes = [n for n in rt.service.incident_timeline(incident_id)
                 if n.kind == "escalation"]
        assert len(notes) == 1
        assert NEEDS_PERSON in notes[0].summary and "Tried: restart-service" in notes[0].summary
        assert [e.fault_class for e in escalations(rt.service.audit_entries(), incident_id)] \
            == ["connection_pool_exhaustion"]
        tickets = BuiltinTicketStore(rt.service).tickets()
        page = [t for t in tickets if t.title.startswith("Needs a person")]
        assert len(page) == 1
        assert page[0].severity == "critical" and page[0].service == "orders"
        assert "restart-service" in page[0].body
        assert f"builtin:{page[0].number}" == needs["ticket"]
        # the incident's own ticket says so too, and the stakeholder draft
        own = [t for t in tickets if t is not page[0] and t.kind == "incident"
               and any(NEEDS_PERSON in str(n.get("text", n)) for n in t.notes)]
        assert own, "the incident's ticket has no note of the escalation"
        from console.storage.repos_retrieval import RetrievalRepo

        with rt.db.sessions() as session:
            drafts = RetrievalRepo().reports(session, kind="stakeholder_update",
                                             incident_id=incident_id, limit=50)
        assert any(d.data.get("status") == "needs a person" for d in drafts)
    finally:
        rt.close()


def test_a_fix_that_works_is_judged_effective_and_its_wake_is_no_new_fault(
        tmp_path: Path, db_url: str) -> None:
    summary = _run(_scenario(tmp_path, "pool-once", recurs=False, duration="25m"), db_url)
    actions = summary["actions"]
    # one restart of orders: its side effects (instances restarting, callers' errors)
    # open no second action, neither a failover nor a scale-out nor another restart
    assert [(a["runbook"], a["target"]) for a in actions] == [("restart-service", "orders")]
    assert _actions(summary)[0]["outcome"] == "effective"
    assert not any(inc["escalated"] for inc in summary["incidents"])


def test_the_restart_only_delays_scenario_never_fails_over_nor_flails(db_url: str) -> None:
    summary = _run("restart-only-delays", db_url)
    assert not any(a["runbook"] == "failover" for a in summary["actions"])
    assert all(n <= 1 for n in _ineffective_per_cause(summary).values())
    assert len(summary["actions"]) <= 2
    assert all(a["outcome"] is not None for a in _actions(summary))


def test_a_cause_no_runbook_ends_is_escalated_and_only_eased_once(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the library holds no runbook that ends a pool leak (here the restart is
    declared to only ease it), the diagnosis is escalated at once; the easing step may
    run once, approved by a person, and nothing more is tried."""
    leak = dict(NOT_A_FIX["connection_pool_exhaustion"])
    leak["restart-service"] = "the leak comes back after a restart"
    monkeypatch.setitem(NOT_A_FIX, "connection_pool_exhaustion", leak)  # type: ignore[arg-type]
    summary = _run(_scenario(tmp_path, "pool-no-fix", recurs=True, duration="35m"), db_url)
    assert not any(a["runbook"] == "failover" for a in summary["actions"])
    assert not any(a["autonomous"] for a in summary["actions"])
    assert len(summary["actions"]) <= 1
    escalated = [inc for inc in summary["incidents"] if inc["escalated"]]
    assert escalated
    needs = escalated[0]["needs_person"]
    assert "no runbook ends connection_pool_exhaustion on orders" in needs["reason"]
    assert "restart-service only eases it" in needs["reason"]
    assert needs["ticket"]
    diagnosed = escalated[0]["diagnosed_at_s"]
    assert needs["causes"][0]["at_s"] - diagnosed <= 600


# --- the breaker's limits come from policy ---------------------------------------------


def _breaker(runtime: Any, policy: Any = None) -> tuple[Any, int]:
    from agents.escalation import CauseBreaker
    from console.domain import IncidentUpdate, Severity
    from console.policy import Policy

    service = runtime.service
    service.set_policy(policy or Policy(), as_user="alice")
    update = IncidentUpdate(1, None, "errors on orders", Severity.CRITICAL, "open",
                            ("orders",), service.clock.now(), None)
    [info] = service.save_incidents([update], actor="agent:correlator")
    breaker = CauseBreaker(service, metrics=None, library=service.engine.library,  # type: ignore[arg-type]
                           eases=NOT_A_FIX)
    breaker._sync = lambda now: None  # type: ignore[method-assign]  # attempts given below
    return breaker, info.id


def _attempt(breaker: Any, incident_id: int, ident: int, outcome: str, *,
             autonomous: bool = True, service: str = "orders",
             fault: str = "connection_pool_exhaustion") -> None:
    from agents.escalation import Attempt

    now = breaker.service.clock.now()
    attempt = Attempt(ident, incident_id, "restart-service", autonomous, now, "succeeded",
                      now, outcome)
    breaker._seen[ident] = attempt
    breaker._cause(service, fault).attempts.append(attempt)


def test_one_autonomous_attempt_per_cause_then_a_person(runtime: Any) -> None:
    breaker, incident = _breaker(runtime)
    review = breaker.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                            "restart-service", eases=False, no_remedy=False)
    assert review.autonomous and not review.stop
    _attempt(breaker, incident, 1, "effective")
    review = breaker.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                            "restart-service", eases=False, no_remedy=False)
    assert not review.autonomous and not review.stop
    assert "policy allows 1" in review.why
    # a cause still being judged gets nothing new
    _attempt(breaker, incident, 2, "pending", fault="memory_leak")
    waiting = breaker.review(incident, "orders", "memory_leak", 0.95, "rollback-deploy",
                             eases=False, no_remedy=False)
    assert waiting.stop and "still being judged" in waiting.why


def test_policy_sets_the_limits_and_an_exhausted_cause_is_escalated(runtime: Any) -> None:
    from console.policy import Causes, Policy

    policy = Policy(causes=Causes(autonomous_attempts=2, ineffective=1))
    breaker, incident = _breaker(runtime, policy)
    _attempt(breaker, incident, 1, "effective")
    assert breaker.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                          "restart-service", eases=False, no_remedy=False).autonomous
    _attempt(breaker, incident, 2, "ineffective", service="payments", fault="bad_deploy")
    stop = breaker.review(incident, "payments", "bad_deploy", 0.95, "rollback-deploy",
                          eases=False, no_remedy=False)
    assert stop.stop and stop.why.startswith(NEEDS_PERSON)
    assert "1 ineffective action(s) on it (policy allows 1)" in stop.why
    [escalation] = escalations(runtime.service.audit_entries(), incident)
    assert (escalation.service, escalation.fault_class) == ("payments", "bad_deploy")
    assert escalation.tried and "ineffective" in escalation.tried[0]


def test_the_incident_budget_tightens_as_confidence_drops(runtime: Any) -> None:
    breaker, incident = _breaker(runtime)
    for ident, service in enumerate(("cart", "search"), start=1):
        _attempt(breaker, incident, ident, "effective", service=service)
    sure = breaker.review(incident, "orders", "cpu_saturation", 0.95, "toggle-feature-flag",
                          eases=False, no_remedy=False)
    assert not sure.stop  # 2 actions, budget 3 at 0.95
    unsure = breaker.review(incident, "inventory", "cpu_saturation", 0.75,
                            "toggle-feature-flag", eases=False, no_remedy=False)
    assert unsure.stop  # 2 actions, budget 2 at 0.75
    assert "the budget at confidence 0.75 is 2" in unsure.why
    # both worked: the budget holds the proposal, it is no cause without a safe fix
    assert unsure.why.startswith("held: ")
    assert escalations(runtime.service.audit_entries(), incident) == []


def test_a_budget_spent_on_fixes_that_did_not_all_work_is_escalated(runtime: Any) -> None:
    breaker, incident = _breaker(runtime)
    _attempt(breaker, incident, 1, "effective", service="cart")
    _attempt(breaker, incident, 2, "ineffective", service="search", fault="disk_filling")
    stop = breaker.review(incident, "inventory", "cpu_saturation", 0.75,
                          "toggle-feature-flag", eases=False, no_remedy=False)
    assert stop.stop and stop.why.startswith(NEEDS_PERSON)
    assert "and not all of them worked" in stop.why
    [escalation] = escalations(runtime.service.audit_entries(), incident)
    assert (escalation.service, escalation.fault_class) == ("inventory", "cpu_saturation")


def test_the_same_cause_seen_from_another_incident_says_so_without_a_second_page(
        runtime: Any) -> None:
    from console.domain import IncidentUpdate, Severity

    breaker, first = _breaker(runtime)
    update = IncidentUpdate(2, None, "errors on checkout", Severity.CRITICAL, "open",
                            ("checkout",), runtime.service.clock.now(), None)
    [second] = runtime.service.save_incidents([update], actor="agent:correlator")
    _attempt(breaker, first, 1, "ineffective")
    _attempt(breaker, first, 2, "ineffective")
    assert breaker.review(first, "orders", "connection_pool_exhaustion", 0.95,
                          "restart-service", eases=False, no_remedy=False).stop
    again = breaker.review(second.id, "orders", "connection_pool_exhaustion", 0.95,
                           "restart-service", eases=False, no_remedy=False)
    assert again.stop and f"the same cause as incident {first}" in again.why
    records = [e for e in runtime.service.audit_entries() if e.action == "cause.escalated"]
    assert [(e.target, e.outputs["page"]) for e in records] == [
        (f"incident:{first}", True), (f"incident:{second.id}", False)]


@pytest.mark.parametrize("scenario", ["queue-backlog", "zone-partition", "cache-stampede"])
def test_a_fix_slow_to_show_is_judged_effective_and_nobody_is_paged(scenario: str,
                                                                     db_url: str) -> None:
    """A backlog drains, a cache warms, a drained zone leaves less capacity: none of it
    is a fix that failed."""
    summary = _run(scenario, db_url)
    actions = _actions(summary)
    assert actions
    assert [a["outcome"] for a in actions] == ["effective"] * len(actions)
    assert not any(inc["escalated"] for inc in summary["incidents"])


# --- a restart of the console keeps the breaker as it was -----------------------------------


def test_a_cause_handed_to_a_person_stays_so_after_a_restart(runtime: Any) -> None:
    from agents.escalation import CauseBreaker

    breaker, incident = _breaker(runtime)
    _attempt(breaker, incident, 1, "ineffective")
    _attempt(breaker, incident, 2, "ineffective")
    assert breaker.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                          "restart-service", eases=False, no_remedy=False).stop
    # the console starts again: a new breaker over the same database
    again = CauseBreaker(runtime.service, metrics=None,  # type: ignore[arg-type]
                         library=runtime.service.engine.library, eases=NOT_A_FIX)
    review = again.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                          "restart-service", eases=False, no_remedy=False)
    assert review.stop and not review.autonomous
    assert review.why.startswith(NEEDS_PERSON)
    assert "2 ineffective action(s) on it" in review.why
    # and it says nothing twice: one escalation record, one page
    records = [e for e in runtime.service.audit_entries() if e.action == "cause.escalated"]
    assert len(records) == 1


def test_a_judged_action_is_not_judged_again_after_a_restart(tmp_path: Path,
                                                             db_url: str) -> None:
    from agents.escalation import CauseBreaker

    summary = _run(_scenario(tmp_path, "pool-recurs-restart", recurs=True), db_url)
    [restart] = _actions(summary)
    assert restart["outcome"] == "ineffective"
    incident = next(inc for inc in summary["incidents"] if inc["escalated"])["id"]
    rt = Runtime(db_url)
    try:
        before = len(rt.service.audit_entries())
        breaker = CauseBreaker(rt.service, metrics=None,  # type: ignore[arg-type]
                               library=rt.service.engine.library, eases=NOT_A_FIX)
        breaker.tick(force=True)
        attempt = breaker.attempt(int(restart["id"]))
        assert attempt is not None
        assert attempt.outcome == "ineffective"
        assert "pool_usage of orders is still" in attempt.why
        review = breaker.review(incident, "orders", "connection_pool_exhaustion", 0.95,
                                "restart-service", eases=False, no_remedy=False)
        assert review.stop and review.why.startswith(NEEDS_PERSON)
        assert len(rt.service.audit_entries()) == before  # nothing judged or paged again
    finally:
        rt.close()


# --- an outcome is judged by the cause's own symptoms -------------------------------------------

FIXED_THEN_DOWNSTREAM = """\
name: deploy-then-database
description: a bad deploy of catalog, rolled back; ten minutes later the database catalog
  calls slows down, and catalog's errors and latency rise again for that reason.
estate: default
duration: 40m
seed: 10000000
timeline:
  - {at: 7m30s, type: fault, kind: bad_deploy, service: catalog,
     params: {error: 0.29, latency_ms: 170.0}}
  - {at: 18m15s, type: fault, kind: slow_dependency, service: catalog-db,
     params: {latency_ms: 1500.0}}
"""


def test_a_fix_that_held_is_not_blamed_for_a_fault_downstream(tmp_path: Path,
                                                                db_url: str) -> None:
    path = tmp_path / "deploy-then-database.yaml"
    path.write_text(FIXED_THEN_DOWNSTREAM, encoding="utf-8")
    summary = _run(str(path), db_url)
    rollback = [a for a in _actions(summary) if a["runbook"] == "rollback-deploy"]
    assert [a["target"] for a in rollback] == ["catalog"]
    assert rollback[0]["outcome"] == "effective", rollback[0]["outcome_why"]
    escalated = [c for inc in summary["incidents"] if inc["escalated"]
                 for c in inc["needs_person"]["causes"]]
    assert not [c for c in escalated if c["fault_class"] == "bad_deploy"]


def test_the_symptoms_judged_are_the_causes_own() -> None:
    from agents.outcome_symptoms import lasting_metrics, rises, symptom_metrics

    # a stuck consumer takes in less: its intake falling again is its own symptom, the
    # errors it passes on may be anyone's
    assert lasting_metrics("queue_backlog") == ["request_rate"]
    assert not rises("queue_backlog", "request_rate")
    assert symptom_metrics("queue_backlog") == ["request_rate", "error_rate",
                                                "latency_p99_ms"]
    assert lasting_metrics("connection_pool_exhaustion") == ["pool_usage"]
    assert lasting_metrics("traffic_surge") == ["saturation"]
    assert lasting_metrics("network_partition") == ["error_rate"]
    # a drained zone leaves less capacity: slower is the drain's price
    assert symptom_metrics("network_partition") == ["error_rate"]
    assert not rises("cache_stampede", "cache_hit_ratio")


def test_a_surge_waits_while_a_fix_elsewhere_in_the_incident_settles(runtime: Any) -> None:
    breaker, incident = _breaker(runtime)
    _attempt(breaker, incident, 1, "pending", service="product-cache",
             fault="cache_stampede")
    held = breaker.review(incident, "catalog-db", "traffic_surge", 0.96, "scale-out",
                          eases=False, no_remedy=False)
    assert held.stop and held.why.startswith("held: restart-service #1 in incident")
    assert "a load rise now may be its wake" in held.why
    assert escalations(runtime.service.audit_entries(), incident) == []
    # a cause that is not load is not held by it
    assert not breaker.review(incident, "orders", "memory_leak", 0.96, "rollback-deploy",
                              eases=False, no_remedy=False).stop
    breaker.attempt(1).outcome = "effective"
    assert not breaker.review(incident, "catalog-db", "traffic_surge", 0.96, "scale-out",
                              eases=False, no_remedy=False).stop

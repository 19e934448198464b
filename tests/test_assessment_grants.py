"""The maturity assessment shows the admins' grants of high risk without an approver
(policy `high_risk_autonomy`): which class, on which services, who granted it and when,
read from the audited policy changes."""

from __future__ import annotations

from typing import Any

from console.assessment_model import Answers
from console.assessment_report import render_html
from console.assessment_service import AssessmentService
from console.policy import Policy
from console.storage.repos import SettingsRepo


def _grant(runtime: Any, who: str, reason: str, **grants: tuple[str, ...]) -> None:
    runtime.service.set_policy(Policy(high_risk_autonomy=grants), as_user=who,
                               reason=reason)
    runtime.clock.advance(600)


def test_each_grant_says_which_class_services_and_who_granted_it(runtime: Any) -> None:
    service = runtime.service
    service.add_user("dave", "admin", as_user="alice")
    _grant(runtime, "alice", "orders-db failover drilled weekly", failover=("orders-db",))
    _grant(runtime, "dave", "cart-db too", failover=("orders-db", "cart-db"))
    # taken away and given again: the latest grant is the one that holds
    _grant(runtime, "alice", "paused", failover=("orders-db",))
    _grant(runtime, "dave", "back on", failover=("orders-db", "cart-db"),
           clear_queue=("fulfilment-worker",))
    evidence = AssessmentService(service).evidence()
    said = [g.says() for g in evidence.grants]
    assert len(said) == 3, said
    by = {(g.action_class, g.services): g for g in evidence.grants}
    assert by[("failover", ("orders-db",))].granted_by == "user:alice"
    assert by[("failover", ("cart-db",))].granted_by == "user:dave"
    assert by[("failover", ("cart-db",))].reason == "back on"
    assert by[("clear_queue", ("fulfilment-worker",))].granted_by == "user:dave"
    assert "failover on orders-db: granted by user:alice at " in " | ".join(said)
    assert "(orders-db failover drilled weekly)" in " | ".join(said)
    stored = evidence.as_dict()["high_risk_grants"]
    assert {(g["action_class"], tuple(g["services"]), g["granted_by"]) for g in stored} == {
        ("failover", ("orders-db",), "user:alice"), ("failover", ("cart-db",), "user:dave"),
        ("clear_queue", ("fulfilment-worker",), "user:dave")}
    result = AssessmentService(service).assess(_no_answers(), evidence=evidence)
    html = render_html(result, AssessmentService(service).model)
    assert "High risk on its own (admin grants)" in html
    assert "failover on cart-db: granted by user:dave" in html


def test_a_grant_no_audited_change_added_says_so(runtime: Any) -> None:
    with runtime.db.sessions() as session:  # the policy a database started with
        SettingsRepo().set(session, "policy", Policy(
            high_risk_autonomy={"failover": ("orders-db",)}).model_dump(mode="json"))
        session.commit()
    [grant] = AssessmentService(runtime.service).evidence().grants
    assert grant.granted_by is None
    assert "no record says who granted it" in grant.says()


def test_no_grant_no_line(runtime: Any) -> None:
    evidence = AssessmentService(runtime.service).evidence()
    assert evidence.grants == ()
    result = AssessmentService(runtime.service).assess(_no_answers(), evidence=evidence)
    assert "every high-risk action waits for an approver" in render_html(
        result, AssessmentService(runtime.service).model)


def _no_answers() -> Answers:
    return Answers.none()

"""Scores per injected fault (console/fault_scoring.py) on hand-made run summaries."""

from __future__ import annotations

from typing import Any

import pytest

from console.fault_scoring import (
    EstateFacts,
    aggregate_faults,
    causes_of,
    judge_actions,
    no_safe_fix,
    score_faults,
)

FACTS = EstateFacts.of("bad-deploy")


def _fault(kind: str, service: str, at: float, *, fixed_at: float | None = None,
           fixed_by: str | None = None, params: dict[str, Any] | None = None,
           actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"kind": kind, "service": service, "at_s": at, "params": params or {},
            "fixed_at_s": fixed_at, "fixed_by": fixed_by, "actions": actions or []}


def _hyp(service: str, kind: str, confidence: float, **more: Any) -> dict[str, Any]:
    return {"service": service, "fault_class": kind, "confidence": confidence, **more}


def _incident(ident: int, services: list[str], opened: float, root: dict[str, Any] | None,
              alternatives: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    return {"id": ident, "services": services, "opened_at_s": opened, "resolved_at_s": None,
            "root_cause": root, "alternatives": alternatives or [],
            "diagnosed_at_s": opened + 10 if root else None, "actions": [], **more}


def _action(ident: int, runbook: str, target: str, at: float, state: str = "succeeded",
            autonomous: bool = False) -> dict[str, Any]:
    return {"id": ident, "runbook": runbook, "target": target, "at_s": at, "state": state,
            "autonomous": autonomous}


def _summary(faults: list[dict[str, Any]], incidents: list[dict[str, Any]],
             actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"scenario": {"name": "hand-made", "seed": 1, "description": "[double] x"},
            "faults": faults, "incidents": incidents, "actions": actions or []}


CART = _fault("bad_deploy", "cart", 600.0)
PAYDB = _fault("slow_dependency", "payments-db", 840.0)


def test_a_right_diagnosis_scores_top1_with_its_times() -> None:
    run = score_faults(_summary([CART], [_incident(1, ["cart", "checkout"], 720.0,
                                                   _hyp("cart", "bad_deploy", 0.9))]), FACTS)
    (case,) = run.faults
    assert case["detected"] and case["correct_top1"] and case["correct_top3"]
    assert case["confidence"] == 0.9
    assert case["time_to_detect_s"] == 120.0
    assert case["time_to_diagnose_s"] == 130.0
    assert run.diagnoses == [(0.9, True)]


def test_a_wrong_diagnosis_with_the_fault_second_is_top3_only() -> None:
    inc = _incident(1, ["cart", "checkout"], 720.0, _hyp("checkout", "config_error", 0.8),
                    [_hyp("cart", "bad_deploy", 0.1), _hyp("cart", "config_error", 0.05)])
    (case,) = score_faults(_summary([CART], [inc]), FACTS).faults
    assert not case["correct_top1"]
    assert case["correct_top3"]
    assert case["time_to_diagnose_s"] is None


def test_the_fourth_hypothesis_is_not_top3() -> None:
    inc = _incident(1, ["cart"], 720.0, _hyp("checkout", "config_error", 0.7),
                    [_hyp("cart", "config_error", 0.1), _hyp("payments", "bad_deploy", 0.1),
                     _hyp("cart", "bad_deploy", 0.1)])
    (case,) = score_faults(_summary([CART], [inc]), FACTS).faults
    assert not case["correct_top3"]


def test_an_undetected_fault_is_scored_wrong_with_no_times() -> None:
    (case,) = score_faults(_summary([CART], []), FACTS).faults
    assert not case["detected"] and not case["correct_top1"] and not case["correct_top3"]
    assert case["time_to_detect_s"] is None


def test_one_root_cause_for_two_faults_leaves_the_second_undiagnosed() -> None:
    inc = _incident(1, ["cart", "checkout", "payments"], 900.0,
                    _hyp("cart", "bad_deploy", 0.99), [_hyp("payments-db", "slow_dependency",
                                                            0.01)])
    cases = score_faults(_summary([CART, PAYDB], [inc]), FACTS).faults
    assert [c["correct_top1"] for c in cases] == [True, False]
    assert [c["correct_top3"] for c in cases] == [True, True]


def test_a_causes_list_diagnoses_each_fault() -> None:
    inc = _incident(1, ["cart", "checkout", "payments"], 900.0,
                    _hyp("cart", "bad_deploy", 0.95),
                    causes=[_hyp("cart", "bad_deploy", 0.95, opened_at_s=905.0),
                            _hyp("payments-db", "slow_dependency", 0.8, opened_at_s=960.0)])
    run = score_faults(_summary([CART, PAYDB], [inc]), FACTS)
    assert [c["correct_top1"] for c in run.faults] == [True, True]
    assert [c["time_to_diagnose_s"] for c in run.faults] == [305.0, 120.0]
    assert sorted(run.diagnoses) == [(0.8, True), (0.95, True)]


def test_actions_are_judged_by_what_the_estate_says_they_did() -> None:
    fault = _fault("memory_leak", "recommendations", 300.0, fixed_at=1500.0,
                   fixed_by="rollback", actions=[
                       {"at_s": 600.0, "action": "restart", "service": "recommendations",
                        "effect": "delayed: memory is back to normal and starts leaking again"},
                       {"at_s": 900.0, "action": "scale_out", "service": "recommendations",
                        "effect": "worsened: more instances, each still leaking"},
                       {"at_s": 1480.0, "action": "rollback", "service": "recommendations",
                        "effect": "fixed (rolling back)"}])
    actions = [_action(1, "restart-service", "recommendations", 600.0),
               _action(2, "scale-out", "recommendations", 900.0, autonomous=True),
               _action(3, "scale-out", "catalog", 950.0, autonomous=True),
               _action(4, "rollback-deploy", "recommendations", 1480.0)]
    judged = {a["id"]: a for a in judge_actions(_summary([fault], [], actions))}
    assert judged[1]["verdict"] == "ineffective" and not judged[1]["wrong"]
    assert judged[2]["verdict"] == "worsened" and judged[2]["wrong"]
    assert judged[3]["verdict"] == "healthy" and judged[3]["wrong"]
    assert judged[4]["verdict"] == "fixed" and not judged[4]["wrong"]


def test_an_action_after_the_fault_ended_is_on_a_healthy_service() -> None:
    fault = _fault("bad_deploy", "cart", 600.0, fixed_at=760.0, fixed_by="rollback")
    (judged,) = judge_actions(_summary([fault], [], [_action(1, "restart-service", "cart",
                                                             900.0)]))
    assert judged["verdict"] == "healthy"


def test_a_certificate_rotated_before_it_expired_counts_as_fixed() -> None:
    fault = _fault("certificate_expiry", "auth", 1200.0, fixed_at=1200.0,
                   fixed_by="rotate_certificate")
    (judged,) = judge_actions(_summary([fault], [], [_action(1, "rotate-certificate", "auth",
                                                             300.0)]))
    assert judged["verdict"] == "fixed"


def test_no_safe_fix() -> None:
    kinds = FACTS.kinds
    assert no_safe_fix(_fault("connection_pool_exhaustion", "orders", 0,
                              params={"recurs": True}), kinds)
    assert not no_safe_fix(_fault("connection_pool_exhaustion", "orders", 0), kinds)
    assert no_safe_fix(_fault("slow_dependency", "shipping", 0), kinds)
    assert not no_safe_fix(_fault("slow_dependency", "orders-db", 0), kinds)
    assert not no_safe_fix(CART, kinds)


def test_escalations_are_right_only_when_no_safe_fix_exists() -> None:
    leak = _fault("connection_pool_exhaustion", "orders", 600.0, params={"recurs": True})
    escalated = _incident(1, ["orders"], 700.0, None, causes=[
        _hyp("orders", "connection_pool_exhaustion", 0.9, opened_at_s=710.0,
             state="needs_person", escalated_at_s=900.0)])
    run = score_faults(_summary([leak], [escalated]), FACTS)
    (case,) = run.faults
    assert case["escalated"] and case["escalated_in_time"]
    assert run.escalations[0]["right"]

    late = _incident(1, ["orders"], 700.0, _hyp("orders", "connection_pool_exhaustion", 0.9),
                     escalated=True, escalated_at_s=710.0 + 601)
    (case,) = score_faults(_summary([leak], [late]), FACTS).faults
    assert case["escalated"] and case["escalated_in_time"] is False

    wrong = _incident(1, ["cart"], 700.0, _hyp("cart", "bad_deploy", 0.9), needs_person=True)
    run = score_faults(_summary([CART], [wrong]), FACTS)
    assert not run.escalations[0]["right"]
    assert aggregate_faults([run])["escalations"]["wrong"] == 1


def test_an_incident_about_no_fault_is_a_false_alarm_not_a_diagnosis() -> None:
    inc = _incident(1, ["frontend"], 300.0, _hyp("frontend", "traffic_surge", 0.7))
    run = score_faults(_summary([], [inc], [_action(1, "scale-out", "frontend", 320.0)]),
                       FACTS)
    assert run.diagnoses == [] and run.false_alarms == [0.7]
    scores = aggregate_faults([run])
    assert scores["actions"]["on_healthy_services"] == 1
    assert scores["false_alarms"]["diagnoses"] == 1


def test_aggregate_scores_calibration_and_families() -> None:
    right = score_faults(_summary([CART], [_incident(1, ["cart"], 700.0,
                                                     _hyp("cart", "bad_deploy", 0.9))]), FACTS)
    wrong = score_faults(_summary([CART], [_incident(1, ["cart"], 700.0,
                                                     _hyp("cart", "config_error", 0.9))]),
                         FACTS)
    wrong.family = "single"
    scores = aggregate_faults([right, wrong])
    assert scores["faults"] == 2
    assert scores["accuracy"] == {"top1": 0.5, "top3": 0.5}
    assert scores["calibration"]["ece"] == pytest.approx(0.4)
    assert set(scores["by_family"]) == {"double", "single"}
    assert scores["by_family"]["single"]["accuracy"]["top1"] == 0.0
    assert scores["by_kind"]["bad_deploy"]["faults"] == 2


def test_causes_of_an_old_summary_is_its_root_cause() -> None:
    inc = _incident(1, ["cart"], 700.0, _hyp("cart", "bad_deploy", 0.9),
                    [_hyp("cart", "config_error", 0.1)])
    (cause,) = causes_of(inc)
    assert [h["fault_class"] for h in cause["ranked"]] == ["bad_deploy", "config_error"]
    assert causes_of(_incident(2, ["cart"], 700.0, None)) == []


def test_a_fault_that_joins_an_open_incident_belongs_to_it() -> None:
    """The slow database begins after the incident opened for cart: named by the
    incident's second cause, it is diagnosed; it was detected when that cause appeared."""
    inc = _incident(1, ["cart", "checkout", "payments"], 700.0, _hyp("cart", "bad_deploy", 0.9),
                    causes=[_hyp("cart", "bad_deploy", 0.9, opened_at_s=710.0),
                            _hyp("payments-db", "slow_dependency", 0.8, opened_at_s=900.0)])
    cases = score_faults(_summary([CART, PAYDB], [inc]), FACTS).faults
    assert [c["correct_top1"] for c in cases] == [True, True]
    assert cases[1]["time_to_detect_s"] == 60.0


def test_an_incident_over_before_a_fault_began_is_not_about_it() -> None:
    early = {**_incident(1, ["payments"], 100.0, _hyp("payments-db", "slow_dependency", 0.9)),
             "resolved_at_s": 400.0}
    (case,) = score_faults(_summary([PAYDB], [early]), FACTS).faults
    assert not case["detected"] and not case["correct_top1"]


def test_escalations_listed_under_needs_person_are_scored_per_cause() -> None:
    """The run names each escalated cause under the incident's `needs_person`."""
    leak = _fault("connection_pool_exhaustion", "orders", 600.0, params={"recurs": True})
    inc = _incident(1, ["orders", "cart"], 700.0, _hyp("orders", "connection_pool_exhaustion",
                                                       0.9),
                    escalated=True, needs_person={"reason": "needs a person: no safe fix",
                                                  "causes": [
                        {"service": "orders", "fault_class": "connection_pool_exhaustion",
                         "at_s": 1000.0},
                        {"service": "cart", "fault_class": "bad_deploy", "at_s": 1100.0}]})
    run = score_faults(_summary([leak, CART], [inc]), FACTS)
    assert [e["right"] for e in run.escalations] == [True, False]
    assert run.faults[0]["escalated"] and run.faults[0]["escalated_in_time"]
    assert run.faults[1]["escalated"]
    scores = aggregate_faults([run])["escalations"]
    assert (scores["right"], scores["wrong"], scores["no_safe_fix_escalated_in_time"]) \
        == (1, 1, 1)


def test_a_misread_fault_escalated_in_time_counts_from_the_first_diagnosis() -> None:
    leak = _fault("connection_pool_exhaustion", "orders", 600.0, params={"recurs": True})
    inc = _incident(1, ["orders"], 700.0, _hyp("orders", "bad_deploy", 0.6),
                    escalated=True, escalated_at_s=1000.0)
    (case,) = score_faults(_summary([leak], [inc]), FACTS).faults
    assert not case["correct_top1"]
    assert case["escalated"] and case["escalated_in_time"]


def test_an_escalated_cause_naming_none_of_several_faults_is_wrong_and_unattributed() -> None:
    inc = _incident(1, ["cart", "checkout", "payments"], 900.0, _hyp("cart", "bad_deploy", 0.9),
                    escalated=True, needs_person={"causes": [
                        {"service": "checkout", "fault_class": "config_error", "at_s": 950.0}]})
    run = score_faults(_summary([CART, PAYDB], [inc]), FACTS)
    assert [e["right"] for e in run.escalations] == [False]
    assert not any(c["escalated"] for c in run.faults)

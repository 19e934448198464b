"""Several causes behind one incident, end to end (issue 19, point 1): the team finds a
second fault that joins an open incident as a cause of its own, recommends and fixes
each, and lists them all in `run --json`; what one cause explains stays that cause."""

from __future__ import annotations

import json

import pytest

from console.cli import main
from console.evaluate import FIXES
from console.runtime import run_headless


def _causes(summary: dict) -> list[dict]:  # type: ignore[type-arg]
    [incident] = [i for i in summary["incidents"] if i["causes"]]
    return list(incident["causes"])


def test_a_second_fault_joining_an_open_incident_is_a_cause_of_its_own() -> None:
    # nobody approves: both faults stay on, and the incident holds both at once
    summary = run_headless("overlapping", autonomy=2, approve="none")
    causes = _causes(summary)
    assert [(c["service"], c["fault_class"]) for c in causes] == [
        ("cart", "bad_deploy"), ("payments-db", "slow_dependency")]
    for cause in causes:
        assert cause["confidence"] >= 0.5, cause
        assert cause["state"] == "waiting"
    assert [c["recommendation"]["runbook"] for c in causes] == ["rollback-deploy", "failover"]
    assert causes[1]["opened_at_s"] >= 840.0  # found after the second fault began


def test_overlapping_ends_with_both_faults_diagnosed_and_fixed() -> None:
    summary = run_headless("overlapping", autonomy=3, approve="all")
    causes = _causes(summary)
    faults = {(f["service"], f["kind"]): f for f in summary["faults"]}
    assert {(c["service"], c["fault_class"]) for c in causes} == set(faults)
    for cause in causes:
        assert cause["confidence"] >= 0.5, cause
        assert cause["state"] == "resolved", cause
        fixers = [a for a in cause["actions"] if a["state"] == "succeeded"
                  and a["runbook"] in FIXES[cause["fault_class"]]]
        assert fixers, cause
    for fault in faults.values():
        assert fault["fixed_at_s"] is not None, fault
    [incident] = [i for i in summary["incidents"] if i["causes"]]
    first = causes[0]
    assert incident["root_cause"] == {k: first[k] for k in ("service", "fault_class",
                                                            "confidence", "signals", "state")}


def test_a_cascading_failure_stays_one_cause() -> None:
    summary = run_headless("cascading-failure", autonomy=2, approve="none")
    assert [(c["service"], c["fault_class"]) for c in _causes(summary)] == [
        ("orders-db", "slow_dependency")]


def test_run_json_lists_the_causes_of_each_incident(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--headless", "--scenario", "bad-deploy", "--autonomy", "3",
                 "--approve", "all", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    [incident] = [i for i in summary["incidents"] if i["causes"]]
    [cause] = incident["causes"]
    assert set(cause) >= {"service", "fault_class", "confidence", "state", "signals",
                          "recommendation", "actions"}
    assert (cause["service"], cause["fault_class"]) == ("payments", "bad_deploy")
    assert cause["recommendation"]["runbook"] == "rollback-deploy"
    assert [a["runbook"] for a in cause["actions"]] == ["rollback-deploy"]
    assert incident["root_cause"]["service"] == "payments"

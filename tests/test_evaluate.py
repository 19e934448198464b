"""`watchfloor eval` (console/evaluate.py, console/eval_cli.py): replay, score, store, audit."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from console import eval_cli
from console.evaluate import EvalRepo, aggregate, reliability, score_run

SCENARIOS = ["config-push", "cert-expiry", "quiet-day"]


def _parser() -> argparse.ArgumentParser:
    """The parser as console/cli.py builds it: a `--db` parent and the module's parsers."""
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db", metavar="URL")
    parser = argparse.ArgumentParser(prog="watchfloor")
    sub = parser.add_subparsers(dest="command")
    eval_cli.add_parsers(sub, db_parent)
    return parser


def _eval(runtime: Any, *argv: str) -> int:
    args = _parser().parse_args(["eval", *argv])
    assert args.command in eval_cli.COMMANDS
    return eval_cli.dispatch(args, runtime)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory,
           make_db_url_session: Any) -> dict[str, Any]:
    """One eval on two short scenarios and quiet-day, one seed, through the CLI module."""
    import contextlib
    import io

    from console.clock import RealClock
    from console.runtime import Runtime

    url = make_db_url_session(tmp_path_factory.mktemp("eval"))
    runtime = Runtime(url, clock=RealClock())
    runtime.service.bootstrap_admin("alice")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = _eval(runtime, "--json", *[a for n in SCENARIOS for a in ("--scenario", n)])
        with runtime.db.sessions() as session:
            stored = EvalRepo().recent(session)
        entries = runtime.service.audit_entries()
        verify = runtime.service.verify_audit()
    finally:
        runtime.close()
    return {"code": code, "json": json.loads(out.getvalue()), "stored": stored,
            "entries": entries, "verify": verify}


def test_eval_json_has_the_documented_keys(report: dict[str, Any]) -> None:
    assert report["code"] == 0
    data = report["json"]
    assert {"schema", "id", "at", "scope", "scores", "cases"} <= set(data)
    assert data["schema"] == "watchfloor.eval/1"
    assert data["scope"]["scenarios"] == SCENARIOS
    assert data["scope"]["autonomy"] == 3
    assert data["scope"]["approve"] == "all"
    scores = data["scores"]
    for key in ("runs", "faults", "incidents", "scored_incidents", "accuracy", "calibration",
                "playbook_selection", "auto_resolution", "rollback", "mean_time_to_detect_s",
                "mean_time_to_diagnose_s", "mean_time_to_resolve_s", "quiet_day_actions",
                "audit_ok", "per_scenario"):
        assert key in scores, key
    assert scores["runs"] == 3
    for value in (scores["accuracy"]["top1"], scores["accuracy"]["top3"],
                  scores["calibration"]["ece"], scores["playbook_selection"]["accuracy"],
                  scores["auto_resolution"]["rate"]):
        assert value is not None
        assert 0.0 <= value <= 1.0
    assert scores["accuracy"]["top1"] <= scores["accuracy"]["top3"]
    table = scores["calibration"]["reliability"]
    assert len(table) == 10
    assert sum(b["count"] for b in table) == scores["scored_incidents"] > 0
    assert {r["scenario"] for r in scores["per_scenario"]} == set(SCENARIOS)
    for case in data["cases"]:
        assert {"scenario", "seed", "incident", "faults", "top1", "confidence", "top3",
                "correct_top1", "first_runbook", "playbook_ok", "time_to_detect_s"} <= set(case)


def test_quiet_day_has_no_action(report: dict[str, Any]) -> None:
    scores = report["json"]["scores"]
    assert scores["quiet_day_actions"] == 0
    quiet = [r for r in scores["per_scenario"] if r["scenario"] == "quiet-day"]
    assert quiet
    assert quiet[0]["actions"] == []
    assert quiet[0]["faults"] == 0
    # a fault scenario does act, and says how it ended
    config = next(r for r in scores["per_scenario"] if r["scenario"] == "config-push")
    assert config["actions"]
    assert {"runbook", "target", "state", "autonomous"} <= set(config["actions"][0])


def test_the_eval_is_stored_and_audited(report: dict[str, Any]) -> None:
    data = report["json"]
    assert [row["id"] for row in report["stored"]] == [data["id"]]
    row = report["stored"][0]
    assert row["scope"] == data["scope"]
    assert row["scores"]["accuracy"] == data["scores"]["accuracy"]
    assert len(row["cases"]) == len(data["cases"]) == data["scores"]["incidents"]
    audited = [e for e in report["entries"] if e.action == "eval.run"]
    assert len(audited) == 1
    assert audited[0].actor == "system:eval"
    assert audited[0].target == f"eval:{data['id']}"
    assert audited[0].outputs["top1"] == data["scores"]["accuracy"]["top1"]
    assert report["verify"].ok


def test_bad_arguments_exit_2(runtime: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(runtime, "--scenario", "no-such-scenario") == 2
    assert "unknown scenario 'no-such-scenario'" in capsys.readouterr().err
    for argv in (["--seeds", "0"], ["--seeds", "x"], ["--autonomy", "7"]):
        with pytest.raises(SystemExit) as exc:
            _parser().parse_args(["eval", *argv])
        assert exc.value.code == 2
        assert "seeds" in capsys.readouterr().err or argv[0] == "--autonomy"
    args = _parser().parse_args(["eval"])
    args.seeds = 0  # a caller that skipped the parser
    assert eval_cli.dispatch(args, runtime) == 2
    assert "at least 1" in capsys.readouterr().err
    with runtime.db.sessions() as session:
        assert EvalRepo().recent(session) == []  # nothing ran, nothing stored


def _summary(incidents: list[dict[str, Any]], actions: list[dict[str, Any]],
             faults: list[dict[str, Any]]) -> dict[str, Any]:
    return {"scenario": {"name": "t", "seed": 1}, "faults": faults, "incidents": incidents,
            "actions": actions, "audit": {"chain_ok": True}, "wall_seconds": 0.1}


def _incident(services: list[str], top: tuple[str, str], runbook: str | None,
              **extra: Any) -> dict[str, Any]:
    actions = [{"runbook": runbook, "autonomous": True, "state": "succeeded"}] if runbook else []
    return {"id": 1, "services": services, "opened_at_s": 120.0, "resolved_at_s": 300.0,
            "diagnosed_at_s": 130.0, "actions": actions,
            "root_cause": {"service": top[0], "fault_class": top[1], "confidence": 0.9},
            "alternatives": [{"service": "db", "fault_class": "slow_dependency",
                              "confidence": 0.05}], **extra}


def test_scoring_against_the_ground_truth() -> None:
    topology = {"web": ["api"], "api": ["db"], "db": [], "other": []}
    fault = {"kind": "slow_dependency", "service": "db", "at_s": 60.0, "params": {},
             "fixed_at_s": 310.0, "fixed_by": "failover", "actions": []}
    action = {"runbook": "failover", "target": "db", "state": "succeeded", "autonomous": True,
              "at_s": 140.0}
    wrong_first = _incident(["web", "api"], ("api", "bad_deploy"), "rollback-deploy")
    right = _incident(["web", "api"], ("db", "slow_dependency"), "failover")
    noise = _incident(["other"], ("other", "traffic_surge"), None)
    run = score_run(_summary([wrong_first, right, noise], [action], [fault]), topology)
    wrong_case, right_case, noise_case = run.cases
    assert (wrong_case["correct_top1"], wrong_case["correct_top3"]) == (False, True)
    assert wrong_case["playbook_ok"] is False
    assert right_case["playbook_ok"] is True
    assert right_case["time_to_detect_s"] == 60.0
    assert right_case["time_to_resolve_s"] == 240.0
    assert noise_case["faults"] == []
    assert noise_case["correct_top1"] is None
    assert (run.fixed_by_action, run.auto_resolved) == (1, 1)
    scores = aggregate([run])
    assert scores["accuracy"] == {"top1": 0.5, "top3": 1.0}
    assert scores["unattributed_incidents"] == 1
    assert scores["auto_resolution"]["rate"] == 1.0
    assert scores["quiet_day_actions"] is None
    assert scores["unresolved_incidents"] == 0
    assert scores["per_scenario"][0]["unresolved"] == []


def test_an_unresolved_incident_is_named_with_its_run() -> None:
    topology = {"web": ["api"], "api": ["db"], "db": []}
    fault = {"kind": "slow_dependency", "service": "db", "at_s": 60.0, "params": {},
             "fixed_at_s": None, "fixed_by": None, "actions": []}
    still_open = _incident(["web", "api"], ("db", "slow_dependency"), None, id=7,
                           resolved_at_s=None)
    scores = aggregate([score_run(_summary([still_open], [], [fault]), topology)])
    assert scores["unresolved_incidents"] == 1
    [row] = scores["per_scenario"]
    assert row["unresolved"] == [7]


def test_reliability_table_and_ece() -> None:
    ece, table = reliability([(0.95, True), (0.95, False), (0.15, False), (1.0, True)])
    assert [b["count"] for b in table] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    # bin 0.9-1.0: confidence 0.9667, accuracy 0.6667; bin 0.1-0.2: 0.15 vs 0
    assert ece == pytest.approx(0.75 * 0.3 + 0.25 * 0.15, abs=1e-3)
    assert reliability([]) == (None, reliability([])[1])


def test_eval_scores_every_injected_fault_too(report: dict[str, Any]) -> None:
    """Beside the incidents, each injected fault is one case (console/fault_scoring.py)."""
    scores = report["json"]["scores"]
    per_fault = scores["per_fault"]
    assert per_fault["faults"] == scores["faults"] == len(per_fault["cases"])
    assert set(per_fault["by_kind"]) == {"config_error", "certificate_expiry"}
    assert per_fault["by_family"]["other"]["runs"] == 3
    assert report["stored"][0]["scores"]["per_fault"]["faults"] == scores["faults"]

"""`watchfloor eval --generated N --seed S` (console/eval_generated.py): generated scenarios
replayed with the team, scored per fault, stored and audited."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from console import eval_cli
from console.evaluate import EvalRepo


def _parser() -> argparse.ArgumentParser:
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db", metavar="URL")
    parser = argparse.ArgumentParser(prog="watchfloor")
    sub = parser.add_subparsers(dest="command")
    eval_cli.add_parsers(sub, db_parent)
    return parser


def _eval(runtime: Any, *argv: str) -> tuple[int, str, str]:
    args = _parser().parse_args(["eval", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = eval_cli.dispatch(args, runtime)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def _server_first(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL, the server is set up before the session's databases, so that it is
    still there when they are dropped."""
    if os.environ.get("WATCHFLOOR_TEST_DB", "").strip().lower() == "postgresql":
        request.getfixturevalue("pg_server")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, _server_first: None,
            make_db_url_session: Any) -> Any:
    from console.clock import RealClock
    from console.runtime import Runtime

    rt = Runtime(make_db_url_session(tmp_path_factory.mktemp("evalgen")), clock=RealClock())
    rt.service.bootstrap_admin("alice")
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def report(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three generated scenarios (a double, a quiet day, a herring at seed 2000)."""
    kept = tmp_path_factory.mktemp("kept") / "files"
    code, out, _ = _eval(runtime, "--generated", "3", "--seed", "2000", "--out", str(kept),
                         "--json")
    with runtime.db.sessions() as session:
        stored = EvalRepo().recent(session, limit=1)
    return {"code": code, "json": json.loads(out), "stored": stored, "kept": kept,
            "entries": runtime.service.audit_entries()}


def test_generated_eval_reports_per_fault(report: dict[str, Any]) -> None:
    assert report["code"] == 0
    data = report["json"]
    assert data["scope"]["generated"] == {"count": 3, "seed": 2000, "split": "report",
                                          "folder": str(report["kept"])}
    assert len(data["scope"]["scenarios"]) == 3
    assert all(n.startswith("gen-2000-") for n in data["scope"]["scenarios"])
    pf = data["scores"]["per_fault"]
    for key in ("faults", "detected", "accuracy", "calibration", "false_alarms", "actions",
                "escalations", "time_to_detect_s", "time_to_diagnose_s",
                "time_to_resolve_s", "by_family", "by_kind", "cases", "judged_actions"):
        assert key in pf, key
    assert pf["faults"] == len(pf["cases"]) == data["scores"]["faults"]
    assert set(pf["by_family"]) <= {"single", "double", "triple", "remedyless", "herring",
                                    "quiet", "pulse"}
    assert sum(b["runs"] for b in pf["by_family"].values()) == 3
    for key in ("on_healthy_services", "made_worse", "ineffective", "wrong"):
        assert isinstance(pf["actions"][key], int)
    case = pf["cases"][0]
    for key in ("fault", "family", "correct_top1", "correct_top3", "wrong_actions",
                "ineffective_actions", "escalated", "time_to_detect_s"):
        assert key in case, key


def test_generated_eval_is_stored_audited_and_keeps_its_files(report: dict[str, Any]) -> None:
    (stored,) = report["stored"]
    assert stored["id"] == report["json"]["id"]
    assert stored["scores"]["per_fault"]["faults"] == report["json"]["scores"]["per_fault"][
        "faults"]
    (entry,) = [e for e in report["entries"] if e.action == "eval.run"]
    assert "per_fault_top1" in entry.outputs
    assert len(list(Path(report["kept"]).glob("gen-2000-*.yaml"))) == 3


@pytest.mark.parametrize("argv", [
    ["--generated", "0"], ["--generated", "many"], ["--seed", "-1", "--generated", "2"]])
def test_bad_generated_options_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["eval", *argv])
    assert exc.value.code == 2


def test_options_that_do_not_go_together_exit_2(runtime: Any, tmp_path: Path) -> None:
    code, _, err = _eval(runtime, "--seed", "2000")
    assert code == 2 and "--generated" in err
    code, _, err = _eval(runtime, "--generated", "2", "--scenario", "bad-deploy")
    assert code == 2 and "--scenario" in err
    (tmp_path / "file").write_text("x")
    code, _, err = _eval(runtime, "--generated", "2", "--out", str(tmp_path / "file"))
    assert code == 2 and "not a folder" in err

"""`watchfloor run --headless --json` on every built-in scenario emits the documented JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.estate import builtin_scenarios
from console.run_summary import SUMMARY_SCHEMA
from console.runtime import run_headless

SUMMARY_KEYS = {"schema", "scenario", "sim_seconds", "wall_seconds", "speed", "signals", "logs",
                "changes", "faults", "incidents", "actions", "audit", "correlation"}


def test_there_are_at_least_eight_builtin_scenarios() -> None:
    names = builtin_scenarios()
    assert len(names) >= 8
    for needed in ("bad-deploy", "cascading-failure", "storm", "overlapping", "quiet-day"):
        assert needed in names


@pytest.mark.parametrize("name", builtin_scenarios())
def test_each_builtin_runs_to_its_end_with_valid_json(name: str,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--headless", "--scenario", name, "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # exactly one JSON object on stdout
    assert set(summary) == SUMMARY_KEYS
    assert summary["schema"] == SUMMARY_SCHEMA
    assert summary["scenario"]["name"] == name
    assert summary["sim_seconds"] >= summary["scenario"]["duration_s"]
    assert summary["audit"]["chain_ok"] is True
    s = summary["signals"]
    assert s["total"] == s["firing"] + s["resolved"]
    assert sum(s["by_severity"].values()) == s["firing"]
    for fault in summary["faults"]:
        assert {"kind", "service", "at_s"} <= set(fault)


def test_faulty_scenario_sees_alerts_and_quiet_day_none_critical() -> None:
    bad = run_headless("bad-deploy")
    assert bad["faults"]
    assert bad["signals"]["firing"] > 0
    assert any(c["kind"] == "deploy" for c in bad["changes"])
    quiet = run_headless("quiet-day")
    assert quiet["faults"] == []
    assert quiet["signals"]["by_severity"].get("critical", 0) == 0


def test_storm_exceeds_five_thousand_alerts() -> None:
    storm = run_headless("storm")
    assert storm["signals"]["firing"] > 5000


def test_same_seed_same_run_different_seed_differs() -> None:
    a = run_headless("bad-deploy", seed=7)
    b = run_headless("bad-deploy", seed=7)
    c = run_headless("bad-deploy", seed=8)
    assert a["signals"] == b["signals"]
    assert a["changes"] == b["changes"]
    assert (a["signals"], a["logs"]) != (c["signals"], c["logs"])


def test_run_stores_signals_in_the_given_database(db_url: str) -> None:
    from console.runtime import Runtime

    summary = run_headless("bad-deploy", db_url=db_url)
    with Runtime(db_url) as rt:
        assert rt.service.signal_count() == summary["signals"]["total"]
        actions = [e.action for e in rt.service.audit_entries()]
        assert actions[:2] == ["user.bootstrap", "scenario.start"]
        assert actions[-1] == "scenario.end"
        assert "incident.open" in actions


def test_bad_scenario_file_exits_2_naming_file_line_field(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nestate: default\nduration: 10m\ntimeline:\n"
                    "  - at: 1m\n    type: fault\n    kind: no-such-fault\n"
                    "    service: payments\n")
    assert main(["run", "--headless", "--scenario", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err
    assert ":7" in err  # the line of the bad field
    assert "kind" in err


def test_unknown_scenario_name_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--headless", "--scenario", "no-such-scenario"]) == 2
    assert "no-such-scenario" in capsys.readouterr().err

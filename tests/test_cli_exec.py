"""Headless governed execution: propose, approve, reject, executions, rollback, policy.

The CLI process has no embedded estate, so an approved estate action is queued there
and run by the console that plays the estate — the same database, the same lifecycle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from console.runtime import Runtime, ScenarioDriver


def cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def users(db_url: str) -> str:
    assert cli("user", "bob", "operator", "--as", "alice", "--db", db_url) == 0
    assert cli("user", "victor", "viewer", "--as", "alice", "--db", db_url) == 0
    return db_url


def test_propose_approve_then_the_console_runs_it(users: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    db = users
    assert cli("propose", "scale-out", "--param", "service=cart", "--param", "count=2",
               "--as", "bob", "--db", db) == 0
    assert "Add 2 instance(s) to cart" in capsys.readouterr().out
    assert cli("recommendations", "--json", "--db", db) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert rec["state"] == "pending"
    assert rec["params"] == {"service": "cart", "count": 2}
    assert cli("approve", str(rec["id"]), "--as", "victor", "--db", db) == 1
    assert "denied" in capsys.readouterr().err
    assert cli("approve", str(rec["id"]), "--as", "bob", "--preview-hash", "0" * 64,
               "--db", db) == 1
    assert "preview changed" in capsys.readouterr().err
    with Runtime(db) as runtime:
        # the console that plays the estate fills in the target's state...
        driver = ScenarioDriver(runtime, "quiet-day", seed=3)
        before = driver.player.estate.describe("cart")
        driver.step(15)
        assert cli("recommendations", "--json", "--db", db) == 0
        [full] = json.loads(capsys.readouterr().out)
        assert full["preview"]["steps"][0]["effect"]["target_state"] == before
        # ...a person approves that preview from another terminal...
        assert cli("approve", str(rec["id"]), "--as", "bob", "--preview-hash",
                   full["preview_hash"], "--db", db) == 0
        assert "queued" in capsys.readouterr().out
        # ...and the console runs it on its next tick
        driver.step(15)
        after = driver.player.estate.describe("cart")
        assert len(after["instances"]) == len(before["instances"]) + 2
    assert cli("executions", "--json", "--db", db) == 0
    [execution] = json.loads(capsys.readouterr().out)
    assert execution["runbook"] == "scale-out"
    assert execution["recommendation"] == rec["id"]
    assert execution["initiator"] == "system:lifecycle"


def test_reject_needs_reason_and_bad_input_exits_2(users: str,
                                                   capsys: pytest.CaptureFixture) -> None:
    db = users
    assert cli("propose", "restart-service", "--param", "service=cart; reboot", "--as", "bob",
               "--db", db) == 2
    assert "parameter service" in capsys.readouterr().err
    assert cli("propose", "no-such-book", "--as", "bob", "--db", db) == 2
    assert cli("propose", "restart-service", "--param", "service=cart", "--as", "bob",
               "--db", db) == 0
    with pytest.raises(SystemExit):
        cli("reject", "1", "--as", "bob", "--db", db)  # --reason is required
    assert cli("reject", "1", "--as", "bob", "--reason", "not now", "--db", db) == 0
    assert cli("reject", "1", "--as", "bob", "--reason", "again", "--db", db) == 1
    assert "rejected, not pending" in capsys.readouterr().err
    assert cli("rollback", "99", "--as", "bob", "--db", db) == 2
    with pytest.raises(SystemExit):
        cli("approve", "abc", "--as", "bob", "--db", db)


def test_policy_show_and_set(users: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    db = users
    good = tmp_path / "policy.yaml"
    good.write_text("default_level: 1\nlevels: {disk_hygiene: 3}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("default_level: 1\nlevels:\n  disk_hygiene: 7\n")
    assert cli("policy", "set", str(good), "--as", "bob", "--db", db) == 1
    assert cli("policy", "set", str(bad), "--as", "alice", "--db", db) == 2
    assert "bad.yaml" in capsys.readouterr().err
    assert cli("policy", "set", str(good), "--as", "alice", "--db", db) == 0
    capsys.readouterr()
    assert cli("policy", "show", "--json", "--db", db) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["default_level"] == 1
    assert shown["levels"] == {"disk_hygiene": 3}


def test_a_bad_prometheus_url_is_refused_before_anything_runs(
        users: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHFLOOR_PROMETHEUS", "ftp://prom:99999")
    assert cli("executions", "--db", users) == 2
    assert "$WATCHFLOOR_PROMETHEUS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli("--prometheus", "not a url", "scenarios")
    assert exc.value.code == 2


def test_a_configured_prometheus_checks_promql_validations(db_url: str) -> None:
    with Runtime(db_url, prometheus="http://127.0.0.1:9090") as runtime:
        probe = runtime.service.engine.executors["prometheus"]
        assert probe.kind == "prometheus"
    with Runtime(db_url) as runtime:
        assert "prometheus" not in runtime.service.engine.executors


def test_ask_answers_with_citations_and_refuses_an_unknown_user(
        users: str, capsys: pytest.CaptureFixture) -> None:
    with Runtime(users) as runtime:
        driver = ScenarioDriver(runtime, "bad-deploy", seed=3)
        for _ in range(20):
            driver.step(15)  # bad-deploy's config change on search lands at 4 min
    # the scenario played on its own clock (January); the CLI asks in real time
    assert cli("ask", "what changed in the last 400 days?", "--as", "bob", "--json",
               "--db", users) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["intent"] == "changes"
    assert answer["facts"]
    assert all(f["ref"].startswith("change:") for f in answer["facts"])
    assert cli("ask", "what changed today?", "--as", "mallory", "--db", users) == 2
    assert capsys.readouterr().err.startswith("watchfloor:")

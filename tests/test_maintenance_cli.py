"""`watchfloor maintenance`: start, list, extend and end from the command line, with the
acting user proved like every other command that changes something."""

from __future__ import annotations

import io
import json

import pytest

from console.auth import Authenticator, ScryptParams
from console.cli import main
from console.clock import RealClock
from console.runtime import Runtime

PASSWORD = "adm1-long-password"


def _listed(db_url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    capsys.readouterr()
    assert main(["maintenance", "list", "--json", "--db", db_url, *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_start_list_extend_end(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maintenance", "start", "--service", "payments", "--reason",
                 "database upgrade", "--minutes", "30", "--db", db_url]) == 0
    assert "payments" in capsys.readouterr().out
    [window] = _listed(db_url, capsys)
    assert (window["id"], window["state"], window["services"], window["created_by"],
            window["reason"]) == (1, "active", ["payments"], "alice", "database upgrade")
    assert main(["maintenance", "extend", "1", "--minutes", "15", "--db", db_url]) == 0
    [longer] = _listed(db_url, capsys)
    assert longer["ends_at"] > window["ends_at"]
    assert main(["maintenance", "end", "1", "--reason", "done", "--db", db_url]) == 0
    assert _listed(db_url, capsys) == []
    [over] = _listed(db_url, capsys, "--all")
    assert (over["state"], over["ended_by"]) == ("ended", "alice")
    capsys.readouterr()
    assert main(["maintenance", "list", "--db", db_url]) == 0
    assert "no maintenance window applies" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["start", "--service", "cart", "--reason", "x", "--minutes", "0"], "minutes must be"),
    (["start", "--incident", "7", "--reason", "x", "--minutes", "5"], "no incident 7"),
    (["start", "--service", "cart", "--reason", " ", "--minutes", "5"], "needs a reason"),
    (["start", "--service", "cart", "--reason", "x", "--minutes", "5", "--silence"],
     "no Alertmanager is configured"),
    (["start", "--service", "cart", "--reason", "x", "--minutes", "5", "--silence",
      "--alertmanager", "ftp://x"], "expected an http"),
    (["extend", "3", "--minutes", "5"], "no maintenance window #3"),
    (["end", "3"], "no maintenance window #3"),
])
def test_bad_input_exits_2_and_stores_nothing(db_url: str, argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["maintenance", *argv, "--db", db_url]) == 2
    assert message in capsys.readouterr().err
    assert _listed(db_url, capsys, "--all") == []


def _exit_code(argv: list[str]) -> int:
    """What the command exits with, whether argparse or the command refused it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_the_acting_user_proves_who_they_are(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rt = Runtime(db_url, clock=RealClock())
    try:
        rt.service.bootstrap_admin("alice")
        Authenticator(rt.service, params=ScryptParams(ln=10, r=8, p=1)).create_first_admin(
            "adm1", PASSWORD, PASSWORD)
        rt.service.add_user("vic", "viewer", as_user="adm1")
    finally:
        rt.close()
    argv = ["maintenance", "start", "--service", "cart", "--reason", "patch", "--minutes",
            "10", "--db", db_url, "--password-stdin"]
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert main([*argv, "--as", "adm1"]) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert main([*argv, "--as", "adm1"]) == 0
    [window] = _listed(db_url, capsys)
    assert window["created_by"] == "adm1"
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main([*argv, "--as", "vic"]) == 1  # a viewer has no password to prove
    assert len(_listed(db_url, capsys)) == 1

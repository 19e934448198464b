"""The `watchfloor` command: exit codes, audit verify/export, headless admin operations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from console.cli import main


def run_cli(*args: str) -> int:
    return main(list(args))


def test_audit_verify_on_new_database_holds(db_url: str, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("audit", "verify", "--db", db_url) == 0
    assert "audit chain holds" in capsys.readouterr().out


def test_tampered_record_fails_verify_naming_it(db_url: str,
                                                capsys: pytest.CaptureFixture) -> None:
    assert run_cli("kill-switch", "on", "--as", "alice", "--db", db_url) == 0
    assert run_cli("kill-switch", "off", "--as", "alice", "--db", db_url) == 0
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor='user:mallory' WHERE seq=2"))
    engine.dispose()
    capsys.readouterr()
    assert run_cli("audit", "verify", "--db", db_url) == 1
    assert "broken at record 2" in capsys.readouterr().out


def test_export_and_verify_bundle_without_database(db_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    run_cli("kill-switch", "on", "--as", "alice", "--db", db_url)
    out = tmp_path / "night.json"
    assert run_cli("audit", "export", "--format", "json", "--out", str(out),
                   "--db", db_url) == 0
    assert "wrote 2 records" in capsys.readouterr().out
    assert run_cli("audit", "verify", "--bundle", str(out)) == 0
    assert "holds: 2 records" in capsys.readouterr().out

    bundle = json.loads(out.read_text())
    bundle["records"][1]["outputs"]["after"] = False
    out.write_text(json.dumps(bundle))
    assert run_cli("audit", "verify", "--bundle", str(out)) == 1
    assert "record 2" in capsys.readouterr().out


def test_bad_bundle_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "x.json"
    path.write_text("{{{")
    assert run_cli("audit", "verify", "--bundle", str(path)) == 2
    assert "not a JSON audit bundle" in capsys.readouterr().err
    assert run_cli("audit", "verify", "--bundle", str(tmp_path / "missing.json")) == 2


def test_denied_operation_exits_1_and_is_audited(db_url: str,
                                                 capsys: pytest.CaptureFixture) -> None:
    assert run_cli("user", "vic", "viewer", "--as", "alice", "--db", db_url) == 0
    assert run_cli("kill-switch", "on", "--as", "vic", "--db", db_url) == 1
    assert "needs role operator" in capsys.readouterr().err
    assert run_cli("autonomy", "4", "--as", "alice", "--db", db_url) == 0
    assert "autonomy ceiling 4" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["autonomy", "7", "--as", "alice"],
    ["kill-switch", "maybe", "--as", "alice"],
    ["run", "--headless", "--scenario", "bad-deploy", "--speed", "-3"],
    ["run", "--headless", "--scenario", "bad-deploy", "--seed", "abc"],
    ["no-such-command"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err


def test_bad_database_url_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert run_cli("audit", "verify", "--db", "nonsense") == 2
    assert "not a database URL" in capsys.readouterr().err


def test_python_dash_m_console_is_the_same_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "console", "--help"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0
    assert "watchfloor" in proc.stdout


def test_a_headless_command_collects_on_the_headless_thresholds() -> None:
    # Python's defaults make a headless run spend a quarter of its time in full
    # collections (console/collector.py); every command but the window sets them.
    from console import collector

    code = ("import gc; from console.cli import main; before = gc.get_threshold(); "
            "main(['scenarios']); print(before, gc.get_threshold())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    before, after = proc.stdout.strip().splitlines()[-1].split(") (")
    assert before == "(700, 10, 10"
    assert after == f"{collector.THRESHOLDS}"[1:]

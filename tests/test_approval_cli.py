"""`watchfloor approve --preview-hash` takes only a preview hash: empty, blank or
anything but a full SHA-256 is bad input (exit 2, the flag named) and approves nothing;
without the flag, the current preview is approved and shown, as before."""

from __future__ import annotations

import json

import pytest

from console.cli import main


@pytest.fixture
def cli_db(db_url: str) -> str:
    assert main(["user", "bob", "operator", "--as", "alice", "--db", db_url]) == 0
    assert main(["propose", "scale-out", "--param", "service=cart", "--as", "bob",
                 "--db", db_url]) == 0
    return db_url


@pytest.mark.parametrize("given", ["", "   ", "abc123", "0" * 63, "g" * 64])
def test_approve_refuses_a_preview_hash_that_is_not_one(
        cli_db: str, given: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["approve", "1", "--as", "bob", "--preview-hash", given,
                 "--db", cli_db]) == 2
    err = capsys.readouterr().err
    assert "--preview-hash" in err
    assert "64 hexadecimal" in err
    assert main(["recommendations", "--json", "--db", cli_db]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert (rec["state"], rec["approvals"]) == ("pending", [])


def test_approve_takes_the_full_hash_with_stray_spaces(
        cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommendations", "--json", "--db", cli_db]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert main(["approve", "1", "--as", "bob", "--preview-hash",
                 f" {rec['preview_hash'].upper()}\n", "--db", cli_db]) == 0
    assert f"(preview {rec['preview_hash'][:12]})" in capsys.readouterr().out
    assert main(["recommendations", "--json", "--db", cli_db]) == 0
    [after] = json.loads(capsys.readouterr().out)
    assert after["state"] != "pending"

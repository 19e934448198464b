"""Who signed a bundle: `audit verify --bundle` against --expect-key, --trusted-keys or
the default trusted-keys file; a bundle re-signed with another key is not trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.audit import build_bundle, key_fingerprint, public_key_b64, write_bundle
from console.cli import main


@pytest.fixture
def exported(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    assert main(["kill-switch", "on", "--as", "alice", "--db", db_url]) == 0
    out = tmp_path / "night.json"
    assert main(["audit", "export", "--format", "json", "--out", str(out),
                 "--db", db_url]) == 0
    capsys.readouterr()
    return out


def _resign(path: Path, key: Ed25519PrivateKey, **changes: Any) -> Path:
    bundle = json.loads(path.read_text())
    for rec in bundle["records"]:
        rec.update(changes)
    out = path.with_name("resigned.json")
    write_bundle(out, build_bundle(bundle["records"], bundle["head"], key,
                                   source=bundle["source"]))
    return out


def _verify(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["audit", "verify", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_own_bundle_is_trusted_by_the_default_list(exported: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    code, out = _verify(capsys, "--bundle", str(exported))
    assert code == 0, out
    assert f"is trusted by {tmp_path / 'config' / 'trusted_keys.txt'}:3" in out


def test_a_bundle_resigned_with_another_key_is_not_trusted(exported: Path,
                                                            capsys: pytest.CaptureFixture
                                                            ) -> None:
    other = Ed25519PrivateKey.generate()
    resigned = _resign(exported, other)
    code, out = _verify(capsys, "--bundle", str(resigned))
    assert code == 1
    assert "audit chain holds" in out  # the file itself is consistent...
    fingerprint = key_fingerprint(public_key_b64(other.public_key()))
    assert f"signed by key {fingerprint}, which is not in the trusted keys" in out  # ...but


def test_expect_key(exported: Path, capsys: pytest.CaptureFixture) -> None:
    own = key_fingerprint(json.loads(exported.read_text())["public_key"])
    assert _verify(capsys, "--bundle", str(exported), "--expect-key", own)[0] == 0
    resigned = _resign(exported, Ed25519PrivateKey.generate(), reason="edited")
    code, out = _verify(capsys, "--bundle", str(resigned), "--expect-key", own)
    assert code == 1
    assert f"not by the expected key {own}: not trusted" in out


def test_a_trusted_keys_file_names_other_workstations(exported: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    other = Ed25519PrivateKey.generate()
    public = public_key_b64(other.public_key())
    resigned = _resign(exported, other)
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(f"# the night shift's laptop\n{public} laptop-7\n")
    code, out = _verify(capsys, "--bundle", str(resigned), "--trusted-keys", str(trusted))
    assert code == 0, out
    assert f"is trusted by {trusted}:2 (laptop-7)" in out
    trusted.write_text(f"{key_fingerprint(public)}\n")
    assert _verify(capsys, "--bundle", str(resigned), "--trusted-keys", str(trusted))[0] == 0
    # the workstation's own bundle is not in that list
    assert _verify(capsys, "--bundle", str(exported), "--trusted-keys", str(trusted))[0] == 1


def test_without_any_trust_list_the_output_says_the_signer_is_unchecked(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "empty.json"
    write_bundle(path, build_bundle([], None, Ed25519PrivateKey.generate(), source="test"))
    code, out = _verify(capsys, "--bundle", str(path))
    assert code == 0  # as before: nothing to check the signer against
    assert "NOT CHECKED against any trusted key" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--expect-key", "nothex"], "--expect-key: expected a key fingerprint"),
    (["--trusted-keys", "BAD"], "bad.txt:2: 'garbage!' is neither"),
    (["--trusted-keys", "MISSING"], "no such trusted-keys file"),
])
def test_bad_trust_input_exits_2(exported: Path, tmp_path: Path, args: list[str],
                                 message: str, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# fine\ngarbage! label\n")
    args = [{"BAD": str(bad), "MISSING": str(tmp_path / "none.txt")}.get(a, a) for a in args]
    code, out = _verify(capsys, "--bundle", str(exported), *args)
    assert code == 2
    assert message in out


def test_trust_options_need_a_bundle(db_url: str, capsys: pytest.CaptureFixture) -> None:
    code, out = _verify(capsys, "--db", db_url, "--expect-key", "0" * 16)
    assert code == 2
    assert "apply to --bundle FILE" in out

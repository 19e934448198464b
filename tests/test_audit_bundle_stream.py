"""Version 2 audit bundles: `audit export` streams the log into a signed SQLite file,
`audit verify --bundle` and `review` read it back a batch at a time. Round trips on the
test database (SQLite, or PostgreSQL with WATCHFLOOR_TEST_DB=postgresql); tampering
with the file is named, a file that is no bundle is bad input (exit 2)."""

from __future__ import annotations

import argparse
import base64
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from console import review_cli
from console.audit import AuditDraft, AuditLog
from console.audit_bundle_file import BundleFile, SearchFilters, is_stream_bundle, search
from console.audit_bundle_verify import verify_stream_bundle
from console.cli import main
from console.storage.db import Database

RECORDS = 12_345  # more than two of the exporter's and the verifier's batches


def _fill(db_url: str, n: int = RECORDS) -> list:
    db = Database(db_url)
    try:
        with db.sessions() as session:
            AuditLog().append_many(session, [
                AuditDraft(actor=f"agent:investigator-{i % 3}", action="hypothesis.rank",
                           target=f"incident:{i % 40}", reason="löss of “quorum”",
                           inputs={"i": i, "nested": {"b": [1, 2.5, None], "a": True}},
                           outputs={"top": "payments"},
                           decision="deny" if i % 1000 == 7 else "n/a")
                for i in range(n)])
            session.commit()
        with db.sessions() as session:
            return AuditLog().entries(session)
    finally:
        db.dispose()


def _export(db_url: str, out: Path, capsys: pytest.CaptureFixture) -> str:
    assert main(["audit", "export", "--out", str(out), "--db", db_url]) == 0
    return capsys.readouterr().out


def _verify(path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["audit", "verify", "--bundle", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def bundle(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    _fill(db_url, 30)
    out = tmp_path / "night.wfaudit"
    _export(db_url, out, capsys)
    return out


def test_export_verify_review_round_trip(db_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    entries = _fill(db_url)
    out = tmp_path / "night.wfaudit"
    assert f"wrote {RECORDS} records" in _export(db_url, out, capsys)
    assert is_stream_bundle(out)
    code, said = _verify(out, capsys)
    assert code == 0, said
    assert f"audit chain holds: {RECORDS} records" in said

    opened = BundleFile.open(out)
    try:
        assert opened.count == RECORDS
        assert opened.manifest["head"] == {"count": RECORDS, "hash": entries[-1].hash}
        picked = [1, 2, 5000, 5001, RECORDS]
        read = opened.entries(picked)
        assert [read[s] for s in picked] == [entries[s - 1] for s in picked]
    finally:
        opened.close()
    # The review's search runs in SQL over the file, newest first, limited.
    seqs, more = search(out, SearchFilters(decision="deny"), limit=5)
    assert seqs == [e.seq for e in reversed(entries) if e.decision == "deny"][:5]
    assert more
    seqs, more = search(out, SearchFilters(target="INCIDENT:7", text="quorum"), 10_000)
    assert seqs == [e.seq for e in reversed(entries) if e.target == "incident:7"]
    assert not more

    opened_by: list[Path] = []
    parser = argparse.ArgumentParser()
    review_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["review", str(out)])
    assert review_cli.dispatch(args, run=lambda p: opened_by.append(p) or 0) == 0
    assert opened_by == [out]


def test_a_record_stored_in_another_json_form_exports_canonically(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Written before JSON was stored canonically (spaces, another key order): the same
    record, so its hash holds, and the bundle carries it in the canonical form."""
    _fill(db_url, 5)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET outputs = :v WHERE seq = 3"),
                      {"v": '{ "top" : "payments" }'})
    engine.dispose()
    out = tmp_path / "old.wfaudit"
    _export(db_url, out, capsys)
    code, said = _verify(out, capsys)
    assert code == 0, said


def test_a_record_changed_in_the_database_is_exported_and_named(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _fill(db_url, 5)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor = 'user:mallory' WHERE seq = 4"))
    engine.dispose()
    out = tmp_path / "changed.wfaudit"
    _export(db_url, out, capsys)
    code, said = _verify(out, capsys)
    assert code == 1
    assert "audit chain broken at record 4: contents do not match the record's hash" in said


def _edit(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql, params)
    conn.close()


def test_a_changed_record_is_named(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    _edit(bundle, "UPDATE records SET body = replace(body, 'agent:investigator-1', "
                  "'agent:investigator-2') WHERE seq = 5")
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert "audit chain broken at record 5: contents do not match the record's hash" in said


def test_a_deleted_record_is_named(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    _edit(bundle, "DELETE FROM records WHERE seq = 9")
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert "broken at record 9: record 9 is missing (found 10 next)" in said


def test_a_cut_file_is_a_failed_check(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    data = bundle.read_bytes()
    bundle.write_bytes(data[: len(data) // 2])
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert f"{bundle}: the file is cut short ({len(data) // 2:,} of its {len(data):,} " \
           "bytes)" in said


def test_a_wrong_signature_is_named(bundle: Path, capsys: pytest.CaptureFixture) -> None:
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(b"other")).decode()
    _edit(bundle, "UPDATE bundle SET value = ? WHERE name = 'signature'", forged)
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert "audit chain does not hold: bundle signature does not match its manifest" in said


def test_a_manifest_from_another_bundle_is_named(db_url: str, bundle: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """A validly signed manifest of a longer export, put into this file."""
    _fill(db_url, 3)
    other = tmp_path / "later.wfaudit"
    _export(db_url, other, capsys)
    with sqlite3.connect(other) as conn:
        swapped = dict(conn.execute("SELECT name, value FROM bundle"))
    conn.close()
    for name, value in swapped.items():
        _edit(bundle, "UPDATE bundle SET value = ? WHERE name = ?", value, name)
    _, verdict = verify_stream_bundle(bundle)
    assert verdict.signature_ok  # the manifest itself is genuine...
    code, said = _verify(bundle, capsys)
    assert code == 1  # ...but not this file's
    assert "chain head says 33 records" in said


def test_a_signed_manifest_of_other_records_is_named(bundle: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Records rewritten with every hash recomputed hold as a chain; the manifest's
    digest and last hash refuse them."""
    import hashlib
    import json

    from console.audit_form import canonical_json

    with sqlite3.connect(bundle) as conn:
        rows = conn.execute("SELECT seq, body FROM records ORDER BY seq").fetchall()
        prev = "0" * 64
        for seq, body in rows:
            rec = json.loads(body)
            rec["prev_hash"] = prev
            if seq == 2:
                rec["reason"] = "nothing to see"
            new_body = canonical_json(rec)
            prev = hashlib.sha256(new_body.encode()).hexdigest()
            conn.execute("UPDATE records SET body = ?, hash = ? WHERE seq = ?",
                         (new_body, prev, seq))
        manifest = json.loads(conn.execute(
            "SELECT value FROM bundle WHERE name = 'manifest'").fetchone()[0])
        manifest["head"]["hash"] = prev
        conn.execute("UPDATE bundle SET value = ? WHERE name = 'manifest'",
                     (canonical_json(manifest),))
    conn.close()
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert "the manifest does not describe these records (last_hash, sha256 differ" in said


@pytest.mark.parametrize("content", [b"SQLite format 3\x00" + b"\x00" * 200, b"{{{", b""])
def test_a_file_that_is_no_bundle_is_bad_input(tmp_path: Path, content: bytes,
                                               capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "x.wfaudit"
    path.write_bytes(content)
    code, said = _verify(path, capsys)
    assert code == 2
    assert str(path) in said


def test_another_sqlite_file_is_bad_input(tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    code, said = _verify(path, capsys)
    assert code == 2
    assert "an SQLite file, but not a Watchfloor audit bundle" in said


def test_version_one_bundles_still_verify(db_url: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    _fill(db_url, 10)
    out = tmp_path / "night.json"
    assert main(["audit", "export", "--format", "json", "--out", str(out),
                 "--db", db_url]) == 0
    capsys.readouterr()
    assert not is_stream_bundle(out)
    code, said = _verify(out, capsys)
    assert code == 0, said
    assert "audit chain holds: 10 records" in said


def test_a_body_with_bytes_after_the_record_is_named(bundle: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    _edit(bundle, "UPDATE records SET body = body || ' {}' WHERE seq = 6")
    code, said = _verify(bundle, capsys)
    assert code == 1
    assert "audit chain broken at record 6: body is not JSON (Extra data" in said


def test_an_empty_log_exports_and_verifies(db_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    Database(db_url).dispose()  # the schema, no record yet
    out = tmp_path / "empty.wfaudit"
    assert "wrote 0 records" in _export(db_url, out, capsys)
    code, said = _verify(out, capsys)
    assert code == 0, said
    assert "audit chain holds: 0 records" in said
    opened = BundleFile.open(out)
    try:
        assert opened.count == 0
        assert opened.span() is None
    finally:
        opened.close()


def test_a_damaged_page_is_named_and_the_rest_still_shows(db_url: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture
                                                          ) -> None:
    _fill(db_url, 3000)
    out = tmp_path / "night.wfaudit"
    _export(db_url, out, capsys)
    data = bytearray(out.read_bytes())
    middle = len(data) // 4096 // 2 * 4096  # a whole page of records, overwritten
    data[middle:middle + 4096] = b"\xff" * 4096
    out.write_bytes(bytes(data))
    code, said = _verify(out, capsys)
    assert code == 1
    assert "cannot be read: the file is damaged here (database disk image is malformed)" \
        in said
    bad = int(said.split("broken at record ")[1].split(":")[0])
    assert 1 < bad < 3000  # the record where the damage is, not the start of its batch
    opened = BundleFile.open(out)
    try:
        shown = opened.entries(list(range(1, 3001)))  # what can be read, without raising
        assert 1 in shown
        assert 3000 in shown
        unreadable = sorted(set(range(1, 3001)) - set(shown))
        assert unreadable[0] == bad  # named where the damage starts
    finally:
        opened.close()


def test_a_manifest_that_is_no_manifest_is_bad_input(bundle: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    import json

    with sqlite3.connect(bundle) as conn:
        manifest = json.loads(conn.execute(
            "SELECT value FROM bundle WHERE name = 'manifest'").fetchone()[0])
    conn.close()
    manifest["head"] = "33"
    _edit(bundle, "UPDATE bundle SET value = ? WHERE name = 'manifest'", json.dumps(manifest))
    code, said = _verify(bundle, capsys)
    assert code == 2
    assert f"{bundle}: manifest head must be an object with a count and a hash" in said

"""The audit chain catches any changed field, deleted or inserted record; bundles verify offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from console.audit import (
    AuditLog,
    BundleError,
    build_bundle,
    load_or_create_key,
    read_bundle,
    record_hash,
    verify_bundle,
    verify_records,
)
from console.storage.db import Database
from console.storage.models import AuditRow

FIELDS = ("at", "actor", "action", "target", "reason", "inputs", "outputs", "decision",
          "prev_hash")


@pytest.fixture
def chain(db_url: str) -> Database:
    db = Database(db_url)
    log = AuditLog()
    with db.sessions() as s:
        for i in range(6):
            log.append(s, actor=f"user:u{i}", action="op.test", target=f"svc{i}",
                       reason="because", inputs={"i": i, "nested": {"a": [1, 2]}},
                       outputs={"ok": True}, decision="allow",
                       at=datetime(2026, 1, 1, 0, i, tzinfo=UTC))
        s.commit()
    return db


def verify(db: Database):
    with db.sessions() as s:
        return AuditLog().verify(s)


def test_intact_chain_holds(chain: Database) -> None:
    result = verify(chain)
    assert result.ok
    assert result.records == 6


@pytest.mark.parametrize("field", FIELDS)
def test_any_changed_field_is_caught_at_its_record(chain: Database, field: str) -> None:
    new_value = {
        "at": datetime(2030, 1, 1, tzinfo=UTC), "inputs": {"i": 99}, "outputs": {"ok": False},
        "prev_hash": "f" * 64,
    }.get(field, "tampered")
    with chain.sessions() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 4).values({field: new_value}))
        s.commit()
    result = verify(chain)
    assert not result.ok
    assert result.first_bad_seq == 4


def test_rehashed_tampering_is_caught_at_the_next_record(chain: Database) -> None:
    """An attacker who fixes the record's own hash still breaks the link to the next."""
    with chain.sessions() as s:
        row = s.get(AuditRow, 3)
        assert row is not None
        row.reason = "nothing to see"
        fields = {k: getattr(row, k) for k in ("seq", *FIELDS)}
        row.hash = record_hash(fields)
        s.commit()
    result = verify(chain)
    assert (result.ok, result.first_bad_seq) == (False, 4)


@pytest.mark.parametrize("seq", [1, 3, 6])
def test_deleted_record_is_caught(chain: Database, seq: int) -> None:
    with chain.sessions() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == seq))
        s.commit()
    result = verify(chain)
    assert not result.ok
    assert result.first_bad_seq == seq


def test_inserted_record_is_caught(chain: Database) -> None:
    with chain.sessions() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.seq >= 3).order_by(AuditRow.seq.desc()))
        for row in rows:  # shift 3.. up by one to make room, newest first
            row.seq += 1
            s.flush()
        prev = s.get(AuditRow, 2)
        assert prev is not None
        forged = {"seq": 3, "at": datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC), "actor": "user:x",
                  "action": "op.forged", "target": "", "reason": "", "inputs": {},
                  "outputs": {}, "decision": "allow", "prev_hash": prev.hash}
        s.add(AuditRow(**forged, hash=record_hash(forged)))
        s.commit()
    result = verify(chain)
    assert not result.ok
    assert result.first_bad_seq == 4  # the forged record links, the one after it does not


def test_appended_after_head_without_log_is_caught(chain: Database) -> None:
    with chain.sessions() as s:
        last = s.get(AuditRow, 6)
        assert last is not None
        extra = {"seq": 7, "at": datetime(2026, 1, 2, tzinfo=UTC), "actor": "user:x",
                 "action": "op.sneaky", "target": "", "reason": "", "inputs": {},
                 "outputs": {}, "decision": "allow", "prev_hash": last.hash}
        s.add(AuditRow(**extra, hash=record_hash(extra)))
        s.commit()
    result = verify(chain)
    assert (result.ok, result.first_bad_seq) == (False, 7)


def test_non_json_inputs_are_stored_as_they_were_hashed(db_url: str) -> None:
    db = Database(db_url)
    with db.sessions() as s:
        AuditLog().append(s, actor="system", action="x",
                          inputs={"when": datetime(2026, 1, 1, tzinfo=UTC), "ids": (1, 2),
                                  "path": Path("/tmp/a")})
        s.commit()
    assert verify(db).ok


def test_append_rejects_missing_actor(db_url: str) -> None:
    db = Database(db_url)
    with db.sessions() as s, pytest.raises(ValueError, match="actor"):
        AuditLog().append(s, actor="", action="x")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(
    st.integers(), st.text(max_size=20), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False)), max_size=4), min_size=1, max_size=8),
    st.data())
def test_in_memory_chain_detects_any_single_tamper(payloads: list, data: st.DataObject) -> None:
    prev = "0" * 64
    records = []
    for i, payload in enumerate(payloads, start=1):
        rec = {"seq": i, "at": "2026-01-01T00:00:00.000000+00:00", "actor": "a",
               "action": "b", "target": "", "reason": "", "inputs": payload, "outputs": {},
               "decision": "n/a", "prev_hash": prev}
        rec["hash"] = record_hash(rec)
        prev = rec["hash"]
        records.append(rec)
    head = {"count": len(records), "hash": prev}
    assert verify_records(records, head).ok
    victim = data.draw(st.integers(0, len(records) - 1))
    field = data.draw(st.sampled_from(["actor", "action", "reason", "inputs", "decision"]))
    tampered = [dict(r) for r in records]
    tampered[victim][field] = {"x": 1} if field == "inputs" else "zz" + str(tampered[victim][field])
    result = verify_records(tampered, head)
    assert not result.ok
    assert result.first_bad_seq == victim + 1


def test_bundle_round_trip_and_tamper(chain: Database, tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "k.pem")
    log = AuditLog()
    with chain.sessions() as s:
        bundle = build_bundle(log.iter_fields(s), log.head(s), key, source="test")
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    assert verify_bundle(read_bundle(path)).ok

    changed = json.loads(path.read_text())
    changed["records"][2]["reason"] = "edited after export"
    result = verify_bundle(changed)
    assert (result.ok, result.first_bad_seq) == (False, 3)

    resigned_elsewhere = json.loads(path.read_text())
    resigned_elsewhere["source"] = "somewhere else"
    result = verify_bundle(resigned_elsewhere)
    assert not result.ok
    assert "signature" in result.problem


def test_key_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "k.pem"
    k1 = load_or_create_key(path)
    k2 = load_or_create_key(path)
    assert k1.public_key().public_bytes_raw() == k2.public_key().public_bytes_raw()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not a JSON audit bundle"),
    ("[]", "not a Watchfloor audit bundle"),
    ('{"format": "watchfloor-audit-bundle", "version": 9}', "version 9"),
    ('{"format": "watchfloor-audit-bundle", "version": 1}', "lacks field"),
])
def test_bad_bundle_files_get_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BundleError, match=message):
        read_bundle(path)


def test_appends_from_many_threads_on_sqlite_lose_nothing(tmp_path: Path) -> None:
    """Agents, sources and operations append from their own threads: each append waits
    for the one before it, so no record is lost to a duplicate sequence number."""
    import threading

    from console.runtime import Runtime

    with Runtime(f"sqlite:///{tmp_path / 'race.db'}") as runtime:
        runtime.service.bootstrap_admin("alice")
        errors: list[BaseException] = []

        def append(worker: int) -> None:
            for i in range(30):
                try:
                    with runtime.service.db.sessions() as session:
                        runtime.service.audit.append(session, actor=f"agent:w{worker}",
                                                     action="test.append", target=str(i))
                        session.commit()
                except BaseException as exc:  # collected, then asserted
                    errors.append(exc)

        threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        verify = runtime.service.verify_audit()
        assert verify.ok
        assert verify.records == 1 + 6 * 30

"""Tampering that rewrites the chain head too: the chain is held against this
workstation's signed checkpoints (kept outside the database) and against the rows each
written with a record. Every case here passed `audit verify` before checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select, update

from console.audit import GENESIS, HEAD_KEY, record_hash
from console.cli import main
from console.domain import IncidentUpdate, Severity
from console.runtime import Runtime, ScenarioDriver
from console.storage.models import AuditRow, SettingRow

FIELDS = ("seq", "at", "actor", "action", "target", "reason", "inputs", "outputs",
          "decision", "prev_hash")


@dataclass
class Busy:
    """A database with incidents, recommendations, approvals, an execution and a
    rollback, written by a console that has shut down (so its last checkpoint is on
    disk)."""

    url: str
    records: int
    data_dir: Path

    def checkpoint_files(self) -> list[Path]:
        return sorted((self.data_dir / "audit-checkpoints").glob("*.jsonl"))


def fill(runtime: Runtime) -> None:
    service = runtime.service
    service.bootstrap_admin("alice")
    service.add_user("bob", "operator", as_user="alice")
    service.add_user("carol", "approver", as_user="alice")
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    now = runtime.clock.now()
    service.save_incidents([IncidentUpdate(1, None, "cart errors", Severity.WARNING,
                                           "open", ("cart",), now, None, (),
                                           (("incident.open", "error rate"),))],
                           actor="agent:correlator")
    engine = service.engine
    ran = engine.propose("scale-out", {"service": "cart", "count": 2},
                         requester="agent:recommender", confidence=0.9)
    rec = engine.recommendation(ran)
    assert rec is not None
    exec_id = engine.approve(ran, as_user="bob", preview_hash=rec.preview_hash)["execution"]
    for _ in range(3):
        driver.step(15)
    assert engine.rollback(exec_id, as_user="bob") == "rolled_back"
    other = engine.propose("scale-out", {"service": "search", "count": 1},
                           requester="agent:recommender", confidence=0.5)
    engine.reject(other, as_user="carol", reason="not needed")


@pytest.fixture
def busy(db_url: str, tmp_path: Path) -> Busy:
    with Runtime(db_url) as runtime:
        fill(runtime)
        records = len(runtime.service.audit_entries())
    return Busy(db_url, records, tmp_path / "data")


def verify(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", "--db", url])
    return code, capsys.readouterr().out


@pytest.fixture
def sql(busy: Busy) -> Iterator[Any]:
    """A connection as an attacker with the database's credentials has it."""
    engine = create_engine(busy.url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _rows(conn: Any, low: int = 1) -> list[dict[str, Any]]:
    rows = conn.execute(select(AuditRow.__table__).where(AuditRow.seq >= low)
                        .order_by(AuditRow.seq)).mappings().all()
    return [dict(r) for r in rows]


def _set_head(conn: Any, count: int, head_hash: str) -> None:
    conn.execute(update(SettingRow).where(SettingRow.key == HEAD_KEY)
                 .values(value={"count": count, "hash": head_hash}))


def _rechain(conn: Any, start: int, change: dict[str, Any]) -> None:
    """Change record `start` and re-hash it and every record after it, head included:
    the chain alone holds again."""
    rows = _rows(conn, start - 1) if start > 1 else [{"hash": GENESIS}, *_rows(conn)]
    prev = rows[0]["hash"]
    for row in rows[1:]:
        fields = {k: row[k] for k in FIELDS}
        if row["seq"] == start:
            fields.update(change)
        fields["prev_hash"] = prev
        fields["hash"] = record_hash(fields)
        conn.execute(update(AuditRow).where(AuditRow.seq == row["seq"])
                     .values({**fields, "hash": "pending-" + str(row["seq"])}))
        conn.execute(update(AuditRow).where(AuditRow.seq == row["seq"])
                     .values(hash=fields["hash"]))
        prev = fields["hash"]
    _set_head(conn, rows[-1]["seq"], prev)


def test_an_untouched_busy_database_holds_and_is_anchored(busy: Busy,
                                                          capsys: pytest.CaptureFixture) -> None:
    assert busy.checkpoint_files()
    code, out = verify(busy.url, capsys)
    assert code == 0, out
    assert f"holds: {busy.records} records" in out
    assert f"(record {busy.records}, line" in out
    assert "1 incidents, 2 recommendations, 1 executions, 2 approvals, 1 rollbacks" in out


def test_deleting_every_record_and_the_head_fails(busy: Busy, sql: Any,
                                                  capsys: pytest.CaptureFixture) -> None:
    sql.execute(delete(AuditRow))
    sql.execute(delete(SettingRow).where(SettingRow.key == HEAD_KEY))
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert f"records 1..{busy.records} were deleted" in out
    assert "execution #1 is stored but the chain has no 'execution.intent' record" in out


def test_deleting_everything_fails_even_without_checkpoints(busy: Busy, sql: Any,
                                                            capsys: pytest.CaptureFixture
                                                            ) -> None:
    """A database never checkpointed here (verified on another machine) still shows
    what happened in its tables."""
    for path in busy.checkpoint_files():
        path.unlink()
    sql.execute(delete(AuditRow))
    sql.execute(delete(SettingRow).where(SettingRow.key == HEAD_KEY))
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "recommendation #2 is stored but the chain has no 'recommendation.create'" in out
    assert "approval of recommendation #1 by bob (approved) is stored without" in out


def test_truncating_with_the_head_rewritten_fails(busy: Busy, sql: Any,
                                                  capsys: pytest.CaptureFixture) -> None:
    keep = busy.records - 3
    kept = _rows(sql, keep)[0]
    sql.execute(delete(AuditRow).where(AuditRow.seq > keep))
    _set_head(sql, keep, kept["hash"])
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert f"broken at record {keep + 1}" in out
    assert f"records {keep + 1}..{busy.records} were deleted" in out


def test_appending_with_the_head_rewritten_fails(busy: Busy, sql: Any,
                                                 capsys: pytest.CaptureFixture) -> None:
    last = _rows(sql, busy.records)[0]
    forged = {"seq": busy.records + 1, "at": datetime(2026, 1, 5, 3, tzinfo=UTC),
              "actor": "user:alice", "action": "note", "target": "", "reason": "all fine",
              "inputs": {}, "outputs": {}, "decision": "n/a", "prev_hash": last["hash"]}
    sql.execute(AuditRow.__table__.insert().values(**forged, hash=record_hash(forged)))
    _set_head(sql, busy.records + 1, record_hash(forged))
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert f"records {busy.records + 1}..{busy.records + 1} were added after" in out
    assert "added outside Watchfloor" in out


def test_rewriting_the_last_record_with_the_head_fails(busy: Busy, sql: Any,
                                                       capsys: pytest.CaptureFixture) -> None:
    _rechain(sql, busy.records, {"reason": "nothing happened"})
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert f"broken at record {busy.records}" in out
    assert "the chain was rewritten at or before this record" in out


def test_rechaining_from_an_early_record_fails(busy: Busy, sql: Any,
                                               capsys: pytest.CaptureFixture) -> None:
    _rechain(sql, 3, {"actor": "user:mallory"})
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "the chain was rewritten at or before this record" in out


def test_a_rechained_chain_must_agree_with_the_rows(busy: Busy, sql: Any,
                                                    capsys: pytest.CaptureFixture) -> None:
    """Re-forged and with no checkpoint to catch it: the approval's record now names
    someone else, and the approvals table says who it was."""
    for path in busy.checkpoint_files():
        path.unlink()
    seq = sql.execute(select(AuditRow.seq).where(AuditRow.action == "recommendation.approve")
                      ).scalar_one()
    _rechain(sql, seq, {"actor": "user:carol"})
    sql.commit()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "approval of recommendation #1 by bob (approved) is stored without" in out
    assert f"record {seq} says carol approved recommendation #1, but no such approval" in out


def test_a_console_that_appends_later_is_not_tampering(busy: Busy,
                                                       capsys: pytest.CaptureFixture) -> None:
    """Records newer than the checkpoint, written by a console (they come with change
    feed rows), are not yet anchored, and say so; they are no failure."""
    runtime = Runtime(busy.url)
    try:
        runtime.service.set_kill_switch(True, as_user="alice")
        code, out = verify(busy.url, capsys)
        assert code == 0, out
        assert f"records {busy.records + 1}..{busy.records + 1} are newer" in out
    finally:
        runtime.close()
    code, out = verify(busy.url, capsys)
    assert code == 0, out
    assert f"(record {busy.records + 1}, line 2)" in out  # its close anchored it


# --- the checkpoint file itself ---------------------------------------------------------


def test_an_edited_checkpoint_fails_its_signature(busy: Busy,
                                                  capsys: pytest.CaptureFixture) -> None:
    path = busy.checkpoint_files()[0]
    line = json.loads(path.read_text())
    line["seq"] = 2
    path.write_text(json.dumps(line) + "\n")
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "line 1 signature does not verify (record 2" in out


def test_a_checkpoint_signed_with_another_key_is_not_trusted(busy: Busy, sql: Any,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    """The attacker re-chains and writes a checkpoint of the forgery with a key of their
    own: it is named as not this workstation's, and the real one still catches them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from console.audit_anchor import AnchorStore, database_location, sign

    _rechain(sql, 2, {"reason": "forged"})
    sql.commit()
    head = _rows(sql, busy.records)[0]
    store = AnchorStore.for_url(busy.url, busy.data_dir / "audit-checkpoints")
    store.append(sign(Ed25519PrivateKey.generate(), database_location(busy.url),
                      busy.records, head["hash"], 10_000))
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "line 2 is signed by key" in out
    assert "not by this workstation's key" in out
    assert "the chain was rewritten" in out


def test_a_missing_workstation_key_is_named(busy: Busy, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "config" / "audit_ed25519.pem").unlink()
    code, out = verify(busy.url, capsys)
    assert code == 1
    assert "this workstation has no audit key" in out
    assert not (tmp_path / "config" / "audit_ed25519.pem").exists()  # none made by verify


def test_a_verify_writes_no_checkpoint(busy: Busy, capsys: pytest.CaptureFixture) -> None:
    before = [p.read_bytes() for p in busy.checkpoint_files()]
    assert verify(busy.url, capsys)[0] == 0
    assert [p.read_bytes() for p in busy.checkpoint_files()] == before


def test_the_service_check_is_the_same(busy: Busy, sql: Any) -> None:
    sql.execute(delete(AuditRow).where(AuditRow.seq > 2))
    _set_head(sql, 2, _rows(sql, 2)[0]["hash"])
    sql.commit()
    with Runtime(busy.url) as runtime:
        result = runtime.service.verify_audit()
    assert not result.ok
    assert result.first_bad_seq == 3


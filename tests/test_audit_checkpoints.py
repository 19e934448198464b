"""The checkpointer: when it writes, what it refuses to sign, every team member's own
checkpoints of one shared chain, and a BLOB where the chain expects text."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, update

from console.audit import HEAD_KEY
from console.audit_anchor import AnchorStore, checkpoint_dir, sweep_gone_sqlite
from console.audit_checkpointer import Checkpointer
from console.audit_checks import verify_database
from console.audit_trust import existing_public_key
from console.cli import main
from console.runtime import Runtime
from console.storage.db import Database
from console.storage.models import AuditRow, SettingRow
from tests.waiting import wait_for


def _record(runtime: Runtime, n: int) -> None:
    for i in range(n):
        runtime.service.record(actor="system", action="test.note", target=str(i))


def test_checkpoints_follow_the_appends_off_their_thread(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        assert runtime.checkpoints is not None
        runtime.checkpoints.close()  # replaced by one that checkpoints every 5 records
        checkpoints = Checkpointer(runtime.db, every_records=5, every_seconds=600).install()
        # one checkpoint may cover more than 5 records when its thread comes late (a
        # loaded machine): each batch of 5 is waited for before the next is written
        _record(runtime, 5)
        wait_for(lambda: checkpoints.written >= 1, what="a checkpoint after 5 records")
        _record(runtime, 5)
        wait_for(lambda: checkpoints.written >= 2, what="a checkpoint after 5 more")
        _record(runtime, 2)
        good, bad = checkpoints.store.read(existing_public_key())
        assert bad == []
        assert all(cp.seq >= 5 for cp in good)
        checkpoints.close()
        assert checkpoints.store.latest(existing_public_key()).seq == 12


def test_a_quiet_console_checkpoints_after_its_interval(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        checkpoints = Checkpointer(runtime.db, every_records=1000, every_seconds=0.05).install()
        _record(runtime, 2)
        wait_for(lambda: checkpoints.written, what="a checkpoint after the interval")
        checkpoints.close()


def test_a_rolled_back_append_is_not_counted(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        checkpoints = Checkpointer(runtime.db, every_seconds=600).install()
        with runtime.db.sessions() as session:
            runtime.service.audit.append(session, actor="system", action="test.lost")
            session.rollback()
        assert checkpoints.close() is None  # nothing committed: nothing to anchor
        assert checkpoints.written == 0


def test_a_rewritten_chain_is_never_checkpointed(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        _record(runtime, 4)
    store = AnchorStore.for_url(db_url)
    before = store.path.read_bytes()
    engine = create_engine(db_url)
    with engine.begin() as conn:  # the newest two records deleted, the head left as it was
        conn.execute(delete(AuditRow).where(AuditRow.seq > 3))
    engine.dispose()
    with Runtime(db_url) as runtime:
        _record(runtime, 1)  # links to record 3: the chain alone would hold from here
        assert runtime.checkpoints is not None
        assert runtime.checkpoints.anchor() is None
        assert "record 4 no longer has the hash its checkpoint" in runtime.checkpoints.problem
    assert store.path.read_bytes() == before


def test_sqlite_memory_databases_have_no_checkpoints() -> None:
    with Runtime("sqlite://") as runtime:
        assert runtime.checkpoints is None


def test_checkpoints_of_sqlite_files_that_are_gone_are_swept(tmp_path: Path) -> None:
    kept, gone = tmp_path / "kept.db", tmp_path / "gone.db"
    for path in (kept, gone):
        with Runtime(f"sqlite:///{path}") as runtime:
            _record(runtime, 1)
    assert len(list(checkpoint_dir().glob("*.jsonl"))) == 2
    gone.unlink()
    removed = sweep_gone_sqlite(checkpoint_dir())
    assert [p.name for p in removed] == [AnchorStore.for_url(f"sqlite:///{gone}").path.name]
    assert AnchorStore.for_url(f"sqlite:///{kept}").exists()


def test_every_team_member_keeps_its_own_checkpoints(tmp_path: Path, make_db_url: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two members on one database, each with its own user directories and key: the one
    that only follows checkpoints what the other appends (it hears of it through the
    change feed), and each one's checkpoints catch a truncation on their own."""
    from console.bus import EventBus
    from console.team_sync import FeedListener

    url = make_db_url(tmp_path, "team")
    members = {}
    for name in ("a", "b"):
        monkeypatch.setenv("WATCHFLOOR_DATA_DIR", str(tmp_path / name / "data"))
        monkeypatch.setenv("WATCHFLOOR_CONFIG_DIR", str(tmp_path / name / "config"))
        runtime = Runtime(url)
        runtime.checkpoints.close()
        runtime.checkpoints = Checkpointer(runtime.db, every_records=3,
                                           every_seconds=0.05).install(runtime.bus)
        members[name] = runtime
    a, b = members["a"], members["b"]
    listener = FeedListener(b.db, b.bus, "member-b", poll_s=0.05).start()
    try:
        a.service.bootstrap_admin("alice")
        _record(a, 9)
        head = len(a.service.audit_entries())
        wait_for(lambda: b.checkpoints.last is not None and b.checkpoints.last.seq == head,
                 what="member b's checkpoint of member a's records")
    finally:
        listener.stop()
        for runtime in members.values():
            runtime.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(delete(AuditRow).where(AuditRow.seq > 4))
        conn.execute(update(SettingRow).where(SettingRow.key == HEAD_KEY).values(value={
            "count": 4, "hash": conn.execute(
                AuditRow.__table__.select().where(AuditRow.seq == 4)).mappings().one()["hash"]}))
    engine.dispose()
    for name in ("a", "b"):
        keys = tmp_path / name / "config" / "audit_ed25519.pem"
        store = AnchorStore.for_url(url, tmp_path / name / "data" / "audit-checkpoints")
        db = Database(url)
        result = verify_database(db, store=store, trusted_public=existing_public_key(keys))
        db.dispose()
        assert not result.ok, name
        assert f"records 5..{head} were deleted" in result.problem, name


def _blob_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'blob.db'}"
    with Runtime(url) as runtime:
        runtime.service.bootstrap_admin("alice")
        _record(runtime, 4)
    return url


@pytest.mark.parametrize(("column", "value"), [
    ("actor", b"user:mallory"), ("reason", b"\x00\xff"), ("at", b"2026-01-01 00:00:00"),
    ("inputs", b"\xff"), ("prev_hash", b"0" * 64),
])
def test_a_blob_where_text_belongs_is_a_named_failure(tmp_path: Path, column: str,
                                                      value: bytes,
                                                      capsys: pytest.CaptureFixture) -> None:
    """SQLite stores whatever a raw write gives it; the driver hands bytes back, which no
    honest writer produced. (PostgreSQL refuses bytea in these columns outright.)"""
    url = _blob_db(tmp_path)
    with sqlite3.connect(tmp_path / "blob.db") as conn:
        conn.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = 3", (value,))
    capsys.readouterr()
    assert main(["audit", "verify", "--db", url]) == 1
    out = capsys.readouterr().out
    assert f"broken at record 3: field {column} is not text (bytes)" in out
    assert main(["audit", "export", "--db", url, "--out", str(tmp_path / "b.json")]) == 1
    assert f"record 3: field {column} is not text (bytes)" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()

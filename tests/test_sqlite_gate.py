"""One writer at a time per SQLite file, handed over at commit (console/storage/sqlite_gate.py):
a second writer waits for the first one's commit instead of failing or napping, and the
gate is free again after a commit, a rollback, a failed statement or a close."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from console.storage.sqlite_gate import GatedConnection


def _open(path: Path) -> GatedConnection:
    conn = sqlite3.connect(path, factory=GatedConnection, check_same_thread=False,
                           timeout=5.0)
    assert isinstance(conn, GatedConnection)
    return conn


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "gate.db"
    conn = _open(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT UNIQUE)")
    conn.commit()
    conn.close()
    return path


def test_a_second_writer_waits_for_the_first_commit_and_then_writes(db: Path) -> None:
    first, second = _open(db), _open(db)
    first.execute("INSERT INTO t (who) VALUES ('first')")  # holds the gate
    order: list[str] = []

    def write() -> None:
        second.execute("INSERT INTO t (who) VALUES ('second')")
        order.append("second wrote")
        second.commit()

    worker = threading.Thread(target=write)
    worker.start()
    time.sleep(0.2)
    assert order == []  # still waiting on the gate, not failed
    order.append("first committed")
    first.commit()
    worker.join(timeout=5)
    assert order == ["first committed", "second wrote"]
    rows = [r[0] for r in first.execute("SELECT who FROM t ORDER BY id")]
    assert rows == ["first", "second"]


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "failed statement"])
def test_the_gate_is_free_after_the_transaction_ends(db: Path, ending: str) -> None:
    writer, other = _open(db), _open(db)
    if ending == "failed statement":
        writer.execute("INSERT INTO t (who) VALUES ('x')")
        writer.commit()
        with pytest.raises(sqlite3.IntegrityError):
            writer.execute("INSERT INTO t (who) VALUES ('x')")  # UNIQUE: nothing written
        writer.rollback()
    else:
        writer.execute("INSERT INTO t (who) VALUES ('y')")
        getattr(writer, ending)()
    done = threading.Event()

    def write() -> None:
        other.execute("INSERT INTO t (who) VALUES ('z')")
        other.commit()
        done.set()

    threading.Thread(target=write).start()
    assert done.wait(timeout=2.0)  # well under the 5 s gate and busy timeouts


def test_reads_never_wait_on_a_writer(db: Path) -> None:
    writer, reader = _open(db), _open(db)
    writer.execute("INSERT INTO t (who) VALUES ('pending')")
    started = time.perf_counter()
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)  # WAL snapshot
    assert time.perf_counter() - started < 1.0
    writer.commit()

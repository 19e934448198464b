"""One audit chain on PostgreSQL: several processes, each with its own engine, appending
at the same moment (from an empty log, so they also race for the first record) keep one
linear chain that `watchfloor audit verify --db URL` accepts."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import traceback
from typing import Any

import pytest

from console.audit import GENESIS, AuditLog
from console.cli import main
from console.storage.db import Database

WRITERS = 4
RECORDS = 40


def _append_many(url: str, writer: int, records: int, start: Any) -> list[int]:
    """One writer with its own engine: waits for the others, then appends `records`
    records, one unit of work each, as operations do; returns the seqs it got."""
    db = Database(url, migrate=False)
    log = AuditLog()
    seqs = []
    try:
        start.wait(timeout=60)
        with db.sessions() as session:
            for i in range(records):
                entry = log.append(session, actor=f"agent:writer{writer}",
                                   action="test.append", target=f"item:{i}",
                                   inputs={"writer": writer, "i": i})
                session.commit()
                seqs.append(entry.seq)
    finally:
        db.dispose()
    return seqs


def _writer(url: str, writer: int, records: int, start: Any, results: Any) -> None:
    try:
        results.put((writer, _append_many(url, writer, records, start), ""))
    except BaseException:
        results.put((writer, [], traceback.format_exc()))
        raise


def _check_chain(url: str, writers: int, records: int,
                 seqs_by_writer: dict[int, list[int]]) -> None:
    total = writers * records
    every = sorted(s for seqs in seqs_by_writer.values() for s in seqs)
    assert every == list(range(1, total + 1))  # no seq twice, none skipped
    for seqs in seqs_by_writer.values():
        assert seqs == sorted(seqs)  # each writer's records in the order it wrote them
    db = Database(url, migrate=False)
    try:
        with db.sessions() as session:
            log = AuditLog()
            entries = log.entries(session)
            assert log.head(session) == {"count": total, "hash": entries[-1].hash}
            result = log.verify(session)
    finally:
        db.dispose()
    assert result.ok, result.describe()
    assert result.records == total
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    for writer in range(writers):
        mine = [e.inputs["i"] for e in entries if e.inputs["writer"] == writer]
        assert mine == list(range(records))


def test_processes_appending_at_once_keep_one_chain(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = multiprocessing.get_context("spawn")  # each writer: its own interpreter and engine
    start = ctx.Barrier(WRITERS)
    results = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(pg_url, n, RECORDS, start, results))
               for n in range(WRITERS)]
    for process in writers:
        process.start()
    outcomes = [results.get(timeout=180) for _ in writers]
    for process in writers:
        process.join(timeout=60)
    assert [tb for _w, _s, tb in outcomes if tb] == []
    assert [p.exitcode for p in writers] == [0] * WRITERS

    _check_chain(pg_url, WRITERS, RECORDS, {w: seqs for w, seqs, _tb in outcomes})
    capsys.readouterr()
    assert main(["audit", "verify", "--db", pg_url]) == 0
    # the command may add its own record (the chain then holds one more)
    assert capsys.readouterr().out.startswith("audit chain holds: ")


def test_threads_with_their_own_engines_keep_one_chain(pg_url: str) -> None:
    start = threading.Barrier(WRITERS)
    seqs_by_writer: dict[int, list[int]] = {}
    errors: list[str] = []

    def write(writer: int) -> None:
        try:
            seqs_by_writer[writer] = _append_many(pg_url, writer, RECORDS, start)
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert errors == []
    _check_chain(pg_url, WRITERS, RECORDS, seqs_by_writer)


def test_a_broken_chain_on_postgresql_fails_verify_with_exit_1(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    db = Database(pg_url, migrate=False)
    try:
        with db.sessions() as session:
            for i in range(3):
                AuditLog().append(session, actor="user:alice", action="test.append",
                                  target=str(i))
            session.commit()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_records SET reason = 'edited' WHERE seq = 2"))
    finally:
        db.dispose()
    assert main(["audit", "verify", "--db", pg_url]) == 1
    assert "record 2" in capsys.readouterr().out

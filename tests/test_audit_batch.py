"""Audit records appended as a batch (`AuditLog.append_many`, what a correlation that
opens thousands of incidents writes): the same chain as appending them one by one, every
record counted by the checkpoints and named in the change feed like an ORM-added one,
nothing written when one record is bad, and appenders in other threads, batched or not,
interleaving into one unbroken chain."""

from __future__ import annotations

import itertools
import json
import threading
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from console.audit import GENESIS, AuditDraft, AuditLog
from console.audit_form import _json_default, plain
from console.audit_checkpointer import Checkpointer
from console.runtime import Runtime
from console.storage.db import Database
from console.storage.models import AuditRow, ChangeFeedRow

T0 = datetime(2026, 1, 5, 2, 13, tzinfo=UTC)


def _drafts(count: int, first: int = 0) -> list[AuditDraft]:
    """Records with every field set, and inputs only a JSON round trip makes plain (a
    tuple, a time, a set): both ways must store and hash them alike."""
    return [AuditDraft(actor=f"agent:a{i % 3}", action="incident.open", target=f"incident:{i}",
                       reason=f"reason {i} é ✓", inputs={"services": ("checkout", f"s{i}"),
                                                         "at": T0, "tags": {"x"}},
                       outputs={"state": "open", "n": i}, decision="allow",
                       at=T0 + timedelta(seconds=i))
            for i in range(first, first + count)]


def _one_by_one(log: AuditLog, session: Any, drafts: list[AuditDraft]) -> list[Any]:
    return [log.append(session, actor=d.actor, action=d.action, target=d.target,
                       reason=d.reason, inputs=d.inputs, outputs=d.outputs,
                       decision=d.decision, at=d.at) for d in drafts]


def test_a_batch_makes_the_chain_one_by_one_appends_make(make_db_url: Any,
                                                         tmp_path: Path) -> None:
    drafts = _drafts(9)
    log = AuditLog()
    single, batched = Database(make_db_url(tmp_path, "single")), \
        Database(make_db_url(tmp_path, "batched"))
    try:
        with single.sessions() as session:
            expected = _one_by_one(log, session, drafts)
            session.commit()
        with batched.sessions() as session:  # mixed: a single one, a batch, a single one
            returned = _one_by_one(log, session, drafts[:1])
            returned += log.append_many(session, drafts[1:8])
            session.commit()
        with batched.sessions() as session:  # and a batch in a later transaction
            returned += _one_by_one(log, session, drafts[8:])
            session.commit()
        assert returned == expected
        for db in (single, batched):
            with db.sessions() as session:
                assert log.entries(session) == expected
                assert log.head(session) == {"count": 9, "hash": expected[-1].hash}
                result = log.verify(session)
                assert result.ok, result.describe()
        assert expected[0].prev_hash == GENESIS
        assert [e.seq for e in expected] == list(range(1, 10))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(expected))
        assert expected[0].inputs == {"services": ["checkout", "s0"],
                                      "at": "2026-01-05T02:13:00.000000+00:00", "tags": ["x"]}
    finally:
        single.dispose()
        batched.dispose()


_atoms = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
          | st.datetimes(timezones=st.just(UTC)))
_values = st.recursive(_atoms, lambda inner: (
    st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.frozensets(st.integers())
    | st.dictionaries(st.text() | st.integers() | st.booleans(), inner, max_size=4)),
    max_leaves=30)


def _round_trip(value: Any) -> tuple[str, Any]:
    try:
        return "ok", json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except ValueError as exc:
        return "error", type(exc)


@settings(max_examples=400, deadline=None)
@given(value=_values)
def test_inputs_are_stored_as_a_json_round_trip_gives_them_back(value: Any) -> None:
    """What the chain hashes is what storage gives back: a value that is JSON already is
    copied instead of round-tripped, with the same result, types included (1 is not 1.0
    or True), and the same refusal (NaN, a number too long to write)."""
    try:
        got: tuple[str, Any] = ("ok", plain(value))
    except ValueError as exc:
        got = ("error", type(exc))
    expected = _round_trip(value)
    assert repr(got) == repr(expected)


def test_a_number_too_long_to_write_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="4300 digits"):
        plain({"n": [10**4400]})
    assert plain({"n": [2**64, -(2**64)]}) == {"n": [2**64, -(2**64)]}


def test_a_batch_with_a_record_lacking_its_actor_writes_nothing(db_url: str) -> None:
    db = Database(db_url)
    log = AuditLog()
    try:
        with db.sessions() as session:
            log.append_many(session, _drafts(2))
            session.commit()
        bad = [*_drafts(2, first=2), AuditDraft(actor="", action="incident.open")]
        with db.sessions() as session, pytest.raises(ValueError, match="needs an actor"):
            log.append_many(session, bad)
        with db.sessions() as session:
            assert len(log.entries(session)) == 2
            assert log.head(session)["count"] == 2
            assert log.verify(session).ok
            assert log.append_many(session, []) == []
    finally:
        db.dispose()


def test_records_appended_in_a_batch_are_counted_for_checkpoints(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        assert runtime.checkpoints is not None
        runtime.checkpoints.close()
        checkpoints = Checkpointer(runtime.db, every_seconds=600).install()
        with runtime.db.sessions() as session:  # rolled back: not counted
            runtime.service.audit.append_many(session, _drafts(3))
            session.rollback()
        with runtime.db.sessions() as session:
            entries = runtime.service.audit.append_many(session, _drafts(4))
            session.commit()
        last = checkpoints.close()  # what this process appended is anchored at shutdown
        assert last is not None, "the batch's records were never counted"
        assert (last.seq, last.hash) == (entries[-1].seq, entries[-1].hash)


def test_records_appended_in_a_batch_are_named_in_the_change_feed(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        with runtime.db.sessions() as session:
            runtime.service.audit.append_many(session, _drafts(3, first=7))
            session.commit()
        with runtime.db.sessions() as session:
            row = session.scalars(select(ChangeFeedRow).order_by(ChangeFeedRow.seq.desc())
                                  .limit(1)).one_or_none()
    assert row is not None, "no change feed row for the batch"
    assert row.operation == "incident.open"
    assert row.initiator == "agent:a1"
    assert row.changes["audit"]
    assert row.changes["incidents"]
    assert row.changes["ids"] == ["7", "8", "9"]


WRITERS, ROUNDS = 4, 12


def _write(url: str, writer: int, start: Any) -> list[list[int]]:
    """One appender with its own engine (another console): rounds of a batch of 1-5
    records or a single record, one transaction each; the seqs of each round."""
    db = Database(url, migrate=False)
    log = AuditLog()
    rounds: list[list[int]] = []
    try:
        start.wait(timeout=60)
        for n in range(ROUNDS):
            size = (writer + n) % 5 + 1
            drafts = [AuditDraft(f"agent:w{writer}", "test.append", f"r{n}",
                                 inputs={"writer": writer, "round": n, "i": i})
                      for i in range(size)]
            with db.sessions() as session:
                if n % 3 == 2:
                    entries = _one_by_one(log, session, drafts)
                else:
                    entries = log.append_many(session, drafts)
                session.commit()
            rounds.append([e.seq for e in entries])
    finally:
        db.dispose()
    return rounds


def _check_interleaving(url: str, rounds_by_writer: dict[int, list[list[int]]]) -> None:
    every = sorted(s for rounds in rounds_by_writer.values() for seqs in rounds for s in seqs)
    assert every == list(range(1, len(every) + 1))  # no seq twice, none skipped
    for rounds in rounds_by_writer.values():
        for seqs in rounds:  # a transaction's records are one run of the chain
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert [seqs[0] for seqs in rounds] == sorted(seqs[0] for seqs in rounds)
    db = Database(url, migrate=False)
    try:
        with db.sessions() as session:
            log = AuditLog()
            result = log.verify(session)
            rows = session.execute(select(AuditRow.seq, AuditRow.inputs)).all()
    finally:
        db.dispose()
    assert result.ok, result.describe()
    assert result.records == len(every)
    stored = {seq: inputs for seq, inputs in rows}
    for writer, rounds in rounds_by_writer.items():
        for n, seqs in enumerate(rounds):
            assert [stored[s] for s in seqs] == [{"writer": writer, "round": n, "i": i}
                                                 for i in range(len(seqs))]


def test_threads_appending_batches_and_single_records_keep_one_chain(db_url: str) -> None:
    Database(db_url).dispose()  # the schema, before the writers race
    start = threading.Barrier(WRITERS)
    rounds_by_writer: dict[int, list[list[int]]] = {}
    errors: list[str] = []

    def write(writer: int) -> None:
        try:
            rounds_by_writer[writer] = _write(db_url, writer, start)
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert errors == []
    _check_interleaving(db_url, rounds_by_writer)


def _process_writer(url: str, writer: int, start: Any, results: Any) -> None:
    try:
        results.put((writer, _write(url, writer, start), ""))
    except BaseException:
        results.put((writer, [], traceback.format_exc()))
        raise


def test_processes_appending_batches_on_postgresql_keep_one_chain(pg_url: str) -> None:
    """Team mode: each member its own process and engine, from an empty chain (so they
    also race for the head's first row)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WRITERS)
    results = ctx.Queue()
    writers = [ctx.Process(target=_process_writer, args=(pg_url, n, start, results))
               for n in range(WRITERS)]
    for process in writers:
        process.start()
    outcomes = [results.get(timeout=180) for _ in writers]
    for process in writers:
        process.join(timeout=60)
    assert [tb for _w, _r, tb in outcomes if tb] == []
    _check_interleaving(pg_url, {writer: rounds for writer, rounds, _tb in outcomes})

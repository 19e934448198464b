"""Team mode on PostgreSQL: audit appends per second with three writer processes (three
consoles, each its own engine) against one writer, on a real throwaway PostgreSQL 15
(tests/pg_server.py, Debian package `postgresql`). Every append takes the chain head
with SELECT ... FOR UPDATE, so writers queue on it: the figure says what that costs
and whether several consoles still add up to more than one."""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

from console.audit import AuditLog
from console.storage.db import Database

WRITERS = 3


def _writer(url: str, writer: int, records: int, start: Any, done: Any) -> None:
    db = Database(url, migrate=False)
    log = AuditLog()
    try:
        with db.sessions() as session:
            start.wait(timeout=120)
            began = time.perf_counter()
            for i in range(records):  # one commit per record, as operations do
                log.append(session, actor=f"agent:writer-{writer}", action="bench.append",
                           target=f"service-{i % 14}", reason="team store benchmark",
                           inputs={"writer": writer, "i": i},
                           outputs={"top": "payments", "confidence": 0.82})
                session.commit()
            done.put((writer, time.perf_counter() - began))
    finally:
        db.dispose()


def _round(url: str, writers: int, per_writer: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(writers + 1)
    done = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, n, per_writer, start, done))
             for n in range(writers)]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)  # every writer is connected and ready: the clock starts now
    began = time.perf_counter()
    timings = [done.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join(timeout=60)
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError(f"a writer failed: exit codes {[p.exitcode for p in procs]}")
    records = writers * per_writer
    return {"writers": writers, "records": records, "seconds": round(wall, 3),
            "appends_per_s": round(records / wall, 1),
            "slowest_writer_s": round(max(t for _w, t in timings), 3)}


def _verify(url: str, expected: int) -> None:
    db = Database(url, migrate=False)
    try:
        with db.sessions() as session:
            result = AuditLog().verify(session)
    finally:
        db.dispose()
    if not (result.ok and result.records == expected):
        raise RuntimeError(f"benchmark chain does not verify: {result.describe()}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.pg_server import running_server  # from the source tree, as benchmarks run

    total = max(WRITERS, int(args.records) // 3)  # per configuration
    with running_server() as server:
        results = {}
        for writers in (1, WRITERS):
            name = server.create_database(f"bench_{writers}")
            url = server.url(name)
            Database(url).dispose()  # the schema, before the clock runs
            results[writers] = _round(url, writers, total // writers)
            _verify(url, results[writers]["records"])
    one, many = results[1], results[WRITERS]
    return {
        "records_per_configuration": total,
        "one_writer_appends_per_s": one["appends_per_s"],
        "three_writers_appends_per_s": many["appends_per_s"],
        "three_vs_one": round(many["appends_per_s"] / one["appends_per_s"], 3),
        "one_writer": one,
        "three_writers": many,
        "store": "postgresql 15 (fsync off), one commit per append, chain verified after",
    }

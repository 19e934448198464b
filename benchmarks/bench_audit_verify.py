"""`audit verify` at scale: records/s of the one-pass streaming check against the speed
of hashing the same canonical bytes alone, in the same run.

The log is written in batches (`append_many`, as a correlation writes it) so that a
large one is quick to make; verifying does not care how it was written. Figures:
- `verify_chain_records_per_s`: `AuditLog.verify` (the chain and its head, streamed);
- `verify_database_records_per_s`: `audit verify`'s whole check (also checkpoints and the
  rows the records vouch for);
- `orm_walk_records_per_s`: the record-by-record walk over ORM-read records, the way
  verify read the log before (a reference, not a target);
- `hash_floor_records_per_s`: SHA-256 over each record's canonical bytes, already made
  (the floor: nothing can verify faster than it hashes), and `serialize_hash_floor`:
  making those bytes from Python objects and hashing them.
With `--cpu-load N` the same figures are taken again while N busy processes compete for
the CPU (`loaded`)."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.audit import AuditDraft, AuditLog, canonical_json, record_body, verify_records
from console.audit_anchor import AnchorStore
from console.audit_checks import verify_database
from console.storage.db import Database

TARGET_RECORDS_PER_S = 200_000
TARGET_VS_HASH_FLOOR = 0.5
BATCH = 5000


def _draft(i: int, t0: datetime) -> AuditDraft:
    return AuditDraft(actor=f"agent:investigator-{i % 7}", action="hypothesis.rank",
                      target=f"service-{i % 14}", reason="error rate above baseline for 5 min",
                      inputs={"window_s": 300, "metrics": ["error_rate", "latency_p99_ms"],
                              "i": i},
                      outputs={"top": "payments", "confidence": 0.82}, decision="n/a",
                      at=t0 + timedelta(seconds=i))


def _build(db: Database, n: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log = AuditLog()
    with db.sessions() as session:
        for first in range(0, n, BATCH):
            log.append_many(session, [_draft(i, t0) for i in range(first, min(n, first + BATCH))])
            session.commit()


def _best(fn: Any, rounds: int = 2) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _measure(db: Database, n: int, folder: Path, bodies: list[bytes],
             records: list[dict[str, Any]]) -> dict[str, Any]:
    log = AuditLog()

    def chain() -> None:
        with db.sessions() as session:
            result = log.verify(session)
        if not (result.ok and result.records == n):
            raise RuntimeError(f"benchmark chain does not verify: {result.describe()}")

    def full() -> None:
        store = AnchorStore.for_url(db.engine.url, folder / "checkpoints")
        result = verify_database(db, store=store, trusted_public=None)
        if not result.ok:
            raise RuntimeError(f"benchmark database does not verify: {result.describe()}")

    def orm_walk() -> None:
        with db.sessions() as session:
            verify_records(log.iter_fields(session), log.head(session))

    def hash_floor() -> None:
        prev = "0" * 64
        for body in bodies:
            prev = hashlib.sha256(body).hexdigest()

    def serialize_floor() -> None:
        for rec in records:
            hashlib.sha256(canonical_json(record_body(rec)).encode()).hexdigest()

    chain_s, full_s = _best(chain), _best(full)
    orm_s = _best(orm_walk, rounds=1)
    floor_s, serialize_s = _best(hash_floor, rounds=3), _best(serialize_floor, rounds=1)
    chain_rate = n / chain_s
    return {
        "verify_chain_records_per_s": round(chain_rate, 1),
        "verify_database_records_per_s": round(n / full_s, 1),
        "orm_walk_records_per_s": round(n / orm_s, 1),
        "hash_floor_records_per_s": round(n / floor_s, 1),
        "serialize_hash_floor_records_per_s": round(n / serialize_s, 1),
        "verify_chain_vs_hash_floor": round(floor_s / chain_s, 3),
        "verify_database_vs_hash_floor": round(floor_s / full_s, 3),
        "verify_chain_vs_orm_walk": round(orm_s / chain_s, 2),
        "meets_target": chain_rate >= TARGET_RECORDS_PER_S
        and floor_s / chain_s >= TARGET_VS_HASH_FLOOR,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = max(BATCH, int(getattr(args, "records", 0) or 0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = Database(f"sqlite:///{folder / 'verify.db'}")
        try:
            start = time.perf_counter()
            _build(db, n)
            build_s = time.perf_counter() - start
            with db.sessions() as session:
                records = list(AuditLog().iter_fields(session))
            bodies = [canonical_json(record_body(rec)).encode() for rec in records]
            results: dict[str, Any] = {
                "records": n, "store": "sqlite-wal", "build_s": round(build_s, 2),
                "targets": {"records_per_s": TARGET_RECORDS_PER_S,
                            "vs_hash_floor": TARGET_VS_HASH_FLOOR},
                "quiet": _measure(db, n, folder, bodies, records),
            }
            load_n = int(getattr(args, "cpu_load", 0) or 0)
            if load_n:
                load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        for _ in range(load_n)]
                try:
                    time.sleep(0.5)
                    results["loaded"] = {"cpu_load_processes": load_n,
                                         **_measure(db, n, folder, bodies, records)}
                finally:
                    for proc in load:
                        proc.kill()
                        proc.wait()
            return results
        finally:
            db.dispose()

"""Audit append and verify rates (records/s) against a bare hashlib loop over the same
records, in the same run: the floor says how much the chain costs beyond hashing.

Also the append rate with this workstation's checkpoints being written beside it (a
checkpointer on the database, as every console runs one) against the same appends
without, best of two interleaved rounds each, and the full database check (chain,
checkpoints, rows) against the chain alone."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.audit import (
    AuditLog,
    canonical_json,
    load_or_create_key,
    public_key_b64,
    record_body,
)
from console.audit_anchor import AnchorStore
from console.audit_checkpointer import EVERY_RECORDS, Checkpointer
from console.audit_checks import verify_database
from console.storage.db import Database


def _payload(i: int) -> dict[str, Any]:
    return {"actor": f"agent:investigator-{i % 7}", "action": "hypothesis.rank",
            "target": f"service-{i % 14}", "reason": "error rate above baseline for 5 min",
            "inputs": {"window_s": 300, "metrics": ["error_rate", "latency_p99_ms"], "i": i},
            "outputs": {"top": "payments", "confidence": 0.82}, "decision": "n/a"}


def _append(db: Database, n: int) -> float:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log = AuditLog()
    start = time.perf_counter()
    with db.sessions() as session:
        for i in range(n):  # one commit per record, as operations do
            log.append(session, at=t0 + timedelta(seconds=i), **_payload(i))
            session.commit()
    return time.perf_counter() - start


def _with_checkpoints(folder: Path, n: int, rounds: int = 2) -> dict[str, Any]:
    plain_s, anchored_s, close_s, written = [], [], [], 0
    for r in range(rounds):
        db = Database(f"sqlite:///{folder / f'plain{r}.db'}")
        plain_s.append(_append(db, n))
        db.dispose()
        db = Database(f"sqlite:///{folder / f'anchored{r}.db'}")
        store = AnchorStore.for_url(db.engine.url, folder / "checkpoints")
        checkpoints = Checkpointer(db, store=store, key_file=folder / "bench-key.pem").install()
        anchored_s.append(_append(db, n))
        start = time.perf_counter()
        checkpoints.close()  # the last one, as a console's shutdown writes it
        close_s.append(time.perf_counter() - start)
        written = checkpoints.written
        public = public_key_b64(load_or_create_key(folder / "bench-key.pem").public_key())
        start = time.perf_counter()
        full = verify_database(db, store=store, trusted_public=public)
        full_s = time.perf_counter() - start
        if not full.ok:
            raise RuntimeError(f"benchmark database does not verify: {full.describe()}")
        start = time.perf_counter()
        with db.sessions() as session:
            AuditLog().verify(session)
        chain_s = time.perf_counter() - start
        db.dispose()
    plain, anchored = min(plain_s), min(anchored_s)
    return {
        "append_records_per_s_without_checkpoints": round(n / plain, 1),
        "append_records_per_s_with_checkpoints": round(n / anchored, 1),
        "append_with_vs_without_checkpoints": round(plain / anchored, 3),
        "checkpoints_written": written,
        "checkpoint_every_records": EVERY_RECORDS,
        "last_checkpoint_at_close_ms": round(min(close_s) * 1000, 2),
        "verify_database_records_per_s": round(n / full_s, 1),
        "verify_chain_only_records_per_s": round(n / chain_s, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.records
    log = AuditLog()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        append_s = _append(db, n)

        start = time.perf_counter()
        with db.sessions() as session:
            result = log.verify(session)
        verify_s = time.perf_counter() - start
        if not (result.ok and result.records == n):
            raise RuntimeError(f"benchmark chain does not verify: {result.describe()}")

        with db.sessions() as session:
            records = list(log.iter_fields(session))
        db.dispose()
        anchored = _with_checkpoints(Path(tmp), n)

    start = time.perf_counter()  # the floor: hash the same canonical bytes, nothing else
    prev = "0" * 64
    for rec in records:
        prev = hashlib.sha256(canonical_json(record_body({**rec, "prev_hash": prev})).encode()
                              ).hexdigest()
    floor_s = time.perf_counter() - start
    return {
        "records": n,
        "append_records_per_s": round(n / append_s, 1),
        "verify_records_per_s": round(n / verify_s, 1),
        "hashlib_floor_records_per_s": round(n / floor_s, 1),
        "verify_vs_floor": round(floor_s / verify_s, 3),
        "append_vs_floor": round(floor_s / append_s, 4),
        "store": "sqlite-wal, one commit per append",
        **anchored,
    }

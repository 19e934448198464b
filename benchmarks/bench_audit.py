"""Audit append and verify rates (records/s) against a bare hashlib loop over the same
records, in the same run: the floor says how much the chain costs beyond hashing."""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.audit import AuditLog, canonical_json, record_body
from console.storage.db import Database


def _payload(i: int) -> dict[str, Any]:
    return {"actor": f"agent:investigator-{i % 7}", "action": "hypothesis.rank",
            "target": f"service-{i % 14}", "reason": "error rate above baseline for 5 min",
            "inputs": {"window_s": 300, "metrics": ["error_rate", "latency_p99_ms"], "i": i},
            "outputs": {"top": "payments", "confidence": 0.82}, "decision": "n/a"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.records
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log = AuditLog()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        start = time.perf_counter()
        with db.sessions() as session:
            for i in range(n):  # one commit per record, as operations do
                log.append(session, at=t0 + timedelta(seconds=i), **_payload(i))
                session.commit()
        append_s = time.perf_counter() - start

        start = time.perf_counter()
        with db.sessions() as session:
            result = log.verify(session)
        verify_s = time.perf_counter() - start
        if not (result.ok and result.records == n):
            raise RuntimeError(f"benchmark chain does not verify: {result.describe()}")

        with db.sessions() as session:
            records = list(log.iter_fields(session))
        db.dispose()

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
    }

"""Approval-to-execution-start latency: from a person's approve call to the moment the
first step reaches the executor (policy decision, preview re-check, intent row, audit
records and their commits in between), on a SQLite file like a workstation's.

The floor in the same run is one bare SQLite commit of one row, the least any durable
"intent before action" can cost on this disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from console.actions.estate import EstateExecutor
    from console.policy import Policy
    from console.runtime import Runtime, ScenarioDriver

    count = args.approvals
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            service = runtime.service
            service.bootstrap_admin("alice")
            service.add_user("bob", "operator", as_user="alice")
            service.set_policy(Policy.model_validate(
                {"rate_limits": {"default": {"max": 1_000_000, "per": "1h"}}}),
                as_user="alice")
            driver = ScenarioDriver(runtime, "quiet-day", seed=1)
            driver.step(60)
            started: list[float] = []
            executor = EstateExecutor(driver.player)
            real_execute = executor.execute

            def timed(step: Any) -> Any:
                started.append(time.perf_counter())
                return real_execute(step)

            executor.execute = timed  # type: ignore[method-assign]
            service.engine.executors["estate"] = executor
            latencies: list[float] = []
            for i in range(count):
                rec_id = service.engine.propose(
                    "toggle-feature-flag",
                    {"service": "cart", "flag": "bench", "enabled": i % 2 == 0},
                    requester="agent:recommender", confidence=0.9)
                rec = service.engine.recommendation(rec_id)
                assert rec is not None
                t0 = time.perf_counter()
                service.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
                latencies.append((started[-1] - t0) * 1000)
            floor: list[float] = []
            with runtime.db.engine.connect() as conn:
                conn.execute(text("CREATE TABLE floor (id INTEGER PRIMARY KEY, v TEXT)"))
                conn.commit()
                for i in range(count):
                    t0 = time.perf_counter()
                    conn.execute(text("INSERT INTO floor (v) VALUES (:v)"), {"v": str(i)})
                    conn.commit()
                    floor.append((time.perf_counter() - t0) * 1000)
            executions = len(service.engine.executions())
        finally:
            runtime.close()
    return {"approvals": count, "executions": executions,
            "latency_ms": {"p50": round(statistics.median(latencies), 2),
                           "p95": round(_percentile(latencies, 0.95), 2),
                           "max": round(max(latencies), 2)},
            "floor_one_commit_ms": {"p50": round(statistics.median(floor), 3),
                                    "p95": round(_percentile(floor, 0.95), 3)}}

"""Team mode: how late a console hears another's change, and how long the team is
without a leader when the leader dies, on a real throwaway PostgreSQL 15
(tests/pg_server.py, Debian package `postgresql`).

Sync latency: one console (this process) makes audited changes one after another; a
second console (its own process, engine and LISTEN connection) republishes each on its
bus. A sample is the wall time from the start of the change's unit of work at the first
to the RemoteChange at the second (same host, same clock); the SQLite figure (one file,
polled every 0.5 s) is beside it for scale. Takeover: a leader process and a follower
process; the leader is killed (SIGKILL) and the sample is the time until the follower's
`on_gained` runs (its leadership loop tries every second)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLES = 200
GAP_S = 0.02  # between changes: each sample is one change, not a burst
TAKEOVER_ROUNDS = 5


def _listener(url: str, ready: Any, out: Any, stop: Any) -> None:
    from console.events import RemoteChange
    from console.runtime import Runtime
    from console.team_sync import ChangeFeed, FeedListener

    runtime = Runtime(url)
    try:
        runtime.bus.subscribe(RemoteChange,
                              lambda e: out.put((e.operation, time.time())))
        listener = FeedListener(runtime.db, runtime.bus,
                                ChangeFeed.install(runtime.db).origin).start()
        while not listener.connected:
            time.sleep(0.01)
        ready.set()
        stop.wait(600)
        listener.stop()
    finally:
        runtime.close()


def _latencies(url: str, samples: int) -> dict[str, Any]:
    from console.runtime import Runtime

    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    writer = Runtime(url)
    child = ctx.Process(target=_listener, args=(url, ready, out, stop))
    child.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the listening console did not start")
        started: dict[str, float] = {}
        for i in range(samples):
            name = f"bench.sync.{i}"
            started[name] = time.time()
            writer.service.record(actor="agent:bench", action=name, target="bench")
            time.sleep(GAP_S)
        heard: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(heard) < samples and time.monotonic() < deadline:
            operation, at = out.get(timeout=30)
            heard[operation] = at
        if len(heard) < samples:
            raise RuntimeError(f"only {len(heard)} of {samples} changes were heard")
    finally:
        stop.set()
        child.join(60)
        if child.is_alive():
            child.kill()
        writer.close()
    ms = sorted((heard[name] - started[name]) * 1000 for name in started)
    return {"samples": samples, "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
            "max_ms": round(ms[-1], 2)}


def _member(url: str, name: str, events: Any, stop: Any) -> None:
    from console.leader import Leadership
    from console.storage.db import Database

    db = Database(url, migrate=False)
    leadership = Leadership(db, name, user=name,
                            on_gained=lambda: events.put((name, "gained", time.time())))
    leadership.start()
    leadership.ready.wait(30)
    events.put((name, "ready", time.time()))
    stop.wait(600)
    leadership.stop()
    db.dispose()


def _takeover(url: str, rounds: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    seconds: list[float] = []
    for n in range(rounds):
        # One stop event per process: an Event a killed process was waiting on can never
        # be set again (set() waits for every sleeper to wake).
        events, leader_stop, follower_stop = ctx.Queue(), ctx.Event(), ctx.Event()
        leader = ctx.Process(target=_member, args=(url, f"leader-{n}", events, leader_stop))
        leader.start()
        follower = None
        try:
            _expect(events, f"leader-{n}", "gained")
            follower = ctx.Process(target=_member,
                                   args=(url, f"follower-{n}", events, follower_stop))
            follower.start()
            _expect(events, f"follower-{n}", "ready")
            assert leader.pid is not None
            killed = time.time()
            os.kill(leader.pid, signal.SIGKILL)
            seconds.append(_expect(events, f"follower-{n}", "gained") - killed)
        finally:
            follower_stop.set()
            for proc in (leader, follower):
                if proc is not None:
                    if proc is leader and proc.is_alive():
                        proc.kill()  # it failed before it was killed: do not wait for it
                    proc.join(30)
                    if proc.is_alive():
                        proc.kill()
                        proc.join(10)
    return {"rounds": rounds, "median_s": round(statistics.median(seconds), 3),
            "max_s": round(max(seconds), 3), "all_s": [round(s, 3) for s in seconds]}


def _expect(events: Any, name: str, kind: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        who, what, at = events.get(timeout=timeout)
        if (who, what) == (name, kind):
            return float(at)
    raise RuntimeError(f"{name} never reported {kind}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from console.storage.db import Database
    from tests.pg_server import running_server  # from the source tree, as benchmarks run

    samples = int(getattr(args, "samples", SAMPLES) or SAMPLES)
    with running_server() as server:
        url = server.url(server.create_database("bench_sync"))
        Database(url).dispose()  # the schema, before the clock runs
        postgres = _latencies(url, samples)
        takeover = _takeover(url, TAKEOVER_ROUNDS)
    with tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as folder:
        sqlite = _latencies(f"sqlite:///{Path(folder) / 'team.db'}", max(20, samples // 5))
    return {
        "sync_p50_ms": postgres["p50_ms"],
        "sync_p95_ms": postgres["p95_ms"],
        "takeover_median_s": takeover["median_s"],
        "takeover_max_s": takeover["max_s"],
        "postgresql_sync": postgres,
        "sqlite_sync_polled": sqlite,
        "takeover": takeover,
        "store": "postgresql 15 (fsync off), LISTEN/NOTIFY + change_feed; leader by "
                 "pg_try_advisory_lock tried every 1 s",
    }

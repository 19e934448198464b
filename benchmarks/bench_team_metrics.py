"""Team mode: how late a following console's panes show the leader's metric samples, on a
real throwaway PostgreSQL 15 (tests/pg_server.py).

The leader (this process) offers a snapshot of a 16-service estate (13 metrics each)
every 0.25 s, as the estate's tick publishes them, to the `SampleRecorder` a leading
console runs (console/metric_samples.py). The follower is its own process with its own
engine and LISTEN connection, a Qt application on a qasync loop, its bus bound to it, and
the panes' models behind a `RemoteMetrics` as a following window has them (the services
table, the metric history the Metrics pane and the incident plot draw). A sample is the
wall time from the leader's offer to the moment the follower's services table has that
snapshot (same host, same clock). The Metrics pane and the incident plot then redraw on
their own cadence (at most every 1 s and 2 s while on screen), as they do at the leader.

`--cpu-load N` runs N busy processes meanwhile (the loaded figures beside the quiet)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

SNAPSHOTS = 120
TICK_S = 0.25
SERVICES = 16
METRICS = ("request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms", "cpu",
           "memory", "disk", "queue_depth", "saturation", "instances_ready", "pool_usage",
           "cache_hit_ratio", "cert_expiry_hours")


def _follower(url: str, ready: Any, out: Any, stop: Any) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    from console.metric_samples import samples_between
    from console.runtime import Runtime
    from console.team_sync import ChangeFeed, FeedListener
    from widgets.bridge import BusBridge
    from widgets.metrics_pane import MetricHistory
    from widgets.ops import Worker
    from widgets.remote_metrics import RemoteMetrics
    from widgets.service_model import ServiceTableModel

    app = QApplication(sys.argv[:1])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    runtime = Runtime(url)
    runtime.bus.bind_loop(loop)
    bridge = BusBridge(runtime.bus)
    history = MetricHistory(bridge=bridge)
    services = ServiceTableModel(bridge=bridge)
    db = runtime.db
    remote = RemoteMetrics(bridge=bridge, worker=Worker(offload=True), history=history,
                           read_range=lambda low, high: samples_between(db, low, high))
    shown: set[float] = set()

    def on_updated() -> None:
        t, _e, _p = history.series("svc-00")
        now = time.time()
        for at in t[-8:]:
            if at not in shown and services.rowCount():
                shown.add(float(at))
                out.put((float(at), now))

    services.updated.connect(on_updated)
    listener = FeedListener(db, runtime.bus, ChangeFeed.install(db).origin).start()

    async def main() -> None:
        while not listener.connected:
            await asyncio.sleep(0.01)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)

    try:
        with loop:
            loop.run_until_complete(main())
    finally:
        listener.stop()
        bridge.close()
        remote.deleteLater()
        runtime.close()


def _snapshot(n: int) -> dict[str, dict[str, float]]:
    return {f"svc-{s:02d}": {m: float((n * 7 + s * 3 + i) % 97) / 97.0
                             for i, m in enumerate(METRICS)} for s in range(SERVICES)}


def _latencies(url: str, snapshots: int) -> dict[str, Any]:
    from console.events import EstateSnapshot
    from console.metric_samples import SampleRecorder
    from console.runtime import Runtime

    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    leader = Runtime(url)
    recorder = SampleRecorder(leader.db).start()
    child = ctx.Process(target=_follower, args=(url, ready, out, stop))
    child.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the following console did not start")
        offered: dict[float, float] = {}
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        for n in range(snapshots):
            at = start + timedelta(seconds=15 * n)
            offered[at.timestamp()] = time.time()
            recorder.offer(EstateSnapshot(at, _snapshot(n)))
            time.sleep(TICK_S)
        shown: dict[float, float] = {}
        deadline = time.monotonic() + 30
        while len(shown) < snapshots and time.monotonic() < deadline:
            at_ts, when = out.get(timeout=30)
            shown[at_ts] = when
        if len(shown) < snapshots:
            raise RuntimeError(f"only {len(shown)} of {snapshots} snapshots were shown")
    finally:
        recorder.stop()
        stop.set()
        child.join(60)
        if child.is_alive():
            child.kill()
        leader.close()
    ms = sorted((shown[at] - offered[at]) * 1000 for at in offered)
    return {"snapshots": snapshots, "rows_per_snapshot": SERVICES,
            "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1),
            "batches": recorder.batches}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from console.storage.db import Database
    from tests.pg_server import running_server  # from the source tree, as benchmarks run

    load_n = int(getattr(args, "cpu_load", 0) or 0)
    results: dict[str, Any] = {}
    with running_server() as server:
        url = server.url(server.create_database("bench_metrics"))
        Database(url).dispose()  # the schema, before the clock runs
        quiet = _latencies(url, SNAPSHOTS)
        results.update({"pane_p50_ms": quiet["p50_ms"], "pane_p95_ms": quiet["p95_ms"],
                        "floor_ms": 1000.0, "quiet": quiet})
        if load_n:
            load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(load_n)]
            try:
                loaded = _latencies(url, SNAPSHOTS)
            finally:
                for busy in load:
                    busy.kill()
                    busy.wait()
            results.update({"loaded_pane_p50_ms": loaded["p50_ms"],
                            "loaded_pane_p95_ms": loaded["p95_ms"],
                            "loaded": {**loaded, "cpu_load_processes": load_n,
                                       "cpus": os.cpu_count()}})
    results["store"] = ("postgresql 15 (fsync off): metric_samples written in batches by "
                        "the leader, named by change_feed rows, LISTEN/NOTIFY")
    return results

"""`python -m benchmarks gui`: the window as a client of its engine process (the default
arrangement, console/engine_process.py), measured beside the in-process one.

1. **Loop lag with the engine in its own process.** A fresh child builds the window as
   `console.app.main` does for a client: a `ClientRuntime`, a team seat that never leads,
   the panes over no estate, the process tuned as `watchfloor` tunes it. The probe
   (`bench_gui.PROBE_MS`) first runs `IDLE_SECONDS` with nothing playing (the idle
   window), then an `EngineKeeper` starts the real engine (`python -m console node
   --while-windows`) playing `storm` at `LAG_SPEED` on the same SQLite file, and the
   probe runs until the window has received `LAG_ALERTS` alerts through the change feed
   (or `LAG_WALL_LIMIT_S` passes). The engine's start is inside the window.
2. **Time to usable panes** of `console.app.run_gui` with an engine (`CLIENT_CHILD`):
   the engine process starts beside the window on the same machine, so it competes for
   the same cores while the panes are laid out. After each start the engine it left is
   stopped (SIGTERM) before the next, so starts never overlap.
3. **Resident memory** of the client window with the 100,000-event timeline:
   `bench_gui._rss_child` with a `ClientRuntime` and no estate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

USER = "bench"
ENGINE_GONE_S = 30.0


@contextlib.contextmanager
def busy(processes: int) -> Iterator[None]:
    """`processes` competing busy loops (a two-core machine under load) meanwhile."""
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(processes)]
    try:
        yield
    finally:
        for child in load:
            child.kill()
            child.wait()


def stop_engines(db_url: str) -> int:
    """SIGTERM to every engine that leads or follows `db_url` from this machine, and
    wait until they are gone; how many there were."""
    from console.leader import team_members
    from console.storage.db import Database

    db = Database(db_url)
    try:
        pids = [m.pid for m in team_members(db) if m.kind == "engine"]
    finally:
        db.dispose()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + ENGINE_GONE_S
    for pid in pids:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    return len(pids)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


CLIENT_CHILD_MAIN = r'''
from console.engine_process import EngineOptions
sys.exit(console_app.run_gui(sys.argv[1], "bad-deploy", 1.0, on_window=on_window,
                             on_ready=on_ready,
                             engine=EngineOptions(scenario="bad-deploy", speed=1.0)))
'''


def client_child(console_child: str) -> str:
    """The first-paint child of bench_gui, run with an engine process."""
    head, _, _ = console_child.rpartition("sys.exit(console_app.run_gui(")
    return head + CLIENT_CHILD_MAIN


# --- 1. loop lag, engine in its own process ----------------------------------------------


def lag_child(folder: Path) -> dict[str, Any]:
    from benchmarks.bench_gui import _lag_child

    return _lag_child(folder, _lag_main)


async def _lag_main(folder: Path, settings: Any) -> dict[str, Any]:
    import asyncio
    from datetime import UTC, datetime

    from benchmarks.bench_gui import (
        IDLE_SECONDS,
        LAG_ALERTS,
        LAG_SCENARIO,
        LAG_SPEED,
        LAG_WALL_LIMIT_S,
        _lag_figures,
        _probe,
    )
    from console.app import build_window
    from console.client_runtime import ClientRuntime
    from console.clock import SimClock
    from console.engine_process import EngineKeeper, EngineOptions
    from console.team_seat import TeamSeat
    from widgets.process import settle_garbage

    url = f"sqlite:///{folder / 'lag.db'}"
    runtime = ClientRuntime(url, clock=SimClock(datetime.now(UTC).replace(microsecond=0)))
    runtime.loop = asyncio.get_running_loop()
    runtime.bus.bind_loop(runtime.loop)
    runtime.service.bootstrap_admin(USER)

    async def never() -> None:
        return None

    seat = TeamSeat(runtime.db, runtime.bus, user=USER, lead=never, follow=lambda: None,
                    clock=runtime.clock, kind="window", candidate=False)
    window = None
    keeper: EngineKeeper | None = None
    tasks: list[asyncio.Task[Any]] = []
    try:
        await seat.join()
        window = build_window(runtime, None, USER, settings=settings,
                              scenario_name=LAG_SCENARIO)
        settle_garbage()
        window.show()
        received = [0]
        enough = asyncio.Event()

        def count(event: Any) -> None:
            received[0] += len(event.signals)
            if received[0] >= LAG_ALERTS:
                enough.set()

        window.bridge.signalsReceived.connect(count)
        idle: list[float] = []
        tasks.append(asyncio.create_task(_probe(idle), name="idle probe"))
        await asyncio.sleep(IDLE_SECONDS)
        tasks.pop().cancel()
        lags: list[float] = []
        tasks.append(asyncio.create_task(_probe(lags), name="storm probe"))
        start = time.perf_counter()
        keeper = EngineKeeper(runtime.db, EngineOptions(scenario=LAG_SCENARIO,
                                                        speed=LAG_SPEED),
                              say=lambda _state: None)
        tasks.append(asyncio.create_task(keeper.keep(), name="engine"))
        led: list[float] = []

        async def leading() -> None:
            while keeper.state is None or keeper.state.state != "running":
                await asyncio.sleep(0.05)
            led.append(time.perf_counter() - start)

        tasks.append(asyncio.create_task(leading(), name="engine leads"))
        waiting = asyncio.create_task(enough.wait(), name="enough alerts")
        tasks.append(waiting)
        await asyncio.wait({waiting}, timeout=LAG_WALL_LIMIT_S)
        wall = time.perf_counter() - start
        return {"storm": _lag_figures(lags), "idle_window": _lag_figures(idle),
                "alerts_received": received[0], "wall_seconds": round(wall, 1),
                "engine_leading_after_s": round(led[0], 2) if led else None,
                "engine_restarts": max(0, keeper.started - 1), "clock_speed": LAG_SPEED,
                "incidents_shown": window.incidents_pane.model.rowCount()}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if keeper is not None:
            keeper.stop()
            if keeper.process is not None and keeper.process.poll() is None:
                keeper.process.terminate()
                await asyncio.to_thread(keeper.process.wait, ENGINE_GONE_S)
        await seat.leave()
        await runtime.bus.drain()
        if window is not None:
            window.close()
        runtime.close()

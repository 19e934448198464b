"""The console's own responsiveness: event-loop lag under the alert storm, time to the
first painted window, and resident memory with a 100,000-event incident timeline.

Each figure comes from a fresh Python process (Qt state and resident memory do not mix
between them), on the offscreen platform, over a private temporary SQLite file, a
throw-away QSettings file and private user folders (no language model is configured).
Each part measures the default arrangement, the window a client of its engine process
(benchmarks/bench_gui_engine.py), beside the in-process one described below; the
targets apply to the default. With `--cpu-load N`, N busy processes (`while True:
pass`) compete for the CPU during every part: a two-core machine under load.

1. **Loop lag under the storm.** The window is built as `console.app.main` builds it: a
   qasync loop, the bus bound to it, the process tuned as `watchfloor` tunes it
   (`widgets/process.py`: garbage collection on the GUI thread, the threads behind the
   window at a lower priority, a short GIL switch interval, start-up's garbage collected
   and frozen once the panes are in), the `storm` scenario played
   by a `ScenarioDriver` with the agent team through `run_live`, its clock at
   `LAG_SPEED` simulated seconds per wall second (the estate's work bounds what it
   reaches: about 100), until the window has received `LAG_ALERTS` alerts, about a
   minute of wall time (or the scenario ends, or `LAG_WALL_LIMIT_S` passes). A probe
   task sleeps `PROBE_MS` over and over on the same loop; each sample is the actual
   wake-up minus the scheduled one. The same probe first runs `IDLE_SECONDS` with the
   window open and the scenario not yet started: that is the floor (the loop's own timer
   resolution).
   Reported: p50, p99, max, samples, the alerts the window received, wall seconds.
2. **Time to first window.** Wall time from spawning `python -c` to the child saying
   that the main window has been painted: the child runs what `watchfloor` runs
   (`console.app.run_gui`: the QApplication, the qasync Runner around `console.app.main`,
   the default scenario on the embedded estate), and when the window's first paint event
   has been handled (a zero-delay timer queued from that paint event), writes one line.
   The window is shown first, saying what it opens (the database, the scenario, the
   panes), so its first paint is that; `panes_ready_s` is the same wall time to the
   first paint after the panes are in (then the child exits), on a new database (made
   and migrated by that start, as a first run does), and `panes_ready_again_s` the same
   on a second start over that database. The bare floor is the same child with only a
   QApplication and an empty QMainWindow. `REPEATS` of each, interleaved; the medians
   are compared. The console's child also says where its own time went to the first
   paint (imports, start-up to shown, shown to painted). `panes_ready_cpu_s` is the CPU
   time the start used to that paint (all its threads), and `load_average_1min` the
   machine's load before and after: the wall times depend on both.
3. **Resident memory with 100,000 timeline events.** The console's window (headless: the
   panes' reads run inline, as in the tests; the pane's 250 ms debounce is waited out
   after each batch) over an incident whose 100,000 timeline
   notes are stored through `WatchfloorService.save_incidents` in batches and announced
   with `announce_incidents`, as the correlator does; the incidents pane follows the new
   incident and merges each read into its `TimelineModel`, as it does live. VmRSS is read
   before the first note and after the timeline holds them all.

Timings are reported, never asserted; "met" says whether each figure is within its
target.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USER = "bench"
LAG_SCENARIO = "storm"
LAG_ALERTS = 10_000  # the storm is measured until the window has received this many
LAG_SPEED = 300.0  # simulated seconds per wall second asked of the clock
LAG_WALL_LIMIT_S = 90.0  # the storm is cut off here if it plays slower than that
PROBE_MS = 10.0
IDLE_SECONDS = 3.0
REPEATS = 5
TIMELINE_EVENTS = 100_000
NOTE_BATCH = 25_000
CHILD_TIMEOUT_S = 240.0
# The window's figures in the default arrangement (its engine in a process of its own);
# the in-process arrangement's are reported beside them, without a target.
TARGETS = {"lag_p99_ms": 15.0, "lag_max_ms": 50.0, "first_window_s": 1.2,
           "first_window_vs_bare": 2.0, "panes_ready_s": 3.0, "window_rss_mib": 250.0}
PARTS = ("lag", "first", "rss")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _child_env(folder: Path) -> dict[str, str]:
    """Offscreen, private user folders, no language model, no operator database."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WATCHFLOOR_") and k != "QT_QPA_PLATFORM"}
    env.update(QT_QPA_PLATFORM="offscreen", WATCHFLOOR_USER=USER,
               WATCHFLOOR_DATA_DIR=str(folder / "data"),
               WATCHFLOOR_CONFIG_DIR=str(folder / "config"),
               XDG_CONFIG_HOME=str(folder / "xdg"))
    return env


def _last_json(out: str) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no figures from the child:\n{out[-2000:]}")


def _run_child(mode: str, folder: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_gui", mode, str(folder)],
                          cwd=ROOT, env=_child_env(folder), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return _last_json(done.stdout)


# --- 1. loop lag under the storm ---------------------------------------------------------


def _lag_child(folder: Path, main: Any = None) -> dict[str, Any]:
    """A window's loop, as `watchfloor` starts it, running `main(folder, settings)` (the
    in-process storm by default; bench_gui_engine passes the engine-process one)."""
    import asyncio

    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from widgets.process import favour_the_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    app.setQuitOnLastWindowClosed(False)
    favour_the_window(app)  # as `watchfloor` does (console/app.py run_gui)
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run((main or _lag_main)(folder, QSettings(
            str(folder / "lag.ini"), QSettings.Format.IniFormat)))


async def _probe(lags: list[float]) -> None:
    import asyncio

    delay = PROBE_MS / 1000
    while True:
        scheduled = time.perf_counter() + delay
        await asyncio.sleep(delay)
        lags.append((time.perf_counter() - scheduled) * 1000)


def _lag_figures(lags: list[float]) -> dict[str, Any]:
    return {"p50": round(statistics.median(lags), 2), "p99": round(_percentile(lags, 0.99), 2),
            "max": round(max(lags), 2), "samples": len(lags)}


async def _lag_main(folder: Path, settings: Any) -> dict[str, Any]:
    import asyncio
    from datetime import UTC, datetime

    from console.app import build_window
    from console.clock import SimClock
    from console.runtime import Runtime, ScenarioDriver
    from widgets.process import settle_garbage

    runtime = Runtime(f"sqlite:///{folder / 'lag.db'}",
                      clock=SimClock(datetime.now(UTC).replace(microsecond=0)))
    runtime.loop = asyncio.get_running_loop()
    runtime.bus.bind_loop(runtime.loop)
    window = None
    tasks: list[asyncio.Task[None]] = []
    try:
        runtime.clock.speed = LAG_SPEED
        runtime.service.bootstrap_admin(USER)
        driver = ScenarioDriver(runtime, LAG_SCENARIO, agents=True)
        await asyncio.to_thread(runtime.service.engine.reconcile)
        window = build_window(runtime, driver, USER, settings=settings)
        settle_garbage()  # as console.app.main does once the panes are in
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
        play = asyncio.create_task(driver.run_live(), name="storm")
        waiting = asyncio.create_task(enough.wait(), name="enough alerts")
        tasks += [play, waiting]
        await asyncio.wait({play, waiting}, timeout=LAG_WALL_LIMIT_S,
                           return_when=asyncio.FIRST_COMPLETED)
        wall = time.perf_counter() - start
        if play.done() and play.exception() is not None:
            raise RuntimeError("the scenario stopped") from play.exception()
        return {"storm": _lag_figures(lags), "idle_floor": _lag_figures(idle),
                "alerts_received": received[0], "signals_published": driver.tally.signals,
                "wall_seconds": round(wall, 1), "sim_seconds": round(driver.elapsed),
                "scenario_finished": driver.finished, "clock_speed": LAG_SPEED,
                "achieved_speed": round(driver.elapsed / wall, 1),
                "incidents_shown": window.incidents_pane.model.rowCount()}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.agents.aclose()
        await runtime.bus.drain()
        if window is not None:
            window.close()
        runtime.close()


# --- 2. time to first window --------------------------------------------------------------

_PAINTED = r'''
import time
began = time.perf_counter()
import os, sys
from PySide6.QtCore import QEvent, QObject, QTimer

class Painted(QObject):
    # Writes `word` and what it knows once the watched window's next paint event has
    # been handled; with `last`, then exits.
    def __init__(self, window, word, figures, last):
        super().__init__()
        self.word, self.figures, self.last, self.seen = word, figures, last, False
        self.shown = time.perf_counter()
        window.installEventFilter(self)
        window.update()
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not self.seen:
            self.seen = True
            QTimer.singleShot(0, self.done)
        return False
    def done(self):
        now = time.perf_counter()
        self.figures.update(shown_to_painted_s=round(now - self.shown, 4),
                            in_process_s=round(now - began, 4),
                            cpu_s=round(time.process_time(), 4))
        sys.stdout.write(self.word + " " + repr(self.figures) + "\n")
        sys.stdout.flush()
        if self.last:
            os._exit(0)
'''

BARE_CHILD = _PAINTED + r'''
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.resize(1600, 1000)
window.show()
painted = Painted(window, "PAINTED", {}, True)
sys.exit(app.exec())
'''

CONSOLE_CHILD = _PAINTED + r'''
from PySide6.QtCore import QSettings
from console import app as console_app
imported = time.perf_counter()
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[2])
keep = []

def on_window(window):
    keep.append(Painted(window, "PAINTED", {"imports_s": round(imported - began, 4),
                                            "start_to_shown_s": round(time.perf_counter()
                                                                      - imported, 4)}, False))

def on_ready(window):
    keep.append(Painted(window, "READY", {}, True))

sys.exit(console_app.run_gui(sys.argv[1], "bad-deploy", 1.0, on_window=on_window,
                             on_ready=on_ready))
'''


def _first_paint(code: str, folder: Path, *extra: str,
                 words: tuple[str, ...] = ("PAINTED",)) -> dict[str, tuple[float, dict[str, Any]]]:
    """Seconds from spawning the child to each of its `words` lines, and what it said."""
    errors = folder / "stderr.txt"
    said: dict[str, tuple[float, dict[str, Any]]] = {}
    with errors.open("w") as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", code, *extra], cwd=ROOT,
                                 env=_child_env(folder), stdout=subprocess.PIPE, stderr=err,
                                 text=True)
    watchdog = threading.Timer(CHILD_TIMEOUT_S, child.kill)
    watchdog.start()
    assert child.stdout is not None
    try:
        for line in child.stdout:
            word, _, rest = line.partition(" ")
            if word in words:
                said[word] = (time.perf_counter() - start, dict(ast.literal_eval(rest)))
                if len(said) == len(words):
                    return said
        child.wait()
        raise RuntimeError(f"the child never said {words} ({child.returncode}):\n"
                           f"{errors.read_text()[-3000:]}")
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        child.communicate()


def _first_window(folder: Path, cpu_load: int = 0) -> dict[str, Any]:
    """The starts, the default (a client of its engine process) first; `cpu_load` busy
    processes run meanwhile (started by `run`)."""
    from benchmarks.bench_gui_engine import client_child, stop_engines

    console_s: list[float] = []
    ready_s: list[float] = []
    ready_cpu_s: list[float] = []
    again_s: list[float] = []
    in_process_s: list[float] = []
    bare_s: list[float] = []
    parts: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    client = client_child(CONSOLE_CHILD)
    for n in range(REPEATS):
        run_dir = folder / f"first-{n}"
        run_dir.mkdir()
        db = f"sqlite:///{run_dir / 'first.db'}"
        said = _first_paint(client, run_dir, db, str(run_dir / "qs"),
                            words=("PAINTED", "READY"))
        stop_engines(db)  # the next start is alone with the load again
        console_s.append(said["PAINTED"][0])
        ready_s.append(said["READY"][0])
        ready_cpu_s.append(said["READY"][1]["cpu_s"])
        parts.append(said["PAINTED"][1])
        again_s.append(_first_paint(client, run_dir, db, str(run_dir / "qs"),
                                    words=("PAINTED", "READY"))["READY"][0])
        stop_engines(db)
        own = run_dir / "in-process"
        own.mkdir()
        in_process_s.append(_first_paint(CONSOLE_CHILD, own, f"sqlite:///{own / 'first.db'}",
                                         str(own / "qs"), words=("PAINTED", "READY"))
                            ["READY"][0])
        bare_s.append(_first_paint(BARE_CHILD, run_dir)["PAINTED"][0])
    console, bare = statistics.median(console_s), statistics.median(bare_s)
    return {"console_s": round(console, 3), "bare_qmainwindow_s": round(bare, 3),
            "ratio": round(console / bare, 2), "repeats": REPEATS,
            "cpu_load_processes": cpu_load, "cpus": os.cpu_count(),
            "panes_ready_s": round(statistics.median(ready_s), 3),
            "panes_ready_again_s": round(statistics.median(again_s), 3),
            "panes_ready_in_process_s": round(statistics.median(in_process_s), 3),
            # The start's own CPU time (every thread of the child) to that paint: what
            # the panes cost whatever else the machine runs; the wall time above is
            # this plus the waits for a core.
            "panes_ready_cpu_s": round(statistics.median(ready_cpu_s), 3),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "console_runs_s": [round(s, 3) for s in console_s],
            "panes_ready_runs_s": [round(s, 3) for s in ready_s],
            "panes_ready_again_runs_s": [round(s, 3) for s in again_s],
            "panes_ready_in_process_runs_s": [round(s, 3) for s in in_process_s],
            "bare_runs_s": [round(s, 3) for s in bare_s],
            "console_parts_median_s": {key: round(statistics.median(p[key] for p in parts), 3)
                                       for key in parts[0]}}


# --- 3. resident memory with 100,000 timeline events ---------------------------------------


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # the peak, where the current figure is not available

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_child(folder: Path, client: bool = False) -> dict[str, Any]:
    """With `client`, the window of the default arrangement: no estate, no agents."""
    from datetime import timedelta

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from console.app import build_window
    from console.domain import IncidentUpdate, Severity, TimelineNote
    from console.runtime import Runtime, ScenarioDriver
    from widgets.incidents_pane import REFRESH_MS
    from widgets.snapshot import settle

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    runtime: Any
    if client:
        from console.client_runtime import ClientRuntime
        from console.clock import SimClock
        from console.runtime import SCENARIO_EPOCH

        runtime = ClientRuntime(f"sqlite:///{folder / 'rss.db'}", clock=SimClock(SCENARIO_EPOCH))
    else:
        runtime = Runtime(f"sqlite:///{folder / 'rss.db'}")
    try:
        runtime.service.bootstrap_admin(USER)
        driver = None if client else ScenarioDriver(runtime, "bad-deploy", agents=False)
        settings = QSettings(str(folder / "rss.ini"), QSettings.Format.IniFormat)
        window = build_window(runtime, driver, USER, settings=settings)
        window.resize(1600, 1000)
        window.show()
        settle(app, 0.3)
        before = _rss_mib()
        pane = window.incidents_pane
        opened = runtime.clock.now()
        incident_id: int | None = None
        fill_start = time.perf_counter()
        for first in range(0, TIMELINE_EVENTS, NOTE_BATCH):
            notes = tuple(
                TimelineNote(opened + timedelta(milliseconds=10 * n), "note",
                             f"grouped checkout-latency-{n % 97} on checkout into this "
                             f"incident (event {n})", f"fp-{n:06d}",
                             {"agent": "correlator", "reason": "same service, within 5 min"})
                for n in range(first, min(first + NOTE_BATCH, TIMELINE_EVENTS)))
            saved = runtime.service.save_incidents([IncidentUpdate(
                key=1, id=incident_id, title="checkout latency", severity=Severity.CRITICAL,
                state="open", services=("checkout",), opened_at=opened, resolved_at=None,
                notes=notes)], actor="agent:correlator")
            incident_id = saved[0].id
            runtime.service.announce_incidents(saved)
            settle(app, REFRESH_MS / 1000 + 0.05)  # the pane's debounced read and merge
        fill_s = time.perf_counter() - fill_start
        settle(app, 0.3)
        after = _rss_mib()
        rows = pane.timeline.rowCount()
        shown = pane.timeline_proxy.rowCount()
        window.close()
        return {"events": TIMELINE_EVENTS, "timeline_rows": rows, "proxy_rows": shown,
                "rss_before_mib": round(before, 1), "rss_after_mib": round(after, 1),
                "rss_added_mib": round(after - before, 1), "fill_seconds": round(fill_s, 2)}
    finally:
        runtime.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The figures' sizes are this module's constants; `--cpu-load N` runs N busy
    processes during every part, `--part NAME` (lag, first, rss) measures that one only.
    Each figure with a target is in `figures` as {value, target, met}."""
    from benchmarks.bench_gui_engine import busy

    started = time.perf_counter()
    part = getattr(args, "part", None)
    cpu_load = getattr(args, "cpu_load", 0)
    wanted = PARTS if part is None else (part,)
    out: dict[str, Any] = {"cpu_load_processes": cpu_load, "cpus": os.cpu_count()}
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="watchfloor-bench-gui-") as tmp, busy(cpu_load):
        folder = Path(tmp)
        for name in wanted:
            (folder / name).mkdir()
        if "lag" in wanted:
            (folder / "lag-engine").mkdir()
            out["loop_lag_ms"] = {"engine_process": _run_child("lag-engine",
                                                               folder / "lag-engine"),
                                  "in_process": _run_child("lag", folder / "lag")}
            storm = out["loop_lag_ms"]["engine_process"]["storm"]
            figures.update(lag_p99_ms=storm["p99"], lag_max_ms=storm["max"])
        if "first" in wanted:
            out["first_window"] = first = _first_window(folder / "first", cpu_load)
            figures.update(first_window_s=first["console_s"],
                           first_window_vs_bare=first["ratio"],
                           panes_ready_s=first["panes_ready_s"])
        if "rss" in wanted:
            (folder / "rss-client").mkdir()
            out["timeline_rss"] = {"client_window": _run_child("rss-client",
                                                               folder / "rss-client"),
                                   "in_process": _run_child("rss", folder / "rss")}
            figures["window_rss_mib"] = out["timeline_rss"]["client_window"]["rss_after_mib"]
    return {**out, "figures": {key: {"value": figures[key], "target": target,
                                     "met": figures[key] <= target}
                               for key, target in TARGETS.items() if key in figures},
            "targets": {k: v for k, v in TARGETS.items() if k in figures},
            "met": {key: figures[key] <= target for key, target in TARGETS.items()
                    if key in figures},
            "wall_seconds": round(time.perf_counter() - started, 1)}


def _child_main(argv: list[str]) -> int:
    mode, folder = argv[0], Path(argv[1])
    from benchmarks import bench_gui_engine

    figures = {"lag": _lag_child, "rss": _rss_child, "lag-engine": bench_gui_engine.lag_child,
               "rss-client": lambda f: _rss_child(f, client=True)}[mode](folder)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))

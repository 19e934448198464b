"""The console's process favours its window (widgets/process.py): the threads behind it,
started before or after, run at a lower OS priority than the GUI thread, the GIL switch
interval is short, and cyclic garbage collection happens on the GUI thread only. Run in a
child process: the priorities would otherwise stay on the test session's own threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import gc, json, os, sys, threading, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from widgets.process import BACKGROUND_NICE, SWITCH_INTERVAL_S, favour_the_window

    app = QApplication(sys.argv[:1])
    release = threading.Event()
    tids = {}

    def work(name):
        tids[name] = threading.get_native_id()
        release.wait(10)

    before = threading.Thread(target=work, args=("before",))
    before.start()
    favour_the_window(app)
    after = threading.Thread(target=work, args=("after",))
    QTimer.singleShot(50, after.start)
    QTimer.singleShot(1500, app.quit)
    app.exec()
    nice = {name: os.getpriority(os.PRIO_PROCESS, tid) for name, tid in tids.items()}
    nice["gui"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    release.set()
    print(json.dumps({"nice": nice, "expected": BACKGROUND_NICE, "gc": gc.isenabled(),
                      "switch": sys.getswitchinterval(), "wanted": SWITCH_INTERVAL_S}))
""")


def run_child(code: str) -> dict[str, Any]:
    """Run `code` in a fresh Python and return the JSON object it printed last."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                               "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_threads_behind_the_window_yield_to_it() -> None:
    report = run_child(CHILD)
    start = os.getpriority(os.PRIO_PROCESS, 0)  # the child began at this process's nice
    # Only Linux gives each thread a priority of its own; elsewhere nothing is changed.
    lowered = max(start, report["expected"]) if sys.platform.startswith("linux") else start
    assert report["nice"]["gui"] == start
    assert report["nice"]["before"] == lowered
    assert report["nice"]["after"] == lowered
    assert report["gc"] is False  # collected on the GUI thread instead
    assert report["switch"] == pytest.approx(report["wanted"])


SETTLE_CHILD = textwrap.dedent("""
    import gc, json, sys
    from PySide6.QtWidgets import QApplication
    from widgets.process import favour_the_window, settle_garbage

    app = QApplication(sys.argv[:1])
    settle_garbage()  # no GUI-thread collector yet: Python's own collector is left alone
    untouched = gc.get_freeze_count()
    favour_the_window(app)

    class Cycle:
        def __init__(self):
            self.me = self

    for _ in range(5000):
        Cycle()  # what start-up leaves: garbage only a collection frees
    pending = sum(1 for o in gc.get_objects() if type(o) is Cycle)
    settle_garbage()
    left = sum(1 for o in gc.get_objects() if type(o) is Cycle)
    print(json.dumps({"untouched": untouched, "pending": pending, "left": left,
                      "frozen": gc.get_freeze_count()}))
""")


def test_settling_collects_what_start_up_left_and_freezes_what_lives() -> None:
    report = run_child(SETTLE_CHILD)
    assert report["untouched"] == 0
    assert report["pending"] == 5000
    assert report["left"] == 0
    assert report["frozen"] > 1000  # the modules, the app: out of later collections

"""While the console starts, the thread that opens the database and imports the core is
what the window waits for: it keeps its priority until the panes are in, and only then
do the threads behind the window give way to it (widgets/process.py). At niceness 19 on
a machine busy with other work that thread got almost no CPU, and the start took 7-15 s."""

from __future__ import annotations

import os
import threading
from typing import Any

import shiboken6
from PySide6.QtCore import QObject

from widgets.process import BACKGROUND_NICE, BackgroundPriority, favour_the_window_from_now


def _worker() -> tuple[threading.Thread, threading.Event, list[int]]:
    started, stop, tid = threading.Event(), threading.Event(), []

    def run() -> None:
        tid.append(threading.get_native_id())
        started.set()
        stop.wait(30)

    thread = threading.Thread(target=run, name="start work")
    thread.start()
    started.wait(5)
    return thread, stop, tid


def test_the_start_keeps_its_priority_until_the_panes_are_in(qapp: Any) -> None:
    owner = QObject()
    thread, stop, tid = _worker()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid[0])
        priority = BackgroundPriority(owner, held=True)
        assert os.getpriority(os.PRIO_PROCESS, tid[0]) == before
        favour_the_window_from_now(owner)  # the panes are in
        assert not priority.held
        assert os.getpriority(os.PRIO_PROCESS, tid[0]) == BACKGROUND_NICE
        # Without holding (as before), the sweep lowers it at once.
        other, other_stop, other_tid = _worker()
        try:
            BackgroundPriority(QObject(owner))
            assert os.getpriority(os.PRIO_PROCESS, other_tid[0]) == BACKGROUND_NICE
        finally:
            other_stop.set()
            other.join()
    finally:
        stop.set()
        thread.join()
        shiboken6.delete(owner)  # its sweeps must not lower the later tests' threads

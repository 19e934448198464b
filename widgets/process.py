"""How the console's process keeps its window responsive while the work behind it runs.

The estate's simulation, the agents and the database work run on Python threads of the
same process as the window. Two things then stall the window, both measured with
`python -m benchmarks gui` (the 10,000-alert storm streaming into the open window):

- Painting. Qt paints a table by asking its Python model for every visible cell, and
  PySide lets go of the GIL around most calls into Qt (signal emits, anything that
  makes a new QModelIndex, QColor or QFont). Each way back into Python then waits for
  the GIL to be handed over by a busy thread: measured, 50-230 us per call, and a
  30-row timeline paint took 60 ms. So a paint is entered from Python and keeps the GIL
  to its end (the main window's `event` and the tables' `paintEvent` are Python frames;
  see `widgets/tables.py`), a model answers all of a cell's roles in one `multiData`
  call (`widgets/models.py`), the models' hot paths make no new Qt value objects, and
  bursts of rows go in as one insert. Every thread but the GUI's also runs at a lower
  OS priority (`BACKGROUND_NICE`), so the GUI thread gets a core the moment it wants
  the GIL, and the switch interval is shortened (a thread that wants the GIL asks the
  holder for it after this long). The work behind the window still gets every cycle
  the window does not use.
- Garbage collection on the wrong thread. A collection started by an agent or database
  thread frees Qt objects there, which breaks Qt's thread rules (at best "Timers cannot
  be stopped from another thread", at worst a crash). So automatic collection is off and
  the GUI thread collects once a second as far as the thresholds say (as Anki does).
"""

from __future__ import annotations

import gc
import os
import sys
import threading

from PySide6.QtCore import QObject, QTimer

from console.switching import SWITCH_INTERVAL_S  # the node's too

BACKGROUND_NICE = 19  # the threads behind the window (Linux: niceness is per thread)
SWEEP_MS = 500  # how often new threads are found and lowered


class GuiThreadCollector(QObject):
    """Cyclic garbage collection on the GUI thread only (see the module's docstring)."""

    INTERVAL_MS = 1000
    active = False  # True once a collector runs in this process

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        gc.disable()
        GuiThreadCollector.active = True
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect)
        self._timer.start(self.INTERVAL_MS)

    def collect(self) -> None:
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return


class BackgroundPriority(QObject):
    """Every thread of this process but the GUI's at `BACKGROUND_NICE`, including threads
    started later (found every `SWEEP_MS`, from /proc: Python's own, qasync's and Qt's).
    Where threads have no priority of their own (not Linux) it does nothing.

    With `held`, nothing is lowered until `release()`: while the console starts, the
    window waits for the thread that opens the database and imports the core, and that
    thread at niceness 19 on a machine busy with other work got almost no CPU (a start
    of 7-15 s instead of a few). A lowered thread cannot be raised again without
    privileges, so the start holds the sweep instead of undoing it."""

    def __init__(self, parent: QObject, nice: int = BACKGROUND_NICE, *,
                 held: bool = False) -> None:
        super().__init__(parent)
        self.nice = nice
        self._gui = threading.get_native_id()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sweep)
        self.held = held
        if not held:
            self.release()

    def release(self) -> None:
        """Lower the threads behind the window from now on (once the panes are in)."""
        self.held = False
        if sys.platform.startswith("linux") and os.path.isdir("/proc/self/task") and \
                not self._timer.isActive():
            self._timer.start(SWEEP_MS)
            self.sweep()

    def sweep(self) -> None:
        try:
            tids = {int(name) for name in os.listdir("/proc/self/task")}
        except OSError:
            return
        for tid in tids - {self._gui}:
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < self.nice:
                    os.setpriority(os.PRIO_PROCESS, tid, self.nice)
            except OSError:  # it ended meanwhile
                continue


def settle_garbage() -> None:
    """Once the panes are in: collect what starting left behind and freeze what lives.

    Start-up leaves thousands of cyclic objects (the migrations' SQLAlchemy tables and
    metadata, import-time scaffolding) that only a full collection frees; left to the
    collector, that collection came during the first storm and held the window for
    about 0.3 s. Collected here instead, before anything plays; `gc.freeze()` then keeps
    every object alive now (the core, the models, the widgets) out of later
    collections, so they scan only what was made since. Does nothing where the GUI-thread
    collector is not running (tests that build windows keep Python's own collector)."""
    if not GuiThreadCollector.active:
        return
    gc.collect()
    gc.freeze()


def favour_the_window(app: QObject, *, starting: bool = False,
                      ) -> tuple[GuiThreadCollector, BackgroundPriority]:
    """Call once on the GUI thread when the application is made; both live as long as
    `app`. `starting`: the threads behind the window keep their priority until
    `favour_the_window_from_now(app)` (the start's work is what the window waits for)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return GuiThreadCollector(app), BackgroundPriority(app, held=starting)


def favour_the_window_from_now(app: QObject | None) -> None:
    """The panes are in: from now on the threads behind the window give way to it."""
    if app is not None:
        for priority in app.findChildren(BackgroundPriority):
            priority.release()

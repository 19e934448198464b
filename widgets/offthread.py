"""Run a read (a KPI report, a chain verification, an export) off the GUI thread.

The panes of this module's users read the database or hash thousands of records; done
on the GUI thread that freezes the console at the moment an operator needs it. A
`BackgroundJob` runs one callable at a time on a worker thread and hands the result
back through a Qt signal, which Qt delivers on the GUI thread (queued, because it is
emitted from another thread). Requests that arrive while a run is in flight are
coalesced into one more run afterwards, so a burst of bus events costs two runs, not
fifty. No asyncio is needed, so it works the same in the console (qasync) and in the
offline review window (a plain Qt loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class BackgroundJob(QObject):
    """One callable at a time on a worker thread.

    Emits ``finished(object)`` with the result, or ``failed(str)`` with the error, on
    the thread that owns this object (the GUI thread). ``running`` tells whether a run
    is in flight; `shutdown()` waits for it (call it before the owner goes away).
    """

    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._busy = False
        self._again: Callable[[], Any] | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        with self._lock:
            return self._busy

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run `fn` now, or once more after the run in flight (the latest `fn` wins)."""
        with self._lock:
            if self._closed:
                return
            if self._busy:
                self._again = fn
                return
            self._busy = True
        self._start(fn)

    def _start(self, fn: Callable[[], Any]) -> None:
        future = self._pool.submit(fn)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        # Runs on the worker thread: the signals are queued to the GUI thread.
        exc = future.exception()
        with self._lock:
            closed = self._closed
        if not closed:
            try:
                if exc is not None:
                    log.error("%s failed", self._name, exc_info=exc)
                    self.failed.emit(f"{type(exc).__name__}: {exc}")
                else:
                    self.finished.emit(future.result())
            except RuntimeError:  # the owner was deleted without shutdown(): drop it
                log.debug("%s: result dropped, its owner is gone", self._name)
        with self._lock:
            again, self._again = self._again, None
            self._busy = again is not None and not self._closed
        if self._busy and again is not None:
            self._start(again)

    def shutdown(self) -> None:
        """Drop any queued run and wait for the one in flight (idempotent)."""
        with self._lock:
            self._closed = True
            self._again = None
        self._pool.shutdown(wait=True)

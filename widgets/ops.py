"""How the panes call the core: every read and every operation goes through one `Worker`.

In the console the bus is bound to the qasync loop, so a facade call can run on a worker
thread (its events are handed back to the loop's thread by the bus) and the GUI thread
never waits on the database, a policy decision or an executor. Headless (tests,
snapshots) and on an in-memory SQLite database (one database per thread) the same call
runs inline, so a test sees its effect at once and in order.

Results come back on the GUI thread, to the `on_done` callback of the caller; a failure
goes to `on_error`, or else to ``failed(str)``, which the main window shows in the status
bar (STYLE.md 9: never lost). Refusals and denials are already audited and announced by
the core (``OperationDenied``); the pane only says what happened to its own button.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)
T = TypeVar("T")


def describe_error(exc: BaseException) -> str:
    """The operator-facing text of a failed call: the core's own reason where it has one."""
    return str(getattr(exc, "reason", "") or exc) or type(exc).__name__


class Worker(QObject):
    """Runs facade calls off the GUI thread when `offload`, inline otherwise.

    Emits ``failed(str)`` for a failure that no `on_error` handled, and
    ``busyChanged(bool)`` when calls start or all of them have ended.
    """

    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, *, offload: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.offload = offload
        self._pending: set[Future[Any] | asyncio.Future[Any]] = set()
        self._closed = False

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(self, name: str, fn: Callable[[], T], *,
               on_done: Callable[[T], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run `fn()`; `name` says what it was in a failure's message."""
        if self._closed:
            return
        loop = self._running_loop() if self.offload else None
        if loop is None:
            try:
                result = fn()
            except Exception as exc:
                self._fail(name, exc, on_error)
                return
            if on_done is not None:
                on_done(result)
            return
        future = loop.run_in_executor(None, fn)
        self._pending.add(future)
        if len(self._pending) == 1:
            self.busyChanged.emit(True)
        future.add_done_callback(lambda f: self._settle(name, f, on_done, on_error))

    def close(self) -> None:
        """Drop the results of calls still running (their panes are going away)."""
        self._closed = True

    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _settle(self, name: str, future: asyncio.Future[Any],
                on_done: Callable[[Any], None] | None,
                on_error: Callable[[BaseException], None] | None) -> None:
        self._pending.discard(future)
        if not self._pending:
            self.busyChanged.emit(False)
        if self._closed or future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._fail(name, exc, on_error)
        elif on_done is not None:
            on_done(future.result())

    def _fail(self, name: str, exc: BaseException,
              on_error: Callable[[BaseException], None] | None) -> None:
        if on_error is not None:
            on_error(exc)
            return
        log.error("%s failed", name, exc_info=exc)
        self.failed.emit(f"{name} failed: {describe_error(exc)}")

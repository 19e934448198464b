"""One long-lived MCP session per configured server, on an event loop of its own.

Starting a stdio server costs a process and its imports (seconds on a busy machine), and
the investigator asks again every time an incident changes: a session per lookup would
spend more time starting servers than reading them. So each server's session is opened
once, on first use, by a task that keeps it (the SDK's transports hold anyio task groups,
which must be left by the task that entered them) and runs the lookups handed to it one
after another. A session whose server exits, whose call raises (a protocol failure,
not a tool's own error) or that overruns its server's timeout is dropped, and the next
lookup opens a fresh one.

The loop lives on a daemon thread, so callers on any thread (the GUI's loop, the agents'
workers, a CLI command) block only their own call, never each other's loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[Any], Awaitable[Any]]


class SessionClosed(Exception):
    """The server's session ended before it answered (it exited, or was dropped)."""


class _Session:
    def __init__(self, target: Any, client_info: Any) -> None:
        self.target = target
        self.client_info = client_info
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.jobs: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        from mcp import Client

        try:
            async with Client(self.target, client_info=self.client_info) as client:
                self.ready.set_result(None)
                while (job := await self.jobs.get()) is not None:
                    fn, answer = job
                    try:
                        answer.set_result(await fn(client))
                    except Exception as exc:  # noqa: BLE001  (the caller gets it)
                        # A call that raised (rather than returning a tool error) leaves
                        # the connection in doubt: this session ends, the next is fresh.
                        self.closed = True
                        _fail(answer, exc)
                        break
        except BaseException as exc:
            _fail(self.ready, exc if isinstance(exc, Exception)
                  else SessionClosed("the session was dropped before it opened"))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.closed = True
            while not self.jobs.empty():
                job = self.jobs.get_nowait()
                if job is not None:
                    _fail(job[1], SessionClosed("the server's session ended"))

    async def run(self, fn: Job) -> Any:
        await asyncio.shield(self.ready)
        if self.closed:
            raise SessionClosed("the server's session ended")
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.jobs.put_nowait((fn, answer))
        return await answer

    def drop(self) -> None:
        self.closed = True
        self.task.cancel()


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    """Fail a future that its waiter may have given up on (a timeout cancelled it):
    the waiter, if any, still gets `exc`; nobody is told of an exception never read."""
    if not future.done():
        future.set_exception(exc)
        future.exception()  # read: a waiter that left must not leave a warning behind


class SessionPool:
    """Sessions by server name; `call` runs a coroutine on the pool's loop and waits."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: dict[str, _Session] = {}
        self._guard = threading.Lock()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        loop = self._started()
        future = asyncio.run_coroutine_threadsafe(make(), loop)  # type: ignore[arg-type]
        return future.result(timeout)

    async def run(self, name: str, target: Any, client_info: Any, fn: Job,
                  timeout: float) -> Any:
        """`fn(client)` on the server's session (opened now if need be); the session is
        dropped when it overruns `timeout` or ends, so the next call starts afresh."""
        session = self._sessions.get(name)
        if session is None or session.closed:
            session = self._sessions[name] = _Session(target, client_info)
        try:
            return await asyncio.wait_for(session.run(fn), timeout)
        except (TimeoutError, SessionClosed):
            session.drop()
            raise
        except BaseException:
            if session.closed:
                session.drop()
            raise

    def close(self) -> None:
        """End every session (their servers exit) and the loop's thread."""
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def end() -> None:
            for session in self._sessions.values():
                session.jobs.put_nowait(None)
            tasks = [s.task for s in self._sessions.values()]
            self._sessions.clear()
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=5)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=2)

        try:
            asyncio.run_coroutine_threadsafe(end(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="mcp-sessions",
                                          daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

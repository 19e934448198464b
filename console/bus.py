"""The in-process event bus.

Subscribers register for an event type (and its subclasses). Plain callables run at
once, in publish order; coroutine functions run as tasks on the running asyncio loop,
and the bus keeps a reference to each task until it ends. A subscriber that raises never
stops the others: the failure is published as `HandlerFailed` to the error sink.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from console.events import Event, HandlerFailed

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None] | None]


class Subscriber(Protocol):
    """What `attach(bus)` methods need: the bus itself, or an OffLoopSubscriber."""

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        ...


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures: list[HandlerFailed] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Deliver every event on `loop`'s thread: a publish from a worker thread (an
        executor finishing, a validation passing) is handed over, never run there."""
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop is not None else None

    @property
    def bound(self) -> bool:
        """True once a running loop (the console's) receives the events."""
        return self._loop is not None

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        """Register `handler`; returns a function that unsubscribes it."""
        self._handlers[event_type].append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers[event_type]:
                self._handlers[event_type].remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread \
                and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, event)
            return
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for event_type in type(event).__mro__:
            for handler in list(self._handlers.get(event_type, ())):  # type: ignore[call-overload]
                self._call(handler, event)

    def _call(self, handler: Handler, event: Event) -> None:
        try:
            if inspect.iscoroutinefunction(handler):
                task = asyncio.get_running_loop().create_task(self._guard(handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                handler(event)
        except Exception as exc:  # containment: one bad subscriber never stops the rest
            self._fail(handler, event, exc)

    async def _guard(self, handler: Handler, event: Event) -> None:
        try:
            result = handler(event)
            if result is not None:
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(handler, event, exc)

    def _fail(self, handler: Handler, event: Event, exc: Exception) -> None:
        failure = HandlerFailed(type(event).__name__, getattr(handler, "__qualname__",
                                                              repr(handler)), repr(exc))
        log.error("bus subscriber %s failed on %s: %r", failure.handler, failure.event_type, exc)
        self.failures.append(failure)
        if isinstance(event, HandlerFailed):
            return
        self.publish(failure)

    async def drain(self) -> None:
        """Wait for the coroutine subscribers started so far (used by tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class OffLoopSubscriber:
    """Subscribes handlers that may block (a ticket system over HTTP) so that, once a
    loop is bound (the console), they run one at a time, in order, on one worker thread
    instead of on the GUI's thread; headless (no loop) they run as usual, in step.

    Pass it where an `attach(bus)` expects the bus: it has `subscribe`."""

    def __init__(self, bus: EventBus, name: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._bus = bus
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        # Headless with the agent team, the driver defers these handlers to the end of
        # each step (`flush`), as the console's worker thread keeps them off the path
        # from a signal to a recommendation; unset, they run in step with the event.
        self.deferred = False
        self._queue: list[tuple[Callable[[Any], Any], Event]] = []

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        def deliver(event: E) -> None:
            if self._bus.bound:
                self._pool.submit(self._run, handler, event)
            elif self.deferred:
                self._queue.append((handler, event))
            else:
                handler(event)

        return self._bus.subscribe(event_type, deliver)

    def _run(self, handler: Callable[[Any], Any], event: Event) -> None:
        try:
            handler(event)
        except Exception as exc:  # never lost: reported like any handler failure
            log.exception("handler %r failed on %s", handler, type(event).__name__)
            self._bus.publish(HandlerFailed(type(event).__name__, repr(handler), repr(exc)))

    def flush(self) -> int:
        """Run the deferred handlers in the order their events came (and those their
        own events add); returns how many ran."""
        ran = 0
        while self._queue:
            handler, event = self._queue.pop(0)
            self._bus._call(handler, event)  # a failure is recorded as any handler's
            ran += 1
        return ran

    def close(self) -> None:
        """Let what was handed over finish (it may be writing a ticket), then stop."""
        self._pool.shutdown(wait=True)

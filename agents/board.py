"""The shared incident board: what the agents working one incident know together, and
the one place their work is written down.

An `IncidentBoard` is the in-memory view (incident, current hypotheses, steering,
messages, who is still running) that agents read without touching the database and
wait on without polling. A `BoardStore` writes everything the agents do (events,
rankings, the per-run audit record) in single units of work on one writer thread, so the
event loop's thread (the GUI's) never waits on the database and events keep the order
they were made in. With an in-memory SQLite database every thread would see a database
of its own, so there the store writes on the caller's thread instead.

`IncidentContext` is one agent run's view of the board and its only voice on it.

Bus events published for the coordination view: `AgentEventPosted` (every message,
hypothesis, tool call, status change, error and disagreement, once stored) and
`HypothesesUpdated` (the board's hypotheses changed: a ranking or a steer).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from console.audit import plain
from console.domain import AgentEvent, AuditEntry, Hypothesis, IncidentInfo
from console.events import Event
from console.service import WatchfloorService
from console.storage.repos_agents import (
    AgentEventRepo,
    HypothesisRepo,
    RankedHypothesis,
    Steering,
    SteeringRepo,
    board_order,
)
from console.storage.repos_causes import CauseRepo

if TYPE_CHECKING:
    from agents.runtime import AgentRun, AgentRuntime

log = logging.getLogger(__name__)
T = TypeVar("T")

# Two live hypotheses this close are both shown as the board's answer, side by side:
# the runner-up is at least DISAGREE_AT, or at least DISAGREE_RATIO of the leader (and
# above DISAGREE_FLOOR, so two faint guesses are not a disagreement).
DISAGREE_AT = 0.25
DISAGREE_RATIO = 0.5
DISAGREE_FLOOR = 0.1


@dataclass(frozen=True, slots=True)
class AgentEventPosted(Event):
    """An agent's message, hypothesis, tool call, status change, error or disagreement,
    as stored (it has its id)."""

    event: AgentEvent


@dataclass(frozen=True, slots=True)
class HypothesesUpdated(Event):
    """The board of one incident changed. `hypotheses` is the whole current board (pinned
    first, excluded marked); `contested` names the two close live hypotheses, if any."""

    incident_id: int
    hypotheses: tuple[RankedHypothesis, ...]
    contested: tuple[str, ...] = ()
    revision: int = 0


def contested_pair(hypotheses: Sequence[RankedHypothesis]
                   ) -> tuple[RankedHypothesis, RankedHypothesis] | None:
    """The top two live hypotheses when they are too close to call; None when one leads
    clearly or the operator has pinned the cause."""
    if any(h.state == "pinned" for h in hypotheses):
        return None
    seen: dict[str, RankedHypothesis] = {}
    for h in sorted((h for h in hypotheses if h.state == "live"), key=lambda h: -h.confidence):
        seen.setdefault(h.key, h)
    live = list(seen.values())
    if len(live) < 2:
        return None
    first, second = live[0], live[1]
    close = second.confidence >= DISAGREE_AT or second.confidence >= first.confidence * \
        DISAGREE_RATIO
    return (first, second) if close and second.confidence >= DISAGREE_FLOOR else None


class IncidentBoard:
    """One incident's shared state; read and changed on the event loop's thread only."""

    def __init__(self, incident: IncidentInfo) -> None:
        self.incident = incident
        self.hypotheses: tuple[RankedHypothesis, ...] = ()
        self.steering = Steering()
        self.steer_version = 0  # bumped by every adopted steer (to catch a racing ranking)
        self.revision = 0  # rankings posted on this board since it was made
        self.contested: tuple[RankedHypothesis, RankedHypothesis] | None = None
        self.messages: list[AgentEvent] = []
        self.running: set[object] = set()  # runs started and not finished
        self.waiting = 0  # runs blocked in a wait on this board
        self.loaded = False
        self._changed: asyncio.Event | None = None
        self._loading: asyncio.Lock | None = None

    @property
    def id(self) -> int:
        return self.incident.id

    @property
    def usable(self) -> tuple[RankedHypothesis, ...]:
        return tuple(h for h in self.hypotheses if h.usable)

    @property
    def pinned(self) -> RankedHypothesis | None:
        return next((h for h in self.hypotheses if h.state == "pinned"), None)

    def set_hypotheses(self, hypotheses: Iterable[RankedHypothesis], *, ranking: bool) -> None:
        self.hypotheses = tuple(board_order(hypotheses))
        self.contested = contested_pair(self.hypotheses)
        if ranking:
            self.revision += 1
        self.notify()

    def adopt(self, steering: Steering, hypotheses: Iterable[RankedHypothesis]) -> None:
        """Take the board as a steer left it (it is the whole truth: loaded from now on)."""
        self.steering = steering
        self.steer_version += 1
        self.loaded = True
        self.set_hypotheses(hypotheses, ranking=False)

    def add_event(self, event: AgentEvent) -> None:
        if event.kind == "message":
            self.messages.append(event)
            self.notify()

    def event(self) -> HypothesesUpdated:
        return HypothesesUpdated(self.id, self.hypotheses,
                                 tuple(h.key for h in self.contested or ()), self.revision)

    # --- waiting without polling ------------------------------------------------------

    def notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    @property
    def stalled(self) -> bool:
        """Everyone still running is waiting: no one is left to satisfy a wait."""
        return self.waiting > 0 and self.waiting >= len(self.running)

    async def wait_until(self, ready: Callable[[], bool]) -> bool:
        """Wait until `ready()` holds (True), or until every run on the board is waiting
        too (False): a wait never outlives the work that could satisfy it, so two agents
        waiting on each other cannot hang an incident."""
        if ready():
            return True
        self.waiting += 1
        self.notify()  # others may now be stalled too
        try:
            while True:
                if ready():
                    return True
                if self.stalled:
                    return False
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
        finally:
            self.waiting -= 1

    async def ensure_loaded(self, store: BoardStore) -> None:
        """Read the stored board once (a console restarted mid-incident continues it)."""
        if self.loaded:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self.loaded:
                return
            steering, hypotheses = await store.call(store.load, self.id)
            if not self.loaded:  # a steer may have been adopted meanwhile: it is newer
                self.steering = steering
                self.loaded = True
                self.set_hypotheses(hypotheses, ranking=False)


class BoardStore:
    """Writes the board's record; every method but `call` runs on the writer thread."""

    def __init__(self, service: WatchfloorService, *, threaded: bool) -> None:
        self.service = service
        self._writer = ThreadPoolExecutor(1, "agent-board") if threaded else None
        # Events queued while the writer is busy share one transaction (a group commit):
        # five agents starting at once cost one commit, not five in a row, and the
        # recommender's path to the operator never queues behind them.
        self._batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] | None = None
        self._batch_lock = threading.Lock()
        self._events = AgentEventRepo()
        self._hypotheses = HypothesisRepo()
        self._steering = SteeringRepo()
        self._causes = CauseRepo()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` on the writer thread; a future of its result (already done when
        the store writes inline)."""
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            with self._batch_lock:
                self._batch = None  # events queued after this write are written after it
            return loop.run_in_executor(self._writer, fn, *args)
        future: asyncio.Future[T] = loop.create_future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def event(self, incident_id: int, agent: str, kind: str, summary: str, to_agent: str,
              data: Mapping[str, Any], duration_ms: float | None,
              audit: Mapping[str, Any] | None,
              ) -> asyncio.Future[tuple[AgentEvent, AuditEntry | None]]:
        """Queue one agent event (see `add_event`); events keep the order they were
        queued in, among themselves and with every other write of this store."""
        args = (incident_id, agent, kind, summary, to_agent, data, duration_ms, audit)
        if self._writer is None:
            return self.call(self.add_event, *args)
        future: asyncio.Future[tuple[AgentEvent, AuditEntry | None]] = \
            asyncio.get_running_loop().create_future()
        with self._batch_lock:
            batch, start = self._batch, self._batch is None
            if batch is None:
                batch = self._batch = []
            batch.append((args, future))
        if start:
            self._writer.submit(self._write_batch, batch)
        return future

    def _write_batch(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        with self._batch_lock:
            if self._batch is batch:
                self._batch = None  # closed: what comes next starts the next batch
        try:
            results = self._unit(lambda session: [self._add_event(session, *args)
                                                  for args, _ in batch])
        except Exception as exc:
            for _, future in batch:
                _settle_soon(future, exc=exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle_soon(future, result=result)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def _unit(self, work: Callable[[Session], T]) -> T:
        """One transaction, retried when another writer took the audit chain's next
        sequence number first (SQLite ignores the chain head's row lock)."""
        for attempt in range(3):
            with self.service.db.sessions() as session:
                try:
                    result = work(session)
                    session.commit()
                    return result
                except (IntegrityError, OperationalError):
                    session.rollback()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    # --- what runs on the writer thread -----------------------------------------------

    def load(self, incident_id: int) -> tuple[Steering, list[RankedHypothesis]]:
        with self.service.db.sessions() as session:
            return (self._steering.steering(session, incident_id),
                    self._hypotheses.current(session, incident_id))

    def add_event(self, incident_id: int, agent: str, kind: str, summary: str,
                  to_agent: str, data: Mapping[str, Any], duration_ms: float | None,
                  audit: Mapping[str, Any] | None) -> tuple[AgentEvent, AuditEntry | None]:
        """One agent event, and with it (same transaction) an audit record when given."""
        return self._unit(lambda session: self._add_event(
            session, incident_id, agent, kind, summary, to_agent, data, duration_ms, audit))

    def _add_event(self, session: Session, incident_id: int, agent: str, kind: str,
                   summary: str, to_agent: str, data: Mapping[str, Any],
                   duration_ms: float | None,
                   audit: Mapping[str, Any] | None) -> tuple[AgentEvent, AuditEntry | None]:
        at = self.service.clock.now()
        event = self._events.add(session, incident_id=incident_id, agent=agent,
                                 kind=kind, summary=summary, at=at, to_agent=to_agent,
                                 data=plain(dict(data)), duration_ms=duration_ms)
        entry = None if audit is None else self.service.audit.append(session, at=at, **audit)
        return event, entry

    def save_ranking(self, incident_id: int, agent: str, ranking: Sequence[Hypothesis],
                     run_id: int) -> tuple[list[RankedHypothesis], list[AgentEvent],
                                           list[RankedHypothesis]]:
        """The ranking, one `hypothesis` event per entry, and the board after it."""
        def work(session: Session) -> tuple[list[RankedHypothesis], list[AgentEvent],
                                            list[RankedHypothesis]]:
            at = self.service.clock.now()
            steering = self._steering.steering(session, incident_id)
            grouped = self._causes.record_ranking(session, incident_id, ranking, at)
            stored = self._hypotheses.save_ranking(session, incident_id, agent, grouped,
                                                   steering, at)
            events = [self._events.add(
                session, incident_id=incident_id, agent=agent, kind="hypothesis",
                summary=f"#{h.rank} {h.key} {h.confidence:.2f}"
                        + ("" if h.state == "live" else f" ({h.state})"),
                at=at, data=plain({"run": run_id, "key": h.key, "service": h.service,
                                   "fault_class": h.hypothesis.fault_class,
                                   "confidence": h.confidence, "rank": h.rank,
                                   "state": h.state, "hypothesis_id": h.id,
                                   "cause": h.hypothesis.cause,
                                   "signals": h.hypothesis.signals,
                                   "evidence": [e.ref for e in h.hypothesis.evidence]}))
                for h in stored]
            return stored, events, self._hypotheses.current(session, incident_id)

        return self._unit(work)

    def restate(self, incident_id: int) -> list[RankedHypothesis]:
        """Re-apply the stored steering to the board (a steer raced a ranking)."""
        def work(session: Session) -> list[RankedHypothesis]:
            steering = self._steering.steering(session, incident_id)
            self._hypotheses.apply_steering(session, incident_id, steering,
                                            self.service.clock.now())
            return self._hypotheses.current(session, incident_id)

        return self._unit(work)


def _settle_soon(future: asyncio.Future[Any], *, result: Any = None,
                 exc: BaseException | None = None) -> None:
    """Complete a loop's future from the writer thread (unless the loop is gone)."""
    def settle() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    loop = future.get_loop()
    if not loop.is_closed():
        loop.call_soon_threadsafe(settle)


class ServiceExcluded(Exception):
    """The operator excluded this service from the incident: no tool runs on it."""


class IncidentContext:
    """One run's view of its incident's board, and its only voice on it."""

    def __init__(self, runtime: AgentRuntime, board: IncidentBoard, run: AgentRun) -> None:
        self._runtime = runtime
        self._board = board
        self.run = run
        self._taken: set[int] = set()  # messages already returned by wait_for_message
        self.in_flight = ""  # the tool being called, named if the budget runs out in it

    # --- what the agent reads -------------------------------------------------------

    @property
    def agent(self) -> str:
        return self.run.agent

    @property
    def incident(self) -> IncidentInfo:
        return self._board.incident

    @property
    def steering(self) -> Steering:
        return self._board.steering

    @property
    def hypotheses(self) -> tuple[RankedHypothesis, ...]:
        """The whole board: pinned first, then live by confidence, excluded marked."""
        return self._board.hypotheses

    @property
    def live(self) -> tuple[RankedHypothesis, ...]:
        """What may be acted on: the pinned hypothesis (if any), then the live ones."""
        return self._board.usable

    @property
    def pinned(self) -> RankedHypothesis | None:
        return self._board.pinned

    @property
    def top(self) -> RankedHypothesis | None:
        """The cause to act on: the operator's pin, else the most confident live one."""
        usable = self._board.usable
        return usable[0] if usable else None

    @property
    def contested(self) -> tuple[RankedHypothesis, ...]:
        """The two close live hypotheses when the board cannot call it (else empty)."""
        return self._board.contested or ()

    @property
    def services(self) -> tuple[str, ...]:
        """The incident's services the operator has not excluded."""
        return tuple(s for s in self.incident.services if self.steering.allows_service(s))

    def allowed(self, service: str) -> bool:
        return self.steering.allows_service(service)

    def now(self) -> datetime:
        return self._runtime.service.clock.now()

    def messages(self, *, to_me: bool = False) -> tuple[AgentEvent, ...]:
        return tuple(m for m in self._board.messages
                     if not to_me or m.to_agent == self.agent)

    # --- what the agent says ------------------------------------------------------

    async def post(self, summary: str, *, to: str = "",
                   data: Mapping[str, Any] | None = None) -> AgentEvent:
        """A message to another agent (`to`), or to the board for everyone (`to=""`)."""
        return await self._runtime.record(self._board, self.agent, "message", summary,
                                          to=to, data=data, run=self.run)

    async def status(self, summary: str, data: Mapping[str, Any] | None = None) -> AgentEvent:
        """A note for the agent's lane (what it is doing now)."""
        return await self._runtime.record(self._board, self.agent, "status", summary,
                                          data=data, run=self.run)

    async def publish_hypotheses(self, hypotheses: Iterable[Hypothesis]
                                 ) -> tuple[RankedHypothesis, ...]:
        """Post this agent's ranking (it supersedes its previous one); returns the board."""
        return await self._runtime.publish_ranking(self._board, self.run, hypotheses)

    @overload
    async def tool(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any,
                   about: str | None = None, **kwargs: Any) -> T: ...

    @overload
    async def tool(self, name: str, fn: Callable[..., T], *args: Any,
                   about: str | None = None, **kwargs: Any) -> T: ...

    async def tool(self, name: str, fn: Callable[..., Any], *args: Any,
                   about: str | None = None, **kwargs: Any) -> Any:
        """Call `fn(*args, **kwargs)` as the tool `name`, recorded with its duration and
        result size. A sync tool runs in a worker thread, so it never blocks the loop.
        `about` names the service the call concerns (else any excluded service among the
        string arguments counts): a call about an excluded service raises
        ServiceExcluded, recorded, and nothing runs."""
        target = about or next((a for a in args if isinstance(a, str)
                                and not self.steering.allows_service(a)), None)
        call = {"tool": name, "args": [_short(a) for a in args],
                "kwargs": {k: _short(v) for k, v in kwargs.items()}}
        if target is not None and not self.steering.allows_service(target):
            await self._runtime.record(self._board, self.agent, "tool_call",
                                       f"{name} refused: {target} is excluded",
                                       data={**call, "ok": False, "refused": target},
                                       duration_ms=0.0, run=self.run)
            raise ServiceExcluded(f"{target} is excluded from incident {self.incident.id}")
        started = time.perf_counter()
        self.in_flight = name
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(*args, **kwargs)
            else:
                result = await self._runtime.run_sync(fn, *args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:
            self.in_flight = ""
            ms = (time.perf_counter() - started) * 1000
            await self._runtime.record(self._board, self.agent, "tool_call",
                                       f"{name} failed: {exc!r}"[:500],
                                       data={**call, "ok": False, "error": repr(exc)[:2000]},
                                       duration_ms=ms, run=self.run)
            raise
        # (left set when cancelled: the run's last event names the tool it was stuck in)
        self.in_flight = ""
        ms = (time.perf_counter() - started) * 1000
        size = len(result) if isinstance(result, Sized) else int(result is not None)
        # Stored in its place among the run's events but not waited for: the result is on
        # the way to the recommendation, and a write queued behind others must not hold it.
        self._runtime.record_soon(self._board, self.agent, "tool_call",
                                  f"{name}: {size} item(s) in {ms:.0f} ms",
                                  data={**call, "ok": True, "result_size": size},
                                  duration_ms=ms, run=self.run)
        return result

    # --- waiting on the others ------------------------------------------------------

    async def wait_for_hypotheses(self) -> tuple[RankedHypothesis, ...]:
        """Wait until the board has hypotheses to act on (from a ranking newer than this
        run's plan when the plan re-runs the investigation); returns what is usable then,
        possibly nothing when no one left running could post any. For a deadline of
        your own, wrap it in `asyncio.timeout()`."""
        board, floor = self._board, self.run.min_revision
        await board.wait_until(lambda: board.revision >= floor and bool(board.usable))
        return board.usable

    async def wait_for_message(self, *, sender: str | None = None) -> AgentEvent | None:
        """The next message addressed to this agent (from `sender` if given); None when
        no one left running could send one."""
        def pending() -> AgentEvent | None:
            for m in self._board.messages:
                if m.to_agent == self.agent and m.id not in self._taken \
                        and sender in (None, m.agent):
                    self._taken.add(m.id)
                    return m
            return None

        found: list[AgentEvent] = []

        def ready() -> bool:
            if not found and (event := pending()) is not None:
                found.append(event)
            return bool(found)

        await self._board.wait_until(ready)
        return found[0] if found else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."

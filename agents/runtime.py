"""The agent runtime: agents run as asyncio tasks, per incident, on a shared board.

Why it is shaped this way:

- One API for the GUI and for headless runs. `start()` schedules a run on the loop the
  runtime is bound to: the running loop (the GUI's qasync loop) when called from it, or
  a private loop when called from plain synchronous code. Headless callers then drive
  that private loop with `run_until_idle()` (the scenario driver's step() does, so the
  team has worked an incident before simulated time moves on); the GUI just lets its
  loop run and awaits `idle()` or `aclose()` where it must.
- Every run is contained: an agent that raises, runs over its budget or is cancelled
  ends as a recorded outcome (an agent event and one audit record, actor agent:NAME),
  never as an exception in the caller, the coordinator or another agent. Failures and
  budget overruns also go to the bus's one failure sink (`HandlerFailed`).
- A new run of an agent on an incident supersedes the one before (cancelled, recorded
  as superseded); the new one starts only once the old one has ended, so an agent never
  sees its previous self on the board. `aclose()`/`close()` cancel every run and wait for
  them. Every task is referenced until it ends (STYLE 9).
- Agents speak only through their `IncidentContext`: messages, hypotheses and tool calls
  are all recorded (agent_events rows, `AgentEventPosted` on the bus) in the order they
  were made; tool calls carry their duration and result size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from agents.board import (
    AgentEventPosted,
    BoardStore,
    IncidentBoard,
    IncidentContext,
    ServiceExcluded,
)
from console.domain import AgentEvent, AuditEntry, Hypothesis, IncidentInfo
from console.events import AuditAppended, HandlerFailed
from console.service import WatchfloorService
from console.storage.repos_agents import RankedHypothesis

__all__ = ["Agent", "AgentRun", "AgentRuntime", "IncidentContext", "ServiceExcluded"]
log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_BUDGET_S = 20.0
FAILED = ("failed", "timeout")
RankingObserver = Callable[[IncidentBoard, "AgentRun"], Awaitable[None]]


class Agent(Protocol):
    """An agent: a name (its lane, its audit actor agent:NAME) and one piece of work on
    one incident. It may also declare `needs_hypotheses`, `produces_hypotheses` and
    `budget_s` (seconds) as attributes; the coordinator reads them."""

    @property
    def name(self) -> str: ...

    async def work(self, ctx: IncidentContext) -> None: ...


@dataclass(eq=False)
class AgentRun:
    """One run of one agent on one incident; `outcome` says how it went or ended."""

    id: int
    incident_id: int
    agent: str
    trigger: str
    budget_s: float
    needs_hypotheses: bool = False
    min_revision: int = 0
    after: tuple[AgentRun, ...] = ()  # runs that must end before this one works
    task: asyncio.Task[None] | None = None
    began: bool = False
    # pending | waiting | running, then done | failed | timeout | superseded | cancelled
    outcome: str = "pending"
    error: str = ""
    stop_reason: str = ""
    duration_ms: float | None = None
    events: Counter[str] = field(default_factory=Counter)

    @property
    def finished(self) -> bool:
        return self.duration_ms is not None

    def stop(self, reason: str) -> None:
        """Cancel the run; one that has not begun sees `stop_reason` at its first step
        instead (a task cancelled before it starts never enters its body, so it could
        not record how it ended)."""
        if self.task is not None and not self.task.done():
            self.stop_reason = self.stop_reason or reason
            if self.began:
                self.task.cancel()


class AgentRuntime:
    """Runs agents per incident; see the module docstring for the contract."""

    def __init__(self, service: WatchfloorService, *, default_budget_s: float = DEFAULT_BUDGET_S,
                 threads: bool | None = None) -> None:
        self.service = service
        self.default_budget_s = default_budget_s
        if threads is None:  # an in-memory SQLite database is a different one per thread
            threads = service.db.engine.url.database not in (None, "", ":memory:")
        self._threads = threads
        self._store = BoardStore(service, threaded=threads)
        self._boards: dict[int, IncidentBoard] = {}
        self._current: dict[tuple[int, str], AgentRun] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._observers: list[RankingObserver] = []
        self.finished: deque[AgentRun] = deque(maxlen=1000)  # recent ends, newest last
        self._loop: asyncio.AbstractEventLoop | None = None
        self._private: asyncio.AbstractEventLoop | None = None
        self._next_id = 0
        self._closed = False
        self._closed_cleanly = False  # aclose() ran to its end

    # --- boards and runs ------------------------------------------------------------

    def board(self, incident: IncidentInfo) -> IncidentBoard:
        """The incident's board (made on first use); it takes the newest incident info."""
        board = self._boards.get(incident.id)
        if board is None:
            board = self._boards[incident.id] = IncidentBoard(incident)
        else:
            board.incident = incident
        return board

    @property
    def closed(self) -> bool:
        return self._closed

    def board_of(self, incident_id: int) -> IncidentBoard | None:
        return self._boards.get(incident_id)

    def runs(self, incident_id: int | None = None) -> tuple[AgentRun, ...]:
        """The runs not finished yet (of one incident, or all)."""
        return tuple(r for r in self._current.values()
                     if not r.finished and incident_id in (None, r.incident_id))

    async def load(self, board: IncidentBoard) -> None:
        """Make sure `board` holds what is stored (hypotheses and steering)."""
        await board.ensure_loaded(self._store)

    def add_ranking_observer(self, observer: RankingObserver) -> None:
        """`observer(board, run)` is awaited after each ranking is stored and announced."""
        self._observers.append(observer)

    def start(self, incident: IncidentInfo, agent: Agent, *, budget_s: float | None = None,
              needs_hypotheses: bool = False, min_revision: int = 0,
              trigger: str = "", after: Iterable[AgentRun] = ()) -> AgentRun:
        """Schedule a run of `agent` on `incident`, superseding its previous run there.
        With `needs_hypotheses` the work starts once the board has hypotheses (from
        ranking `min_revision` on), and only after the runs in `after` have ended (done,
        failed or superseded alike); the budget (`budget_s`, else the agent's own
        `budget_s` attribute, else the default) counts the work only."""
        loop = self._bind()
        board = self.board(incident)
        key = (incident.id, agent.name)
        previous = self._current.get(key)
        if previous is not None:
            previous.stop("superseded")
        if budget_s is None:  # the caller's budget, else the agent's own, else the default
            budget_s = getattr(agent, "budget_s", None) or self.default_budget_s
        self._next_id += 1
        run = AgentRun(self._next_id, incident.id, agent.name, trigger, float(budget_s),
                       needs_hypotheses, min_revision, after=tuple(after))
        board.running.add(run)  # before it starts, so no wait counts it out
        run.task = loop.create_task(self._run(run, agent, board, previous),
                                    name=f"agent {agent.name} on incident {incident.id}")
        run.task.add_done_callback(lambda _: self._settle(run, board, 0.0))
        self._keep(run.task)
        self._current[key] = run
        return run

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a short piece of board bookkeeping (the coordinator's) as a kept task; a
        failure goes to the failure sink."""
        task = self._bind().create_task(self._contained(coro, name), name=name)
        self._keep(task)
        return task

    def cancel(self, incident_id: int | None = None, agent: str | None = None, *,
               reason: str = "cancelled") -> int:
        """Cancel the matching runs (recorded with `reason`); returns how many."""
        runs = [r for r in self.runs(incident_id) if agent in (None, r.agent)]
        for run in runs:
            run.stop(reason)
        return len(runs)

    # --- driving the loop -----------------------------------------------------------

    async def idle(self) -> None:
        """Wait until no run and no bookkeeping task is left (runs may start others)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    @property
    def live(self) -> bool:
        """True when runs are tasks on a running loop (the GUI's): nobody drives them."""
        return self._loop is not None and self._loop is not self._private

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Headless: drive the private loop until every run has ended (budgets bound
        them; `timeout` is a backstop in wall seconds that cancels what is left)."""
        if not self._tasks:
            return
        if self._private is None or self._loop is not self._private:
            raise RuntimeError("this agent runtime runs on a live event loop: await idle()")
        try:
            self._private.run_until_complete(asyncio.wait_for(self.idle(), timeout))
        except TimeoutError:
            self.cancel(reason="cancelled")
            self._private.run_until_complete(self.idle())

    async def aclose(self) -> None:
        """Cancel every run and wait for it to record how it ended; then stop writing."""
        self._closed = True
        self.cancel(reason="cancelled")
        await self.idle()
        self._store.close()
        self._closed_cleanly = True

    def close(self) -> None:
        """Headless close; on a live loop it only cancels (await aclose() there)."""
        if self._closed_cleanly:
            return  # aclose() already did it all
        if self._loop is not None and self._loop is not self._private \
                and self._loop.is_running():
            self._closed = True
            self.cancel(reason="cancelled")
            log.warning("agent runtime closed from inside its live loop; await aclose()")
            return
        if self._private is not None and not self._private.is_closed():
            self._private.run_until_complete(self.aclose())
            self._private.run_until_complete(self._private.shutdown_default_executor())
            self._private.close()
        else:
            self._closed = True
            self._store.close()

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("the agent runtime is closed")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None:
            self._loop = running or asyncio.new_event_loop()
            self._private = None if running is not None else self._loop
        elif running is not None and running is not self._loop:
            raise RuntimeError("this agent runtime is bound to another event loop")
        elif running is None and self._loop is not self._private:
            raise RuntimeError("start agents from the thread of the runtime's event loop")
        return self._loop

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A sync tool: in a worker thread, unless the database lives in this thread."""
        if self._threads:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # --- recording ------------------------------------------------------------------

    async def record(self, board: IncidentBoard, agent: str, kind: str, summary: str, *,
                     to: str = "", data: Mapping[str, Any] | None = None,
                     duration_ms: float | None = None, run: AgentRun | None = None,
                     audit: Mapping[str, Any] | None = None) -> AgentEvent:
        """Store one agent event (and an audit record with it), then announce it."""
        payload = dict(data or {})
        if run is not None:
            payload.setdefault("run", run.id)
            run.events[kind] += 1
        written = self._store.event(board.id, agent, kind, summary, to, payload,
                                    duration_ms, audit)
        try:
            event, entry = await asyncio.shield(written)
        except asyncio.CancelledError:  # stored all the same: announce it when it is
            written.add_done_callback(lambda f: None if f.cancelled() or f.exception()
                                      else self._announce(board, *f.result()))
            raise
        self._announce(board, event, entry)
        return event

    def record_soon(self, board: IncidentBoard, agent: str, kind: str, summary: str, *,
                    data: Mapping[str, Any] | None = None, duration_ms: float | None = None,
                    run: AgentRun | None = None) -> None:
        """Store and announce one agent event without waiting for the write: a note that
        nothing depends on (a run starting) must not hold up the work it announces. It
        keeps its place in the order of events all the same (the store writes in order,
        and it is announced in that order: at once when the store wrote it inline)."""
        payload = dict(data or {})
        if run is not None:
            payload.setdefault("run", run.id)
            run.events[kind] += 1
        written = self._store.event(board.id, agent, kind, summary, "", payload, duration_ms,
                                    None)

        def done(future: asyncio.Future[tuple[AgentEvent, AuditEntry | None]]) -> None:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                self._fail(f"agent:{agent}", exc if isinstance(exc, Exception)
                           else RuntimeError(repr(exc)))
                return
            self._announce(board, *future.result())

        if written.done():  # written inline: announce it before anything written after it
            done(written)
        else:
            written.add_done_callback(done)

    def _announce(self, board: IncidentBoard, event: AgentEvent,
                  entry: AuditEntry | None) -> None:
        board.add_event(event)
        if entry is not None:
            self.service.bus.publish(AuditAppended(entry))
        self.service.bus.publish(AgentEventPosted(event))

    async def publish_ranking(self, board: IncidentBoard, run: AgentRun,
                              hypotheses: Iterable[Hypothesis]) -> tuple[RankedHypothesis, ...]:
        best: dict[str, Hypothesis] = {}
        for h in sorted(hypotheses, key=lambda h: (-h.confidence, h.key)):
            best.setdefault(h.key, h)  # one entry per cause: its most confident version
        version = board.steer_version
        written = self._store.call(self._store.save_ranking, board.id, run.agent,
                                   list(best.values()), run.id)
        try:
            _, events, current = await asyncio.shield(written)
        except asyncio.CancelledError:  # stored all the same: put it on the board when it is
            written.add_done_callback(lambda f: None if f.cancelled() or f.exception()
                                      else self._post_ranking(board, run, *f.result()[1:]))
            raise
        if board.steer_version != version:  # a steer landed while the ranking was written
            current = await self._store.call(self._store.restate, board.id)
        self._post_ranking(board, run, events, current)
        for observer in list(self._observers):
            try:
                await observer(board, run)
            except Exception as exc:  # the coordinator failing never fails the agent
                self._fail(getattr(observer, "__qualname__", repr(observer)), exc)
        return board.hypotheses

    def _post_ranking(self, board: IncidentBoard, run: AgentRun, events: list[AgentEvent],
                      current: list[RankedHypothesis]) -> None:
        run.events["hypothesis"] += len(events)
        board.set_hypotheses(current, ranking=True)
        for event in events:
            self.service.bus.publish(AgentEventPosted(event))
        self.service.bus.publish(board.event())

    # --- one run, start to end ------------------------------------------------------

    async def _run(self, run: AgentRun, agent: Agent, board: IncidentBoard,
                   previous: AgentRun | None) -> None:
        run.began = True
        ctx = IncidentContext(self, board, run)
        started = time.perf_counter()
        cancelled = False
        timer: asyncio.Timeout | None = None
        try:
            if run.stop_reason:
                raise asyncio.CancelledError
            if previous is not None and previous.task is not None:
                await asyncio.wait({previous.task})
            await board.ensure_loaded(self._store)
            self.record_soon(board, run.agent, "status", f"{run.agent} started",
                             data={"state": "started", "trigger": run.trigger}, run=run)
            if run.needs_hypotheses:
                run.outcome = "waiting"
                await ctx.wait_for_hypotheses()
            ahead = {r.task for r in run.after if r.task is not None and not r.task.done()}
            if ahead:
                run.outcome = "waiting"
                # A run waiting on another of the board is waiting too: without counting
                # it, agents waiting for a ranking that came out empty never see the
                # board stalled, and the one it waits on waits for them (a hang).
                board.waiting += 1
                board.notify()
                try:
                    await asyncio.wait(ahead)
                finally:
                    board.waiting -= 1
            run.outcome = "running"
            async with asyncio.timeout(run.budget_s) as timer:
                await agent.work(ctx)
            run.outcome = "done"
        except asyncio.CancelledError:
            cancelled = True
            run.outcome = run.stop_reason or "cancelled"
        except TimeoutError as exc:
            if timer is not None and timer.expired():
                run.outcome, run.error = "timeout", f"over its budget of {run.budget_s:g} s"
            else:
                run.outcome, run.error = "failed", repr(exc)
        except Exception as exc:  # containment: one agent failing stops nothing else
            log.warning("agent %s failed on incident %s", run.agent, run.incident_id,
                        exc_info=True)
            run.outcome, run.error = "failed", repr(exc)[:2000]
        finally:
            self._settle(run, board, (time.perf_counter() - started) * 1000)
        await self._finish(run, ctx, board)
        if cancelled:
            raise asyncio.CancelledError

    def _settle(self, run: AgentRun, board: IncidentBoard, ms: float) -> None:
        """The bookkeeping of a run's end (idempotent; also run when the task ended
        without entering its body, e.g. cancelled by a loop shutting down)."""
        if run.finished:
            return
        run.duration_ms = round(ms, 3)
        if run.outcome in ("pending", "waiting", "running"):
            run.outcome = run.stop_reason or "cancelled"
        board.running.discard(run)
        board.notify()
        if self._current.get((run.incident_id, run.agent)) is run:
            del self._current[(run.incident_id, run.agent)]
        self.finished.append(run)

    async def _finish(self, run: AgentRun, ctx: IncidentContext, board: IncidentBoard) -> None:
        """The run's last event and its audit record, written even while cancelled."""
        failed = run.outcome in FAILED
        summary = f"{run.agent} {run.outcome}" + (f": {run.error}" if run.error else "")
        data: dict[str, Any] = {"state": run.outcome, "trigger": run.trigger,
                                "budget_s": run.budget_s}
        if run.error:
            data["error"] = run.error
        if ctx.in_flight:
            data["in_flight"] = ctx.in_flight
        outputs: dict[str, Any] = {"outcome": run.outcome, "duration_ms": run.duration_ms,
                                   "events": dict(run.events), "error": run.error}
        if run.events["hypothesis"]:
            outputs["hypotheses"] = [h.key for h in board.usable][:5]
            outputs["contested"] = [h.key for h in board.contested or ()]
        audit = {"actor": f"agent:{run.agent}", "action": "agent.run",
                 "target": f"incident:{run.incident_id}", "reason": summary[:500],
                 "inputs": {"run": run.id, "trigger": run.trigger, "budget_s": run.budget_s,
                            "steering": board.steering.as_dict()},
                 "outputs": outputs, "decision": "n/a"}
        try:
            await self.record(board, run.agent, "error" if failed else "status",
                              summary[:500], data=data, duration_ms=run.duration_ms,
                              audit=audit)
        except asyncio.CancelledError:
            pass  # cancelled again while recording: the write completes and is announced
        except Exception as exc:
            self._fail(f"agent:{run.agent}", exc)
        if failed:
            self.service.bus.publish(HandlerFailed(
                "AgentRun", f"agent:{run.agent}", f"incident {run.incident_id}: {run.error}"))

    async def _contained(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(name, exc)

    def _fail(self, who: str, exc: Exception) -> None:
        log.error("%s failed: %r", who, exc)
        self.service.bus.publish(HandlerFailed("AgentRuntime", who, repr(exc)))

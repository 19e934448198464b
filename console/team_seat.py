"""One console's seat in the team: its id in the change feed, the feed's listener and the
try for the leadership, as one thing that joins and leaves.

The window (console/app.py) and `watchfloor node` (console/node_cli.py) join the same
way; they differ only in what they do when this console starts leading (`lead`: settle
what a dead leader left in flight, then run the estate, the sources and the agents) and
when it stops (`follow`: stop all of that at once). Who leads and who is connected is
published on the bus as `LeadershipChanged` whenever it changes, so every console can
show it. A follower of a simulated estate keeps the leader's simulated time (written with
the leader's heartbeats), so what it stamps (an approval and its expiry) is on the same
clock as the recommendation it approves.

Threads: Leadership calls back on its own worker thread; `lead` and `follow` are run on
the event loop, in the order the leadership changed (a `follow` never overtakes the
`lead` before it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from console.bus import EventBus
from console.clock import SimClock
from console.events import LeadershipChanged, RemoteChange
from console.leader import TRY_EVERY_S, Leadership, Member, team_members
from console.storage.db import Database
from console.team_sync import ChangeFeed, FeedListener, new_console_id

log = logging.getLogger(__name__)

WATCH_S = 2.0  # how often who is connected is read again
READY_WAIT_S = 30.0  # the first try for the leadership (a database that does not answer)


def member_name(member: Member) -> str:
    return f"{member.user}@{member.host}"


class TeamSeat:
    """Join with `await join()` on the event loop, leave with `await leave()`."""

    def __init__(self, db: Database, bus: EventBus, *, user: str,
                 lead: Callable[[], Awaitable[None]], follow: Callable[[], None],
                 name: str | None = None,
                 on_remote: Callable[[RemoteChange], None] | None = None,
                 clock: Any = None, on_clock: Callable[[], None] | None = None,
                 watch_every: float = WATCH_S, interval: float = TRY_EVERY_S,
                 kind: str = "console", candidate: bool = True) -> None:
        """`clock`: this console's clock (written with its heartbeats; a simulated one is
        moved to the leader's time while following, then `on_clock()` is called). `kind`
        names what this member is (console, window, engine); a seat that is no
        `candidate` only ever follows (a window whose engine runs in its own process)."""
        self.db, self.bus, self.user = db, bus, user
        self.clock, self._on_clock = clock, on_clock
        self.origin = (f"{name}:{new_console_id()}" if name else new_console_id())[:200]
        self._lead, self._follow = lead, follow
        self._on_remote = on_remote
        self._watch_every, self._interval = watch_every, interval
        self.kind, self.candidate = kind, candidate
        self.members: tuple[Member, ...] = ()  # who was connected at the last read
        self.listener: FeedListener | None = None
        self.leadership: Leadership | None = None
        self.status: LeadershipChanged | None = None  # the last one published
        self.lead_error: BaseException | None = None  # the last `lead` that failed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._led = asyncio.Event()  # the first `lead` is over (either way)
        self._lead_over = False  # the `lead` of the leadership held now is over
        self._watch: asyncio.Task[None] | None = None
        self._leaving = False  # `leave` began: a `lead` still running is not waited for
        self._loop_ran = False  # the loop ran (run_forever) when the seat joined

    @property
    def leading(self) -> bool:
        """This console holds the leadership and its `lead` is over: the estate and the
        agents run here. While `lead` still settles what was in flight, the console is
        not said to lead (its status would claim agents that do not run yet)."""
        return (self.leadership is not None and self.leadership.leading
                and self._lead_over)

    @property
    def postgres(self) -> bool:
        return self.listener is not None and self.listener.postgres

    async def join(self) -> None:
        """Write to the feed as this console, follow the others' changes, and try for the
        leadership; returns once the first try is over and, when it won, once `lead` has
        run (so a console that leads has settled what was in flight before it shows)."""
        self._loop = asyncio.get_running_loop()
        self._loop_ran = self._loop.is_running()
        feed = ChangeFeed.install(self.db)
        feed.origin = self.origin  # before this console writes anything
        self.listener = FeedListener(self.db, self.bus, self.origin, on_change=self._on_remote)
        await asyncio.to_thread(self.listener.start)
        self.leadership = Leadership(self.db, self.origin, user=self.user,
                                     on_gained=self._on_leadership_gained,
                                     on_lost=self._on_leadership_lost,
                                     interval=self._interval,
                                     clock=self.clock.now if self.clock is not None
                                     else None, kind=self.kind,
                                     candidate=self.candidate).start()
        await asyncio.to_thread(self.leadership.ready.wait, READY_WAIT_S)
        if self.leadership.leading:
            await self._led.wait()
        await self.refresh()
        self._watch = self._loop.create_task(self._watch_members(), name="team members")

    async def leave(self) -> None:
        """Stop trying, free the leadership and stop following; nothing is called back
        after this returns (the caller stops what `lead` started)."""
        self._leaving = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self.leadership is not None:
            await asyncio.to_thread(self.leadership.stop)
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)

    async def refresh(self) -> LeadershipChanged:
        """Read who is connected and publish it when it changed."""
        members = await asyncio.to_thread(team_members, self.db)
        self.members = tuple(members)
        leader = next((m for m in members if m.role == "leader"), None)
        if leader is not None and leader.console_id != self.origin and not self.leading:
            self._keep_time(leader.clock_at)
        status = LeadershipChanged(
            console_id=self.origin, leading=self.leading,
            leader=member_name(leader) if leader is not None else "",
            members=tuple(member_name(m) for m in members))
        if status != self.status:
            self.status = status
            self.bus.publish(status)
        return status

    def _keep_time(self, at: datetime | None) -> None:
        clock = self.clock
        if at is None or not isinstance(clock, SimClock) or at <= clock.now():
            return
        clock.set(at)
        if self._on_clock is not None:
            self._on_clock()

    def announce(self) -> None:
        """Publish the last status again (for a subscriber that came after it)."""
        if self.status is not None:
            self.bus.publish(self.status)

    # --- the leadership's callbacks (its worker thread) ----------------------------------

    def _on_leadership_gained(self) -> None:
        loop = self._loop
        assert loop is not None
        done = asyncio.run_coroutine_threadsafe(self._leading(), loop)
        # Waited for, so that a `follow` never overtakes it; but not past the seat's or the
        # loop's end (a console stopping at that moment would keep this thread, and
        # `leave`, waiting). A loop driven without run_forever (Qt's own event processing
        # under qasync, as in the window's tests) never says it runs: only a loop that did
        # and stopped counts as ended, else a lead longer than a second was cancelled
        # half-made (the estate made, the scenario never started).
        while True:
            try:
                done.result(timeout=1.0)
                return
            except concurrent.futures.TimeoutError:
                ended = loop.is_closed() or (self._loop_ran and not loop.is_running())
                if self._leaving or ended:
                    done.cancel()
                    return

    def _on_leadership_lost(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._following)

    # --- on the loop ---------------------------------------------------------------------

    async def _leading(self) -> None:
        try:
            await self._lead()
            self.lead_error = None
        except Exception as exc:  # said by the caller's lead; the seat goes on
            self.lead_error = exc
            log.exception("console %s could not take the lead", self.origin)
        finally:
            self._lead_over = True
            self._led.set()
        with contextlib.suppress(Exception):
            await self.refresh()

    def _following(self) -> None:
        self._lead_over = False
        try:
            self._follow()
        finally:
            assert self._loop is not None
            self._loop.create_task(self._refresh_quietly(), name="team status")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # the database is away: the next read tells
            log.warning("team: who is connected is unknown: %r", exc)

    async def _watch_members(self) -> None:
        while True:
            await asyncio.sleep(self._watch_every)
            await self._refresh_quietly()

"""`watchfloor node`: a console without a window, as one member of a team.

It opens the runtime on `--db`, joins the team (console/leader.py) and follows the change
feed (console/team_sync.py). While it leads it first settles what a dead leader left in
flight (`engine.reconcile()`), then plays the scenario with the agent team and runs the
queued actions; while it follows, it only syncs. With `--json-events`, one JSON object
per line on stdout for each notable event (joined, leader, lost_leadership,
remote_change with its seq and latency, action, notice, stopped), so scripts and tests can
follow it. SIGTERM or SIGINT stop it cleanly (exit 0).

With `--listen`, the member that leads also runs the webhook receiver (the engine owns
it; a window need not be open): it starts when this member takes the lead and stops
when it loses it, so senders pointed at each member's address reach the leader's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio too: `watchfloor` builds this parser on its way to the window
    import asyncio

    from console.events import AuditAppended, RemoteChange
    from console.runtime import Runtime
    from console.team_seat import TeamSeat

from console.cli_args import (
    add_receiver_options,
    bounded_int,
    http_url,
    positive_float,
    zabbix_source,
)

COMMAND = "node"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
WINDOWS_CHECK_S = 1.0
WINDOWS_GONE_S = 3.0  # no window this long: the engine a window started ends
WINDOWS_FIRST_S = 60.0  # ...or no window ever came this long after its start
ACTION_EVENTS = ("execution.intent", "execution.executed", "execution.succeeded",
                 "execution.failed", "execution.rolled_back", "execution.rollback_failed",
                 "execution.interrupted", "execution.cancelled", "execution.reconcile")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `node` on the `watchfloor` subparsers; `run` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND, help="run a headless team member (leads the agents or follows)",
        description="Join the team on a shared database: one member at a time leads (plays "
                    "the scenario, runs the agents and the queued actions); the others "
                    "follow every change within a second. Stops on SIGTERM.")
    parser.add_argument("--db", metavar="URL",
                        help="SQLAlchemy database URL (default: $WATCHFLOOR_DB, then SQLite "
                             "in the user data directory); postgresql+psycopg://... for a team")
    parser.add_argument("--scenario", required=True, metavar="NAME|FILE",
                        help="the scenario the leader plays")
    parser.add_argument("--speed", type=positive_float, default=1.0,
                        help="simulated seconds per wall second (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="the scenario's random seed")
    parser.add_argument("--name", default=None, metavar="NODE",
                        help="this member's name (default: the host name)")
    parser.add_argument("--runbooks", type=Path, default=None, metavar="DIR",
                        help="a folder of your own runbooks, added to the library")
    parser.add_argument("--json-events", action="store_true", dest="json_events",
                        help="print one JSON object per notable event on stdout")
    add_receiver_options(parser, "while this member leads")
    parser.add_argument("--alertmanager", type=http_url, default=None, metavar="URL",
                        help="poll this Alertmanager's API v2 for alerts while this member "
                             "leads")
    parser.add_argument("--prometheus", type=http_url, default=None, metavar="URL",
                        help="the Prometheus that runbooks' PromQL validations query")
    parser.add_argument("--nice", type=bounded_int("--nice", 0, 19), default=0, metavar="N",
                        help="run at this many steps lower CPU priority (the engine a "
                             "window starts leaves the cores to the window first)")
    parser.add_argument("--while-windows", action="store_true", dest="while_windows",
                        help="end once no console window has followed this member for "
                             f"{WINDOWS_GONE_S:g} s (the engine a window starts; without "
                             "it the member runs until stopped)")
    return parser


class EventLog:
    """One JSON line per event (from any thread), or nothing without --json-events."""

    def __init__(self, enabled: bool, node: str) -> None:
        self.enabled = enabled
        self.node = node
        self.console_id = ""
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        line = json.dumps({"event": event, "node": self.node, "console": self.console_id,
                           "t": time.time(), **fields}, default=str)
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import asyncio

    from console import switching
    from console.estate import ScenarioError, load_scenario
    from console.storage.errors import DatabaseUrlError

    switching.shorten()  # a storm's parsing must not hold up the next alert's correlation
    if args.nice > 0:
        os.nice(args.nice)
    try:
        load_scenario(args.scenario)  # a bad name or file: exit 2 before joining
    except ScenarioError as exc:
        sys.stderr.write(f"watchfloor node: {exc}\n")
        return EXIT_BAD_INPUT
    if args.runbooks is not None and not args.runbooks.is_dir():
        sys.stderr.write(f"watchfloor node: no runbook folder {args.runbooks}\n")
        return EXIT_BAD_INPUT
    try:
        args.zabbix_api = zabbix_source(args.zabbix)
    except ValueError as exc:
        sys.stderr.write(f"watchfloor node: {exc}\n")
        return EXIT_BAD_INPUT
    args.mappings = None
    if args.webhook_mappings is not None:
        from console.sources.mapping import load_mappings

        try:
            args.mappings = load_mappings(args.webhook_mappings)
        except ScenarioError as exc:  # a bad mapping file: exit 2 before joining
            sys.stderr.write(f"watchfloor node: {exc}\n")
            return EXIT_BAD_INPUT
    try:
        return asyncio.run(_main(args))
    except DatabaseUrlError as exc:
        sys.stderr.write(f"watchfloor node: {exc}\n")
        return EXIT_BAD_INPUT


class Node:
    """The member's moving parts: what it does while it leads (console/leading.py) and
    what it reports; `lead` and `follow` run on the loop as the leadership comes and goes
    (console/team_seat.py)."""

    def __init__(self, runtime: Runtime, args: argparse.Namespace, log: EventLog,
                 user: str) -> None:
        from console.leading import LeaderDuties

        self.log = log
        self.duties = LeaderDuties(runtime, args.scenario, user=user, mode="node",
                                   seed=args.seed, listen=args.listen,
                                   token=args.webhook_token, mappings=args.mappings,
                                   notify=self._notify, zabbix=args.zabbix_api,
                                   alertmanager=args.alertmanager)

    async def lead(self) -> None:
        await self.duties.lead()
        self.log.emit("leader", reconciled=[list(s) for s in self.duties.reconciled],
                      pruned=self.duties.pruned, recovered=self.duties.recovered)

    def follow(self) -> None:
        """The leadership is lost: stop acting as the leader at once."""
        self.log.emit("lost_leadership")
        self.duties.follow()

    def _notify(self, text: str, error: bool) -> None:
        if error:  # a failed task or source: on stderr (the JSON events are on stdout)
            sys.stderr.write(f"watchfloor node: {text}\n")
        else:  # e.g. where the receiver listens
            self.log.emit("notice", text=text)

    def on_remote(self, change: RemoteChange) -> None:  # the listener's thread
        latency = None
        if change.committed_at is not None:
            latency = (datetime.now(UTC) - change.committed_at).total_seconds() * 1000
        self.log.emit("remote_change", seq=change.seq, operation=change.operation,
                      origin=change.origin, initiator=change.initiator,
                      ids=list(change.changes.ids), latency_ms=latency)

    def on_audit(self, event: AuditAppended) -> None:
        entry = event.entry
        if entry.action in ACTION_EVENTS:
            self.log.emit("action", action=entry.action, target=entry.target,
                          actor=entry.actor)


async def _main(args: argparse.Namespace) -> int:
    import asyncio
    import socket

    from console.clock import SimClock
    from console.events import AuditAppended
    from console.runtime import Runtime, local_user
    from console.team_seat import TeamSeat

    name = args.name or socket.gethostname()
    log = EventLog(args.json_events, name)
    loop = asyncio.get_running_loop()
    shutdown = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.set)
    runtime = await asyncio.to_thread(
        Runtime, args.db, clock=SimClock(datetime.now(UTC).replace(microsecond=0)),
        prometheus=args.prometheus)
    node = Node(runtime, args, log, local_user())
    seat = TeamSeat(runtime.db, runtime.bus, user=local_user(), name=name, lead=node.lead,
                    follow=node.follow, on_remote=node.on_remote, clock=runtime.clock,
                    kind="engine")
    log.console_id = seat.origin
    watch: asyncio.Task[None] | None = None
    try:
        runtime.loop = loop
        runtime.bus.bind_loop(loop)
        runtime.clock.speed = args.speed
        if args.runbooks is not None:
            from console.actions.runbooks import load_library

            runtime.service.engine.library.update(load_library(args.runbooks))
        await asyncio.to_thread(runtime.service.bootstrap_admin, local_user())
        runtime.bus.subscribe(AuditAppended, node.on_audit)
        await seat.join()
        log.emit("joined", leading=seat.leading, postgres=seat.postgres,
                 leader=await asyncio.to_thread(_leader_id, seat))
        if args.while_windows:  # a window started it: it ends with the last window
            watch = loop.create_task(_until_no_window(seat, shutdown, log),
                                     name="windows")
        await shutdown.wait()
        return EXIT_OK
    finally:
        if watch is not None:
            watch.cancel()
        await seat.leave()
        node.duties.follow()
        await node.duties.stop()
        with contextlib.suppress(Exception):
            await runtime.agents.aclose()
            await runtime.bus.drain()
        await asyncio.to_thread(runtime.close)
        log.emit("stopped")


async def _until_no_window(seat: TeamSeat, shutdown: asyncio.Event, log: EventLog) -> None:
    """Set `shutdown` once no window has been connected for WINDOWS_GONE_S (or none came
    within WINDOWS_FIRST_S of the start: the window that started it died first)."""
    import asyncio

    began = last_seen = time.monotonic()
    seen = False
    while not shutdown.is_set():
        await asyncio.sleep(WINDOWS_CHECK_S)
        await seat.refresh()
        now = time.monotonic()
        if any(m.kind == "window" for m in seat.members):
            seen, last_seen = True, now
            continue
        if (seen and now - last_seen >= WINDOWS_GONE_S) or \
                (not seen and now - began >= WINDOWS_FIRST_S):
            log.emit("no_window", seen=seen)
            shutdown.set()


def _leader_id(seat: TeamSeat) -> str | None:
    leadership = seat.leadership
    leader = leadership.leader() if leadership is not None else None
    return leader.console_id if leader is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="watchfloor")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

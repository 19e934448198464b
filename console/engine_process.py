"""The engine a window follows: a `watchfloor node` in a process of its own.

The window (console/app.py) draws and takes decisions; the estate, the agents, the
receivers and the executors run in the engine, whose heavy work then never holds the
window's event loop (one GIL per process). The window joins the team as a member that
never leads (`TeamSeat(candidate=False)`), so whatever it approves is queued and run once,
by the engine that leads.

`EngineKeeper` starts an engine when no live leader holds the database (alone on a
workstation), or just follows the one there is (a team). An engine that dies is started
again at once: the new one settles what was in flight (`engine.reconcile()`) before
anything else, as any new leader does. Unless the person asked it to stay, the engine ends
by itself once no window follows it (`watchfloor node --while-windows`), so closing the
last window stops everything, as before.

Secrets (the database URL's password, the webhook token) go to the child in its
environment, never on its command line (which every user of the machine can list).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from console.leader import Member, team_members
from console.storage.db import DB_ENV, Database, data_dir

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2  # `watchfloor node` refused what it was given
CHECK_EVERY_S = 1.0  # how often the keeper looks at its engine and the team
ENGINE_NAME = "engine"  # the engine's member name (`--name`)
# Below the window, above the window's own background threads (widgets/process.py): on
# two cores the window's event loop gets a core first whenever it wants one.
ENGINE_NICE = 10
LOG_NAME = "engine.log"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """What the window was asked to run, handed on to the engine it starts."""

    scenario: str
    speed: float
    listen: tuple[str, int] | None = None
    token: str | None = None
    mappings_file: Path | None = None
    alertmanager: str | None = None
    prometheus: str | None = None
    zabbix: str | None = None  # the frontend's URL; its token stays in the environment
    runbooks: Path | None = None
    stay: bool = False  # the engine keeps running after the last window closes

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "console", "node", "--scenario", self.scenario,
                "--speed", repr(self.speed), "--name", ENGINE_NAME,
                "--nice", str(ENGINE_NICE)]
        if not self.stay:
            args.append("--while-windows")
        if self.listen is not None:
            args += ["--listen", f"{self.listen[0]}:{self.listen[1]}"]
        if self.mappings_file is not None:
            args += ["--webhook-mappings", str(self.mappings_file)]
        for flag, value in (("--alertmanager", self.alertmanager),
                            ("--prometheus", self.prometheus), ("--zabbix", self.zabbix),
                            ("--runbooks", self.runbooks)):
            if value is not None:
                args += [flag, str(value)]
        return args

    def env(self, db_url: str) -> dict[str, str]:
        env = {**os.environ, DB_ENV: db_url}
        if self.token is not None:
            env["WATCHFLOOR_WEBHOOK_TOKEN"] = self.token
        else:
            env.pop("WATCHFLOOR_WEBHOOK_TOKEN", None)
        return env


@dataclass(frozen=True, slots=True)
class EngineState:
    """What the window shows of its engine: `state` is starting, running, following (a
    leader this window did not start), restarting or stopped; `pid` the engine's process
    (0 while unknown)."""

    state: str
    text: str
    pid: int = 0
    error: bool = False


def live_leader(db: Database) -> Member | None:
    """The member that leads the team now (a fresh heartbeat), or None."""
    return next((m for m in team_members(db) if m.role == "leader"), None)


def database_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


class EngineKeeper:
    """Keeps an engine leading the window's database while the window is open: run
    `await keep()` as a task on the window's loop, `stop()` when the window closes."""

    def __init__(self, db: Database, options: EngineOptions, *,
                 say: Callable[[EngineState], None],
                 check_every: float = CHECK_EVERY_S) -> None:
        self.db, self.options, self._say = db, options, say
        self.check_every = check_every
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0  # engines this window started (a restart counts)
        self.state: EngineState | None = None
        self._stopping = False
        self._dead: set[int] = set()  # engines that died (their rows go stale later)
        self._led_by: int | None = None  # the last engine of this window seen leading
        self.refused: str | None = None  # why the engine exits at once (bad input)
        self._host = socket.gethostname()
        self._log_path = data_dir() / LOG_NAME

    async def keep(self) -> None:
        """Until cancelled or `stop()`: start an engine when none leads, start it again
        when it dies, and say each change of state."""
        while not self._stopping:
            try:
                await self._check()
            except Exception as exc:  # the database is away: said, tried again
                log.warning("engine: the team could not be read: %r", exc)
                self._show(EngineState("unknown", f"Engine: unknown ({exc})", error=True))
            await asyncio.sleep(self.check_every)

    def stop(self) -> None:
        """The window closes: the engine is left to end by itself once no window follows
        it (or to stay, when asked); nothing is killed here."""
        self._stopping = True

    async def _check(self) -> None:
        child = self.process
        if self.refused is not None:
            return  # started again it would refuse again: the person must fix the input
        if child is not None and child.poll() is not None:  # it died
            self.process = None
            self._dead.add(child.pid)
            if child.returncode == EXIT_BAD_INPUT and self._led_by is None:
                self.refused = self._last_said()
                self._show(EngineState(
                    "refused", f"The engine refused to start: {self.refused}", error=True))
                return
            self._show(EngineState(
                "restarting", f"Engine stopped (exit {child.returncode}) \u2014 "
                              "restarting\u2026", error=True))
            await self._start()
            return
        leader = await asyncio.to_thread(live_leader, self.db)
        if leader is not None and leader.pid in self._dead and leader.host == self._host:
            leader = None  # the dead engine's last heartbeat, not yet stale
        if leader is None:
            if self.process is None:  # nobody leads and this window runs no engine
                if self.state is not None and self.state.state in ("running", "following"):
                    # the engine followed (another window's) is gone
                    self._show(EngineState("restarting", "Engine stopped \u2014 "
                                                         "restarting\u2026", error=True))
                await self._start()
            return
        before = self.state.state if self.state is not None else ""
        mine = self.process is not None and leader.pid == self.process.pid
        if mine:
            self._led_by = leader.pid
        if mine or before in ("starting", "restarting"):
            words = "back" if before == "restarting" else "running"
            self._show(EngineState("running", f"Engine {words} (pid {leader.pid})",
                                   pid=leader.pid))
        elif self.state is None or self.state.pid != leader.pid:
            self._show(EngineState(
                "following", f"Engine: {leader.user}@{leader.host} (pid {leader.pid})",
                pid=leader.pid))

    async def _start(self) -> None:
        if self._stopping:
            return
        self.process = await asyncio.to_thread(self._spawn)
        self.started += 1
        restarting = self.state is not None and self.state.state == "restarting"
        self._show(EngineState(
            "restarting" if restarting else "starting",
            ("Engine stopped \u2014 restarting\u2026 (new engine pid "
             f"{self.process.pid})") if restarting
            else f"Engine starting (pid {self.process.pid})\u2026",
            pid=self.process.pid, error=restarting))

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log_file:  # the child keeps its own descriptor
            # Its own session: Ctrl+C in the window's terminal closes the window, which
            # the engine then sees go, instead of killing both mid-action.
            return subprocess.Popen(
                self.options.argv(), env=self.options.env(database_url(self.db)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
                start_new_session=True, cwd=_project_root())

    def _last_said(self) -> str:
        """The engine's last line on stderr (what it refused, named)."""
        try:
            lines = self._log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "see its log"
        return lines[-1].removeprefix("watchfloor node: ") if lines else "see its log"

    def _show(self, state: EngineState) -> None:
        if state == self.state:
            return
        self.state = state
        with contextlib.suppress(Exception):  # the window may be gone; the keeper goes on
            self._say(state)


def _project_root() -> str:
    """Where `python -m console` finds this copy of the console (an installed one is
    found from anywhere)."""
    return str(Path(__file__).resolve().parents[1])

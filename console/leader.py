"""One agent team for many consoles: exactly one console leads (runs the agents and the
sources); the others follow the change feed (console/team_sync.py).

PostgreSQL: the leader holds a session-level advisory lock (`pg_try_advisory_lock`) on a
connection of its own. The server frees it when that session ends, so a leader that is
killed hands over at once, with no lease to wait out. A leader whose connection breaks
(the heartbeat on that connection fails: keepalives and `tcp_user_timeout` bound how long
a silent network may take) stops leading at once, *before* the server can free the lock
for another: the server ends a session that stayed silent for `IDLE_SESSION_TIMEOUT_MS`,
well after the client gave up. Every console tries for the lock every `interval`.

SQLite (one workstation, maybe several processes on one file): an exclusive
`fcntl.flock` on `<database file>.leader`, freed by the kernel when the process dies;
a private or in-memory database is always led by its only console.

`team_members` holds each console's id, user, host, role and heartbeat, so every
console can show who leads and who is connected.

Callbacks run on a worker thread of their own, in order (`on_gained` may take a while:
it settles what the dead leader left in flight), so the heartbeat never stops for them;
`leading` turns False the moment leadership is lost, before `on_lost` runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from console.storage.db import Database
from console.storage.models import TeamMemberRow
from console.team_sync import pg_conninfo

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x5746_1EAD
TRY_EVERY_S = 1.0
STALE_AFTER_S = 5.0  # a member silent for longer is not connected
IDLE_SESSION_TIMEOUT_MS = 10_000  # server side: a silent lock session ends (lock freed)
TCP_USER_TIMEOUT_MS = 3_000  # client side: a heartbeat unacknowledged this long fails
BACKOFF_S = (0.5, 5.0)


@dataclass(frozen=True, slots=True)
class Member:
    console_id: str
    user: str
    host: str
    pid: int
    role: str
    heartbeat_at: datetime
    leader_since: datetime | None
    clock_at: datetime | None = None  # its clock at that heartbeat (the estate's time)
    kind: str = "console"  # console | window (never leads) | engine (headless)


Callback = Callable[[], None]


class Leadership:
    """Tries for the team's leadership every `interval` seconds until `stop()`."""

    def __init__(self, db: Database, console_id: str, *, user: str, host: str | None = None,
                 on_gained: Callback | None = None, on_lost: Callback | None = None,
                 interval: float = TRY_EVERY_S,
                 clock: Callable[[], datetime] | None = None, kind: str = "console",
                 candidate: bool = True) -> None:
        """`clock`: this console's clock, written with each heartbeat (a follower of a
        simulated estate keeps the leader's time from it). `kind` is written with it too
        (an engine counts the windows that follow it); a member that is no `candidate`
        (a window that follows an engine process) never tries for the lock."""
        self.db = db
        self.console_id = console_id
        self.user = user
        self.host = host or socket.gethostname()
        self.on_gained = on_gained
        self.on_lost = on_lost
        self.interval = interval
        self.clock = clock
        self.kind, self.candidate = kind[:64], candidate
        self.started_at = datetime.now(UTC)
        self.leader_since: datetime | None = None
        self.last_error = ""
        self._leading = threading.Event()
        self.ready = threading.Event()  # set once the first attempt is over (either way)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadership")
        self._conninfo = pg_conninfo(db)
        self._conn: Any = None
        self._lock_file: Any = None

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def start(self) -> Leadership:
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Leave the team: the lock is released and this member's row removed. `on_lost`
        is not called (the caller is stopping everything anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._callbacks.shutdown(wait=True)
        self._leading.clear()
        self._close_lock()
        with contextlib.suppress(Exception), self.db.sessions() as session:
            row = session.get(TeamMemberRow, self.console_id)
            if row is not None:
                session.delete(row)
            session.commit()

    def backend_pid(self) -> int | None:
        conn = self._conn
        return int(conn.info.backend_pid) if conn is not None and not conn.closed else None

    # --- who is there -------------------------------------------------------------------

    def members(self) -> list[Member]:
        return team_members(self.db)

    def leader(self) -> Member | None:
        return next((m for m in self.members() if m.role == "leader"), None)

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                self._tick()
                backoff = BACKOFF_S[0]
                wait = self.interval
            except Exception as exc:  # the database went away: stop leading at once
                self.last_error = repr(exc)
                log.warning("leadership: %r; retrying in %.1fs", exc, backoff)
                self._lose()
                self._close_lock()
                wait, backoff = backoff, min(backoff * 2, BACKOFF_S[1])
            self.ready.set()
            self._stop.wait(wait)

    def _tick(self) -> None:
        if self.candidate and not self.leading and self._try_lock():
            self.leader_since = datetime.now(UTC)
            self._heartbeat(demote_others=True)
            self._leading.set()
            log.info("console %s leads the team", self.console_id)
            self._later(self.on_gained)
            return
        self._heartbeat(demote_others=False)

    def _lose(self) -> None:
        if self.leading:
            self._leading.clear()
            self.leader_since = None
            log.warning("console %s lost the team's leadership", self.console_id)
            self._later(self.on_lost)

    def _later(self, callback: Callback | None) -> None:
        if callback is None:
            return

        def run() -> None:
            try:
                callback()
            except Exception:  # never lost: logged, the team goes on
                log.exception("leadership callback %r failed", callback)

        with contextlib.suppress(RuntimeError):  # shut down: nothing more to tell
            self._callbacks.submit(run)

    # --- the lock -----------------------------------------------------------------------

    def _try_lock(self) -> bool:
        if self._conninfo is not None:
            conn = self._connection()
            return bool(conn.execute("SELECT pg_try_advisory_lock(%s)",
                                     (LEADER_LOCK_KEY,)).fetchone()[0])
        return self._try_flock()

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            assert self._conninfo is not None
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=5, keepalives=1,
                keepalives_idle=2, keepalives_interval=1, keepalives_count=3,
                tcp_user_timeout=TCP_USER_TIMEOUT_MS, application_name="watchfloor-leader",
                options=f"-c idle_session_timeout={IDLE_SESSION_TIMEOUT_MS}")
        return self._conn

    def _try_flock(self) -> bool:
        import fcntl

        path = sqlite_lock_path(self.db)
        if path is None:
            return True  # a private database: this console is the only one
        if self._lock_file is None:
            self._lock_file = open(path, "a+")  # noqa: SIM115 (held for the lock's life)
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _close_lock(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # the session ends: the server frees the lock
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            with contextlib.suppress(OSError):
                lock_file.close()  # the flock goes with the descriptor

    # --- heartbeats ---------------------------------------------------------------------

    def _heartbeat(self, *, demote_others: bool) -> None:
        now = datetime.now(UTC)
        role = "leader" if (self.leading or demote_others) else "follower"
        clock_at = self.clock() if self.clock is not None else None
        values = (self.console_id, self.user[:200], self.host[:200], os.getpid(), role,
                  self.started_at, now, self.leader_since if role == "leader" else None,
                  clock_at, self.kind)
        if self._conninfo is not None:
            # On the lock's own connection: a heartbeat that fails is a lost lock, and a
            # leader never opens a new one (that session would not hold the lock).
            if self.leading and (self._conn is None or self._conn.closed):
                raise ConnectionError("the leader's lock connection is gone")
            conn = self._connection()
            with conn.transaction():
                if demote_others:
                    conn.execute("UPDATE team_members SET role = 'follower', leader_since = "
                                 "NULL WHERE role = 'leader' AND console_id <> %s",
                                 (self.console_id,))
                conn.execute(
                    'INSERT INTO team_members (console_id, "user", host, pid, role, '
                    "started_at, heartbeat_at, leader_since, clock_at, kind) VALUES (%s, %s, "
                    "%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (console_id) DO UPDATE SET role = "
                    "EXCLUDED.role, heartbeat_at = EXCLUDED.heartbeat_at, leader_since = "
                    "EXCLUDED.leader_since, clock_at = EXCLUDED.clock_at", values)
            return
        with self.db.sessions() as session:
            if demote_others:
                session.execute(update(TeamMemberRow)
                                .where(TeamMemberRow.role == "leader",
                                       TeamMemberRow.console_id != self.console_id)
                                .values(role="follower", leader_since=None))
            session.merge(TeamMemberRow(
                console_id=values[0], user=values[1], host=values[2], pid=values[3],
                role=values[4], started_at=values[5], heartbeat_at=values[6],
                leader_since=values[7], clock_at=values[8], kind=values[9]))
            session.commit()


def team_members(db: Database, stale_after: float = STALE_AFTER_S) -> list[Member]:
    """The consoles with a recent heartbeat, the leader first."""
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_after)
    with db.sessions() as session:
        rows = session.scalars(select(TeamMemberRow)
                               .where(TeamMemberRow.heartbeat_at >= cutoff)).all()
        members = [Member(r.console_id, r.user, r.host, r.pid, r.role, r.heartbeat_at,
                          r.leader_since, r.clock_at, r.kind) for r in rows]
    return sorted(members, key=lambda m: (m.role != "leader", m.console_id))


def sqlite_lock_path(db: Database) -> Path | None:
    url = make_url(db.engine.url.render_as_string(hide_password=False))
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    path = Path(url.database)
    if "watchfloor-memory-" in str(path):  # Database's private stand-in for sqlite://
        return None
    return path.with_name(path.name + ".leader")

"""One writer at a time per SQLite file in this process, handed over without sleeping.

SQLite allows one write transaction at a time. A second writer that finds the file
locked is put to sleep by SQLite's busy handler in growing steps (1, 2, 5, 10, 15 ms
...), and retried; it never learns that the lock came free in between. In a console
where the agents, the ticket scribe, the execution engine and the operator's
operations write from several threads, those naps added up to tens of milliseconds
per audit record (measured: a 3 ms wait became a 10 ms one), on the critical path from a
signal to a recommendation.

So every connection to a file shares one in-process lock, taken when a statement that
writes is first executed in a transaction (exactly when SQLite takes its own write lock)
and let go at commit, rollback or close: the next writer wakes the moment the lock is
free. Other processes (a CLI beside the console) still meet SQLite's own locking and
busy timeout, as before. A thread that opens a second session while its first one writes
waits on SQLite for it exactly as it did, and a
writer that cannot get the lock within the busy timeout goes on to SQLite, which
decides — never a hang that SQLite would not also have.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from typing import Any

BUSY_TIMEOUT_S = 5.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "BEGIN")


class WriteGate:
    """The lock of one file: held by a connection (any thread may let it go, so a
    connection closed elsewhere never strands it). It is handed over in the order the
    writers came: a writer that commits and at once writes again (a batch stored in
    chunks) queues behind those already waiting, instead of taking the lock back before
    a woken waiter could; otherwise a long batch kept a one-row writer waiting for
    seconds, past the busy timeout ("database is locked")."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: object | None = None
        self._owner_thread: int | None = None
        self._waiting: deque[tuple[object, int]] = deque()

    def acquire(self, conn: object, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner is not None and self._owner_thread == me:
                return False  # this thread writes elsewhere already: SQLite decides
            if self._owner is None and not self._waiting:
                self._owner, self._owner_thread = conn, me
                return True
            self._waiting.append((conn, me))
            if not self._cond.wait_for(lambda: self._owner is conn, timeout):
                self._waiting.remove((conn, me))
                return False
            return True

    def release(self, conn: object) -> None:
        with self._cond:
            if self._owner is conn:
                if self._waiting:  # straight to the first in line
                    self._owner, self._owner_thread = self._waiting.popleft()
                else:
                    self._owner = self._owner_thread = None
                self._cond.notify_all()


_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


def _gate(database: str) -> WriteGate | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # a memory database is one connection; a URI we do not parse
    key = os.path.realpath(database)
    with _gates_lock:
        return _gates.setdefault(key, WriteGate())


def _writes(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class GatedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> GatedCursor:
        conn = self.connection
        if isinstance(conn, GatedConnection) and _writes(sql):
            conn.enter_write()
        try:
            return super().execute(sql, parameters)  # type: ignore[return-value]
        finally:
            if isinstance(conn, GatedConnection):
                conn.leave_if_idle()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> GatedCursor:
        conn = self.connection
        if isinstance(conn, GatedConnection) and _writes(sql):
            conn.enter_write()
        try:
            return super().executemany(sql, seq_of_parameters)  # type: ignore[return-value]
        finally:
            if isinstance(conn, GatedConnection):
                conn.leave_if_idle()


class GatedConnection(sqlite3.Connection):
    """Pass as `factory=` to sqlite3.connect (SQLAlchemy: `connect_args`)."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._gate = _gate(os.fspath(database))
        self._held = False

    def cursor(self, factory: Any = GatedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def enter_write(self) -> None:
        if self._gate is None or self._held:
            return
        # Past the timeout SQLite's own busy handling takes over, as without the gate.
        self._held = self._gate.acquire(self, BUSY_TIMEOUT_S)

    def leave_if_idle(self) -> None:
        """Let go once no transaction is open (after a failed or autocommitted write)."""
        if self._held and not self.in_transaction:
            self._leave()

    def _leave(self) -> None:
        if not self._held or self._gate is None:
            return
        self._held = False
        self._gate.release(self)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave()

"""Live sync between consoles: a durable change feed, written with each change and
followed by every console.

Why a table and not only NOTIFY: a notification is lost when nobody listens (a console
restarting, a connection that broke); a row is not. Each committed unit of work that
changed something worth showing writes one `change_feed` row in the *same* transaction,
so a committed change always has its row and a rolled-back one never has. On PostgreSQL
the same transaction NOTIFYs `watchfloor_changes` with the row's seq, so the others wake
at once; the reader still trusts only the table (after a notification, every few seconds
as a safety net, and after every reconnect: "seq after the last I saw").

What goes in the feed: an operation run by the runner (console/operations.py tags its
session with the exact OpChanges), and any other unit of work that appends to the audit
log (incidents opened, recommendations made, executions and rollbacks settled, agent
steps): their OpChanges are inferred from the audit actions. Both hook in as SQLAlchemy
session events on the database's session factory, so no caller has to remember it.

Writers are serialized (a transaction-scoped advisory lock on PostgreSQL, taken as the
last thing before commit; SQLite's single writer lock), so seq order is commit order and
"seq > last seen" can never skip a row that commits late.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction

from console.audit import appended_in_flush
from console.bus import EventBus
from console.events import OpChanges, RemoteChange
from console.storage.db import Database
from console.storage.models import ChangeFeedRow

log = logging.getLogger(__name__)

FEED_CHANNEL = "watchfloor_changes"
FEED_LOCK_KEY = 0x5746_0001  # pg_advisory_xact_lock: one feed writer at a time
RETENTION = timedelta(days=7)
POLL_S = 0.5  # SQLite: no NOTIFY, the listener polls
SAFETY_S = 3.0  # PostgreSQL: a read even when no notification came
WAKE_S = 0.25  # how often a waiting listener looks at its stop flag
BACKOFF_S = (0.2, 5.0)  # reconnect: first and longest wait
BATCH = 500

_AUDITED = "watchfloor.feed.audited"  # session.info: audit records of this transaction
_TAGGED = "watchfloor.feed.tagged"  # session.info: the operation the runner ran
_CHANGE_FIELDS = {f.name for f in fields(OpChanges)}

# Which collection an audit action touches, by the action's first word.
_ACTION_CHANGES: dict[str, tuple[str, ...]] = {
    "incident": ("incidents",), "recommendation": ("recommendations",),
    "policy": ("settings",), "autonomy": ("settings",), "settings": ("settings",),
    "execution": ("executions", "recommendations"), "user": ("users",), "auth": ("users",),
    "ticket": ("tickets",), "change": ("tickets",), "assessment": ("assessments",),
    "playbook": ("recommendations",),
}


def new_console_id() -> str:
    """host:pid:random, unique per process run (a restarted console is a new member)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pg_conninfo(db: Database) -> str | None:
    """A libpq URI for a dedicated psycopg connection to `db`; None unless PostgreSQL."""
    url = db.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    return make_url(url.render_as_string(hide_password=False)).set(
        drivername="postgresql").render_as_string(hide_password=False)


def changes_from_dict(data: Mapping[str, Any]) -> OpChanges:
    known = {k: v for k, v in data.items() if k in _CHANGE_FIELDS}
    if "ids" in known:
        known["ids"] = tuple(str(i) for i in known["ids"] or ())
    return OpChanges(**known)


def changes_to_dict(changes: OpChanges) -> dict[str, Any]:
    return {name: (list(changes.ids) if name == "ids" else getattr(changes, name))
            for name in sorted(_CHANGE_FIELDS)}


def infer_changes(audited: Iterable[tuple[str, str, str]]) -> tuple[str, OpChanges, str]:
    """(operation, changes, initiator) of a unit of work from its audit records
    (actor, action, target): the first record that is not a policy decision names it."""
    records = list(audited)
    touched: dict[str, bool] = {"audit": True}
    ids: list[str] = []
    for _actor, action, target in records:
        if action == "policy.decide":
            touched["recommendations"] = True
        else:
            for name in _ACTION_CHANGES.get(action.partition(".")[0], ()):
                touched[name] = True
        kind, _, ident = target.partition(":")
        if ident and kind in ("incident", "recommendation", "execution") and ident not in ids:
            ids.append(ident)
    main = next((r for r in records if r[1] != "policy.decide"), records[0])
    return main[1], OpChanges(**touched, ids=tuple(ids[:50])), main[0]


def tag_operation(session: Session, operation: str, changes: OpChanges,
                  initiator: str) -> None:
    """Called by the operation runner before it commits: the feed row of this
    transaction carries exactly what the operation says it changed."""
    session.info[_TAGGED] = (operation, changes, initiator, True)


SIGNALS_ID = "signals:"  # an id of a feed row's OpChanges: "signals:LOW-HIGH"


def tag_signals(session: Session, low: int, high: int) -> None:
    """Called before committing stored signals (not an operation, no audit record): the
    feed row names an id range that holds them, so another console reads those (reading
    "ids after the last I saw" could skip a writer that committed late). The range may
    hold another writer's signals too: a reader shows each id once."""
    session.info[_TAGGED] = ("signals.store", OpChanges(
        signals=True, ids=(f"{SIGNALS_ID}{low}-{high}",)), "system", False)


MAX_ID = 2**31 - 1  # the signals' ids are 32-bit integers


def signal_ranges(changes: OpChanges) -> list[tuple[int, int]]:
    """The id ranges of stored signals a feed row names (see `tag_signals`); what is not
    one (another id, garbage, a range no signal id can be in) is left out."""
    return _id_ranges(changes, SIGNALS_ID)


SAMPLES_ID = "samples:"  # an id of a feed row's OpChanges: "samples:LOW-HIGH"


def tag_samples(session: Session, low: int, high: int) -> None:
    """Called before committing stored metric samples (console/metric_samples.py): like
    `tag_signals`, the feed row names the id range that holds them."""
    session.info[_TAGGED] = ("metrics.store", OpChanges(
        metrics=True, ids=(f"{SAMPLES_ID}{low}-{high}",)), "system", False)


def sample_ranges(changes: OpChanges) -> list[tuple[int, int]]:
    """The id ranges of stored metric samples a feed row names (see `tag_samples`)."""
    return _id_ranges(changes, SAMPLES_ID)


def _id_ranges(changes: OpChanges, prefix: str) -> list[tuple[int, int]]:
    ranges = []
    for ident in changes.ids:
        low, sep, high = str(ident).removeprefix(prefix).partition("-")
        if str(ident).startswith(prefix) and sep and low.isdigit() and high.isdigit() \
                and int(low) <= int(high) <= MAX_ID:
            ranges.append((int(low), int(high)))
    return ranges


class ChangeFeed:
    """The writing half: session events on one Database's session factory. It keeps no
    reference to the Database (the registry below is keyed weakly on it)."""

    def __init__(self, db: Database, origin: str) -> None:
        self.origin = origin
        self.written = 0
        event.listen(db.sessions, "before_flush", self._before_flush)
        event.listen(db.sessions, "before_commit", self._before_commit)
        event.listen(db.sessions, "after_transaction_end", self._after_transaction_end)

    @classmethod
    def install(cls, db: Database, origin: str | None = None) -> ChangeFeed:
        """The feed of `db` (made on first call; later calls return it: `origin` is then
        ignored, one process and database have one console id)."""
        feed = _FEEDS.get(db)
        if feed is None:
            feed = cls(db, origin or new_console_id())
            _FEEDS[db] = feed
        return feed

    @staticmethod
    def of(db: Database) -> ChangeFeed | None:
        return _FEEDS.get(db)

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        appended = appended_in_flush(session)  # ORM rows and bulk inserts alike
        if appended:
            session.info.setdefault(_AUDITED, []).extend(appended)

    def _before_commit(self, session: Session) -> None:
        if not session.info.get(_AUDITED) and _TAGGED not in session.info:
            if not (session.new or session.dirty):
                return
            session.flush()  # an audit record still pending is seen by before_flush
        else:
            session.flush()
        audited = session.info.pop(_AUDITED, [])
        tagged = session.info.pop(_TAGGED, None)
        if tagged is not None:
            operation, changes, initiator, audit = tagged
            changes = OpChanges(**{**changes_to_dict(changes), "audit": audit or bool(audited),
                                   "ids": tuple(changes.ids)})
        elif audited:
            operation, changes, initiator = infer_changes(audited)
        else:
            return
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:  # every other write of this transaction is flushed: nothing to wait on
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK_KEY})
        row = ChangeFeedRow(at=datetime.now(UTC), origin=self.origin[:200],
                            operation=str(operation)[:200], changes=changes_to_dict(changes),
                            initiator=str(initiator)[:200])
        session.add(row)
        session.flush()
        if postgres:  # delivered at commit, never for a rollback
            session.execute(text("SELECT pg_notify(:channel, :seq)"),
                            {"channel": FEED_CHANNEL, "seq": str(row.seq)})
        self.written += 1

    @staticmethod
    def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the outermost: committed or rolled back
            session.info.pop(_AUDITED, None)
            session.info.pop(_TAGGED, None)


_FEEDS: weakref.WeakKeyDictionary[Database, ChangeFeed] = weakref.WeakKeyDictionary()


def last_seq(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.coalesce(func.max(ChangeFeedRow.seq), 0))) or 0)


def prune_feed(db: Database, retention: timedelta = RETENTION,
               now: datetime | None = None) -> int:
    """Drop feed rows older than `retention` (the leader does it); returns how many."""
    cutoff = (now or datetime.now(UTC)) - retention
    with db.sessions() as session:
        done = session.execute(delete(ChangeFeedRow).where(ChangeFeedRow.at < cutoff))
        session.commit()
        return int(getattr(done, "rowcount", 0) or 0)


FeedRecord = tuple[int, datetime, str, str, Mapping[str, Any], str]


class FeedListener:
    """The reading half: one thread per console that republishes the other consoles'
    feed rows on the local bus as `RemoteChange` (an OperationDone), in seq order.

    PostgreSQL: LISTEN on a dedicated psycopg connection; a read after each notification,
    every `safety_s`, and after every (re)connect. SQLite: a read every `poll_s`. A lost
    connection is retried with backoff; the read after it catches up on what was missed.
    `on_change(event)` (optional) runs on the listener's thread after each publish."""

    def __init__(self, db: Database, bus: EventBus, origin: str, *, poll_s: float = POLL_S,
                 safety_s: float = SAFETY_S,
                 on_change: Callable[[RemoteChange], None] | None = None) -> None:
        self.db = db
        self.bus = bus
        self.origin = origin
        self.poll_s = poll_s
        self.safety_s = safety_s
        self.on_change = on_change
        self.last_seq = 0
        self.connects = 0  # successful (re)connections, for tests and the status bar
        self.connected = False
        self.last_error = ""
        self._conninfo = pg_conninfo(db)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None

    @property
    def postgres(self) -> bool:
        return self._conninfo is not None

    def start(self, *, from_seq: int | None = None) -> FeedListener:
        """Follow from `from_seq` (default: the newest row now: what is already stored
        the console reads from the database itself)."""
        self.last_seq = last_seq(self.db) if from_seq is None else from_seq
        self._thread = threading.Thread(target=self._run, name="team-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (tests terminate it)."""
        conn = self._conn
        return int(conn.info.backend_pid) if conn is not None and not conn.closed else None

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while not self._stop.is_set():
            try:
                if self.postgres:
                    self._listen()
                else:
                    self._poll()
                backoff = BACKOFF_S[0]
            except Exception as exc:  # the database went away: retry, then catch up
                self.connected = False
                self.last_error = repr(exc)
                log.warning("team sync: %r; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])

    def _poll(self) -> None:
        self.connected = True
        while not self._stop.is_set():
            with self.db.sessions() as session:
                rows = session.execute(
                    select(ChangeFeedRow.seq, ChangeFeedRow.at, ChangeFeedRow.origin,
                           ChangeFeedRow.operation, ChangeFeedRow.changes,
                           ChangeFeedRow.initiator)
                    .where(ChangeFeedRow.seq > self.last_seq)
                    .order_by(ChangeFeedRow.seq).limit(BATCH)).all()
            self._dispatch([tuple(r) for r in rows])  # type: ignore[misc]
            if len(rows) < BATCH:
                self._stop.wait(self.poll_s)

    def _listen(self) -> None:
        import psycopg

        assert self._conninfo is not None
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                             keepalives=1, keepalives_idle=5, keepalives_interval=2,
                             keepalives_count=3, application_name="watchfloor-sync") as conn:
            self._conn = conn
            try:
                conn.execute(f"LISTEN {FEED_CHANNEL}")
                self.connected = True
                self.connects += 1
                self._catch_up(conn)  # whatever committed while nobody listened
                next_safety = time.monotonic() + self.safety_s
                while not self._stop.is_set():
                    woke = False
                    for _note in conn.notifies(timeout=WAKE_S, stop_after=1):
                        woke = True
                    if woke or time.monotonic() >= next_safety:
                        self._catch_up(conn)
                        next_safety = time.monotonic() + self.safety_s
            finally:
                self._conn = None
                self.connected = False

    def _catch_up(self, conn: Any) -> None:
        while True:
            rows = conn.execute(
                "SELECT seq, at, origin, operation, changes, initiator FROM change_feed "
                "WHERE seq > %s ORDER BY seq LIMIT %s", (self.last_seq, BATCH)).fetchall()
            self._dispatch(rows)
            if len(rows) < BATCH:
                return

    def _dispatch(self, rows: list[FeedRecord]) -> None:
        for seq, at, origin, operation, changes, initiator in rows:
            self.last_seq = max(self.last_seq, int(seq))
            if origin == self.origin:
                continue  # this console published its own change already
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            remote = RemoteChange(str(operation), changes_from_dict(changes or {}),
                                  str(initiator), {"seq": int(seq), "origin": str(origin)},
                                  origin=str(origin), seq=int(seq), committed_at=at)
            self.bus.publish(remote)
            if self.on_change is not None:
                with contextlib.suppress(Exception):
                    self.on_change(remote)

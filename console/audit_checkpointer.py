"""Writes this workstation's checkpoints of a database's audit chain as it grows.

The process that appends records knows when the chain moved: every committed unit of
work that added a record is counted (SQLAlchemy session events on the database's
session factory, so no caller has to remember it), and so is every change another team
member committed with audit records (`RemoteChange`, the change feed). A worker thread
writes a checkpoint after `every_records` such records or `every_seconds` after the
first one, and `close()` writes the last one, so appends themselves only bump a counter.

A checkpoint is only written over a chain that descends from the previous checkpoint:
the record at the previous checkpoint still has its hash and every record after it
links to the one before. Otherwise the problem is logged and kept in `problem`, and
nothing is signed, so a rewritten chain is never blessed. The first checkpoint of a
database walks the whole chain's links once. A process that only reads (`audit verify` itself) never writes
one: it would vouch for records no console of this workstation saw being written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from console.audit import GENESIS, appended_in_flush, public_key_b64
from console.audit_anchor import AnchorStore, Checkpoint, sign, sweep_gone_sqlite
from console.audit_trust import key_path, workstation_key
from console.bus import EventBus
from console.events import RemoteChange
from console.storage.db import Database
from console.storage.models import AuditRow, ChangeFeedRow

EVERY_RECORDS = 256
EVERY_SECONDS = 30.0
WALK_BATCH = 5000
_COUNT = "watchfloor.audit.appended"  # session.info: records added in this transaction
log = logging.getLogger(__name__)


class Checkpointer:
    """Install once per process and database (`Runtime` does); `close()` at shutdown."""

    def __init__(self, db: Database, *, store: AnchorStore | None = None,
                 key_file: Path | None = None, every_records: int = EVERY_RECORDS,
                 every_seconds: float = EVERY_SECONDS) -> None:
        self.db = db
        self.store = store or AnchorStore.for_url(db.engine.url)
        self.key_file = key_file or key_path()  # this process's workstation, fixed now
        self.every_records = max(1, every_records)
        self.every_seconds = every_seconds
        self.written = 0  # checkpoints written by this process
        self.problem = ""  # why the last checkpoint was not written ("" when it was)
        self.last: Checkpoint | None = None
        self._key: Ed25519PrivateKey | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._anchoring = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept = False
        self._detach: list[Callable[[], None]] = []
        self._info_key = f"{_COUNT}.{id(self)}"  # session.info: this one's count

    def install(self, bus: EventBus | None = None) -> Checkpointer:
        event.listen(self.db.sessions, "before_flush", self._count)
        event.listen(self.db.sessions, "after_commit", self._committed)
        event.listen(self.db.sessions, "after_transaction_end", self._ended)
        self._detach.append(self._remove_listeners)
        if bus is not None:
            self._detach.append(bus.subscribe(RemoteChange, self._on_remote))
        return self

    # --- counting (any thread, on the appender's path: keep it cheap) --------------------

    def _count(self, session: Session, _context: Any, _instances: Any) -> None:
        added = len(appended_in_flush(session))  # ORM rows and bulk inserts alike
        if added:
            session.info[self._info_key] = session.info.get(self._info_key, 0) + added

    def _committed(self, session: Session) -> None:
        added = session.info.pop(self._info_key, 0)
        if added:
            self.note(added)

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # rolled back: nothing was added
            session.info.pop(self._info_key, None)

    def _on_remote(self, change: RemoteChange) -> None:
        if change.changes.audit:  # another member appended to the shared chain
            self.note(1)

    def note(self, records: int = 1) -> None:
        """`records` were committed to the chain; a checkpoint follows soon."""
        with self._lock:
            if self._stop.is_set():
                return
            self._pending += records
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="audit-checkpoints")
                self._thread.start()
            if self._pending >= self.every_records:
                self._wake.set()

    # --- writing -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._pending:
                self._anchor_quietly()

    def _anchor_quietly(self) -> None:
        try:
            self.anchor()
        except Exception:  # a database that went away: the next try, or close, writes it
            log.exception("audit checkpoint of %s not written", self.store.location)

    def anchor(self) -> Checkpoint | None:
        """Check what was appended since the last checkpoint and sign the new head; None
        when there is nothing new or the chain does not extend the last checkpoint."""
        with self._anchoring:
            with self._lock:
                taken, self._pending = self._pending, 0
            try:
                return self._anchor()
            except Exception:
                with self._lock:
                    self._pending += taken  # tried again later
                raise

    def _anchor(self) -> Checkpoint | None:
        key = self._signing_key()
        if not self._swept:
            self._swept = True
            sweep_gone_sqlite(self.store.directory, keep=(self.store.location,))
        previous = self.store.latest(public_key_b64(key.public_key()))
        with self.db.sessions() as session:
            # The feed position first: a record committed after it has its feed row after
            # it too, so a verification can tell such records from ones added by hand.
            feed_seq = int(session.scalar(select(func.coalesce(func.max(ChangeFeedRow.seq),
                                                               0))) or 0)
            head = session.execute(select(AuditRow.seq, AuditRow.hash)
                                   .order_by(AuditRow.seq.desc()).limit(1)).first()
            if head is None:
                return self._refuse(previous, "the chain is empty") if previous else None
            head_seq, head_hash = int(head[0]), str(head[1])
            if previous is not None and (head_seq, head_hash) == (previous.seq, previous.hash):
                self.problem = ""
                return None
            problem = self._extends(session, previous, head_seq, head_hash)
        if problem:
            return self._refuse(previous, problem)
        checkpoint = sign(key, self.store.location, head_seq, head_hash, feed_seq)
        self.store.append(checkpoint)
        self.written += 1
        self.problem = ""
        self.last = checkpoint
        return checkpoint

    def _extends(self, session: Session, previous: Checkpoint | None, head_seq: int,
                 head_hash: str) -> str:
        """"" when the records up to the head descend from `previous` (the beginning when
        None); else what is wrong. Links only: each record's own hash is recomputed by
        every verification, so hashing here again would catch nothing more, while this
        walk runs beside the appends (a few strings per record)."""
        seq, prev = 0, GENESIS
        if previous is not None:
            if head_seq < previous.seq:
                return (f"the chain ends at record {head_seq}, before the last checkpoint's "
                        f"record {previous.seq}")
            seq, prev = previous.seq, previous.hash
            anchored = session.scalar(select(AuditRow.hash).where(AuditRow.seq == previous.seq))
            if anchored != previous.hash:
                return (f"record {previous.seq} no longer has the hash its checkpoint of "
                        f"{previous.at} holds")
        while seq < head_seq:
            rows = session.execute(
                select(AuditRow.seq, AuditRow.prev_hash, AuditRow.hash)
                .where(AuditRow.seq > seq, AuditRow.seq <= head_seq)
                .order_by(AuditRow.seq).limit(WALK_BATCH)).all()
            if not rows:
                return f"records {seq + 1}..{head_seq} are missing"
            for row_seq, row_prev, row_hash in rows:
                if row_seq != seq + 1:
                    return f"record {seq + 1} is missing"
                if row_prev != prev or not isinstance(row_hash, str):
                    return (f"record {row_seq} does not link to record {seq} (a record was "
                            "inserted, deleted or changed)")
                seq, prev = row_seq, row_hash
        return "" if prev == head_hash else f"record {head_seq} changed while it was read"

    def _refuse(self, previous: Checkpoint | None, problem: str) -> None:
        where = f" (last checkpoint: {previous.describe()} in {self.store.path})" \
            if previous is not None else ""
        if problem != self.problem:
            log.error("audit chain of %s not checkpointed: %s%s", self.store.location,
                      problem, where)
        self.problem = problem
        return None

    def _signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = workstation_key(self.key_file)
        return self._key

    # --- shutdown ------------------------------------------------------------------------

    def close(self) -> Checkpoint | None:
        """Stop the worker and write the last checkpoint (what this process appended is
        anchored before it ends); the session events are removed."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        self._wake.set()
        if thread is not None:
            thread.join()
        for detach in self._detach:
            detach()
        self._detach.clear()
        if not self._pending:
            return None
        try:
            return self.anchor()
        except Exception:
            log.exception("the last audit checkpoint of %s was not written",
                          self.store.location)
            return None

    def _remove_listeners(self) -> None:
        event.remove(self.db.sessions, "before_flush", self._count)
        event.remove(self.db.sessions, "after_commit", self._committed)
        event.remove(self.db.sessions, "after_transaction_end", self._ended)


def start_checkpoints(db: Database, bus: EventBus | None = None) -> Checkpointer | None:
    """The checkpointer of a process's database, or None for `sqlite://` (a private file
    removed at exit: nothing kept, nothing to anchor)."""
    if getattr(db, "_scratch", None) is not None:
        return None
    return Checkpointer(db).install(bus)

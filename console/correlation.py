"""Correlation after the answer: one worker thread correlates what the receiver stored.

Why: correlating one delivery of 10,000 alerts and storing the incidents it opens takes
seconds, and the sender must not wait for it (Alertmanager gives up after 10 s and sends
again). The receiver stores each delivery with a correlation backlog row, answers, and
hands the delivery here; this worker takes whatever has queued up meanwhile, correlates
it as one batch on its own thread (never a receiver's), then deletes those deliveries'
backlog rows. A crash, or a lost leadership, before that leaves the rows: the next
leader reads those deliveries back (`recover`) and correlates them before new ones.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping

from console.domain import ChangeEvent, Signal
from console.sources.alertmanager import PayloadError
from console.sources.webhook import Delivery, Parser
from console.storage.db import Database
from console.storage.repos_backlog import BacklogRepo

log = logging.getLogger(__name__)

Correlate = Callable[[list[Signal], list[ChangeEvent]], None]
BATCH_SIGNALS = 50_000  # one batch takes whole deliveries up to about this many signals
RECOVER_PAGE = 200


class DeferredCorrelation:
    """`submit` from any thread; the worker starts with the first delivery. `stop` (the
    leadership is lost) drops what is queued, which stays in the backlog for the next
    leader; a later `submit` starts a new worker."""

    def __init__(self, db: Database, correlate: Correlate) -> None:
        self.db = db
        self.correlate = correlate
        self.failures = 0  # batches whose correlation raised (left in the backlog)
        self._queue: deque[Delivery] = deque()
        self._queued: set[int] = set()
        self._cond = threading.Condition()
        self._active = 0  # batches being correlated
        self._generation = 0
        self._thread: threading.Thread | None = None

    def submit(self, delivery: Delivery) -> None:
        with self._cond:
            if delivery.id in self._queued:
                return
            self._queue.append(delivery)
            self._queued.add(delivery.id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._generation,),
                                                name="correlation", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def recover(self, parsers: Mapping[str, Parser]) -> int:
        """Queue the deliveries stored but never correlated, oldest first; returns how
        many. One that can no longer be read back (its generic mapping is gone) stays in
        the backlog, named in the log, for a leader that has the mapping."""
        repo, after, queued = BacklogRepo(), 0, 0
        while True:
            with self.db.sessions() as session:
                page = repo.pending(session, RECOVER_PAGE, after=after)
            for delivery_id, source, body, count in page:
                after = delivery_id
                read = _read_back(parsers.get(source), body, count)
                if read is None:
                    log.warning("stored delivery #%d (%s) cannot be read back here; it "
                                "stays in the correlation backlog", delivery_id, source)
                    continue
                self.submit(Delivery(delivery_id, source, *read))
                queued += 1
            if len(page) < RECOVER_PAGE:
                return queued

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or being correlated (for shutdown and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._active, timeout)

    def stop(self) -> None:
        """Correlate nothing more here: the queue is dropped (its deliveries stay in the
        backlog); the batch under way ends, and its worker with it."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._queued.clear()
            self._thread = None
            self._cond.notify_all()

    def _take(self, generation: int) -> list[Delivery] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or generation != self._generation)
            if generation != self._generation:
                return None
            batch: list[Delivery] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].signals)
                                   <= BATCH_SIGNALS):
                delivery = self._queue.popleft()
                batch.append(delivery)
                size += len(delivery.signals)
            self._active += 1
            return batch

    def _run(self, generation: int) -> None:
        while (batch := self._take(generation)) is not None:
            try:
                self.correlate([s for d in batch for s in d.signals],
                               [c for d in batch for c in d.changes])
                with self.db.sessions() as session:
                    BacklogRepo().settle(session, [d.id for d in batch])
                    session.commit()
            except Exception:  # the next leader's recover tries them again
                self.failures += 1
                log.exception("correlating %d stored deliveries failed; they stay in the "
                              "correlation backlog", len(batch))
            finally:
                with self._cond:
                    self._active -= 1
                    if generation == self._generation:
                        self._queued.difference_update(d.id for d in batch)
                    self._cond.notify_all()


def _read_back(parse: Parser | None, body: object,
               count: int) -> tuple[tuple[Signal, ...], tuple[ChangeEvent, ...]] | None:
    """A stored body parsed again, as when it arrived. A list was stored as {"items": it}
    (console/storage/repos.py); the signal count it was stored with tells which it was."""
    if parse is None:
        return None
    candidates = [body]
    if isinstance(body, dict) and set(body) == {"items"} and isinstance(body["items"], list):
        candidates.insert(0, body["items"])
    for candidate in candidates:
        try:
            signals, changes = parse(candidate)
        except PayloadError:
            continue
        if len(signals) == count:
            return tuple(signals), tuple(changes)
    return None

"""The estate's metric samples in the database, so that every console of a team draws the
Services and Metrics panes and the incident plot that the leading console draws.

Stored, not served from the engine: the samples live only in the process that plays the
estate (console/runtime.py publishes an `EstateSnapshot` per step), and every other
console already shares one thing with it, the database and its change feed. Written
there, they reach each follower the way stored signals do (a feed row names the id range
of a batch, console/team_sync.py `tag_samples`; PostgreSQL's NOTIFY wakes the follower at
once), need no second connection, port or protocol, survive the leader's restart and a
change of leader, and stay for a review after the fact. Serving them from the engine
would need all of that built anew, and a follower that joins late would still need the
past from somewhere.

The leader pays nothing on its GUI thread for it: `SampleRecorder.offer` only appends the
snapshot to a list; a thread of its own writes what came since its last write in one
transaction (a batch per write, never a row per transaction) and keeps only the newest
`KEEP_ROWS` rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, insert, select

from console.events import EstateSnapshot
from console.storage.db import Database
from console.storage.models import MetricSampleRow
from console.team_sync import tag_samples

log = logging.getLogger(__name__)

KEEP_ROWS = 100_000  # about 6,000 snapshots of a 16-service estate: more than a pane keeps
PRUNE_EVERY = 200  # writes between two prunes
GAP_S = 0.1  # at least this long between two writes: what comes meanwhile is one batch
RANGE_LIMIT = 50_000  # rows read for one feed row at most (a bad row cannot flood a pane)

Metrics = Mapping[str, Mapping[str, float]]


class Sample(NamedTuple):
    id: int
    at: datetime
    service: str
    metrics: dict[str, float]


def store_samples(db: Database, snapshots: list[tuple[datetime, Metrics]]) -> tuple[int, int]:
    """Write the snapshots' samples in one transaction with one feed row naming their id
    range; returns (lowest id, highest id), (0, -1) when there was nothing to write."""
    rows = [{"at": at, "service": str(service),
             "metrics": {str(k): float(v) for k, v in values.items()}}
            for at, metrics in snapshots for service, values in metrics.items()]
    if not rows:
        return 0, -1
    with db.sessions() as session:
        ids = list(session.scalars(insert(MetricSampleRow).returning(MetricSampleRow.id),
                                   rows))
        low, high = min(ids), max(ids)
        tag_samples(session, low, high)
        session.commit()
    return low, high


def samples_between(db: Database, low: int, high: int,
                    limit: int = RANGE_LIMIT) -> list[Sample]:
    """The stored samples with ids in [low, high], oldest first (at most the newest
    `limit`)."""
    with db.sessions() as session:
        rows = session.execute(
            select(MetricSampleRow.id, MetricSampleRow.at, MetricSampleRow.service,
                   MetricSampleRow.metrics)
            .where(MetricSampleRow.id >= low, MetricSampleRow.id <= high)
            .order_by(MetricSampleRow.id.desc()).limit(limit)).all()
    return [Sample(int(i), at, str(service), dict(metrics or {}))
            for i, at, service, metrics in reversed(rows)]


def recent_samples(db: Database, limit: int) -> list[Sample]:
    """The newest `limit` stored samples, oldest first: what a console opening as a
    follower draws before the next sample comes."""
    with db.sessions() as session:
        top = session.scalar(select(func.max(MetricSampleRow.id)))
    if top is None:
        return []
    return samples_between(db, max(0, int(top) - limit + 1), int(top), limit)


def prune_samples(db: Database, keep: int = KEEP_ROWS) -> int:
    """Drop all but the newest `keep` samples; returns how many went."""
    with db.sessions() as session:
        top = session.scalar(select(func.max(MetricSampleRow.id)))
        if top is None:
            return 0
        done = session.execute(delete(MetricSampleRow)
                               .where(MetricSampleRow.id <= int(top) - keep))
        session.commit()
        return int(getattr(done, "rowcount", 0) or 0)


def snapshots(samples: list[Sample]) -> list[tuple[datetime, dict[str, dict[str, float]]]]:
    """Samples grouped back into the snapshots they came from (by time, in order)."""
    grouped: dict[datetime, dict[str, dict[str, float]]] = {}
    for sample in samples:
        grouped.setdefault(sample.at, {})[sample.service] = sample.metrics
    return sorted(grouped.items(), key=lambda item: item[0])


class SampleRecorder:
    """Writes the estate's snapshots to the database off the caller's thread, in batches.

    `offer` may be subscribed to the bus as it is (an `EstateSnapshot` handler): it takes
    no lock the writer holds while writing. `stop` writes what is left, then returns."""

    def __init__(self, db: Database, *, keep: int = KEEP_ROWS, gap_s: float = GAP_S) -> None:
        self.db = db
        self.keep = keep
        self.gap_s = gap_s
        self.written = 0  # samples stored
        self.batches = 0
        self.failures = 0
        self._pending: list[tuple[datetime, Metrics]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SampleRecorder:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="metric-samples", daemon=True)
        self._thread.start()
        return self

    def offer(self, event: EstateSnapshot) -> None:
        with self._lock:
            self._pending.append((event.at, event.metrics))
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait()
            stopping = self._stop.is_set()
            self._wake.clear()
            self._write()
            if stopping:
                return
            self._stop.wait(self.gap_s)  # a storm's snapshots gather into one batch

    def _write(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            store_samples(self.db, batch)
            self.written += sum(len(metrics) for _at, metrics in batch)
            self.batches += 1
            if self.batches % PRUNE_EVERY == 0:
                prune_samples(self.db, self.keep)
        except Exception:  # the database went away: these are lost, the next are tried
            self.failures += 1
            log.exception("storing %d metric snapshots failed", len(batch))

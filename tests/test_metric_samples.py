"""The estate's metric samples reach another console of the team (console/metric_samples.py):
the leading console's snapshots are stored in batches off its own thread, the change feed
names each batch's ids, and a following console reads exactly those samples back; on
SQLite (polled feed) and, with WATCHFLOOR_TEST_DB=postgresql, on PostgreSQL (NOTIFY)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from console.events import EstateSnapshot, OpChanges, RemoteChange
from console.leading import LeaderDuties
from console.metric_samples import (
    SampleRecorder,
    prune_samples,
    recent_samples,
    samples_between,
    snapshots,
)
from console.runtime import Runtime
from console.storage.models import MetricSampleRow
from console.team_sync import ChangeFeed, FeedListener, sample_ranges
from tests.waiting import wait_for


class Follower:
    """A console that follows: what its feed listener republishes, read back as samples."""

    def __init__(self, url: str) -> None:
        self.runtime = Runtime(url)
        self.origin = ChangeFeed.install(self.runtime.db).origin
        self.changes: list[RemoteChange] = []
        self._lock = threading.Lock()
        self.runtime.bus.subscribe(RemoteChange, self._on_remote)
        self.listener = FeedListener(self.runtime.db, self.runtime.bus, self.origin,
                                     safety_s=30.0).start()

    def _on_remote(self, event: RemoteChange) -> None:
        if event.changes.metrics:
            with self._lock:
                self.changes.append(event)

    def snapshots(self) -> list[tuple[datetime, dict[str, dict[str, float]]]]:
        with self._lock:
            ranges = [r for change in self.changes for r in sample_ranges(change.changes)]
        seen: dict[int, Any] = {}
        for low, high in ranges:
            for sample in samples_between(self.runtime.db, low, high):
                seen[sample.id] = sample
        return snapshots(sorted(seen.values()))

    def close(self) -> None:
        self.listener.stop()
        self.runtime.close()


@pytest.fixture
def leader_and_follower(db_url: str) -> Iterator[tuple[Runtime, Follower]]:
    leader = Runtime(db_url)
    ChangeFeed.install(leader.db)
    follower = Follower(db_url)
    try:
        yield leader, follower
    finally:
        follower.close()
        leader.close()


def _snapshot(at: datetime, n: int) -> EstateSnapshot:
    return EstateSnapshot(at, {"checkout": {"error_rate": n / 100, "latency_p99_ms": 100.0 + n},
                               "payments": {"error_rate": 0.0, "instances_ready": 3.0}})


def test_the_leaders_snapshots_reach_the_follower_through_the_feed(
        leader_and_follower: tuple[Runtime, Follower]) -> None:
    leader, follower = leader_and_follower
    recorder = SampleRecorder(leader.db).start()
    start = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    sent = [_snapshot(start + timedelta(seconds=15 * n), n) for n in range(12)]
    try:
        for event in sent:
            recorder.offer(event)
        wait_for(lambda: len(follower.snapshots()) == len(sent), 10,
                 "every snapshot at the follower")
    finally:
        recorder.stop()
    got = follower.snapshots()
    assert [at for at, _m in got] == [e.at for e in sent]
    assert [metrics for _at, metrics in got] == [dict(e.metrics) for e in sent]
    assert recorder.written == 2 * len(sent)
    assert recorder.batches < len(sent)  # gathered, not a transaction per snapshot
    assert all(c.operation == "metrics.store" and not c.changes.audit
               for c in follower.changes)


def test_a_leading_console_stores_what_its_estate_publishes_until_it_follows(
        leader_and_follower: tuple[Runtime, Follower]) -> None:
    leader, follower = leader_and_follower
    leader.service.bootstrap_admin("alice")
    duties = LeaderDuties(leader, "bad-deploy", user="alice", mode="node", seed=3,
                          held=True)  # held: the scenario plays only when the test steps it

    async def lead_a_while() -> list[datetime]:
        await duties.lead()
        assert duties.driver is not None
        times = []
        for _ in range(3):
            batch = await asyncio.to_thread(duties.driver.compute, 15.0)
            duties.driver.publish(batch)
            times.append(duties.driver.player.estate.now)
        duties.follow()  # what was offered is written before it returns
        duties.driver.publish(await asyncio.to_thread(duties.driver.compute, 15.0))
        await duties.stop()
        return times

    times = asyncio.run(lead_a_while())
    services = set(duties.driver.player.estate.services) if duties.driver else set()
    wait_for(lambda: [at for at, _m in follower.snapshots()] == times, 10,
             "the three snapshots published while leading")
    for _at, metrics in follower.snapshots():
        assert set(metrics) == services
        assert all("error_rate" in values for values in metrics.values())
    with leader.db.sessions() as session:  # nothing after it followed
        assert session.scalar(select(func.count()).select_from(MetricSampleRow)) == \
            3 * len(services)


def test_only_the_newest_samples_are_kept_and_read_back_in_order(db_url: str) -> None:
    with Runtime(db_url) as runtime:
        recorder = SampleRecorder(runtime.db).start()
        start = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
        for n in range(10):
            recorder.offer(_snapshot(start + timedelta(seconds=n), n))
        recorder.stop()
        assert recorder.written == 20
        newest = recent_samples(runtime.db, 6)
        assert [(s.at, s.service) for s in newest] == [
            (start + timedelta(seconds=n), service)
            for n in (7, 8, 9) for service in ("checkout", "payments")]
        assert prune_samples(runtime.db, keep=4) == 16
        left = recent_samples(runtime.db, 100)
        assert [s.at for s in left] == [start + timedelta(seconds=n) for n in (8, 8, 9, 9)]
        assert left[-2].metrics == {"error_rate": 0.09, "latency_p99_ms": 109.0}


def test_a_feed_row_names_only_well_formed_sample_ranges() -> None:
    changes = OpChanges(metrics=True, ids=("samples:3-9", "signals:1-2", "samples:9-3",
                                           "samples:x-1", "samples:1-99999999999", "7"))
    assert sample_ranges(changes) == [(3, 9)]

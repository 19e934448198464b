"""The leading console's metric samples in a following console's Services and Metrics
panes and its incident plot.

A console that plays the estate draws each `EstateSnapshot` as it comes. A console that
follows has no estate: the leader stores its samples (console/metric_samples.py) and the
change feed names each batch; this reads a named batch off the GUI thread and hands its
snapshots to the panes as if they had come in here (the bridge's `estateSnapshot`, so the
services table, the metric history behind the Metrics pane and the incident plot, and the
status bar's clock, all move). A console that opens as a follower first draws the newest
stored samples, so its panes show the recent past at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, QTimer

from console.events import EstateSnapshot, RemoteChange
from console.metric_samples import Sample, snapshots
from console.team_sync import sample_ranges
from widgets.bridge import BusBridge
from widgets.metrics_pane import MetricHistory, Point, point
from widgets.ops import Worker, describe_error

log = logging.getLogger(__name__)

GATHER_MS = 20  # batches named together are read together (the leader writes <= 10/s)
RECENT_ROWS = 20_000  # read when the console opens as a follower
SEEN_SAMPLES = 200_000  # sample ids remembered (a range read twice draws each once)

ReadRange = Callable[[int, int], list[Sample]]
ReadRecent = Callable[[int], list[Sample]]
Snapshot = tuple[datetime, dict[str, dict[str, float]]]
Past = tuple[list[int], dict[str, list[Point]], Snapshot | None]


def _past(samples: list[Sample]) -> Past:
    """The stored past made ready off the GUI thread: the history's points of every
    snapshot but the newest, and the newest."""
    grouped = snapshots(samples)
    points: dict[str, list[Point]] = {}
    for at, metrics in grouped[:-1]:
        t = at.timestamp()
        for service, values in metrics.items():
            points.setdefault(service, []).append(point(t, values))
    return [s.id for s in samples], points, (grouped[-1] if grouped else None)


class RemoteMetrics(QObject):
    """Feeds the panes with the samples another console stored."""

    def __init__(self, *, bridge: BusBridge, worker: Worker, history: MetricHistory,
                 read_range: ReadRange, read_recent: ReadRecent | None = None,
                 parent: QObject | None = None) -> None:
        """`read_recent`: read the newest stored samples first (a console without an
        estate of its own); None: draw only what comes from now on."""
        super().__init__(parent)
        self._bridge, self._worker, self._history = bridge, worker, history
        self._read_range = read_range
        self._ranges: list[tuple[int, int]] = []
        self._in_read: list[tuple[int, int]] = []
        self._seen: set[int] = set()
        self._reading = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(GATHER_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        if read_recent is not None:
            self._reading = True  # what comes meanwhile is read after it
            worker.submit("reading the team's recent metrics",
                          lambda: _past(read_recent(RECENT_ROWS)), on_done=self._on_recent,
                          on_error=self._on_read_failed)

    def _on_bridge_operation_done(self, event: Any) -> None:
        if isinstance(event, RemoteChange) and event.changes.metrics:
            self._ranges += sample_ranges(event.changes)
            if self._ranges and not self._timer.isActive():
                self._timer.start()

    def _on_timer_timeout(self) -> None:
        if self._reading:  # one read at a time; what came meanwhile is read after it
            self._timer.start()
            return
        ranges, self._ranges = self._ranges, []
        read = self._read_range
        self._reading, self._in_read = True, ranges
        self._worker.submit("reading another console's metrics",
                            lambda: [s for low, high in ranges for s in read(low, high)],
                            on_done=self._on_read, on_error=self._on_read_failed)

    def _on_recent(self, past: Past) -> None:
        """The past into the history at once, then the newest snapshot through the
        bridge like a live one (the services table needs only that)."""
        self._reading = False
        ids, points, newest = past
        self._seen.update(ids)
        self._history.record_many(points)
        if newest is not None:
            self._show(*newest)
        if self._ranges and not self._timer.isActive():
            self._timer.start()

    def _on_read(self, samples: list[Sample]) -> None:
        self._reading = False
        for at, metrics in snapshots(self._new(samples)):
            self._show(at, metrics)

    def _show(self, at: datetime, metrics: dict[str, dict[str, float]]) -> None:
        self._bridge.estateSnapshot.emit(EstateSnapshot(at, metrics))

    def _new(self, samples: list[Sample]) -> list[Sample]:
        new = [s for s in sorted(samples) if s.id not in self._seen]
        self._seen.update(s.id for s in new)
        if len(self._seen) > SEEN_SAMPLES:  # ranges are recent: forget the oldest
            floor = max(self._seen) - SEEN_SAMPLES // 2
            self._seen = {i for i in self._seen if i > floor}
        return new

    def _on_read_failed(self, exc: BaseException) -> None:
        self._reading = False  # these are read again with the next batch
        self._ranges = self._in_read + self._ranges
        self._in_read = []
        log.error("reading another console's metrics failed", exc_info=exc)
        self._worker.failed.emit(f"reading another console's metrics failed: "
                                 f"{describe_error(exc)}")

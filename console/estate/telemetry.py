"""The embedded estate's metrics behind the agents' MetricsReader protocol.

This is what a Prometheus scraping the estate would hold: the values the estate
exported at each step, never the faults behind them. Beside each service's own metrics
it answers the trace-derived series of its spans (console/estate/spans.py) under the
names a recording's get (console/recording_traces.py: `trace_call_p50_ms:<callee>` under
the caller ...), so the investigator reads the estate's traces as it reads a recording's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from console.estate.player import ScenarioPlayer
from console.estate.spans import TRACE_PREFIX
from console.sources.metrics import Point


class EstateMetrics:
    def __init__(self, player: ScenarioPlayer) -> None:
        self._player = player

    def services(self) -> Sequence[str]:
        return sorted(self._player.estate.services)

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[Point]:
        estate = self._player.estate
        low = (start - estate.start).total_seconds()
        high = (end - estate.start).total_seconds()
        if metric.startswith(TRACE_PREFIX):
            with self._player.lock:
                return estate.spans.history.series(service, metric, start, end)
        points: list[Point] = []
        with self._player.lock:
            svc = estate.services.get(service)
            if svc is None:
                return []
            for t, values in reversed(svc.history):  # newest first: windows are recent
                if t < low:
                    break
                if t <= high and metric in values:
                    points.append((estate.start + timedelta(seconds=t), values[metric]))
        points.reverse()
        return points

    def latest(self, service: str) -> Mapping[str, float]:
        with self._player.lock:
            estate = self._player.estate
            svc = estate.services.get(service)
            if svc is None:
                return {}
            return {**svc.metrics, **estate.spans.history.latest(service)}

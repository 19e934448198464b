"""The embedded estate's metrics behind the agents' MetricsReader protocol.

This is what a Prometheus scraping the estate would hold: the values the estate
exported at each step, never the faults behind them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from console.estate.player import ScenarioPlayer
from console.sources.metrics import Point


class EstateMetrics:
    def __init__(self, player: ScenarioPlayer) -> None:
        self._player = player

    def services(self) -> Sequence[str]:
        return sorted(self._player.estate.services)

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[Point]:
        estate = self._player.estate
        with self._player.lock:
            svc = estate.services.get(service)
            if svc is None:
                return []
            points = [(estate.start + timedelta(seconds=t), values[metric])
                      for t, values in svc.history if metric in values]
        return [(at, value) for at, value in points if start <= at <= end]

    def latest(self, service: str) -> Mapping[str, float]:
        with self._player.lock:
            svc = self._player.estate.services.get(service)
            return dict(svc.metrics) if svc is not None else {}

"""Metrics as the agents read them: a time series per (service, metric), from whatever
monitoring the estate has.

The agents never see the embedded estate itself; they read its metrics through this
protocol, exactly as they would read a real estate's through Prometheus. The embedded
estate's reader (console/estate/telemetry.py) answers from the history the estate keeps,
like a Prometheus that scraped it; a real deployment answers from range queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

Point = tuple[datetime, float]

# What every service reports (README, "Scenarios"); a reader may know fewer.
METRIC_NAMES = ("request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms", "cpu",
                "memory", "disk", "queue_depth", "saturation", "instances_ready",
                "pool_usage", "cache_hit_ratio", "cert_expiry_hours")


class MetricsReader(Protocol):
    def services(self) -> Sequence[str]:
        """The services this source has metrics for."""
        ...

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[Point]:
        """Samples of one metric of one service in [start, end], oldest first; empty when
        the source has none (an unknown service or metric is not an error)."""
        ...

    def latest(self, service: str) -> Mapping[str, float]:
        """The newest sample of every metric of the service ({} when unknown)."""
        ...

"""Real or simulated time. Scenarios run on a simulated clock, faster than real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """A clock that moves only when told to; `speed` is simulated seconds per wall second."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self._start = start
        self._now = start
        self.speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"speed must be above 0, got {value}")
        self._speed = float(value)

    def now(self) -> datetime:
        return self._now

    @property
    def elapsed(self) -> float:
        return (self._now - self._start).total_seconds()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, at: datetime) -> None:
        if at < self._now:
            raise ValueError("time does not run backwards")
        self._now = at

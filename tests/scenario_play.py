"""Playing a scenario with the agent team up to a moment a test needs: the team's first
recommendation waiting for a person, then that fix approved and run. Shared by the core
and the window's tests (`tick` lets the window's tests hand Qt its events each step)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STEP_S = 30.0


def play_until(driver: Any, done: Callable[[], object], *,
               tick: Callable[[], object] | None = None) -> None:
    """Step the scenario until `done()` holds or it ends."""
    while not done() and not driver.finished:
        driver.step(STEP_S)
        if tick is not None:
            tick()


def first_pending(runtime: Any, driver: Any, *,
                  tick: Callable[[], object] | None = None) -> Any:
    """The team's first recommendation that waits for a person."""
    engine = runtime.service.engine
    play_until(driver, lambda: engine.recommendations(("pending",)), tick=tick)
    return engine.recommendations(("pending",))[0]


def approve_and_run(runtime: Any, driver: Any, rec: Any, *, as_user: str = "alice",
                    steps: int = 20, tick: Callable[[], object] | None = None) -> None:
    """Approve the recommendation as previewed and play on while it runs and validates."""
    runtime.service.engine.approve(rec.id, as_user=as_user, preview_hash=rec.preview_hash)
    for _ in range(steps):
        driver.step(STEP_S)
        if tick is not None:
            tick()

"""A rollback confirmed in a process without the executor (a window following its engine)
is queued, and run once by the process that has it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from console.operations import Refused
from console.runtime import Runtime, ScenarioDriver
from console.storage.models import RollbackRow


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[Runtime, ScenarioDriver, Runtime]]:
    """The engine (it plays the estate) and a window's process on the same database,
    with no executor at all."""
    engine = Runtime(db_url)
    engine.service.bootstrap_admin("alice")
    engine.service.add_user("bob", "operator", as_user="alice")
    driver = ScenarioDriver(engine, "quiet-day", seed=7)
    driver.step(60)
    window = Runtime(db_url)
    window.service.engine.executors.clear()
    try:
        yield engine, driver, window
    finally:
        window.close()
        engine.close()


def _ran(engine: Runtime, driver: ScenarioDriver) -> int:
    """bob scales cart out; the run is seen to its validation."""
    rec_id = engine.service.engine.propose("scale-out", {"service": "cart", "count": 2},
                                           requester="user:bob")
    rec = engine.service.engine.recommendation(rec_id)
    assert rec is not None
    exec_id = int(engine.service.engine.approve(rec_id, as_user="bob",
                                                preview_hash=rec.preview_hash)["execution"])
    for _ in range(3):
        driver.step(15)
    return exec_id


def _rollbacks(runtime: Runtime, exec_id: int) -> list[Any]:
    with runtime.db.sessions() as session:
        return list(session.scalars(select(RollbackRow.state)
                                    .where(RollbackRow.execution_id == exec_id)))


def test_a_rollback_asked_without_the_executor_is_queued_and_run_once_by_its_owner(
        pair: tuple[Runtime, ScenarioDriver, Runtime]) -> None:
    engine, driver, window = pair
    before = driver.player.estate.describe("cart")
    exec_id = _ran(engine, driver)
    assert driver.player.estate.describe("cart") != before

    assert window.service.engine.rollback(exec_id, as_user="bob") == "rollback_queued"
    assert driver.player.estate.describe("cart") != before  # nothing ran in the window
    execution = window.service.engine.execution(exec_id)
    assert execution is not None and execution.state in ("succeeded", "validating")
    with pytest.raises(Refused, match="already queued"):
        window.service.engine.rollback(exec_id, as_user="bob")
    asked = [e for e in window.service.audit_entries() if e.action == "execution.rollback"]
    assert [e.decision for e in asked].count("allow") == 1  # the second is refused

    engine.service.engine.drain()  # the engine's next tick
    execution = engine.service.engine.execution(exec_id)
    assert execution is not None and execution.state == "rolled_back"
    assert driver.player.estate.describe("cart") == before
    engine.service.engine.drain()
    assert _rollbacks(engine, exec_id) == ["done"]  # run once
    entry = next(e for e in engine.service.audit_entries()
                 if e.action == "execution.rolled_back")
    assert entry.actor == "user:bob"  # the person who asked, not the engine


def test_a_queued_rollback_whose_action_moved_on_is_refused_not_run(
        pair: tuple[Runtime, ScenarioDriver, Runtime]) -> None:
    engine, driver, window = pair
    exec_id = _ran(engine, driver)
    assert window.service.engine.rollback(exec_id, as_user="bob") == "rollback_queued"
    # someone at the engine rolled it back first
    assert engine.service.engine.rollback(exec_id, as_user="alice") == "rolled_back"
    engine.service.engine.drain()
    assert sorted(_rollbacks(engine, exec_id)) == ["done", "refused"]


def test_a_queued_rollback_is_refused_by_an_engine_on_another_estate(
        pair: tuple[Runtime, ScenarioDriver, Runtime], db_url: str) -> None:
    """The engine that ran the action is gone; the next one plays a new estate: the
    queued rollback is refused by name there, never applied to what it did not change."""
    engine, driver, window = pair
    exec_id = _ran(engine, driver)
    assert window.service.engine.rollback(exec_id, as_user="bob") == "rollback_queued"
    with Runtime(db_url) as other:
        other_driver = ScenarioDriver(other, "quiet-day", seed=8)
        other_driver.step(15)
        before = other_driver.player.estate.describe("cart")
        other.service.engine.drain()
        assert other_driver.player.estate.describe("cart") == before
        execution = other.service.engine.execution(exec_id)
        assert execution is not None and execution.state != "rolled_back"
    assert _rollbacks(engine, exec_id) == ["refused"]

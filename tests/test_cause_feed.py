"""An incident's causes are announced on the bus when they change (`CausesChanged`):
after a ranking finds them, and after an operation moves one of them (an approval
starts its fix), so panes showing causes follow without reading on a timer."""

from __future__ import annotations

from agents.cause_feed import CauseFeed
from console.events import CausesChanged
from console.runtime import Runtime, ScenarioDriver


def _play(runtime: Runtime, scenario: str, until_s: float) -> None:
    driver = ScenarioDriver(runtime, scenario, agents=True)
    while driver.elapsed < until_s and not driver.finished:
        driver.step(15.0)


def test_causes_are_announced_when_found_and_when_an_approval_moves_one(
        runtime: Runtime) -> None:
    heard: list[CausesChanged] = []
    runtime.bus.subscribe(CausesChanged, heard.append)
    feed = CauseFeed(runtime.service, runtime.bus)
    feed.attach(runtime.bus)

    _play(runtime, "overlapping", 1200.0)

    latest = [e for e in heard if e.incident_id == 1][-1]
    assert [(c.service, c.fault_class, c.state) for c in latest.causes] == [
        ("cart", "bad_deploy", "waiting"), ("payments-db", "slow_dependency", "waiting")]
    recs = [c.recommendation for c in latest.causes]
    assert all(r is not None for r in recs)
    assert len({r.recommendation_id for r in recs if r is not None}) == 2  # one fix each

    # nothing moved: nothing is announced again
    before = len(heard)
    assert feed.refresh([1]) == []
    assert len(heard) == before

    first = runtime.service.engine.recommendation(recs[0].recommendation_id)  # type: ignore[union-attr]
    assert first is not None
    runtime.service.engine.approve(first.id, as_user="alice",
                                   preview_hash=first.preview_hash)
    after = [e for e in heard[before:] if e.incident_id == 1]
    assert after, "the approval's operation announced no cause change"
    moved = after[-1].causes[0]
    assert moved.state in ("running", "validating", "resolved")
    assert moved.recommendation is not None
    assert moved.recommendation.execution_id is not None
    assert after[-1].causes[1].state == "waiting"  # the other cause is untouched

"""One live state per incident and per cause (console/incident_state.py), derived from
what the team stored while it played a scenario: new, then diagnosing, waiting for an
approval, running or validating, resolved; an incident is as urgent as its most urgent
cause, and a resolved incident's causes nobody acted on no longer read 'diagnosing'."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from console.domain import IncidentInfo, Severity
from console.incident_state import (
    DIAGNOSING,
    NEEDS_PERSON,
    NEW,
    RESOLVED,
    RUNNING,
    WAITING,
    cause_state,
    incident_state,
    states_of,
)
from console.runtime import ScenarioDriver
from console.storage.repos_causes import Cause, CauseAction, CauseRepo

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _causes(runtime: Any, incident_id: int) -> list[Cause]:
    with runtime.db.sessions() as session:
        return CauseRepo().causes(session, incident_id)


def _incident(runtime: Any, incident_id: int) -> IncidentInfo:
    return next(i for i in runtime.service.incidents() if i.id == incident_id)


def test_an_incident_goes_from_new_to_waiting_to_resolved_as_stored(runtime: Any) -> None:
    driver = ScenarioDriver(runtime, "traffic-surge", seed=7, agents=True)
    engine = runtime.service.engine
    seen: list[str] = []
    while not engine.recommendations(("pending",)) and driver.elapsed < 3600:
        driver.step(30)
        for info in runtime.service.incidents():
            state = incident_state(info, _causes(runtime, info.id)).state
            if not seen or seen[-1] != state:
                seen.append(state)
    rec = engine.recommendations(("pending",))[0]
    incident = _incident(runtime, rec.incident_id)
    live, per_cause = states_of(incident, _causes(runtime, incident.id))
    assert live.state == WAITING
    assert live.label == "waiting for approval"
    assert live.waiting_on_a_person
    assert "scale-out" in live.detail
    assert [s.state for s in per_cause.values()] == [WAITING]
    assert seen[-1] == WAITING
    assert set(seen) <= {NEW, DIAGNOSING, WAITING}

    engine.approve(rec.id, as_user="alice", preview_hash=rec.preview_hash)
    execution = engine.executions()[0]
    while engine.execution(execution.id).state in ("intent", "running", "validating") \
            and driver.elapsed < 7200:
        driver.step(15)
    assert engine.execution(execution.id).state == "succeeded"
    stored = _causes(runtime, incident.id)
    assert cause_state(stored[0]).state == RESOLVED
    assert incident_state(_incident(runtime, incident.id), stored).label == "resolved"


def _cause(ordinal: int, state: str, *, rec_state: str = "", note: str = "") -> Cause:
    actions = (CauseAction(ordinal, "restart-service", "cart", rec_state, 0.8, False),) \
        if rec_state else ()
    return Cause(ordinal, 1, ordinal, "cart", "crash_loop", 0.8, 3, state, ("cart/crash",),
                 (), note, AT, AT, actions)


def test_the_most_urgent_cause_speaks_for_the_incident_and_resolution_closes_the_rest(
) -> None:
    info = IncidentInfo(1, "cart errors", Severity.CRITICAL, "open", ("cart",), AT)
    assert incident_state(info).state == NEW
    causes = [_cause(1, "resolved", rec_state="executed"),
              _cause(2, "waiting", rec_state="pending"),
              _cause(3, "needs_person", note="the restart did not hold")]
    live = incident_state(info, causes)
    assert live.state == NEEDS_PERSON
    assert live.detail.startswith("cause 3: the restart did not hold")
    assert "2 other causes" in live.detail
    assert incident_state(info, causes[:2]).state == WAITING
    # Approved, held in policy's queue: on its way to running, not waiting on anyone.
    assert cause_state(_cause(2, "waiting", rec_state="queued")).state == RUNNING
    # The incident resolved: a cause nobody acted on is closed with it.
    closed = replace(info, state="resolved", resolved_at=AT)
    diagnosing = _cause(1, "diagnosing")
    assert cause_state(diagnosing).state == DIAGNOSING
    assert cause_state(diagnosing, incident_open=False).state == RESOLVED
    assert incident_state(closed, [diagnosing]).state == RESOLVED
    assert incident_state(closed, [diagnosing, causes[2]]).state == NEEDS_PERSON

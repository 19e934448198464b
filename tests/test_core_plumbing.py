"""Bus, clock, operation runner and the service facade, headless."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console.bus import EventBus
from console.clock import SimClock
from console.events import (
    AuditAppended,
    Event,
    HandlerFailed,
    OperationDenied,
    OperationDone,
    ScenarioFinished,
)
from console.operations import PermissionDenied
from console.runtime import Runtime

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_bus_delivers_by_type_and_base_type() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(ScenarioFinished, seen.append)
    bus.subscribe(Event, seen.append)
    ev = ScenarioFinished("x", T0)
    bus.publish(ev)
    assert seen == [ev, ev]


def test_failing_subscriber_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[Event] = []
    failures: list[HandlerFailed] = []

    def boom(_: Event) -> None:
        raise RuntimeError("bad pane")

    bus.subscribe(ScenarioFinished, boom)
    bus.subscribe(ScenarioFinished, seen.append)
    bus.subscribe(HandlerFailed, failures.append)
    bus.publish(ScenarioFinished("x", T0))
    assert len(seen) == 1
    assert len(failures) == 1
    assert "bad pane" in failures[0].error


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[Event] = []
    unsubscribe = bus.subscribe(ScenarioFinished, seen.append)
    unsubscribe()
    bus.publish(ScenarioFinished("x", T0))
    assert seen == []


def test_coroutine_subscribers_run_as_tracked_tasks() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        seen: list[str] = []

        async def slow(ev: ScenarioFinished) -> None:
            await asyncio.sleep(0.01)
            seen.append(ev.scenario)

        async def broken(_: ScenarioFinished) -> None:
            raise ValueError("async failure")

        bus.subscribe(ScenarioFinished, slow)
        bus.subscribe(ScenarioFinished, broken)
        bus.publish(ScenarioFinished("a", T0))
        await bus.drain()
        assert any("async failure" in f.error for f in bus.failures)
        return seen

    assert asyncio.run(scenario()) == ["a"]


def test_sim_clock_moves_only_forward() -> None:
    clock = SimClock(T0, speed=60)
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90)
    assert clock.elapsed == 90
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(T0)
    with pytest.raises(ValueError, match="above 0"):
        clock.speed = 0
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2026, 1, 1))


def test_operation_is_audited_committed_and_published(runtime: Runtime) -> None:
    done: list[OperationDone] = []
    audited: list[AuditAppended] = []
    runtime.bus.subscribe(OperationDone, done.append)
    runtime.bus.subscribe(AuditAppended, audited.append)
    status = runtime.service.set_kill_switch(True, as_user="alice", reason="drill")
    assert status.kill_switch
    assert status.effective_ceiling == 0
    assert done[0].operation == "autonomy.kill_switch"
    assert done[0].changes.settings
    assert not done[0].changes.incidents
    entry = audited[0].entry
    assert (entry.actor, entry.action, entry.decision) == ("user:alice", "autonomy.kill_switch",
                                                           "allow")
    assert entry.outputs == {"before": False, "after": True, "cancelled": []}
    assert runtime.service.status().kill_switch  # committed, visible to a new session


def test_denied_operation_is_audited_and_changes_nothing(runtime: Runtime) -> None:
    runtime.service.add_user("victor", "viewer", as_user="alice")
    denied: list[OperationDenied] = []
    runtime.bus.subscribe(OperationDenied, denied.append)
    with pytest.raises(PermissionDenied, match="needs role operator"):
        runtime.service.set_kill_switch(True, as_user="victor")
    with pytest.raises(PermissionDenied, match="not a known user"):
        runtime.service.set_autonomy_ceiling(4, as_user="mallory")
    assert runtime.service.status().kill_switch is False
    assert runtime.service.status().autonomy_ceiling == 2
    assert [d.initiator for d in denied] == ["victor", "mallory"]
    decisions = [(e.action, e.decision) for e in runtime.service.audit_entries()]
    assert ("autonomy.kill_switch", "deny") in decisions
    assert ("autonomy.set_ceiling", "deny") in decisions
    assert runtime.service.verify_audit().ok


@pytest.mark.parametrize("bad", [-1, 6, 2.5, "3", True])
def test_ceiling_rejects_bad_levels(runtime: Runtime, bad: object) -> None:
    with pytest.raises(ValueError, match="0-5"):
        runtime.service.set_autonomy_ceiling(bad, as_user="alice")  # type: ignore[arg-type]


def test_bootstrap_admin_only_on_an_empty_database(runtime: Runtime) -> None:
    assert runtime.service.bootstrap_admin("bob") is False
    assert runtime.service.role_of("bob") is None
    assert runtime.service.role_of("alice") == "admin"


def test_unknown_role_is_rejected(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        runtime.service.add_user("x", "superuser", as_user="alice")


def test_an_operator_may_pull_the_kill_switch_but_only_an_admin_may_lift_it(runtime: Any) -> None:

    runtime.service.add_user("olga", "operator", as_user="alice")
    runtime.service.add_user("abe", "approver", as_user="alice")
    assert runtime.service.set_kill_switch(True, as_user="olga").kill_switch
    for who in ("olga", "abe"):
        with pytest.raises(PermissionDenied, match="needs role admin"):
            runtime.service.set_kill_switch(False, as_user=who)
    assert runtime.service.status().effective_ceiling == 0
    assert not runtime.service.set_kill_switch(False, as_user="alice").kill_switch
    decisions = [(e.actor, e.decision) for e in runtime.service.audit_entries()
                 if e.action == "autonomy.kill_switch"]
    assert decisions == [("user:olga", "allow"), ("user:olga", "deny"), ("user:abe", "deny"),
                         ("user:alice", "allow")]


def test_blocking_handlers_leave_the_console_thread_and_keep_their_order() -> None:
    """Rules and the scribe may wait on a ticket system over HTTP: in the console they
    run on one worker, in order; headless they run in step, on the caller's thread."""
    import asyncio
    import threading

    from console.bus import EventBus, OffLoopSubscriber
    from console.events import Notification

    bus = EventBus()
    worker = OffLoopSubscriber(bus, "test-tickets")
    seen: list[tuple[str, int]] = []
    worker.subscribe(Notification, lambda e: seen.append((e.message, threading.get_ident())))
    bus.publish(Notification("noc", "headless"))
    assert seen == [("headless", threading.get_ident())]  # no loop: in step
    loop = asyncio.new_event_loop()
    try:
        bus.bind_loop(loop)
        for n in range(5):
            bus.publish(Notification("noc", f"console {n}"))
        worker.close()  # waits for what was handed over
    finally:
        bus.bind_loop(None)
        loop.close()
    assert [m for m, _ in seen[1:]] == [f"console {n}" for n in range(5)]
    assert {t for _, t in seen[1:]} != {threading.get_ident()}


def test_incident_activity_reads_only_the_notes_after_the_last_one_seen(
        runtime: Runtime) -> None:
    from console.domain import IncidentUpdate, Severity, TimelineNote

    service = runtime.service
    opened = runtime.clock.now()

    def save(incident_id: int | None, first: int, count: int) -> int:
        notes = tuple(TimelineNote(opened + timedelta(seconds=n), "note", f"note {n}")
                      for n in range(first, first + count))
        saved = service.save_incidents([IncidentUpdate(
            key=1, id=incident_id, title="t", severity=Severity.WARNING, state="open",
            services=("checkout",), opened_at=opened, resolved_at=None, notes=notes)],
            actor="agent:correlator")
        return saved[0].id

    incident_id = save(None, 0, 3)
    whole = service.incident_activity(incident_id)
    assert whole is not None
    assert [n.summary for n in whole.notes] == ["note 0", "note 1", "note 2"]
    assert len(whole.note_ids) == 3
    assert whole.notes_after == 0
    save(incident_id, 3, 2)
    newer = service.incident_activity(incident_id, after_note_id=whole.last_note_id)
    assert newer is not None
    assert [n.summary for n in newer.notes] == ["note 3", "note 4"]
    nothing = service.incident_activity(incident_id, after_note_id=newer.last_note_id)
    assert nothing is not None
    assert nothing.notes == ()
    assert nothing.last_note_id == newer.last_note_id
    # The whole-timeline read is still there.
    assert len(service.incident_timeline(incident_id)) == 5


def test_incident_activity_reads_only_the_signals_after_the_last_one_seen(
        runtime: Runtime) -> None:
    """A storm's timeline is read in steps of what is new: after the first read, only the
    signals stored since, of the incident's services, each once, none skipped."""
    from console.domain import AlertStatus, IncidentUpdate, Severity, Signal, SignalKind

    service = runtime.service
    opened = runtime.clock.now()

    def alerts(first: int, count: int, service_name: str = "checkout") -> list[Signal]:
        return [Signal(source="test", kind=SignalKind.ALERT, name=f"A{n}", service=service_name,
                       severity=Severity.WARNING, status=AlertStatus.FIRING,
                       at=opened - timedelta(seconds=60 - n)) for n in range(first, first + count)]

    service.store(alerts(0, 3), [])
    incident_id = service.save_incidents([IncidentUpdate(
        key=1, id=None, title="t", severity=Severity.WARNING, state="open",
        services=("checkout",), opened_at=opened, resolved_at=None, notes=())],
        actor="agent:correlator")[0].id
    whole = service.incident_activity(incident_id)
    assert whole is not None
    assert [s.name for s in whole.signals] == ["A0", "A1", "A2"]
    assert whole.last_signal_id > 0
    service.store(alerts(3, 2) + alerts(5, 1, "search"), [])  # search is not the incident's
    newer = service.incident_activity(incident_id, after_signal_id=whole.last_signal_id)
    assert newer is not None
    assert [s.name for s in newer.signals] == ["A3", "A4"]
    nothing = service.incident_activity(incident_id, after_signal_id=newer.last_signal_id)
    assert nothing is not None
    assert nothing.signals == ()
    assert nothing.last_signal_id == newer.last_signal_id
    service.store(alerts(6, 5), [])
    step = service.incident_activity(incident_id, after_signal_id=newer.last_signal_id,
                                     limit=3)
    assert step is not None
    assert [s.name for s in step.signals] == ["A6", "A7", "A8"]  # the oldest new ones first
    rest = service.incident_activity(incident_id, after_signal_id=step.last_signal_id)
    assert rest is not None
    assert [s.name for s in rest.signals] == ["A9", "A10"]

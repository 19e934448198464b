"""How a correlation's decisions are stored: the incidents it opens get the ids of their
own rows (on SQLite without an INSERT per incident), even while another writer opens
incidents at the same moment, and a big batch goes in transactions of a bounded number
of rows, each incident audited once, in order, in a chain that holds."""

from __future__ import annotations

import threading
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from agents.correlator_agent import SAVE_ROWS, CorrelatorAgent, _chunks
from console.audit import AuditLog
from console.bus import EventBus
from console.clock import SimClock
from console.domain import IncidentUpdate, Severity, TimelineNote
from console.runtime import Runtime
from console.service import WatchfloorService
from console.storage.db import Database
from console.storage.models import ChangeFeedRow, IncidentRow
from tests.test_correlator import alert

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def _new(title: str, notes: int = 0, audit: int = 1) -> IncidentUpdate:
    return IncidentUpdate(
        key=0, id=None, title=title, severity=Severity.WARNING, state="open",
        services=(title,), opened_at=T0, resolved_at=None,
        notes=tuple(TimelineNote(T0, "agent", f"open: {title}") for _ in range(notes)),
        audit=(("incident.open", "test"),) * audit)


def _titles(db: Database) -> dict[int, str]:
    with db.sessions() as session:
        return dict(session.execute(select(IncidentRow.id, IncidentRow.title)).all())


def test_new_incidents_get_the_ids_of_their_own_rows(runtime: Runtime) -> None:
    service = runtime.service
    first = service.save_incidents([_new("a"), _new("b"), _new("c")], actor="agent:test")
    with runtime.db.sessions() as session:  # the newest gone: SQLite hands its id out again
        session.execute(delete(IncidentRow).where(IncidentRow.id == first[-1].id))
        session.commit()
    existing = IncidentUpdate(key=0, id=first[0].id, title="a, updated", severity=Severity.CRITICAL,
                              state="open", services=("a",), opened_at=T0, resolved_at=None)
    saved = service.save_incidents([_new("d"), existing, _new("e", notes=2), _new("f")],
                                   actor="agent:test")
    assert [i.title for i in saved] == ["d", "a, updated", "e", "f"]
    assert _titles(runtime.db) == {first[0].id: "a, updated", first[1].id: "b",
                                   **{i.id: i.title for i in saved}}
    new_ids = [saved[0].id, saved[2].id, saved[3].id]
    assert new_ids == sorted(set(new_ids))
    assert [n.summary for n in service.incident_timeline(saved[2].id)] == ["open: e"] * 2
    assert service.incident_timeline(saved[3].id) == []
    opened = [e for e in service.audit_entries() if e.action == "incident.open"]
    assert [e.target for e in opened][-3:] == [f"incident:{i}" for i in
                                               (saved[0].id, saved[2].id, saved[3].id)]


def test_writers_opening_incidents_at_once_never_share_an_id(db_url: str) -> None:
    """Two consoles' correlators (each its own engine) storing batches at the same time."""
    Database(db_url).dispose()
    start = threading.Barrier(2)
    saved: dict[int, list[Any]] = {}
    errors: list[str] = []

    def write(writer: int) -> None:
        db = Database(db_url, migrate=False)
        try:
            service = WatchfloorService(db, EventBus(), SimClock(T0))
            start.wait(timeout=60)
            saved[writer] = [info for n in range(8) for info in service.save_incidents(
                [_new(f"w{writer}-{n}-{i}") for i in range(40)], actor=f"agent:w{writer}")]
        except BaseException:
            errors.append(traceback.format_exc())
        finally:
            db.dispose()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert errors == []
    db = Database(db_url, migrate=False)
    try:
        stored = _titles(db)
        with db.sessions() as session:
            assert AuditLog().verify(session).ok
    finally:
        db.dispose()
    infos = saved[0] + saved[1]
    assert len(stored) == len(infos) == 2 * 8 * 40
    assert {i.id: i.title for i in infos} == stored


def test_a_batch_is_split_into_runs_of_about_save_rows_rows() -> None:
    updates = [_new(f"u{i}", notes=i % 4) for i in range(40)] + [_new("big", notes=25)]
    chunks = list(_chunks(updates, 12))
    assert [u for chunk in chunks for u in chunk] == updates  # all of them, in order
    weights = [sum(1 + len(u.notes) + len(u.audit) for u in chunk) for chunk in chunks]
    assert all(w <= 12 for w in weights[:-1])
    assert chunks[-1] == [updates[-1]]  # more than a run's rows: a run of its own
    assert list(_chunks([], 12)) == []


def test_a_big_correlation_is_stored_in_bounded_transactions_each_audited(
        runtime: Runtime) -> None:
    """2,000 unrelated alerts: 2,000 incidents, each with its note and one audit record
    (6,000 rows), in transactions of at most SAVE_ROWS rows, never all in one."""
    agent = CorrelatorAgent(runtime.service, {})
    signals = [alert("A", f"svc-{n}", n / 100, instance=f"i{n}") for n in range(2000)]
    with runtime.db.sessions() as session:
        feed_before = session.scalar(select(func.count()).select_from(ChangeFeedRow))
    saved = agent.handle(signals, T0 + timedelta(minutes=30))
    assert len(saved) == 2000
    with runtime.db.sessions() as session:
        feed_rows = session.scalars(select(ChangeFeedRow).where(
            ChangeFeedRow.operation == "incident.open")).all()
        assert session.scalar(select(func.count()).select_from(ChangeFeedRow)) \
            == feed_before + len(feed_rows)
    assert len(feed_rows) == -(-2000 * 3 // SAVE_ROWS)  # one transaction per run
    opened = [e for e in runtime.service.audit_entries() if e.action == "incident.open"]
    assert [e.target for e in opened] == [f"incident:{i.id}" for i in saved]
    assert all(e.actor == "agent:correlator" for e in opened)
    assert runtime.service.verify_audit().ok

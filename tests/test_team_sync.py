"""Live sync and leadership between consoles (console/team_sync.py, console/leader.py):
a change committed in one Runtime is republished on another Runtime's bus, a rolled-back
one never is, a listener whose connection is killed catches up, and exactly one console
leads, on SQLite (polling, flock) and on a real PostgreSQL (NOTIFY, advisory lock)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from console.domain import AlertStatus, IncidentUpdate, Severity, Signal, SignalKind
from console.events import OpChanges, RemoteChange
from console.leader import Leadership, team_members
from console.runtime import Runtime
from console.storage.models import ChangeFeedRow
from console.team_sync import (
    ChangeFeed,
    FeedListener,
    infer_changes,
    prune_feed,
    signal_ranges,
    tag_operation,
)
from tests.waiting import wait_for


class Console:
    """One Runtime with a listener; `seen` holds the RemoteChanges its bus carried."""

    def __init__(self, url: str) -> None:
        self.runtime = Runtime(url)
        self.runtime.service.bootstrap_admin("alice")
        self.origin = ChangeFeed.install(self.runtime.db).origin
        self.seen: list[RemoteChange] = []
        self._lock = threading.Lock()
        self.runtime.bus.subscribe(RemoteChange, self._on_remote)
        self.listener = FeedListener(self.runtime.db, self.runtime.bus, self.origin,
                                     safety_s=30.0).start()

    def _on_remote(self, event: RemoteChange) -> None:
        with self._lock:
            self.seen.append(event)

    def operations(self) -> list[str]:
        with self._lock:
            return [e.operation for e in self.seen]

    def close(self) -> None:
        self.listener.stop()
        self.runtime.close()


@contextlib.contextmanager
def _pair(url: str) -> Iterator[tuple[Console, Console]]:
    consoles: list[Console] = []
    try:
        consoles.append(Console(url))
        consoles.append(Console(url))
        yield consoles[0], consoles[1]
    finally:
        for console in consoles:
            console.close()


@pytest.fixture
def two_consoles(tmp_path: Path) -> Iterator[tuple[Console, Console]]:
    """Two consoles on one SQLite file (SQLite's polled feed, whatever database the run
    is on: PostgreSQL has its own pair below)."""
    with _pair(f"sqlite:///{tmp_path / 'team.db'}") as pair:
        yield pair


@pytest.fixture
def pg_consoles(pg_url: str) -> Iterator[tuple[Console, Console]]:
    with _pair(pg_url) as pair:
        yield pair


def _feed_count(runtime: Runtime) -> int:
    with runtime.db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ChangeFeedRow)) or 0)


def _change_and_see(a: Console, b: Console) -> RemoteChange:
    committed = time.monotonic()
    a.runtime.service.set_autonomy_ceiling(2, as_user="alice", reason="sync test")
    wait_for(lambda: "autonomy.set_ceiling" in b.operations(), 5, "the change reached b")
    latency = time.monotonic() - committed
    event = next(e for e in b.seen if e.operation == "autonomy.set_ceiling")
    assert event.changes.settings
    assert event.changes.audit
    assert event.initiator == "alice"
    assert event.origin == a.origin
    assert latency < 1.0, f"republished {latency:.3f}s after the commit"
    # the console that made it heard it from its own runner, never again from the feed
    assert "autonomy.set_ceiling" not in a.operations()
    return event


def _rolled_back_never_appears(a: Console, b: Console) -> None:
    before = _feed_count(a.runtime)
    with a.runtime.db.sessions() as session:
        a.runtime.service.audit.append(session, actor="user:alice", action="policy.set",
                                       target="policy", reason="never committed")
        tag_operation(session, "policy.set", OpChanges(settings=True), "alice")
        session.rollback()
    assert _feed_count(a.runtime) == before
    # a later committed change arrives; the rolled-back one never came before it
    a.runtime.service.record(actor="user:alice", action="note.after_rollback")
    wait_for(lambda: "note.after_rollback" in b.operations(), 5)
    assert "policy.set" not in b.operations()
    assert a.runtime.service.verify_audit().ok


def test_a_change_in_one_console_is_republished_in_the_other_on_sqlite(
        two_consoles: tuple[Console, Console]) -> None:
    a, b = two_consoles
    assert not b.listener.postgres
    event = _change_and_see(a, b)
    assert event.seq > 0
    assert event.committed_at is not None


def test_a_rolled_back_change_never_appears_on_sqlite(
        two_consoles: tuple[Console, Console]) -> None:
    _rolled_back_never_appears(*two_consoles)


def test_a_change_in_one_console_is_republished_in_the_other_on_postgresql(
        pg_consoles: tuple[Console, Console]) -> None:
    a, b = pg_consoles
    assert b.listener.postgres
    wait_for(lambda: b.listener.connected, 5)
    # safety_s is 30 s in these consoles: arriving in under a second is the NOTIFY's work
    _change_and_see(a, b)


def test_a_rolled_back_change_never_appears_on_postgresql(
        pg_consoles: tuple[Console, Console]) -> None:
    _rolled_back_never_appears(*pg_consoles)


def test_incidents_and_agent_writes_are_in_the_feed_too(
        pg_consoles: tuple[Console, Console]) -> None:
    a, b = pg_consoles
    now = datetime.now(UTC)
    saved = a.runtime.service.save_incidents([IncidentUpdate(
        key=1, id=None, title="checkout errors", severity=Severity.CRITICAL, state="open",
        services=("checkout",), opened_at=now, resolved_at=None,
        audit=(("incident.open", "error rate over threshold"),))], actor="agent:correlator")
    seen = wait_for(lambda: [e for e in list(b.seen) if e.operation == "incident.open"], 5)
    assert seen[0].changes.incidents
    assert seen[0].changes.ids == (str(saved[0].id),)
    assert seen[0].initiator == "agent:correlator"


@pytest.mark.parametrize("pair", ["two_consoles", "pg_consoles"])
def test_stored_signals_are_in_the_feed_by_their_id_range(
        pair: str, request: pytest.FixtureRequest) -> None:
    # Not an operation and never audited: the leader's signals reach the other consoles
    # as a feed row naming exactly the ids it stored.
    a, b = request.getfixturevalue(pair)
    now = datetime.now(UTC)
    first = [Signal(source="test", kind=SignalKind.ALERT, name=f"A{n}", service="checkout",
                    severity=Severity.CRITICAL, status=AlertStatus.FIRING, at=now,
                    labels={"n": str(n)}) for n in range(3)]
    rows = _feed_count(a.runtime)
    assert a.runtime.service.store((), ()) == (0, 0)
    assert _feed_count(a.runtime) == rows  # nothing stored, nothing said
    assert a.runtime.service.store(first, ()) == (3, 0)
    seen = wait_for(lambda: [e for e in list(b.seen) if e.operation == "signals.store"], 10)
    [event] = seen
    assert event.changes.signals
    assert not event.changes.audit  # nobody re-reads the audit log for it
    [(low, high)] = signal_ranges(event.changes)
    read = b.runtime.service.signals_between(low, high)
    assert [s.name for _i, s in read] == ["A0", "A1", "A2"]
    assert [s.labels for _i, s in read] == [{"n": "0"}, {"n": "1"}, {"n": "2"}]
    # a range that a bad row makes huge is read to a bound: the newest, oldest first
    assert [s.name for _i, s in b.runtime.service.signals_between(0, 2**31 - 1, limit=2)] \
        == ["A1", "A2"]
    # a payload taken by the webhook receiver is in the feed the same way
    assert a.runtime.service.accept_payload("alertmanager", {"n": 1}, signals=first[:1])
    seen = wait_for(lambda: [e for e in list(b.seen) if e.operation == "signals.store"][1:],
                    10)
    [(low2, high2)] = signal_ranges(seen[0].changes)
    assert low2 == high2 > high


def test_the_listener_catches_up_after_its_connection_is_killed(
        pg_consoles: tuple[Console, Console], pg_server: Any) -> None:
    a, b = pg_consoles
    wait_for(lambda: b.listener.connected and b.listener.backend_pid(), 5)
    pid = b.listener.backend_pid()
    admin = pg_server.admin()
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    # committed while the listener is down (it backs off before reconnecting): their
    # notifications went to nobody, only the catch-up read can find them
    for n in range(5):
        a.runtime.service.record(actor="user:alice", action=f"note.while_down_{n}")
    wait_for(lambda: b.listener.connects >= 2, 10, "the listener reconnected")
    wait_for(lambda: all(f"note.while_down_{n}" in b.operations() for n in range(5)), 10)
    seqs = [e.seq for e in b.seen]
    assert seqs == sorted(seqs), "in order"
    assert len(seqs) == len(set(seqs)), "each once"
    assert b.listener.backend_pid() != pid


def test_old_feed_rows_are_pruned(two_consoles: tuple[Console, Console]) -> None:
    a, _b = two_consoles
    a.runtime.service.record(actor="user:alice", action="note.old")
    assert _feed_count(a.runtime) > 0
    stored = _feed_count(a.runtime)
    assert prune_feed(a.runtime.db, timedelta(days=7)) == 0
    assert prune_feed(a.runtime.db, timedelta(days=7),
                      now=datetime.now(UTC) + timedelta(days=8)) == stored
    assert _feed_count(a.runtime) == 0


def test_a_feed_row_names_signal_ranges_and_garbage_is_left_out() -> None:
    changes = OpChanges(signals=True, ids=(
        "signals:5-9", "signals:9-5", "signals:1-99999999999", "signals:x-3", "signals:7",
        "12", "signals:-3", "signals:3-3"))
    assert signal_ranges(changes) == [(5, 9), (3, 3)]


def test_audit_actions_name_what_changed() -> None:
    operation, changes, initiator = infer_changes([
        ("user:bob", "policy.decide", "recommendation:7"),
        ("system:lifecycle", "execution.succeeded", "execution:3")])
    assert (operation, initiator) == ("execution.succeeded", "system:lifecycle")
    assert changes.executions
    assert changes.recommendations
    assert changes.audit
    assert not changes.incidents
    assert changes.ids == ("7", "3")


# --- leadership ---------------------------------------------------------------------------


class Member:
    def __init__(self, url: str, name: str) -> None:
        self.runtime = Runtime(url)
        self.events: list[str] = []
        self.leadership = Leadership(self.runtime.db, name, user=name, interval=0.2,
                                     on_gained=lambda: self.events.append("gained"),
                                     on_lost=lambda: self.events.append("lost"))

    def close(self) -> None:
        self.leadership.stop()
        self.runtime.close()


@pytest.fixture
def members() -> Iterator[Callable[[str, str], Member]]:
    made: list[Member] = []

    def make(url: str, name: str) -> Member:
        member = Member(url, name)
        made.append(member)
        return member

    yield make
    for member in made:
        member.close()


def _one_leads_then_hands_over(first: Member, second: Member,
                               break_first: Callable[[], None]) -> None:
    first.leadership.start()
    wait_for(lambda: first.leadership.leading, 5)
    second.leadership.start()
    wait_for(second.leadership.ready.is_set, 5)
    assert not second.leadership.leading
    wait_for(lambda: len(team_members(first.runtime.db)) == 2, 5)
    leader = first.leadership.leader()
    assert leader is not None
    assert leader.console_id == "first"
    assert {m.role for m in team_members(first.runtime.db)} == {"leader", "follower"}
    break_first()
    wait_for(lambda: second.leadership.leading, 10, "the second took over")
    assert not first.leadership.leading, "never two leaders"
    wait_for(lambda: getattr(second.leadership.leader(), "console_id", "") == "second", 5)


def test_exactly_one_leads_and_a_broken_connection_hands_over_on_postgresql(
        pg_url: str, pg_server: Any, members: Callable[[str, str], Member]) -> None:
    first, second = members(pg_url, "first"), members(pg_url, "second")

    def kill_first_connection() -> None:
        pid = first.leadership.backend_pid()
        assert pid is not None
        pg_server.admin().execute("SELECT pg_terminate_backend(%s)", (pid,))
        # it must stop leading at once, not merely be replaced
        wait_for(lambda: not first.leadership.leading, 5, "the first stepped down")

    _one_leads_then_hands_over(first, second, kill_first_connection)
    # the callbacks run on the leadership's own worker thread, just after the flag turns
    wait_for(lambda: first.events == ["gained", "lost"], 5, "the first was told, in order")
    wait_for(lambda: second.events == ["gained"], 5, "the second was told")


def test_one_console_leads_a_shared_sqlite_file(tmp_path: Path,
                                                members: Callable[[str, str], Member]) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    first, second = members(url, "first"), members(url, "second")
    _one_leads_then_hands_over(first, second, first.leadership.stop)
    wait_for(lambda: second.events == ["gained"], 5, "the second was told")
    assert first.events == ["gained"], "a console that leaves is not told it lost"

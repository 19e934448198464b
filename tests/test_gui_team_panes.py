"""The window's side of team mode, without a second process: the status bar says which
console leads, and what another console stored (read when its RemoteChange comes, as
the feed listener publishes it) reaches the incident and audit models, in seq order,
even when this console appended a newer record of its own first."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from console.events import LeadershipChanged, OpChanges, RemoteChange
from console.runtime import Runtime, ScenarioDriver

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


def test_the_status_bar_says_who_leads_and_tells_when_it_changes(
        runtime: Any, console: Any, qtbot: Any) -> None:
    window = console(None)
    status, bus = window.status, runtime.bus
    assert not status.team_label.isVisible()  # until the console has joined its team
    bus.publish(LeadershipChanged("me", leading=False, leader="bob@ws2",
                                  members=("bob@ws2", "alice@ws1", "carol@ws3")))
    assert status.team_label.isVisible()
    assert status.team_label.text() == "Agents: bob@ws2 \u00b7 3 consoles"
    assert "bob@ws2, alice@ws1, carol@ws3" in status.team_label.toolTip()
    assert status.team_label.property("level") == "info"
    bus.publish(LeadershipChanged("me", leading=False, leader="", members=("alice@ws1",)))
    assert status.team_label.text() == "Agents: no leader yet"
    assert status.team_label.property("level") == "error"
    assert status.notice == "The team has no leader at the moment"
    bus.publish(LeadershipChanged("me", leading=True, leader="alice@ws1",
                                  members=("alice@ws1",)))
    assert status.team_label.text() == "Agents: this console"
    assert status.notice == "This console leads the team now: it runs the agents"
    bus.publish(LeadershipChanged("me", leading=True, leader="alice@ws1",
                                  members=("alice@ws1", "bob@ws2")))
    assert status.team_label.text() == "Agents: this console \u00b7 2 consoles"
    assert status.notice == "This console leads the team now: it runs the agents"  # no new


def test_the_team_shows_at_once_in_the_frame_that_was_on_screen_before_the_panes(
        runtime: Any, qtbot: Any, tmp_path: Any) -> None:
    # console.app.main() shows its frame first and installs the panes into it later; the
    # status bar then must not wait for a turn of the event loop to be shown.
    from PySide6.QtCore import QSettings

    from console.app import build_window, recording_window
    from widgets.main_window import MainWindow

    frame = MainWindow(settings=QSettings(str(tmp_path / "wf.ini"),
                                          QSettings.Format.IniFormat), title="t",
                       make_recording_window=recording_window)
    qtbot.addWidget(frame)
    frame.show()
    window = build_window(runtime, None, "alice", window=frame,
                          settings=QSettings(str(tmp_path / "wf.ini"),
                                             QSettings.Format.IniFormat))
    assert window is frame
    runtime.bus.publish(LeadershipChanged("me", leading=False, leader="bob@ws2",
                                          members=("bob@ws2", "alice@ws1")))
    assert window.status.isVisible()
    assert window.status.team_label.isVisible()


def test_another_consoles_incident_and_records_reach_the_models_in_order(
        runtime: Any, console: Any, qtbot: Any, db_url: str, qtmodeltester: Any) -> None:
    window = console(None)
    incidents = window.incidents_pane.model
    audit, browser = window.audit_pane.model, window.audit_browser.model
    assert incidents.rowCount() == 0
    with Runtime(db_url) as other:  # another console on the same database, leading
        driver = ScenarioDriver(other, "bad-deploy", seed=7)
        while not other.service.incidents():
            driver.step(15.0)
        opened = other.service.incidents()[0]
    QApplication.processEvents()
    assert incidents.rowCount() == 0  # nothing of it here until the feed says so
    # This console appends a record of its own first: newer than the other's.
    mine = runtime.service.record(actor="user:alice", action="note.test", target="x")
    assert audit.entry_at(0).seq == mine.seq
    theirs = [e for e in runtime.service.audit_entries() if e.seq < mine.seq]
    assert theirs
    runtime.bus.publish(RemoteChange(
        "incident.open", OpChanges(incidents=True, audit=True, ids=(str(opened.id),)),
        "agent:correlator", origin="other-console", seq=1))
    qtbot.waitUntil(lambda: incidents.rowCount() == 1, timeout=5000)
    assert incidents.incident_at(0).id == opened.id
    assert incidents.incident_at(0).services == opened.services
    for model in (audit, browser):
        qtbot.waitUntil(lambda m=model: m.rowCount() == len(theirs) + 1, timeout=5000)
        seqs = [model.entry_at(r).seq for r in range(model.rowCount())]
        assert seqs == sorted({e.seq for e in theirs} | {mine.seq}, reverse=True)
        qtmodeltester.check(model)
    qtmodeltester.check(incidents)
    # The same change told twice (a catch-up after a reconnect) adds nothing.
    runtime.bus.publish(RemoteChange(
        "incident.open", OpChanges(incidents=True, audit=True, ids=(str(opened.id),)),
        "agent:correlator", origin="other-console", seq=1))
    qtbot.wait(300)
    assert incidents.rowCount() == 1
    assert audit.rowCount() == len(theirs) + 1


def test_the_signals_another_console_stored_reach_the_signal_panes_once(
        runtime: Any, console: Any, qtbot: Any, db_url: str, qtmodeltester: Any) -> None:
    from datetime import UTC, datetime

    from console.domain import AlertStatus, Severity, Signal, SignalKind

    window = console(None)
    signals, status = window.signals_pane.model, window.status
    assert signals.rowCount() == 0
    total = status.signal_total
    now = datetime.now(UTC)
    batch = [Signal(source="test", kind=SignalKind.ALERT, name=f"Alert{n}", service="checkout",
                    severity=Severity.CRITICAL, status=AlertStatus.FIRING, at=now,
                    labels={"n": str(n)}) for n in range(4)]
    with Runtime(db_url) as other:  # another console on the same database, leading
        other.service.store(batch, ())
        ids = [i for i, _s in other.service.signals_between(0, 2**31 - 1)]
    QApplication.processEvents()
    assert signals.rowCount() == 0  # nothing of it here until the feed says so
    # Two writers' rows interleave: the first range also takes in the second's ids.
    change = RemoteChange("signals.store", OpChanges(
        signals=True, ids=(f"signals:{ids[0]}-{ids[-1]}",)), "system",
        origin="other-console", seq=1)
    runtime.bus.publish(change)
    qtbot.waitUntil(lambda: signals.rowCount() == 4, timeout=5000)
    assert [signals.signal_at(r).name for r in range(4)] == \
        ["Alert3", "Alert2", "Alert1", "Alert0"]  # newest on top, as local ones are
    assert status.signal_total == total + 4
    qtmodeltester.check(signals)
    runtime.bus.publish(RemoteChange("signals.store", OpChanges(
        signals=True, ids=(f"signals:{ids[2]}-{ids[3]}",)), "system",
        origin="other-console", seq=2))  # told again (or overlapping): nothing twice
    qtbot.wait(300)
    assert signals.rowCount() == 4
    assert status.signal_total == total + 4

"""The smaller things that hurt at 3 a.m. (defect 11), each over the real core: the
audit browser's verified count stays honest as the chain grows, Ctrl+Q closes a review
window, an action's "Took" stays what the action took after a later rollback, and the
maturity wizard says what was answered in words and replays a class that has runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from console.runtime import ScenarioDriver
from tests.test_assess_wizard import click, history, wizard  # noqa: F401 (fixtures)
from tests.test_gui_audit_browser import export, fill, open_review
from widgets.audit_browser import AuditBrowser
from widgets.bridge import BusBridge
from widgets.history_model import ExecutionTableModel

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


def test_the_verified_count_says_what_the_verification_covered(runtime: Any,
                                                                qtbot: Any) -> None:
    """It read "42 records verified" beside 43 records."""
    fill(runtime)
    bridge = BusBridge(runtime.bus)
    browser = AuditBrowser.for_service(runtime.service, bridge)
    bridge.setParent(browser)
    qtbot.addWidget(browser)
    browser.show()
    try:
        with qtbot.waitSignal(browser.verified, timeout=TIMEOUT_MS):
            browser.verify_chain()
        verified = browser.last_result.records
        assert f"Chain holds: {verified:,} records verified" in browser.status_label.text()
        runtime.service.record(actor="user:alice", action="note.add", target="incident:7",
                               reason="handed over to the day shift")
        qtbot.waitUntil(lambda: browser.model.rowCount() == verified + 1, timeout=TIMEOUT_MS)
        assert browser.status_label.text() == (
            f"\u2714 Chain held at {verified:,} records; 1 newer record not verified yet "
            "(Verify chain)")
        with qtbot.waitSignal(browser.verified, timeout=TIMEOUT_MS):
            browser.verify_chain()
        assert f"Chain holds: {verified + 1:,} records verified" in \
            browser.status_label.text()
    finally:
        browser.shutdown()
        bridge.close()


def test_ctrl_q_closes_the_review_window(runtime: Any, qtbot: Any, tmp_path: Path) -> None:
    window = open_review(export(runtime, tmp_path), qtbot)
    try:
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=TIMEOUT_MS)
        qtbot.keyClick(window.browser.table, Qt.Key.Key_Q,
                       Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT_MS)
    finally:
        window.close()


def test_an_actions_took_stays_what_it_took_after_a_later_rollback(runtime: Any,
                                                                   qtbot: Any) -> None:
    """It jumped from 5 s to 5 min 35 s once the action was rolled back."""
    driver = ScenarioDriver(runtime, "traffic-surge", seed=7, agents=True)
    engine = runtime.service.engine
    while not engine.recommendations(("pending",)) and driver.elapsed < 3600:
        driver.step(30)
    rec = engine.recommendations(("pending",))[0]
    engine.approve(rec.id, as_user="alice", preview_hash=rec.preview_hash)
    execution = engine.executions()[0]
    while engine.execution(execution.id).state in ("intent", "running", "validating") \
            and driver.elapsed < 7200:
        driver.step(15)
    done = engine.execution(execution.id)
    assert done.state == "succeeded"
    model = ExecutionTableModel([done])
    took = model.index(0, ExecutionTableModel.TOOK).data()
    assert took

    driver.step(300)  # five minutes on, someone rolls it back
    engine.rollback(execution.id, as_user="alice")
    rolled = engine.execution(execution.id)
    assert rolled.state == "rolled_back"
    assert (rolled.finished_at - done.finished_at).total_seconds() >= 300
    model = ExecutionTableModel([rolled])
    assert model.index(0, ExecutionTableModel.TOOK).data() == took


def test_the_wizard_says_what_was_answered_in_words_and_replays_a_class_with_runs(
        wizard: Any, qtbot: Any) -> None:
    """It said "you claimed 3" when the answer was "not sure", showed the internal id
    l0_expects_mttr, and offered first a class that never ran for shadow replay."""
    from PySide6.QtWidgets import QComboBox, QLabel, QRadioButton

    claimed = wizard.findChild(QComboBox, "claimedLevel")
    assert claimed.currentData() is None  # not sure
    click(qtbot, wizard, "assessNext")
    model = wizard.assessor.model
    for page in wizard.question_pages:
        for q in model.questions_of(page.level):
            value = "yes" if q.id == "l0_expects_mttr" else "no"
            qtbot.mouseClick(wizard.findChild(QRadioButton, f"answer_{q.id}_{value}"),
                             Qt.MouseButton.LeftButton)
        click(qtbot, wizard, "assessNext")
    qtbot.waitUntil(wizard.evidence_page.isComplete, timeout=TIMEOUT_MS)
    click(qtbot, wizard, "assessNext")
    assert wizard.currentPage() is wizard.placement_page
    assert "claimed" not in wizard.findChild(QLabel, "placementLevel").text()
    assert "You claim" not in wizard.findChild(QLabel, "placementReasons").text()
    traps = wizard.findChild(QLabel, "placementTraps").text()
    assert "l0_expects_mttr" not in traps
    assert "shorten time to resolve" in traps
    shadow_class = wizard.findChild(QComboBox, "shadowClass")
    runs = {c.action_class: sum(c.runs.values())
            for c in wizard.assessment.evidence.classes}
    assert runs.get(shadow_class.currentData(), 0) > 0
    assert "runs recorded" in shadow_class.currentText()


def test_outcomes_count_the_approvals_of_a_session_that_ran_ahead_of_the_clock(
        tmp_path: Path, qtbot: Any) -> None:
    """Outcomes said "answered in — on average" while the wizard reported an 8-minute
    approval wait: a scenario played faster than real time had left its records ahead of
    the wall clock, and the next start's clock began before them."""
    from datetime import UTC, datetime, timedelta

    from console.app import _open_runtime
    from console.clock import SimClock
    from console.kpis import Kpis
    from console.runtime import Runtime
    from widgets.outcomes_pane import OutcomesPane

    db_url = f"sqlite:///{tmp_path / 'night.db'}"
    ahead = Runtime(db_url, clock=SimClock(datetime.now(UTC) + timedelta(hours=3)))
    try:
        ahead.service.bootstrap_admin("alice")
        engine = ahead.service.engine
        rec_id = engine.propose("restart-service", {"service": "cart"},
                                requester="agent:recommender", confidence=0.8)
        ahead.clock.advance(480)  # the operator answers eight minutes later
        rec = engine.recommendation(rec_id)
        engine.approve(rec_id, as_user="alice", preview_hash=rec.preview_hash)
        newest = ahead.clock.now()
    finally:
        ahead.close()

    runtime, _am, _prom = _open_runtime(db_url, None, None, None)  # the next start
    try:
        assert runtime.clock.now() > newest  # time on one database only moves forward
        pane = OutcomesPane(Kpis(runtime.service), None, debounce_ms=10)
        qtbot.addWidget(pane)
        with qtbot.waitSignal(pane.reportShown, timeout=TIMEOUT_MS):
            pane.refresh()
        assert pane.tiles["approvals"].detail.text() == "answered in 8m 00s on average"
        pane.shutdown()
    finally:
        runtime.close()

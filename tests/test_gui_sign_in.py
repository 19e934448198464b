"""The sign-in dialog over the real core: signing in with Enter, the error and the wait
after a failure, first run's administrator, the start-up rule for $WATCHFLOOR_USER, and
four eyes in the recommendation queue: a second person signs in and the approval is
theirs. Every dialog is closed by the test (the leak check fails otherwise)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from console.auth import WRONG, Authenticator, ScryptParams
from console.runtime import ScenarioDriver
from widgets.bridge import BusBridge
from widgets.ops import Worker
from widgets.recommendation_model import RecommendationTableModel
from widgets.recommendations_pane import RecommendationsPane
from widgets.sign_in import FIRST_RUN, SECOND_PERSON, SIGN_IN, SignInDialog, sign_in_at_start

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000
FAST = ScryptParams(ln=10)
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-22", "carol": "carol-pass-333"}


@pytest.fixture
def people(runtime: Any) -> Authenticator:
    """alice (admin), bob (operator), carol (approver), each with a password; victor
    (viewer) without."""
    service = runtime.service
    service._auth = auth = Authenticator(service, workstation="console-1", params=FAST)
    for name, role in (("bob", "operator"), ("carol", "approver"), ("victor", "viewer")):
        service.add_user(name, role, as_user="alice")
    auth.create_first_admin("alice", PASSWORDS["alice"], PASSWORDS["alice"])
    for name in ("bob", "carol"):
        auth.set_password(name, PASSWORDS[name], as_user="alice",
                          current_password=PASSWORDS["alice"])
    return auth


def _type(qtbot: Any, dialog: SignInDialog, name: str, password: str,
          confirm: str | None = None) -> None:
    dialog.user.clear()
    qtbot.keyClicks(dialog.user, name)
    qtbot.keyClicks(dialog.password, password)
    if confirm is not None:
        qtbot.keyClicks(dialog.confirm, confirm)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)  # Enter submits


def test_the_dialog_signs_in_with_enter(people: Authenticator, qtbot: Any) -> None:
    dialog = SignInDialog(people, worker=Worker(), name="bob")
    seen: list[Any] = []
    dialog.signedIn.connect(seen.append)
    dialog.open()
    try:
        assert dialog.confirm.isHidden()
        assert dialog.password.echoMode() == dialog.password.EchoMode.Password
        qtbot.keyClicks(dialog.password, PASSWORDS["bob"])
        with qtbot.waitSignal(dialog.finished, timeout=TIMEOUT_MS):
            qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert [(who.name, who.role) for who in seen] == [("bob", "operator")]
    finally:
        dialog.close()


def test_a_wrong_password_shows_the_error_and_the_wait(people: Authenticator,
                                                      qtbot: Any) -> None:
    dialog = SignInDialog(people, worker=Worker())
    dialog.open()
    try:
        _type(qtbot, dialog, "carol", "not-her-password")
        assert WRONG in dialog.message.text()
        assert "Wait" in dialog.message.text()
        assert not dialog.submit.isEnabled()
        assert dialog.password.text() == ""  # never kept after a try
        assert dialog.isVisible()
        qtbot.waitUntil(lambda: dialog.submit.isEnabled(), timeout=TIMEOUT_MS)  # 0.5 s
        assert "try again now" in dialog.message.text()
        _type(qtbot, dialog, "nobody", "whatever-x")  # the same answer for a stranger
        assert WRONG in dialog.message.text()
    finally:
        dialog.close()
    assert [e.reason for e in people.service.audit_entries()
            if e.action == "auth.sign_in_failed"] == ["wrong password", "unknown user"]


def test_first_run_asks_nothing_and_require_passwords_creates_the_administrator(
        runtime: Any, qtbot: Any) -> None:
    runtime.service._auth = Authenticator(runtime.service, params=FAST)
    signed: list[str] = []
    # Nobody has a password: the local login is signed in without a question.
    assert sign_in_at_start(runtime.service, signed.append, environ={}) is None
    assert len(signed) == 1
    signed.clear()
    # Settings -> Users -> Require passwords opens this dialog.
    dialog = SignInDialog(runtime.service.auth, worker=Worker(), mode=FIRST_RUN,
                          name="alice")
    dialog.signedIn.connect(lambda who: signed.append(who.name))
    dialog.open()
    try:
        assert dialog.mode == FIRST_RUN
        assert dialog.windowTitle() == "Create the administrator"
        assert not dialog.confirm.isHidden()
        assert dialog.user.text()  # the local login, to start from
        _type(qtbot, dialog, "root", "root-pass-1", "root-pass-2")
        assert "differ" in dialog.message.text()
        assert signed == []
        _type(qtbot, dialog, "root", "root-pass-1", "root-pass-1")
        assert signed == ["root"]
        assert not dialog.isVisible()
    finally:
        dialog.close()
    assert runtime.service.role_of("root") == "admin"
    assert runtime.service.auth.passwords_in_use()


def test_watchfloor_user_signs_in_as_before_only_while_nobody_has_a_password(
        runtime: Any, qtbot: Any) -> None:
    signed: list[str] = []
    assert sign_in_at_start(runtime.service, signed.append,
                            environ={"WATCHFLOOR_USER": "alice"}) is None
    assert signed == ["alice"]
    runtime.service._auth = auth = Authenticator(runtime.service, params=FAST)
    auth.create_first_admin("alice", PASSWORDS["alice"], PASSWORDS["alice"])
    cancelled: list[bool] = []
    dialog = sign_in_at_start(runtime.service, signed.append,
                              on_cancelled=lambda: cancelled.append(True),
                              environ={"WATCHFLOOR_USER": "alice"})
    assert dialog is not None
    try:
        assert dialog.mode == SIGN_IN
        assert dialog.user.text() == "alice"
        assert dialog.password.hasFocus() or not dialog.isActiveWindow()
        dialog.cancel.click()
    finally:
        dialog.close()
    assert cancelled == [True]
    assert signed == ["alice"]


# --- the recommendation queue ---------------------------------------------------------


@pytest.fixture
def estate(runtime: Any) -> ScenarioDriver:
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    return driver


def _queue(runtime: Any, user: str, qtbot: Any) -> RecommendationsPane:
    engine = runtime.service.engine
    bridge = BusBridge(runtime.bus)
    pane = RecommendationsPane(RecommendationTableModel(engine.recommendations()),
                               engine=engine, user=user, bridge=bridge, worker=Worker())
    bridge.setParent(pane)  # lives as long as the pane
    pane.resize(1000, 600)
    pane.show()
    return pane


def _close(pane: RecommendationsPane) -> None:
    for dialog in (pane.second, pane.dialog):
        if dialog is not None:
            dialog.close()
    pane.close()
    for bridge in pane.findChildren(BusBridge):
        bridge.close()
    pane.deleteLater()


def test_a_second_person_signs_in_and_approves_a_four_eyes_recommendation(
        runtime: Any, people: Authenticator, estate: ScenarioDriver, qtbot: Any,
        qtmodeltester: Any) -> None:
    engine = runtime.service.engine
    estate.player.estate.deploy("payments", "v2", author="ci")
    rec_id = engine.propose("rollback-deploy", {"service": "payments"}, requester="user:bob")
    pane = _queue(runtime, "bob", qtbot)
    try:
        qtmodeltester.check(pane.model)
        qtbot.waitUntil(lambda: pane.model.standing_of(rec_id) is not None,
                        timeout=TIMEOUT_MS)
        assert pane.select_recommendation(rec_id)
        other = pane.other_button
        assert other.objectName() == "approveAsOtherButton"
        qtbot.waitUntil(other.isVisible, timeout=TIMEOUT_MS)
        assert pane.approve_button.isEnabled()  # bob may approve, but not alone
        qtbot.mouseClick(other, Qt.MouseButton.LeftButton)
        dialog = pane.second
        assert dialog is not None
        assert dialog.mode == SECOND_PERSON
        assert dialog.isVisible()
        _type(qtbot, dialog, "bob", PASSWORDS["bob"])  # the requester is not a second pair
        assert "second person" in dialog.message.text()
        assert dialog.password.text() == ""
        _type(qtbot, dialog, "carol", PASSWORDS["carol"])
        qtbot.waitUntil(lambda: "as carol" in pane.message.text(), timeout=TIMEOUT_MS)
        assert pane.second is None
        rec = engine.recommendation(rec_id)
        assert rec is not None
        assert rec.state in ("queued", "executing", "executed")
        assert ("carol", "approver") in rec.approvals
        approvals = [e for e in runtime.service.audit_entries()
                     if e.action == "recommendation.approve"]
        assert [(e.actor, e.decision) for e in approvals] == [("user:carol", "allow")]
        sign_ins = [e for e in runtime.service.audit_entries() if e.action == "auth.sign_in"]
        assert sign_ins[-1].actor == "user:carol"
        assert "four eyes" in sign_ins[-1].inputs["purpose"]
        qtmodeltester.check(pane.model)
    finally:
        _close(pane)


def test_a_viewer_sees_approve_disabled_and_may_call_a_second_person(
        runtime: Any, people: Authenticator, estate: ScenarioDriver, qtbot: Any) -> None:
    engine = runtime.service.engine
    rec_id = engine.propose("scale-out", {"service": "cart", "count": 1},
                            requester="agent:recommender", confidence=0.9)
    pane = _queue(runtime, "victor", qtbot)
    try:
        qtbot.waitUntil(lambda: pane.model.standing_of(rec_id) is not None,
                        timeout=TIMEOUT_MS)
        assert pane.select_recommendation(rec_id)
        assert not pane.approve_button.isEnabled()
        assert not pane.reject_button.isEnabled()
        assert not pane.can_decide
        assert "viewer" in pane.approve_button.toolTip()
        qtbot.waitUntil(pane.other_button.isVisible, timeout=TIMEOUT_MS)
        qtbot.mouseClick(pane.other_button, Qt.MouseButton.LeftButton)
        assert pane.second is not None
        _type(qtbot, pane.second, "bob", PASSWORDS["bob"])
        qtbot.waitUntil(lambda: "as bob" in pane.message.text(), timeout=TIMEOUT_MS)
        assert ("bob", "operator") in engine.recommendation(rec_id).approvals  # type: ignore[union-attr]
    finally:
        _close(pane)


def test_an_operator_approving_an_agents_medium_risk_needs_nobody_else(
        runtime: Any, people: Authenticator, estate: ScenarioDriver, qtbot: Any) -> None:
    engine = runtime.service.engine
    rec_id = engine.propose("scale-out", {"service": "cart", "count": 1},
                            requester="agent:recommender", confidence=0.9)
    pane = _queue(runtime, "bob", qtbot)
    try:
        qtbot.waitUntil(lambda: pane.model.standing_of(rec_id) is not None,
                        timeout=TIMEOUT_MS)
        assert pane.select_recommendation(rec_id)
        assert pane.approve_button.isEnabled()
        assert not pane.other_button.isVisible()
    finally:
        _close(pane)

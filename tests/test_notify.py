"""What the console notifies about (Qt-free rules), and the notifier that shows it: one
notification per serious incident, not per alert; approvals only for who may give them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from console.domain import IncidentInfo, IncidentUpdate, Recommendation, Severity
from console.notify_rules import NotifyRules, may_approve

NOW = datetime(2024, 5, 1, 2, 15, tzinfo=UTC)


def incident(inc_id: int = 1, severity: Severity = Severity.CRITICAL, state: str = "open",
             services: tuple[str, ...] = ("checkout", "cart", "frontend", "payments")
             ) -> IncidentInfo:
    return IncidentInfo(inc_id, "Error rate on checkout, cart and frontend", severity, state,
                        services, NOW)


def rec(rec_id: int = 1, *, risk: str = "medium", requester: str = "agent:recommender",
        state: str = "pending", approvals: tuple[tuple[str, str], ...] = (),
        expires: datetime | None = NOW + timedelta(hours=1)) -> Recommendation:
    return Recommendation(id=rec_id, runbook_id="rollback-deploy",
                          action_class="deploy_rollback", target="payments", params={},
                          preview={"summary": "Roll back payments to v41"}, preview_hash="h",
                          confidence=0.8, explanation="", state=state, requester=requester,
                          risk=risk, autonomous=False, created_at=NOW, expires_at=expires,
                          incident_id=7, approvals=approvals)


def test_one_notice_per_incident_however_many_alerts_join() -> None:
    rules = NotifyRules("alice", "operator")
    first = rules.incidents([incident()])
    assert [n.key for n in first] == ["incident:1"]
    notice = first[0]
    assert notice.title == "CRITICAL incident #1"
    assert notice.message == ("Error rate on checkout, cart and frontend\n"
                              "checkout, cart, frontend (+1)")
    assert (notice.kind, notice.ref, notice.severity) == ("incident", "incident:1", "critical")
    for _ in range(340):  # every alert that joins republishes the incident
        assert rules.incidents([incident()]) == []
    assert rules.incidents([incident(state="resolved")]) == []
    assert rules.incidents([incident()]) == []  # reopened: still the same incident


def test_only_serious_open_incidents_and_escalations() -> None:
    rules = NotifyRules("alice", "operator")
    assert rules.incidents([incident(2, Severity.WARNING), incident(3, Severity.INFO),
                            incident(4, state="resolved")]) == []
    assert [n.key for n in rules.incidents([incident(2, Severity.CRITICAL)])] == \
        ["incident:2"]  # a warning that turned critical is announced then
    lenient = NotifyRules("alice", "operator", min_severity=Severity.WARNING)
    assert [n.severity for n in lenient.incidents([incident(5, Severity.WARNING)])] == \
        ["warning"]


def test_approvals_only_for_those_who_may_give_them() -> None:
    medium, high = rec(1), rec(2, risk="high", requester="user:carol")
    assert may_approve(medium, "bob", "operator")
    assert not may_approve(medium, "victor", "viewer")
    assert not may_approve(medium, "ghost", None)
    assert not may_approve(high, "bob", "operator")  # high risk: an approver
    assert may_approve(high, "dave", "approver")
    assert not may_approve(high, "carol", "approver")  # not the one who asked for it
    assert may_approve(high, "carol2", "admin")
    assert not may_approve(replace(medium, approvals=(("bob", "operator"),)), "bob",
                           "operator")  # already approved it
    assert may_approve(replace(medium, approvals=(("dave", "approver"),)), "bob", "operator")


def test_approval_notices_once_each_and_never_for_closed_or_expired() -> None:
    rules = NotifyRules("dave", "approver")
    recs = [rec(1), rec(2, risk="high"), rec(3, state="executed"),
            rec(4, expires=NOW - timedelta(seconds=1)), rec(5, state="rejected")]
    notices = rules.approvals(recs, NOW)
    assert [n.key for n in notices] == ["recommendation:1", "recommendation:2"]
    assert notices[1].title == "Approval waiting for incident #7"
    assert notices[1].message == "Roll back payments to v41 on payments (high risk, " \
        "confidence 0.80)"
    assert notices[1].severity == "critical"
    assert notices[0].severity == "warning"
    assert rules.approvals(recs, NOW) == []
    viewer = NotifyRules("victor", "viewer")
    assert viewer.approvals(recs, NOW) == []
    viewer.set_role("operator")  # promoted: the medium-risk one is theirs to approve now
    assert [n.key for n in viewer.approvals(recs, NOW)] == ["recommendation:1"]


def test_prime_swallows_what_was_there_when_the_console_opened() -> None:
    rules = NotifyRules("dave", "approver")
    rules.prime([incident(1)], [rec(1)], NOW)
    assert rules.incidents([incident(1), incident(9)])[0].key == "incident:9"
    assert [n.key for n in rules.approvals([rec(1), rec(2)], NOW)] == ["recommendation:2"]


# --- the notifier widget -------------------------------------------------------------


@pytest.fixture
def notifier(runtime: Any, qtbot: Any) -> Iterator[tuple[Any, list[tuple[str, bool]]]]:
    from widgets.bridge import BusBridge
    from widgets.notifications import DesktopNotifier

    service = runtime.service
    service.add_user("dave", "approver", as_user="alice")
    bridge = BusBridge(runtime.bus)
    shown: list[tuple[str, bool]] = []

    def sink(message: str, *, error: bool = False) -> None:
        shown.append((message, error))

    widget = DesktopNotifier(rules=NotifyRules("dave", service.role_of("dave")), bridge=bridge,
                             pending=lambda: service.engine.recommendations(("pending",)),
                             sink=sink, now=runtime.clock.now, role_of=service.role_of)
    yield widget, shown
    widget.shutdown()
    bridge.close()


def test_notifier_falls_back_to_the_status_sink_once_per_incident(
        notifier: tuple[Any, list[tuple[str, bool]]], runtime: Any) -> None:
    widget, shown = notifier
    assert not widget.uses_tray  # offscreen: no system tray, the status bar shows it
    service = runtime.service
    update = IncidentUpdate(1, None, "Error rate on checkout", Severity.CRITICAL, "open",
                            ("checkout", "cart"), runtime.clock.now(), None)
    saved = service.save_incidents([update], actor="agent:correlator")
    service.announce_incidents(saved)
    for _ in range(20):  # alerts keep joining it
        service.announce_incidents(service.save_incidents(
            [replace(update, id=saved[0].id)], actor="agent:correlator"))
    assert shown == [(f"CRITICAL incident #{saved[0].id}: Error rate on checkout "
                      "checkout, cart", True)]


def test_notifier_announces_an_approval_waiting_on_this_user(
        notifier: tuple[Any, list[tuple[str, bool]]], runtime: Any, qtbot: Any) -> None:
    widget, shown = notifier
    with qtbot.waitSignal(widget.notified, timeout=10_000) as blocker:
        rec_id = runtime.service.engine.propose("rollback-deploy", {"service": "payments"},
                                                requester="agent:recommender",
                                                confidence=0.8)
    notice = blocker.args[0]
    assert notice.key == f"recommendation:{rec_id}"
    assert shown[-1] == ("Approval waiting: Roll back payments to its previous version or "
                         "configuration on payments (high risk, confidence 0.80)", True)
    with qtbot.assertNotEmitted(widget.notified, wait=300):  # announced once
        runtime.service.add_user("erin", "operator", as_user="alice")
    with qtbot.waitSignal(widget.noticeClicked) as clicked:
        widget._on_tray_message_clicked()
    assert clicked.args == ["recommendation", str(rec_id)]

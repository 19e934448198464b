"""The audit browser: filters, follow, verification with the first bad record shown,
signed export, and the offline review of a bundle (also through `watchfloor review`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QFileDialog
from sqlalchemy import text

from console import review_cli
from console.audit import build_bundle, write_bundle
from console.audit_bundle_verify import verify_stream_bundle
from console.audit_bundle_read import BundleError, review_bundle
from widgets.audit_browser import AuditBrowser
from widgets.audit_model import links_of
from widgets.audit_review import SIGNATURE_PROBLEM, ReviewWindow, open_review_window
from widgets.bridge import BusBridge

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


def fill(runtime: Any) -> None:
    """A small night: people, an incident, a recommendation decided, a kill switch."""
    service = runtime.service
    service.add_user("bob", "operator", as_user="alice")
    for minutes, (actor, action, target, reason, inputs) in enumerate([
        ("agent:correlator", "incident.open", "incident:7", "340 alerts on checkout",
         {"services": ["checkout", "cart"]}),
        ("agent:recommender", "recommendation.create", "recommendation:3",
         "roll back payments to v41", {"runbook": "rollback-deploy", "incident_id": 7}),
        ("agent:recommender", "recommendation.diagnosis", "recommendation:3",
         "bad deploy of payments (0.82)", {"incident": 7}),
        ("system:lifecycle", "execution.start", "execution:5", "approved by bob",
         {"recommendation_id": 3}),
    ]):
        runtime.clock.advance(60.0 * (5 + minutes))
        service.record(actor=actor, action=action, target=target, reason=reason,
                       inputs=inputs)
    service.set_kill_switch(True, as_user="bob", reason="noisy deploy")


@pytest.fixture
def browser(runtime: Any, qtbot: Any) -> Iterator[AuditBrowser]:
    fill(runtime)
    bridge = BusBridge(runtime.bus)
    pane = AuditBrowser.for_service(runtime.service, bridge)
    bridge.setParent(pane)
    qtbot.addWidget(pane)
    pane.resize(1200, 600)
    pane.show()
    yield pane
    pane.shutdown()
    bridge.close()


def search(qtbot: Any, browser: AuditBrowser, **filters: Any) -> None:
    """Filter as an operator types, and wait for the answer: the live browser searches
    the database as SQL on a worker."""
    browser.set_filters(**filters)
    qtbot.waitUntil(lambda: not browser.proxy.searching, timeout=10_000)


def test_models_are_valid(browser: AuditBrowser, qtmodeltester: Any, qtbot: Any) -> None:
    qtmodeltester.check(browser.model)
    search(qtbot, browser, actor="agent:")
    qtmodeltester.check(browser.proxy)


def test_filters_by_field_text_decision_and_time(browser: AuditBrowser, runtime: Any,
                                                 qtbot: Any) -> None:
    total = len(runtime.service.audit_entries())
    assert browser.proxy.rowCount() == total == 7
    search(qtbot, browser, actor="agent:recommender")
    assert browser.proxy.rowCount() == 2
    search(qtbot, browser, action="RECOMMENDATION.")  # case does not matter
    assert browser.proxy.rowCount() == 2
    search(qtbot, browser, target="incident:7")
    assert browser.proxy.rowCount() == 1
    search(qtbot, browser, text="v41")  # the reason
    assert [browser.proxy.index(r, 3).data() for r in range(browser.proxy.rowCount())] == \
        ["recommendation.create"]
    search(qtbot, browser, text="rollback-deploy")  # inside the inputs
    assert browser.proxy.rowCount() == 1
    search(qtbot, browser, actor="agent", decision="allow")
    assert browser.proxy.rowCount() == 0
    search(qtbot, browser, decision="allow")  # the operations: add bob, kill switch
    assert browser.proxy.rowCount() == 2
    entries = runtime.service.audit_entries()
    create = next(e for e in entries if e.action == "recommendation.create")
    search(qtbot, browser, since=create.at - timedelta(seconds=30),
           until=create.at + timedelta(seconds=30))
    assert [browser.proxy.index(r, 0).data() for r in range(browser.proxy.rowCount())] == \
        [str(create.seq)]
    assert browser.count_label.text() == f"1 of {total}"
    browser.clear_filters()
    assert browser.proxy.rowCount() == total
    assert browser.count_label.text() == f"{total} records"


def test_grows_with_the_live_chain(browser: AuditBrowser, runtime: Any) -> None:
    before = browser.model.rowCount()
    runtime.service.record(actor="system", action="scenario.start", target="bad-deploy")
    assert browser.model.rowCount() == before + 1
    assert browser.proxy.index(0, 3).data() == "scenario.start"


def test_follow_emits_the_records_incident_and_action(browser: AuditBrowser,
                                                      qtbot: Any) -> None:
    search(qtbot, browser, action="recommendation.create")
    browser.table.selectRow(0)
    entry = browser.selected_entry
    assert entry is not None
    assert links_of(entry) == [("recommendation", "3"), ("incident", "7")]
    assert browser.follow_button.isEnabled()
    assert "incident 7" in browser.details.toPlainText()
    assert "rollback-deploy" in browser.details.toPlainText()  # every field is shown
    with qtbot.waitSignal(browser.recordFollowed) as blocker:
        qtbot.mouseClick(browser.follow_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["recommendation", "3"]
    with qtbot.waitSignal(browser.recordFollowed) as blocker:
        browser.details.anchorClicked.emit(QUrl("follow:incident/7"))
    assert blocker.args == ["incident", "7"]
    search(qtbot, browser, action="user.bootstrap")  # a record about a person: no link
    browser.table.selectRow(0)
    assert not browser.follow_button.isEnabled()


def test_verify_highlights_the_first_tampered_record(browser: AuditBrowser, runtime: Any,
                                                     qtbot: Any) -> None:
    with qtbot.waitSignal(browser.verified, timeout=10_000) as blocker:
        qtbot.mouseClick(browser.verify_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].ok
    assert "Chain holds: 7 records" in browser.status_label.text()
    assert browser.model.bad_row is None

    with runtime.db.engine.begin() as conn:  # someone edits history behind our back
        conn.execute(text("UPDATE audit_records SET reason = 'nothing to see' "
                          "WHERE seq = 4"))
    search(qtbot, browser, actor="alice")  # the bad record is not even shown
    with qtbot.waitSignal(browser.verified, timeout=10_000) as blocker:
        browser.verify_chain()
    result = blocker.args[0]
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "Chain broken at record 4" in browser.status_label.text()
    assert "hidden by the filters" in browser.status_label.text()
    browser.clear_filters()
    assert browser.select_seq(4)
    entry = browser.selected_entry
    assert entry is not None
    assert entry.seq == 4
    assert entry.reason == "nothing to see"  # re-read: what is shown is what was verified
    row = browser.model.bad_row
    assert row is not None
    assert browser.model.entry_at(row).seq == 4
    bad = browser.model.index(row, 0)
    fine = browser.model.index(browser.model.row_of_seq(2) or 0, 0)
    assert bad.data(Qt.ItemDataRole.BackgroundRole) is not None
    assert bad.data(Qt.ItemDataRole.FontRole).bold()
    assert "fails verification" in bad.data(Qt.ItemDataRole.ToolTipRole)
    assert fine.data(Qt.ItemDataRole.BackgroundRole) is None
    assert "Fails verification" in browser.details.toPlainText()
    newer = browser.model.index(browser.model.row_of_seq(6) or 0, 0)
    assert newer.data(Qt.ItemDataRole.ForegroundRole) == browser.model.palette.dimmed


def test_exports_a_signed_bundle_through_a_non_blocking_dialog(
        browser: AuditBrowser, runtime: Any, qtbot: Any, tmp_path: Path) -> None:
    out = tmp_path / "night.wfaudit"  # a version 2 bundle, as `audit export` writes
    with qtbot.waitSignal(browser.exported, timeout=10_000) as blocker:
        browser.export_to(out)
    count, fingerprint, path = blocker.args[0]
    assert path == out
    assert count == len(runtime.service.audit_entries())
    assert verify_stream_bundle(out)[1].result.ok
    assert fingerprint in browser.status_label.text()

    browser.choose_export_file()
    dialog = browser.findChild(QFileDialog, "exportDialog")
    assert dialog is not None
    assert dialog.isVisible()
    assert browser.isEnabled()  # open(), not exec(): the console keeps running
    second = tmp_path / "again.wfaudit"
    with qtbot.waitSignal(browser.exported, timeout=10_000):
        dialog.fileSelected.emit(str(second))
    dialog.close()
    assert second.exists()


def export(runtime: Any, tmp_path: Path) -> Path:
    """A version 1 JSON bundle (what `audit export --format json` writes): its records
    can be edited as JSON to show what a review says of a changed bundle."""
    fill(runtime)
    out = tmp_path / "bundle.json"
    key = Ed25519PrivateKey.generate()
    with runtime.db.sessions() as session:
        log = runtime.service.audit
        write_bundle(out, build_bundle(log.iter_fields(session), log.head(session), key,
                                       source=runtime.db.url))
    return out


def open_review(path: Path, qtbot: Any) -> ReviewWindow:
    window = open_review_window(path)
    assert isinstance(window, ReviewWindow)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.review is not None and window.browser.last_result
                    is not None, timeout=10_000)
    return window


def test_review_window_opens_a_bundle_read_only_and_verifies_it(
        runtime: Any, qtbot: Any, tmp_path: Path, qtmodeltester: Any) -> None:
    path = export(runtime, tmp_path)
    window = open_review(path, qtbot)
    try:
        browser = window.browser
        qtmodeltester.check(browser.model)
        assert browser.read_only
        assert not browser.export_button.isEnabled()
        assert browser.model.rowCount() == len(runtime.service.audit_entries())
        assert "Read-only review" in window.banner.text()
        assert "signature valid" in window.result_label.text()
        assert "chain holds: 7 records" in window.result_label.text()
        browser.export_to(tmp_path / "nope.json")  # nothing is written from a review
        assert not (tmp_path / "nope.json").exists()
        browser.set_filters(action="recommendation.create")
        browser.table.selectRow(0)
        browser.follow_selected()  # offline: follow shows every record about it
        assert browser.target_filter.text() == "recommendation:3"
        assert browser.proxy.rowCount() == 2
    finally:
        window.close()


def test_review_of_a_changed_bundle_names_signature_and_first_bad_record(
        runtime: Any, qtbot: Any, tmp_path: Path) -> None:
    path = export(runtime, tmp_path)
    data = json.loads(path.read_text())
    data["records"][2]["reason"] = "edited after export"  # record seq 3
    path.write_text(json.dumps(data))
    window = open_review(path, qtbot)
    try:
        assert window.review is not None
        assert not window.review.signature_ok
        assert not window.review.chain.ok
        assert "SIGNATURE DOES NOT MATCH" in window.result_label.text()
        assert "broken at record 3" in window.result_label.text()
        row = window.browser.model.bad_row
        assert row is not None
        assert window.browser.model.entry_at(row).seq == 3
        assert window.browser.selected_entry is not None
        assert window.browser.selected_entry.seq == 3
    finally:
        window.close()

    # the records intact but the signature made by someone else: still refused
    data = json.loads(path.read_text())
    data["records"][2]["reason"] = runtime.service.audit_entries()[2].reason
    data["source"] = "somewhere else"
    path.write_text(json.dumps(data))
    review = review_bundle(path)
    assert review.chain.ok
    assert not review.signature_ok
    window = open_review(path, qtbot)
    try:
        assert SIGNATURE_PROBLEM in window.browser.status_label.text()
        assert window.browser.model.bad_row is None
    finally:
        window.close()


def test_review_command_checks_the_file_before_any_window(tmp_path: Path, runtime: Any,
                                                          capsys: Any) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="watchfloor")
    sub = parser.add_subparsers(dest="command")
    review_cli.add_parser(sub)
    bad = tmp_path / "not-a-bundle.json"
    bad.write_text('{"hello": 1}')
    opened: list[Path] = []

    def run(path: Path) -> int:
        opened.append(path)
        return 0

    args = parser.parse_args(["review", str(bad)])
    assert review_cli.dispatch(args, run=run) == 2
    assert "not a Watchfloor audit bundle" in capsys.readouterr().err
    assert review_cli.dispatch(parser.parse_args(["review", str(tmp_path / "none.json")]),
                               run=run) == 2
    assert not opened
    good = export(runtime, tmp_path)
    assert review_cli.dispatch(parser.parse_args(["review", str(good)]), run=run) == 0
    assert opened == [good]
    with pytest.raises(BundleError):
        open_review_window(bad)


"""The review window over a version 2 bundle: a paged model that reads only the pages a
view shows (memory flat however long the log), search as SQL over the file off the GUI
thread, and the verification's first bad record selected as in a JSON bundle."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import widgets.audit_paged as audit_paged
from console.audit import AuditDraft, AuditLog
from console.audit_bundle_export import export_stream
from console.storage.db import Database
from widgets.audit_paged import KEPT_PAGES, PAGE_ROWS, PagedAuditModel
from widgets.audit_review import ReviewWindow

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

RECORDS = 5000


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    db = Database(f"sqlite:///{tmp_path / 'night.db'}")
    try:
        with db.sessions() as session:
            AuditLog().append_many(session, [
                AuditDraft(actor=f"agent:correlator-{i % 4}", action="incident.update",
                           target=f"incident:{i % 50}", reason=f"step {i}",
                           inputs={"i": i}, decision="deny" if i % 100 == 3 else "n/a")
                for i in range(RECORDS)])
            session.commit()
        out = tmp_path / "night.wfaudit"
        with db.sessions() as session:
            export_stream(session, out, Ed25519PrivateKey.generate(), source="test")
        return out
    finally:
        db.dispose()


def open_review(path: Path, qtbot: Any) -> ReviewWindow:
    window = ReviewWindow(path)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.review is not None and window.browser.last_result
                    is not None, timeout=20_000)
    return window


def test_opens_paged_and_reads_only_what_is_shown(bundle: Path, qtbot: Any) -> None:
    window = open_review(bundle, qtbot)
    try:
        model = window.browser.model
        assert isinstance(model, PagedAuditModel)
        assert model.rowCount() == RECORDS
        assert "chain holds: 5000 records" in window.result_label.text()
        assert "5,000 records" in window.banner.text()
        assert model.entry_at(0).seq == RECORDS  # newest on top
        assert model.pages_read <= 2  # the first screen, not the file
        table = window.browser.table
        table.scrollToBottom()
        qtbot.wait(50)
        assert model.entry_at(RECORDS - 1).seq == 1
        assert model.entry_at(RECORDS - 1).reason == "step 0"
        for row in range(0, RECORDS, PAGE_ROWS):  # a reader paging through it all
            model.entry_at(row)
        assert len(model.entries()) <= PAGE_ROWS * KEPT_PAGES  # only the pages kept
        assert window.browser.select_seq(1234)
        assert window.browser.selected_entry is not None
        assert window.browser.selected_entry.seq == 1234
    finally:
        window.close()


def test_the_paged_model_is_a_valid_model(bundle: Path, qtbot: Any,
                                          qtmodeltester: Any) -> None:
    window = open_review(bundle, qtbot)
    try:
        qtmodeltester.check(window.browser.model)
        qtmodeltester.check(window.browser.proxy)
    finally:
        window.close()


def test_search_runs_over_the_whole_file(bundle: Path, qtbot: Any,
                                         qtmodeltester: Any) -> None:
    window = open_review(bundle, qtbot)
    browser = window.browser
    try:
        assert browser.select_seq(4000)  # not among the matches below
        assert "#4000" in browser.details.toPlainText()
        browser.set_filters(target="INCIDENT:3", decision="deny")
        assert browser.proxy.searching
        qtbot.waitUntil(lambda: not browser.proxy.searching, timeout=10_000)
        qtbot.waitUntil(lambda: browser.proxy.rowCount() < RECORDS, timeout=10_000)
        expected = [i + 1 for i in reversed(range(RECORDS)) if i % 100 == 3]
        shown = [browser.model.entry_at(r).seq for r in range(browser.proxy.rowCount())]
        assert shown == expected
        assert browser.count_label.text() == f"{len(expected):,} of 5,000"
        assert browser.selected_entry is None
        assert not browser.details.toPlainText()  # no stale record beside the matches
        qtmodeltester.check(browser.model)
        browser.table.selectRow(0)
        browser.follow_selected()  # offline: every record about the same incident
        about = [i for i in range(RECORDS) if str(i % 50).startswith("3")]  # 3, 30..39
        qtbot.waitUntil(lambda: not browser.proxy.searching
                        and browser.proxy.rowCount() == len(about), timeout=10_000)
        browser.clear_filters()
        assert browser.proxy.rowCount() == RECORDS
    finally:
        window.close()


def test_a_search_with_too_many_matches_says_so(bundle: Path, qtbot: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_paged, "MATCH_LIMIT", 100)
    window = open_review(bundle, qtbot)
    browser = window.browser
    try:
        browser.set_filters(actor="agent:correlator-1")
        qtbot.waitUntil(lambda: not browser.proxy.searching
                        and browser.proxy.rowCount() == 100, timeout=10_000)
        assert "the newest 100 matches shown; narrow the search" in \
            browser.count_label.text()
        assert browser.model.entry_at(0).seq == RECORDS - 2  # i = 4997, the newest
    finally:
        window.close()


def test_a_changed_record_is_selected_and_named(bundle: Path, qtbot: Any) -> None:
    with sqlite3.connect(bundle) as conn:
        conn.execute("UPDATE records SET body = replace(body, 'step 1233', 'step 9') "
                     "WHERE seq = 1234")
    conn.close()
    window = open_review(bundle, qtbot)
    try:
        assert window.review is not None
        assert window.review.signature_ok  # the manifest is intact...
        assert "broken at record 1234" in window.result_label.text()  # ...its records not
        model = window.browser.model
        assert model.bad_row is not None
        assert model.entry_at(model.bad_row).seq == 1234
        assert window.browser.selected_entry is not None
        assert window.browser.selected_entry.seq == 1234
    finally:
        window.close()


def test_the_console_opens_a_version_2_bundle(bundle: Path, runtime: Any, tmp_path: Path,
                                              qtbot: Any, qloop: Any) -> None:
    """File > Open audit bundle lists version 2 files and reviews them paged."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QFileDialog

    from console.app import build_window

    settings = QSettings(str(tmp_path / "watchfloor.ini"), QSettings.Format.IniFormat)
    window = build_window(runtime, None, "alice", settings=settings)
    qtbot.addWidget(window)
    window.show()
    try:
        window.actions_by_id["open_bundle"].trigger()
        dialog = window.findChild(QFileDialog, "bundleDialog")
        assert dialog is not None
        assert any("*.wfaudit" in f for f in dialog.nameFilters())
        dialog.close()
        review = window.open_bundle(bundle)
        assert isinstance(review, ReviewWindow)
        assert isinstance(review.browser.model, PagedAuditModel)
        qtbot.waitUntil(lambda: review.browser.last_result is not None, timeout=20_000)
        assert review.browser.last_result is not None
        assert review.browser.last_result.ok
    finally:
        window.close()

"""The console's audit browser over the live database, a page at a time: only the pages
a view shows are read, records appended live are inserted on top (never a reset), a
search runs as SQL on a worker (capped, and saying so) and a record appended while it
is shown joins it when it matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import widgets.audit_paged as audit_paged
from console.audit import AuditDraft
from console.audit_bundle_file import SearchFilters
from widgets.audit_browser import AuditBrowser
from widgets.audit_live import KEPT_RECORDS, LiveAuditModel
from widgets.audit_paged import PAGE_ROWS
from widgets.bridge import BusBridge

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

RECORDS = 4000


def grow(runtime: Any, n: int) -> None:
    with runtime.db.sessions() as session:
        runtime.service.audit.append_many(session, [
            AuditDraft(actor=f"agent:correlator-{i % 4}", action="incident.update",
                       target=f"incident:{i % 50}", reason=f"step {i}", inputs={"i": i},
                       decision="deny" if i % 100 == 3 else "n/a")
            for i in range(n)])
        session.commit()


@pytest.fixture
def browser(runtime: Any, qtbot: Any) -> Iterator[AuditBrowser]:
    grow(runtime, RECORDS)
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
    browser.set_filters(**filters)
    qtbot.waitUntil(lambda: not browser.proxy.searching, timeout=10_000)


def test_the_live_model_is_a_valid_model(browser: AuditBrowser, qtbot: Any,
                                         qtmodeltester: Any) -> None:
    assert isinstance(browser.model, LiveAuditModel)
    qtmodeltester.check(browser.model)
    search(qtbot, browser, actor="correlator-1")
    qtmodeltester.check(browser.proxy)


def test_reads_only_the_pages_shown(browser: AuditBrowser, runtime: Any, qtbot: Any) -> None:
    model = browser.model
    total = RECORDS + 1  # and the first admin's record
    assert model.rowCount() == total
    assert browser.count_label.text() == f"{total:,} records"
    assert model.pages_read <= 2  # the first screen (and the time range's two ends)
    assert model.entry_at(0).seq == total  # newest on top
    browser.table.scrollToBottom()
    qtbot.wait(20)
    assert model.entry_at(total - 1).seq == 1
    assert model.entry_at(total - 2).reason == "step 0"
    for row in range(0, total, PAGE_ROWS):  # an operator paging through all of it
        model.entry_at(row)
    assert len(model.entries()) <= KEPT_RECORDS
    assert browser.select_seq(1234)
    assert browser.selected_entry is not None
    assert browser.selected_entry.reason == "step 1232"


def test_a_live_append_is_inserted_on_top_without_a_reset(browser: AuditBrowser,
                                                          runtime: Any, qtbot: Any) -> None:
    model = browser.model
    before = model.rowCount()
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    with qtbot.waitSignal(model.rowsInserted) as blocker:
        runtime.service.record(actor="system", action="scenario.start", target="bad-deploy")
    assert blocker.args[1:] == [0, 0]
    assert model.rowCount() == before + 1
    assert browser.proxy.index(0, 3).data() == "scenario.start"
    assert browser.count_label.text() == f"{before + 1:,} records"
    for i in range(3):
        runtime.service.record(actor="system", action="scenario.step", target=f"t{i}")
    assert model.rowCount() == before + 4
    assert [browser.proxy.index(r, 4).data() for r in range(3)] == ["t2", "t1", "t0"]
    assert not resets


def test_search_runs_over_every_page_and_a_matching_append_joins_it(
        browser: AuditBrowser, runtime: Any, qtbot: Any) -> None:
    search(qtbot, browser, text="step 17")  # 17, 170-179, 1700-1799: deep in the log
    shown = [browser.proxy.index(r, 6).data() for r in range(browser.proxy.rowCount())]
    assert len(shown) == 1 + 10 + 100
    assert shown[-1] == "step 17"
    assert browser.count_label.text() == f"111 of {RECORDS + 1:,}"
    runtime.service.record(actor="system", action="note", target="x", reason="step 17b")
    runtime.service.record(actor="system", action="note", target="y", reason="other")
    assert browser.proxy.rowCount() == 112
    assert browser.proxy.index(0, 6).data() == "step 17b"
    browser.clear_filters()
    assert browser.proxy.rowCount() == RECORDS + 3
    assert browser.proxy.index(0, 6).data() == "other"


def test_a_search_says_when_it_shows_only_the_newest(
        browser: AuditBrowser, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_paged, "MATCH_LIMIT", 100)
    search(qtbot, browser, decision="n/a")
    assert browser.proxy.rowCount() == 100
    assert "newest 100 matches shown" in browser.count_label.text()
    assert browser.proxy.index(0, 0).data() == str(RECORDS + 1)  # newest first


def test_a_record_appended_while_a_search_runs_is_in_its_answer(runtime: Any,
                                                                qtbot: Any) -> None:
    grow(runtime, 300)
    bridge = BusBridge(runtime.bus)
    model = LiveAuditModel(runtime.service.audit_pages(), bridge=bridge)
    try:
        wanted = SearchFilters(target="incident:7")
        seqs, more = model.search(wanted, 1000)  # what the worker does
        runtime.service.record(actor="system", action="note", target="incident:7")
        runtime.service.record(actor="system", action="note", target="incident:8")
        model.show_matches(seqs, more)  # its answer reaches the window after them
        newest = model.entry_at(0)
        assert (newest.action, newest.target) == ("note", "incident:7")
        assert model.rowCount() == len(seqs) + 1
    finally:
        bridge.close()

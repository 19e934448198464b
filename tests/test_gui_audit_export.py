"""The window's export of the live audit log: a version 2 bundle written on a worker
(the one `watchfloor audit export` writes and `audit verify --bundle` accepts), its
progress shown as it goes, a Cancel that leaves no file, and a clear error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog
from sqlalchemy import text

from console.audit import AuditDraft
from console.audit_bundle_export import STREAM_BATCH
from console.cli import main as cli_main
from widgets.audit_browser import AuditBrowser
from widgets.bridge import BusBridge

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

RECORDS = 2 * STREAM_BATCH + 1234  # three batches: progress is told after each


def grow(runtime: Any, n: int) -> None:
    with runtime.db.sessions() as session:
        runtime.service.audit.append_many(session, [
            AuditDraft(actor="agent:correlator", action="incident.update",
                       target=f"incident:{i % 40}", reason=f"step {i}", inputs={"i": i})
            for i in range(n)])
        session.commit()


def open_browser(runtime: Any, qtbot: Any, export: Any = None) -> AuditBrowser:
    bridge = BusBridge(runtime.bus)
    pane = AuditBrowser.for_service(runtime.service, bridge, export=export)
    bridge.setParent(pane)
    qtbot.addWidget(pane)
    pane.show()
    return pane


@pytest.fixture
def browser(runtime: Any, qtbot: Any) -> Iterator[AuditBrowser]:
    grow(runtime, RECORDS)
    pane = open_browser(runtime, qtbot)
    yield pane
    pane.shutdown()


def test_the_window_exports_a_version_2_bundle_that_verify_accepts(
        browser: AuditBrowser, runtime: Any, qtbot: Any, tmp_path: Path,
        capsys: Any) -> None:
    out = tmp_path / "night.wfaudit"
    seen: list[tuple[int, int]] = []
    browser.exporter.progressed.connect(lambda done, total: seen.append((done, total)))
    with qtbot.waitSignal(browser.exported, timeout=30_000) as blocker:
        browser.export_to(out)
    count, fingerprint, path = blocker.args[0]
    total = len(runtime.service.audit_entries())
    assert (count, path) == (total, out)
    assert out.read_bytes().startswith(b"SQLite format 3\x00")
    assert not out.with_name(out.name + ".tmp").exists()
    # progress after every batch, rising to the whole log
    assert [done for done, _ in seen] == [STREAM_BATCH, 2 * STREAM_BATCH, total]
    assert {t for _, t in seen} == {total}
    assert f"Exported {total:,} records" in browser.status_label.text()
    assert not browser.exporter.bar.isVisibleTo(browser)  # hidden once done
    capsys.readouterr()
    assert cli_main(["audit", "verify", "--bundle", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"holds: {total} records" in said
    assert fingerprint in said


def test_the_dialog_suggests_a_version_2_bundle(browser: AuditBrowser) -> None:
    browser.choose_export_file()
    dialog = browser.findChild(QFileDialog, "exportDialog")
    assert dialog is not None
    try:
        assert dialog.defaultSuffix() == "wfaudit"
        assert "*.wfaudit" in dialog.nameFilters()[0]
        assert dialog.selectedFiles()[0].endswith(".wfaudit")
    finally:
        dialog.close()


def test_a_cancelled_export_leaves_no_file(runtime: Any, qtbot: Any,
                                           tmp_path: Path) -> None:
    grow(runtime, RECORDS)
    gate = threading.Event()

    def held_export(path: Path, **kw: Any) -> tuple[int, str]:
        progress = kw.pop("progress")

        def told(done: int, total: int) -> None:  # the first batch waits for the test
            progress(done, total)
            gate.wait(20)

        return runtime.service.export_audit(path, progress=told, **kw)

    browser = open_browser(runtime, qtbot, export=held_export)
    out = tmp_path / "night.wfaudit"
    try:
        with qtbot.waitSignal(browser.exporter.progressed, timeout=20_000):
            browser.export_to(out)
        bar, cancel = browser.exporter.bar, browser.exporter.cancel_button
        assert bar.isVisibleTo(browser) and cancel.isVisibleTo(browser)
        assert (bar.value(), bar.maximum()) == (STREAM_BATCH, RECORDS + 1)
        assert "5,000 of" in browser.status_label.text()
        assert not browser.export_button.isEnabled()  # one export at a time
        cancel.click()
        gate.set()
        with qtbot.waitSignal(browser.exportCancelled, timeout=20_000) as blocker:
            pass
        assert blocker.args == [out]
        assert not out.exists()
        assert list(tmp_path.glob("night.wfaudit*")) == []
        assert "cancelled: no file written" in browser.status_label.text()
        assert browser.export_button.isEnabled()
        assert not cancel.isVisibleTo(browser)
        with qtbot.waitSignal(browser.exported, timeout=30_000):  # it can run again
            browser.export_to(out)
        assert out.exists()
    finally:
        gate.set()
        browser.shutdown()


def test_an_export_that_cannot_write_says_where_and_writes_nothing(
        browser: AuditBrowser, qtbot: Any, tmp_path: Path) -> None:
    blocker_file = tmp_path / "not-a-folder"
    blocker_file.write_text("x")
    out = blocker_file / "night.wfaudit"
    with qtbot.waitSignal(browser.failed, timeout=20_000) as blocker:
        browser.export_to(out)
    message = blocker.args[0]
    assert str(out) in message and "nothing written" in message
    assert "Failed:" in browser.status_label.text()
    assert browser.export_button.isEnabled()
    assert blocker_file.read_text() == "x"


def test_a_record_that_cannot_be_exported_is_named_and_nothing_is_written(
        browser: AuditBrowser, runtime: Any, qtbot: Any, tmp_path: Path) -> None:
    with runtime.db.engine.begin() as conn:  # a raw write no honest writer makes
        conn.execute(text("UPDATE audit_records SET inputs = '[1, 2]' WHERE seq = 7000"))
    out = tmp_path / "night.wfaudit"
    with qtbot.waitSignal(browser.failed, timeout=30_000) as blocker:
        browser.export_to(out)
    assert blocker.args[0].startswith("nothing exported: record 7000: field inputs")
    assert "record 7000" in browser.status_label.text()
    assert list(tmp_path.glob("night.wfaudit*")) == []

"""The hand-off packet from the console and as a PDF: File > Export hand-off packet...
and the incidents' context menu export the selected incident; the PDF carries the packet
in its metadata, so `audit verify --bundle FILE.pdf` passes it and refuses it once the
packet inside was changed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QFileDialog

from console import cli
from console.handoff_verify import XMP_PACKET, verify_packet
from console.runtime import ScenarioDriver
from tests.scenario_play import approve_and_run, first_pending
from widgets.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


@pytest.fixture
def fixed_console(runtime: Any, console: Any, qtbot: Any) -> MainWindow:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    rec = first_pending(runtime, driver, tick=QApplication.processEvents)
    approve_and_run(runtime, driver, rec, tick=QApplication.processEvents)
    window.fixed_rec = rec  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.incidents_pane.selected_incident == rec.incident_id,
                    timeout=TIMEOUT_MS)
    return window


def test_the_console_exports_the_selected_incident_as_html_and_pdf(
        fixed_console: MainWindow, tmp_path: Path, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import widgets.handoff_pdf

    drawn_on: list[str] = []
    draw = widgets.handoff_pdf.write_pdf

    def write_pdf(*args: Any) -> None:
        drawn_on.append(threading.current_thread().name)
        draw(*args)

    monkeypatch.setattr(widgets.handoff_pdf, "write_pdf", write_pdf)
    window = fixed_console
    action = next(a for a in window.menus["&File"].actions()
                  if a.objectName() == "action_export_handoff")
    assert action in window.incidents_pane.table.actions()  # the context menu's entry
    action.trigger()
    dialog = window.findChild(QFileDialog, "handoffDialog")
    assert dialog is not None and dialog.isVisible()
    rec = window.fixed_rec  # type: ignore[attr-defined]
    assert f"incident {rec.incident_id}" in dialog.windowTitle()
    out = tmp_path / "night.pdf"
    dialog.fileSelected.emit(str(out))  # what choosing the name does
    dialog.close()
    qtbot.waitUntil(lambda: "written to" in window.status.notice, timeout=TIMEOUT_MS)
    assert out.read_bytes().startswith(b"%PDF")
    verdict = verify_packet(out)
    assert verdict.ok, verdict.describe()
    assert verdict.packet["approvals"][0]["preview_hash"] == rec.preview_hash
    assert len(drawn_on) == 1 and drawn_on[0] != threading.main_thread().name

    html = tmp_path / "night.html"
    dialog.fileSelected.emit(str(html))
    qtbot.waitUntil(html.exists, timeout=TIMEOUT_MS)
    assert rec.preview_hash in html.read_text(encoding="utf-8")
    assert verify_packet(html).ok


def test_a_pdf_packet_verifies_and_a_changed_one_is_refused(
        fixed_console: MainWindow, db_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    rec = fixed_console.fixed_rec  # type: ignore[attr-defined]
    out = tmp_path / "packet.pdf"
    assert cli.main(["incident", "export", str(rec.incident_id), "--out", str(out),
                     "--db", db_url]) == 0
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--bundle", str(out), "--db", db_url]) == 0
    said = capsys.readouterr().out
    assert "hand-off packet holds" in said
    assert "PDF: the packet in its metadata is what was checked" in said

    raw = out.read_bytes()
    match = XMP_PACKET.search(raw)
    assert match is not None
    packet = json.loads(base64.b64decode(match.group(1)))
    packet["approvals"][0]["actor"] = "user:mallory"
    forged = base64.b64encode(json.dumps(packet, sort_keys=True).encode())
    out.write_bytes(raw.replace(match.group(1), forged))
    assert cli.main(["audit", "verify", "--bundle", str(out)]) == 1
    said = capsys.readouterr().out
    assert "the packet's signature does not match its contents" in said
    assert "the packet shows actor 'user:mallory', the record says 'user:alice'" in said

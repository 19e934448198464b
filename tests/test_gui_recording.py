"""The read-only recording window (File > Open recording...): a recording shown in the
usual views, investigated off the GUI thread, with no operation in reach; a bad folder
says what is wrong in the window."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractButton, QFileDialog

from agents.investigator import Investigator, InvestigatorSettings
from console.app import build_window
from tests.test_recording_view import clear_recording
from tests.test_recordings import PETSHOP, T0, needs_petshop, write
from widgets.main_window import MainWindow
from widgets.recording_window import RecordingWindow, open_recording_window

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

LIVE_INVESTIGATOR = (Investigator, InvestigatorSettings)
OPERATIONS = ("approve", "reject", "execute", "run", "rollback", "roll back", "pin",
              "exclude")


@pytest.fixture
def open_recording(qtbot: Any) -> Iterator[Callable[..., RecordingWindow]]:
    windows: list[RecordingWindow] = []

    def open_(folder: Path, **kwargs: Any) -> RecordingWindow:
        kwargs.setdefault("investigator", LIVE_INVESTIGATOR)
        window = open_recording_window(folder, **kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()


def settled(window: RecordingWindow, qtbot: Any) -> RecordingWindow:
    qtbot.waitUntil(lambda: window.view is not None or window.error is not None,
                    timeout=30_000)
    return window


def test_a_recording_shows_incident_ranked_causes_and_plot(
        open_recording: Callable[..., RecordingWindow], qtbot: Any, tmp_path: Path,
        qtmodeltester: Any) -> None:
    window = settled(open_recording(clear_recording(tmp_path / "rec")), qtbot)
    assert window.error is None
    assert "Recording: rec \u2014 read-only" in window.windowTitle()
    assert "Recording: rec \u2014 read-only" in window.banner.text()
    assert "Labelled cause" in window.banner.text()
    assert window.content.isVisible()
    assert not window.progress.isVisible()
    assert not window.error_label.isVisible()
    assert window.status_label.text().startswith("Investigated in")

    for model in (window.incidents, window.timeline, window.hypotheses):
        qtmodeltester.check(model)
    assert window.incidents.rowCount() == 1
    info = window.incidents.incident_at(0)
    assert info.state == "recorded"
    assert "frontend" in info.services
    assert "payments" in info.services
    cause = window.incidents.index(0, window.incidents.CAUSE).data()
    assert cause.startswith("payments/bad_deploy")

    top = window.hypotheses.hypothesis_at(0)
    assert top.key == "payments/bad_deploy"
    assert window.selected is not None
    assert window.selected.key == top.key
    bar = window.hypotheses.index(0, window.hypotheses.CONFIDENCE)
    assert window.hypotheses_table.itemDelegateForColumn(bar.column()) is window.delegate
    assert "payments/bad_deploy" in window.evidence.toPlainText()
    assert "change:chg-" in window.evidence.toPlainText()  # the deploy, a link

    entries = window.timeline.entries()
    assert any(e.kind == "change" and e.mark == "deploy" for e in entries)
    assert any(e.summary.startswith("hypothesis 1: payments/bad_deploy") for e in entries)

    plot = window.plot
    assert plot.shown_metric == "error_rate"
    assert set(plot.curves) >= {"frontend", "payments"}
    xs, ys = plot.curves["payments"].getData()
    assert xs is not None
    assert len(xs) == len(ys) > 50
    assert max(ys) > 20  # percent: payments failing at 30 %
    assert plot.highlighted == "payments"
    assert {e.key for e in entries if e.mark} == set(plot.marks)  # the deploy, the symptom
    assert len(plot.marks) == 2
    window._on_evidence_anchor_clicked(QUrl("metric:payments/latency_p99_ms@x"))
    assert plot.shown_metric == "latency_p99_ms"
    assert max(plot.curves["payments"].getData()[1]) < 200


def test_no_operation_can_be_reached_from_a_recording(
        open_recording: Callable[..., RecordingWindow], qtbot: Any, tmp_path: Path) -> None:
    window = settled(open_recording(clear_recording(tmp_path / "rec")), qtbot)
    assert window.view is not None
    for button in window.findChildren(QAbstractButton):
        words = f"{button.objectName()} {button.text()}".lower()
        assert not any(op in words for op in OPERATIONS), button.objectName()
    for action in window.findChildren(QAction):
        assert not any(op in action.text().lower() for op in OPERATIONS), action.text()


def test_a_bad_folder_says_what_is_wrong_in_the_window(
        open_recording: Callable[..., RecordingWindow], qtbot: Any, tmp_path: Path) -> None:
    folder = write(tmp_path / "broken", manifest={"window": {"start": T0}})
    window = open_recording_window(folder, investigator=LIVE_INVESTIGATOR)
    qtbot.addWidget(window)
    said: list[str] = []
    window.failed.connect(said.append)  # before any event is processed: none is lost
    window.show()
    try:
        settled(window, qtbot)
        assert len(said) == 1
        assert "manifest.json: window.end: Field required" in said[0]
        assert window.view is None
        assert window.error_label.isVisible()
        assert "manifest.json: window.end: Field required" in window.error_label.text()
        assert "cannot be shown as a recording" in window.status_label.text()
        assert not window.content.isVisible()
        assert not window.progress.isVisible()
        assert "Recording: broken \u2014 read-only" in window.banner.text()
    finally:
        window.close()

    other = settled(open_recording(tmp_path / "nowhere"), qtbot)
    assert "nowhere: not a recording" in other.error_label.text()


def test_the_investigation_runs_off_the_gui_thread_with_progress_shown(
        open_recording: Callable[..., RecordingWindow], qtbot: Any, tmp_path: Path) -> None:
    release = threading.Event()
    threads: list[int] = []

    class SlowInvestigator(Investigator):
        def investigate(self, incident: Any, now: Any) -> Any:
            threads.append(threading.get_ident())
            release.wait(20)
            return super().investigate(incident, now)

    window = open_recording(clear_recording(tmp_path / "rec"),
                            investigator=(SlowInvestigator, InvestigatorSettings))
    qtbot.waitUntil(lambda: window.status_label.text().startswith("Investigating"),
                    timeout=10_000)
    assert window.progress.isVisible()
    assert not window.content.isVisible()
    assert window.view is None
    release.set()
    settled(window, qtbot)
    assert threads
    assert threads[0] != threading.get_ident()
    assert window.view is not None
    assert not window.progress.isVisible()


@needs_petshop
def test_a_petshop_issue_opens(open_recording: Callable[..., RecordingWindow], qtbot: Any,
                               tmp_path: Path) -> None:
    window = settled(open_recording(PETSHOP / "low_traffic" / "train" / "issue_0"), qtbot)
    assert window.error is None
    assert "petshop/low_traffic/train/issue_0" in window.banner.text()
    assert window.hypotheses.rowCount() >= 1
    assert "PetSite" in window.plot.curves
    assert window.plot.shown_metric == "latency_p99_ms"
    assert not window.grab().isNull()


# --- File > Open recording in the console ----------------------------------------------


@pytest.fixture
def console_window(runtime: Any, tmp_path: Path, qtbot: Any, qloop: Any) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "watchfloor.ini"), QSettings.Format.IniFormat)
    window = build_window(runtime, None, "alice", settings=settings)
    window.show()
    yield window
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_file_open_recording_asks_without_blocking_then_shows_it(
        console_window: MainWindow, qtbot: Any, tmp_path: Path) -> None:
    folder = clear_recording(tmp_path / "rec")
    action = console_window.actions_by_id["open_recording"]
    assert action in console_window.menus["&File"].actions()
    assert action.shortcut() == QKeySequence("Ctrl+Shift+O")
    action.trigger()
    dialog = console_window.findChild(QFileDialog, "recordingDialog")
    assert dialog is not None
    assert dialog.isVisible()
    assert dialog.fileMode() == QFileDialog.FileMode.Directory
    assert console_window.isEnabled()  # open(), not exec(): the console keeps running
    dialog.fileSelected.emit(str(folder))
    dialog.close()
    opened = [w for w in console_window.review_windows if isinstance(w, RecordingWindow)]
    assert len(opened) == 1
    recording = opened[0]
    assert recording.isVisible()
    settled(recording, qtbot)
    assert recording.hypotheses.hypothesis_at(0).key == "payments/bad_deploy"

    again = console_window.open_recording(write(tmp_path / "bad", manifest={"name": ""}))
    assert isinstance(again, RecordingWindow)
    settled(again, qtbot)
    assert "manifest.json: name:" in again.error_label.text()
    console_window.close()  # the recording windows go with the console
    assert not recording.isVisible()
    assert not again.isVisible()
    assert not console_window.review_windows


def test_starting_the_console_does_not_import_the_recording_window() -> None:
    code = ("import sys, widgets.main_window; "
            "assert 'widgets.recording_window' not in sys.modules; "
            "assert 'console.recording_view' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[1], timeout=60)

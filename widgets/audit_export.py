"""Exporting the live audit log to a signed bundle from the window.

A night's log can hold a million records, and writing them takes tens of seconds: the
export runs on a worker thread (the window keeps answering), says how far it has come
as it goes (a progress bar under the browser, and the records written so far), and can
be stopped; a stopped or failed export leaves no file (the bundle only appears under
its name once complete, console/audit_bundle_file.py). The file is a version 2 bundle
(`.wfaudit`), the one `watchfloor audit export` writes, so `audit verify --bundle` and
`watchfloor review` read it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QProgressBar, QPushButton, QWidget
from sqlalchemy.exc import SQLAlchemyError

from console.audit_bundle_export import ExportCancelled
from console.audit_chain import UnreadableRecord
from widgets.offthread import BackgroundJob

BUNDLE_SUFFIX = "wfaudit"
Export = Callable[..., tuple[int, str]]  # (path, *, progress, cancelled) -> (count, key id)


class AuditExportControl(QWidget):
    """The export button, and while an export runs its progress and a Cancel button.

    Signals (on the GUI thread):

    - ``started(object)``: an export to this path began.
    - ``progressed(int, int)``: records written so far, records in the log.
    - ``exported(object)``: done: (records, key fingerprint, path).
    - ``cancelled(object)``: stopped on request; no file at this path.
    - ``failed(str)``: the export failed (the message names what); no file written.
    - ``status(str, str)``: each of these in words for the status line, and its level
      ("info", "ok", "bad").
    """

    started = Signal(object)
    progressed = Signal(int, int)
    exported = Signal(object)
    cancelled = Signal(object)
    failed = Signal(str)
    status = Signal(str, str)

    def __init__(self, export: Export | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("auditExportControl")
        self._export = export
        self._stop = threading.Event()
        self._dialog: QFileDialog | None = None
        self._running = False  # on the GUI thread (the job's own flag clears on its own)
        self._job = BackgroundJob("audit-export", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self.progressed.connect(self._on_progressed)

        self.button = QPushButton("Export signed bundle\u2026", self)
        self.button.setObjectName("exportButton")
        self.button.setToolTip("Write the whole chain to a file signed with your key "
                               f"(.{BUNDLE_SUFFIX}, what audit verify --bundle checks)")
        self.button.clicked.connect(lambda _checked=False: self.choose_file())
        self.bar = QProgressBar(self)
        self.bar.setObjectName("exportProgress")
        self.bar.setFormat("%p%")  # the status line says how many records
        self.bar.setMinimumWidth(220)
        self.cancel_button = QPushButton("Cancel export", self)
        self.cancel_button.setObjectName("cancelExportButton")
        self.cancel_button.setToolTip("Stop the export; no file is left behind")
        self.cancel_button.clicked.connect(lambda _checked=False: self.cancel())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.button)
        self._show_running(False)
        if export is None:  # a review exports nothing: no button that never works
            self.setVisible(False)

    @property
    def running(self) -> bool:
        return self._running

    def choose_file(self) -> None:
        """Ask for a file without blocking (QFileDialog.open), then export to it."""
        if self._export is None or self.running:
            return
        if self._dialog is None:
            dialog = QFileDialog(self, "Export signed audit bundle")
            dialog.setObjectName("exportDialog")
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setNameFilter(f"Audit bundles (*.{BUNDLE_SUFFIX})")
            dialog.setDefaultSuffix(BUNDLE_SUFFIX)
            dialog.fileSelected.connect(self._on_dialog_file_selected)
            self._dialog = dialog
        self._dialog.selectFile(f"audit-{datetime.now(UTC):%Y%m%d-%H%M}.{BUNDLE_SUFFIX}")
        self._dialog.open()

    def _on_dialog_file_selected(self, path: str) -> None:
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> bool:
        """Export the chain to `path` off the GUI thread; False when there is nothing to
        export with or an export is already running."""
        if self._export is None or self.running:
            return False
        export, stop, report = self._export, self._stop, self.progressed.emit
        stop.clear()

        def work() -> tuple[str, Any]:
            try:
                count, key_id = export(path, progress=report, cancelled=stop.is_set)
            except ExportCancelled:
                return "cancelled", path
            except UnreadableRecord as exc:
                return "failed", f"nothing exported: {exc}"
            except (OSError, sqlite3.Error, SQLAlchemyError) as exc:
                return "failed", f"export to {path} failed, nothing written: {exc}"
            return "done", (count, key_id, path)

        self.bar.setRange(0, 0)  # busy until the first batch says how many there are
        self._show_running(True)
        self.started.emit(path)
        self.status.emit(f"Exporting to {path.name}\u2026", "info")
        self._job.submit(work)
        return True

    def cancel(self) -> None:
        """Stop the export in flight after its current batch."""
        if self.running:
            self._stop.set()
            self.cancel_button.setEnabled(False)

    def _on_progressed(self, done: int, total: int) -> None:
        self.bar.setRange(0, max(total, done, 1))
        self.bar.setValue(done)
        self.status.emit(f"Exporting\u2026 {done:,} of {total:,} records written", "info")

    def _on_job_finished(self, outcome: tuple[str, Any]) -> None:
        self._show_running(False)
        kind, value = outcome
        if kind == "done":
            count, fingerprint, path = value
            self.status.emit(f"Exported {count:,} records to {path} (signed by key "
                             f"{fingerprint})", "ok")
            self.exported.emit(value)
        elif kind == "cancelled":
            self.status.emit(f"Export to {value.name} cancelled: no file written", "info")
            self.cancelled.emit(value)
        else:
            self._on_job_failed(str(value))

    def _on_job_failed(self, message: str) -> None:
        self._show_running(False)
        self.status.emit(f"Failed: {message}", "bad")
        self.failed.emit(message)

    def _show_running(self, running: bool) -> None:
        self._running = running
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.button.setEnabled(not running and self._export is not None)

    def shutdown(self) -> None:
        """Stop an export in flight and wait for it (call before closing)."""
        self._stop.set()
        self._job.shutdown()

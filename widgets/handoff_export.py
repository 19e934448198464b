"""File > Export hand-off packet... (and the same entry on the incidents' context menu):
the selected incident's packet as HTML or PDF, for the next shift or the review.

The packet is read and signed on the `Worker` (console/handoff.py); the HTML is written
there too. The PDF is drawn by Qt's rich text on a QThread of its own (a storm's packet
takes seconds to lay out, which the GUI thread must not spend; Qt's text layout wants a
thread with an event dispatcher, which the worker's Python threads lack). The file
dialog is opened, never exec'd: the console keeps running while the operator picks a
name. What happened is said in the status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QWidget

from console.handoff_cli import write_text
from console.handoff_html import render_body, render_page
from widgets.ops import Worker, describe_error

if TYPE_CHECKING:
    from widgets.main_window import MainWindow

BuildPacket = Callable[[int], dict[str, Any]]
FILTERS = "Web page (*.html);;PDF (*.pdf)"


class PdfJob(QObject):
    """Draws one packet's PDF on the thread it was moved to; emits ``finished(str)`` with
    the failure's text, or "" when the file is written."""

    finished = Signal(str)

    def __init__(self, body: str, packet: dict[str, Any], out: Path) -> None:
        super().__init__()
        self._body, self._packet, self._out = body, packet, out

    def run(self) -> None:
        from widgets.handoff_pdf import write_pdf

        try:
            write_pdf(self._body, self._packet, self._out)
        except Exception as exc:  # reported in the status bar, never lost
            self.finished.emit(describe_error(exc))
            return
        self.finished.emit("")


class HandoffExport(QObject):
    """The export action; `incident()` names the incident it exports (the selected one),
    `notify(text, error=)` says how it went."""

    def __init__(self, parent: QWidget, *, build: BuildPacket, worker: Worker,
                 incident: Callable[[], int | None],
                 notify: Callable[..., None]) -> None:
        super().__init__(parent)
        self._parent, self._build, self._worker = parent, build, worker
        self._incident, self._notify = incident, notify
        self.dialog: QFileDialog | None = None
        self.written: Path | None = None
        self._drawing: list[tuple[QThread, PdfJob, Callable[[str], None]]] = []
        self.action = QAction("Export hand-off &packet\u2026", parent)
        self.action.setObjectName("action_export_handoff")
        self.action.setStatusTip("The selected incident's timeline, causes, evidence, "
                                 "approvals (with the preview hash approved), actions, "
                                 "validations and rollbacks, with its audit records, as "
                                 "HTML or PDF")
        self.action.triggered.connect(lambda _checked=False: self.choose())

    def choose(self) -> QFileDialog | None:
        """Ask where to write the selected incident's packet."""
        incident_id = self._incident()
        if incident_id is None:
            self._notify("Select an incident to export its hand-off packet", error=True)
            return None
        if self.dialog is not None:
            self.dialog.deleteLater()
        dialog = QFileDialog(self._parent, f"Export the hand-off packet of incident "
                             f"{incident_id}", f"incident-{incident_id}-handoff.html", FILTERS)
        dialog.setObjectName("handoffDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("html")
        dialog.fileSelected.connect(
            lambda path, ident=incident_id: self.export(ident, Path(path)) if path else None)
        self.dialog = dialog
        dialog.open()
        return dialog

    def export(self, incident_id: int, out: Path) -> None:
        """Read the packet off the GUI thread, then write it to `out` (.pdf or HTML)."""
        pdf = out.suffix.lower() == ".pdf"
        build = self._build

        def read() -> tuple[dict[str, Any], str]:
            packet = build(incident_id)
            if not pdf:
                write_text(out, render_page(packet))
            return packet, render_body(packet)

        def written(packet: dict[str, Any]) -> None:
            self.written = out
            self._notify(f"Hand-off packet of incident {incident_id} written to {out} "
                         f"({len(packet['approvals'])} approval(s), "
                         f"{len(packet['cited'])} audit records)")

        def done(result: tuple[dict[str, Any], str]) -> None:
            packet, body = result
            if not pdf:
                written(packet)
                return
            self._notify(f"Drawing the hand-off packet of incident {incident_id} as a "
                         f"PDF\u2026")
            self._draw(body, packet, out, lambda error: failed(RuntimeError(error))
                       if error else written(packet))

        def failed(exc: BaseException) -> None:
            self._notify(f"Hand-off packet of incident {incident_id} not written: "
                         f"{describe_error(exc)}", error=True)

        self._worker.submit(f"exporting the hand-off packet of incident {incident_id}", read,
                            on_done=done, on_error=failed)


    def _draw(self, body: str, packet: dict[str, Any], out: Path,
              then: Callable[[str], None]) -> None:
        thread, job = QThread(self), PdfJob(body, packet, out)
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.finished.connect(thread.quit)
        # A slot of this object (it lives on the GUI thread): the call is queued back
        # there; a bare function would run on the drawing thread.
        job.finished.connect(self._on_job_finished)
        thread.finished.connect(self._on_thread_finished)
        self._drawing.append((thread, job, then))
        thread.start()

    def _on_job_finished(self, error: str) -> None:
        job = self.sender()
        for _thread, mine, then in self._drawing:
            if mine is job:
                then(error)

    def _on_thread_finished(self) -> None:
        thread = self.sender()
        self._drawing = [entry for entry in self._drawing if entry[0] is not thread]
        if isinstance(thread, QThread):
            thread.deleteLater()

    @property
    def busy(self) -> bool:
        return bool(self._drawing)

    def shutdown(self) -> None:
        """Wait for a PDF being drawn (the window is closing)."""
        for thread, _job, _then in list(self._drawing):
            thread.quit()
            thread.wait()


def attach_handoff(window: MainWindow, *, build: BuildPacket, worker: Worker) -> HandoffExport:
    """The export on the File menu and on the incidents' context menu, for the incident
    selected in the incidents pane (of a window whose panes are installed)."""
    incidents = window.incidents_pane
    export = HandoffExport(window, build=build, worker=worker,
                           incident=lambda: incidents.selected_incident, notify=window.notify)
    menu = window.menus.get("&File")
    if menu is not None:
        quit_action = next((a for a in menu.actions() if a.objectName() == "action_quit"), None)
        menu.insertAction(quit_action, export.action)
        if quit_action is not None:
            menu.insertSeparator(quit_action)
    incidents.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    incidents.table.addAction(export.action)
    window.closed.connect(export.shutdown)
    return export

"""The read-only viewer of one record that has no row in any pane: a runbook from the
library, a log template's lines, a change outside the selected incident's timeline, an
imported document, a report (or a signal or audit record no longer in its table).

One window, reused: the operator following citations one after another reads each in
the same place instead of collecting windows. The record is read on the `Worker`
(console/records.py); the window says it is reading, then shows it or why it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QTextBrowser, QVBoxLayout, QWidget

from console.records import RecordView
from widgets.ops import Worker, describe_error

ReadRecord = Callable[[str], RecordView]


class RecordViewer(QDialog):
    """Shows the record a link names; `ref` is the link shown (or being read)."""

    def __init__(self, read: ReadRecord, worker: Worker,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordViewer")
        self.setWindowTitle("Record")
        self.setModal(False)
        self._read, self._worker = read, worker
        self._generation = 0  # the link in flight; a late read of an older one is dropped
        self.ref = ""
        self.view: RecordView | None = None
        self.error = ""
        self.heading = QLabel(self)
        self.heading.setObjectName("recordViewerTitle")
        self.heading.setWordWrap(True)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body = QTextBrowser(self)
        self.body.setObjectName("recordViewerBody")
        self.body.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.body, 1)
        self.resize(760, 560)

    def show_ref(self, ref: str) -> None:
        """Read the record `ref` off the GUI thread and show it; brought to the front."""
        self._generation += 1
        generation, read = self._generation, self._read
        self.ref, self.view, self.error = ref, None, ""
        self.setWindowTitle(f"Record {ref}")
        self.heading.setText(f"Reading {ref}\u2026")
        self.body.clear()
        if self.isVisible():  # already open: to the front (raising a hidden window is
            self.raise_()  # not supported everywhere)
        self.show()
        self.activateWindow()

        def done(view: RecordView) -> None:
            if generation == self._generation:
                self._show(view)

        def failed(exc: BaseException) -> None:
            if generation == self._generation:
                self.error = describe_error(exc)
                self.heading.setText(f"{ref}: cannot be shown")
                self.body.setPlainText(self.error)

        self._worker.submit(f"reading {ref}", lambda: read(ref), on_done=done, on_error=failed)

    def _show(self, view: RecordView) -> None:
        self.view = view
        self.heading.setText(f"<b>{escape(view.title)}</b><br>"
                             f"<span style='font-family:monospace'>{escape(view.ref)}</span>")
        rows = "".join(f"<tr><td style='padding-right:12px'><b>{escape(label)}</b></td>"
                       f"<td>{escape(value)}</td></tr>" for label, value in view.fields)
        lines = escape("\n".join(view.lines))
        self.body.setHtml((f"<table>{rows}</table>" if rows else "")
                          + (f"<pre style='white-space: pre-wrap'>{lines}</pre>"
                             if view.lines else ""))

    def text(self) -> str:
        """Everything shown, as plain text (the title, the fields and the lines)."""
        return f"{self.heading.text()}\n{self.body.toPlainText()}"

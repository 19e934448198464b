"""The offline review window of an exported audit bundle (`watchfloor review FILE`).

A team lead reviews the night's bundle on a laptop with no database and no estate: the
window shows the bundle in the same audit browser as the console, read-only (export
and every operation are off), and verifies it on opening, signature and chain, with
the result in a banner and the first bad record selected. A version 2 bundle is
browsed a page at a time (widgets/audit_paged.py) and verified in one streaming pass
off the GUI thread, so a million records open as quickly as a thousand. Following a
record filters the browser to every record about the same thing, since there is no
other pane to go to offline.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from console.audit import VerifyResult
from console.audit_bundle_file import BundleFile, is_stream_bundle
from console.audit_bundle_read import BundleReview, open_bundle, review_of
from console.audit_bundle_verify import verify_stream_bundle
from console.domain import AuditEntry
from widgets.audit_browser import AuditBrowser
from widgets.audit_model import AuditBrowserModel
from widgets.audit_paged import PagedAuditModel
from widgets.theme import DEFAULT_THEME, STATE_COLORS, load_stylesheet

SIGNATURE_PROBLEM = "bundle signature does not match its contents (changed after export)"


class ReviewWindow(QMainWindow):
    """A bundle under review. `review` holds the last check (None until it finished)."""

    def __init__(self, bundle_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewWindow")
        self.bundle_path = bundle_path
        self.review: BundleReview | None = None
        self._file: BundleFile | None = None
        self.model: AuditBrowserModel
        if is_stream_bundle(bundle_path):  # version 2: paged, never read whole here
            self._file = BundleFile.open(bundle_path)  # BundleError: the caller says why
            self._bundle: dict[str, Any] = dict(self._file.manifest)
            self._entries: list[AuditEntry] = []
            self._count = self._file.count
            self.model = PagedAuditModel(self._file, parent=self)
        else:
            self._bundle, self._entries = open_bundle(bundle_path)
            self._count = len(self._entries)
            self.model = AuditBrowserModel(self._entries, parent=self)
        self.setWindowTitle(f"Watchfloor review \u2014 {bundle_path.name} (read-only)")
        self.browser = AuditBrowser(self.model, verify=self._check, read_only=True,
                                    parent=self)
        self.browser.verified.connect(self._on_browser_verified)
        self.browser.recordFollowed.connect(self._on_browser_record_followed)
        self.banner = QLabel(self)
        self.banner.setObjectName("reviewBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setContentsMargins(8, 6, 8, 6)
        self.result_label = QLabel("Verifying signature and chain\u2026", self)
        self.result_label.setObjectName("reviewResult")
        self.result_label.setContentsMargins(8, 0, 8, 6)
        self.result_label.setWordWrap(True)
        self._show_banner()
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.result_label)
        layout.addWidget(self.browser, 1)
        self.setCentralWidget(central)
        # Its own File menu: Ctrl+W or Ctrl+Q closes the review (not the console it was
        # opened from), as a person at the review window expects.
        close = QAction("&Close this review", self)
        close.setObjectName("action_close_review")
        close.setShortcuts([QKeySequence("Ctrl+W"), QKeySequence("Ctrl+Q")])
        close.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        close.triggered.connect(self.close)
        self.menuBar().addMenu("&File").addAction(close)
        self.resize(1280, 760)
        self.browser.verify_chain()

    def _show_banner(self) -> None:
        b = self._bundle
        self.banner.setText(
            f"<b>Read-only review</b> of <b>{self.bundle_path.name}</b> \u00b7 "
            f"{self._count:,} records \u00b7 exported {_when(b['exported_at'])} from "
            f"{b['source']} \u00b7 offline, no database")

    def _check(self) -> VerifyResult:
        """Runs on the browser's worker thread: signature and chain of the bundle (a
        version 2 file in one streaming pass over its own connection)."""
        if self._file is not None:
            opened, verdict = verify_stream_bundle(self.bundle_path)
            self.review = BundleReview(
                path=self.bundle_path, entries=(), exported_at=str(self._bundle["exported_at"]),
                source=str(self._bundle["source"]), fingerprint=opened.fingerprint,
                signature_ok=verdict.signature_ok, chain=verdict.chain)
            return verdict.result
        review = review_of(self.bundle_path, self._bundle, self._entries)
        self.review = review
        if review.chain.ok and not review.signature_ok:
            return VerifyResult(False, review.chain.records, None, SIGNATURE_PROBLEM)
        return review.chain

    def _on_browser_verified(self, _result: VerifyResult) -> None:
        review = self.review
        if review is None:
            return
        colors = STATE_COLORS[DEFAULT_THEME]
        color = colors.green if review.ok else colors.red
        mark = "\u2714" if review.ok else "\u2716"
        self.result_label.setText(f"{mark} {review.describe()} \u2014 compare the key "
                                  "with the exporter's")
        self.result_label.setStyleSheet(f"color: {color}; font-weight: bold;")

    def _on_browser_record_followed(self, kind: str, ident: str) -> None:
        self.browser.set_filters(target=f"{kind}:{ident}")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.browser.shutdown()
        if self._file is not None:
            self._file.close()
        super().closeEvent(event)


def _when(iso: object) -> str:
    try:
        return datetime.fromisoformat(str(iso)).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(iso)


def open_review_window(bundle_path: Path, parent: QWidget | None = None) -> QMainWindow:
    """A window over the bundle, verifying it as it opens (BundleError on a bad file).
    The caller keeps a reference and shows it."""
    return ReviewWindow(Path(bundle_path), parent)


def run_review_app(bundle_path: Path) -> int:
    """Run the review window until it is closed (what `watchfloor review` runs)."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Watchfloor")
    app.setOrganizationName("Watchfloor")
    app.setStyle("Fusion")
    app.setStyleSheet(load_stylesheet(DEFAULT_THEME))
    window = open_review_window(bundle_path)
    window.show()
    return int(app.exec())

"""The read-only window of a recorded incident (File -> Open recording...).

A recording (console/recording.py, or a PetShop/Nezha case) is shown in the console's
usual views, fed from data instead of the bus: the incident and its timeline
(`IncidentTableModel`, `TimelineModel`), the investigator's ranked hypotheses with
confidence bars and their evidence (`HypothesisModel`, `ConfidenceDelegate`), and the
implicated services' metrics with the changes and the symptom marked. Reading and
investigating run on a worker thread (`BackgroundJob`; seconds on a big recording),
with its progress in the window; a folder that is not a readable recording says what
is wrong (the file and the field or line) in the window. Nothing here approves, runs
or rolls back anything: a recording is the past. The plot is widgets/recording_plot.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.domain import Severity
from console.recording import RecordingError
from console.recording_view import RecordingView, ViewEvent, open_view
from console.storage.repos_agents import RankedHypothesis
from widgets.coordination_models import HypothesisModel
from widgets.delegates import ConfidenceDelegate
from widgets.incident_models import IncidentTableModel, TimelineEntry, TimelineModel
from widgets.models import AnyIndex, bold_font, tint
from widgets.offthread import BackgroundJob
from widgets.recommendation_view import document_css
from widgets.recording_plot import RecordingPlot, metric_of_ref
from widgets.tables import make_table
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, STATE_COLORS, load_stylesheet


class RecordedIncidentModel(IncidentTableModel):
    """The incidents table over one recorded incident: coloured like an open one (a
    recording's incident is not a closed case greyed out), with the window as its span."""

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        info, col = self.incident_at(index.row()), index.column()
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.SEVERITY:
                return {Severity.CRITICAL: p.red, Severity.WARNING: p.amber,
                        Severity.INFO: p.blue}[info.severity]
            return p.blue if col == self.STATE else None
        if role == Qt.ItemDataRole.BackgroundRole:
            return tint(p.red, 70) if col == self.SEVERITY else None
        if role == Qt.ItemDataRole.FontRole:
            return bold_font() if col in (self.SEVERITY, self.CAUSE) else None
        return super().data(index, role)


class _Progress(QObject):
    """Carries the worker thread's progress to the GUI thread (a queued signal)."""

    said = Signal(str)


class RecordingWindow(QMainWindow):
    """A recording, read-only. Emits ``loaded(object)`` with the `RecordingView` once the
    investigation is done, or ``failed(str)`` with the reason the folder cannot be shown;
    `view` and `error` hold the same afterwards."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, folder: Path, *, investigator: tuple[Any, Any],
                 theme: str = DEFAULT_THEME, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordingWindow")
        self.folder = Path(folder)
        self.view: RecordingView | None = None
        self.error: str | None = None
        self._colors, self._plot_colors = STATE_COLORS[theme], PLOT_COLORS[theme]
        self.setWindowTitle(f"Watchfloor \u2014 Recording: {self.folder.name} \u2014 read-only")
        if parent is None:  # a parent's style sheet (and theme switch) reaches it otherwise
            self.setStyleSheet(load_stylesheet(theme))
        self._build()
        self._show_banner()
        self.resize(1400, 900)
        classes = investigator
        self._progress = _Progress(self)
        self._progress.said.connect(self._on_progress_said)
        self._job = BackgroundJob("recording", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        say, folder_ = self._progress.said.emit, self.folder
        self._job.submit(lambda: _investigate(folder_, classes, say))

    # --- the parts -------------------------------------------------------------------

    def _build(self) -> None:
        self.banner = QLabel(self)
        self.banner.setObjectName("recordingBanner")
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.setWordWrap(True)
        self.banner.setContentsMargins(10, 8, 10, 8)
        self.status_label = QLabel("Reading the recording\u2026", self)
        self.status_label.setObjectName("recordingStatus")
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("recordingProgress")
        self.progress.setRange(0, 0)  # busy: the investigator cannot tell how far it is
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(220)
        self.progress.setMaximumHeight(10)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("recordingError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setContentsMargins(10, 10, 10, 10)
        self.error_label.hide()

        self.incidents = RecordedIncidentModel(parent=self)
        self.incidents.set_colors(self._colors)
        self.incidents_table = make_table(
            "recordingIncidentsTable", self.incidents,
            ("888", "00:00:00", "CRITICAL", "recorded", "payments/bad_deploy 0.99", ""), self)
        self.timeline = TimelineModel(self)
        self.timeline.set_colors(self._colors)
        self.timeline_table = make_table("recordingTimelineTable", self.timeline,
                                         ("00:00:00", "change", "investigator", ""), self)
        self.timeline_table.horizontalHeader().setSectionResizeMode(
            TimelineModel.WHAT, QHeaderView.ResizeMode.Stretch)
        self.hypotheses = HypothesisModel(self)
        self.hypotheses.set_colors(self._colors)
        self.hypotheses_table = make_table(
            "recordingHypothesesTable", self.hypotheses,
            ("payments/connection_pool_exhaustion", "0.00 \u2588\u2588\u2588\u2588\u2588",
             "live", "888", "investigator"), self)
        self.hypotheses_table.horizontalHeader().setSectionResizeMode(
            HypothesisModel.KEY, QHeaderView.ResizeMode.Stretch)
        for same in (HypothesisModel.STATE, HypothesisModel.BY):  # "live", "investigator"
            self.hypotheses_table.setColumnHidden(same, True)
        self.delegate = ConfidenceDelegate(self.hypotheses_table)
        self.delegate.set_colors(self._colors)
        self.hypotheses_table.setItemDelegateForColumn(HypothesisModel.CONFIDENCE,
                                                       self.delegate)
        self.hypotheses_table.selectionModel().selectionChanged.connect(
            self._on_hypotheses_selection_changed)
        self.evidence = QTextBrowser(self)
        self.evidence.setObjectName("recordingEvidence")
        self.evidence.setOpenLinks(False)
        self.evidence.document().setDefaultStyleSheet(document_css(self._colors))
        self.evidence.anchorClicked.connect(self._on_evidence_anchor_clicked)

        self.plot = RecordingPlot(self._colors, self._plot_colors, self)
        self._layout()

    def _layout(self) -> None:
        status = QHBoxLayout()
        status.setContentsMargins(10, 4, 10, 4)
        status.setSpacing(10)
        status.addWidget(self.progress)
        status.addWidget(self.status_label, 1)
        left = _column(self, ("Incident", self.incidents_table),
                       ("Timeline", self.timeline_table), stretch=(0, 1))
        self.incidents_table.setMaximumHeight(self.incidents_table.verticalHeader()
                                              .defaultSectionSize() * 2 + 8)
        right = _column(self, ("Likely causes, ranked by the investigator",
                               self.hypotheses_table), ("Evidence", self.evidence),
                        stretch=(3, 2))
        upper = QSplitter(Qt.Orientation.Horizontal, self)
        upper.addWidget(left)
        upper.addWidget(right)
        upper.setSizes([760, 640])
        self.content = QSplitter(Qt.Orientation.Vertical, self)
        self.content.setObjectName("recordingSplitter")
        self.content.addWidget(upper)
        self.content.addWidget(self.plot)
        self.content.setSizes([520, 300])
        self.content.hide()  # until the investigation is done; the filler holds its place
        self.filler = QWidget(self)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addLayout(status)
        layout.addWidget(self.error_label)
        layout.addWidget(self.content, 1)
        layout.addWidget(self.filler, 1)
        self.setCentralWidget(central)
        c = self._colors
        self.banner.setStyleSheet(f"background: {tint_css(c.blue, 0.16)}; "
                                  f"border-bottom: 1px solid {c.blue};")
        self.status_label.setStyleSheet(f"color: {c.dimmed};")
        self.error_label.setStyleSheet(f"color: {c.red}; font-weight: bold; "
                                       f"background: {tint_css(c.red, 0.10)};")

    def _show_banner(self) -> None:
        v = self.view
        head = (f"<span style='font-size: 11pt'><b>Recording: "
                f"{escape(v.name if v else self.folder.name)} \u2014 read-only</b></span>")
        if v is None:
            self.banner.setText(f"{head}<br>{escape(str(self.folder))}")
            return
        lines = [head, f"{v.start:%Y-%m-%d %H:%M} \u2013 {v.end:%H:%M} UTC, one sample "
                       f"every {v.step:g} s \u00b7 {v.service_count} services \u00b7 "
                       f"symptom on <b>{escape(', '.join(v.symptom))}</b> at "
                       f"{v.symptom_at:%H:%M:%S}"]
        if v.truth is not None:
            ranks = [n for n, h in enumerate(v.hypotheses, 1) if h.service in v.truth.services]
            where = f"ranked {ranks[0]} here" if ranks else "not among the likely causes here"
            lines.append("Labelled cause (the recording's own label, never shown to the "
                         f"investigator): <b>{escape(', '.join(v.truth.services))}</b>, "
                         f"{where}")
        lines.append(f"<span style='color: {self._colors.dimmed}'>A past incident: nothing "
                     "here approves, runs or rolls back anything.</span>")
        self.banner.setText("<br>".join(lines))
        self.banner.setToolTip(f"{v.folder}\n" + "\n".join(v.notes))

    # --- the investigation -----------------------------------------------------------

    def _on_progress_said(self, text: str) -> None:
        if self.view is None and self.error is None:
            self.status_label.setText(text)

    def _on_job_finished(self, result: RecordingView | str) -> None:
        self.progress.hide()
        if isinstance(result, str):
            self._show_error(result)
            return
        self.show_view(result)

    def _on_job_failed(self, message: str) -> None:
        self.progress.hide()
        self._show_error(f"The investigation failed: {message}")

    def _show_error(self, message: str) -> None:
        self.error = message
        self.status_label.setText(
            "This folder cannot be shown as a recording: a recording is a folder with a "
            "manifest.json (README, \"Recorded incidents\"), a PetShop issue folder or a "
            "Nezha case folder.")
        self.error_label.setText(f"\u2716 {message}")
        self.error_label.show()
        self.failed.emit(message)

    def show_view(self, view: RecordingView) -> None:
        """Fill the views from an investigated recording (once)."""
        self.view = view
        self._show_banner()
        info = view.incident
        self.incidents.update([info])
        top = view.top
        if top is not None:
            self.incidents.set_cause(info.id, top.key, top.confidence, "live")
        self.timeline.show_incident(info.id, [_entry(e) for e in view.timeline])
        self.hypotheses.show_incident(info.id, [
            RankedHypothesis(rank, info.id, "investigator", rank, "live", h, view.end)
            for rank, h in enumerate(view.hypotheses, 1)])
        self.plot.show_view(view)
        found = len(view.hypotheses)
        self.status_label.setText(
            f"Investigated in {view.took_ms / 1000.0:.1f} s: {found} likely cause(s)"
            if found else "Investigated: no likely cause stands out from the recording's "
                          "own normal")
        self.filler.hide()
        self.content.show()
        self.incidents_table.selectRow(0)
        if found:
            self.hypotheses_table.selectRow(0)
        else:
            self._show_evidence(None)
        self.loaded.emit(view)

    # --- hypotheses and evidence -----------------------------------------------------

    @property
    def selected(self) -> RankedHypothesis | None:
        rows = self.hypotheses_table.selectionModel().selectedRows()
        return self.hypotheses.hypothesis_at(rows[0].row()) if rows else None

    def _on_hypotheses_selection_changed(self, _s: QItemSelection, _d: QItemSelection) -> None:
        h = self.selected
        self._show_evidence(h)
        self.plot.highlight(h.service if h is not None else None)

    def _show_evidence(self, h: RankedHypothesis | None) -> None:
        if h is None:
            self.evidence.setHtml(f"<p style='color:{self._colors.dimmed}'>"
                                  + ("Select a likely cause to see its evidence." if
                                     self.view is None or self.view.hypotheses else
                                     "The investigator found nothing that stands out.")
                                  + "</p>")
            return
        items = "".join(
            f"<li><b>{escape(e.kind)}</b> {escape(e.summary)} \u2014 "
            f"<a href=\"{escape(e.ref, quote=True)}\">{escape(e.ref)}</a></li>"
            for e in h.hypothesis.evidence)
        self.evidence.setHtml(
            f"<p><b>{escape(h.key)}</b> \u00b7 confidence {h.confidence:.2f} \u00b7 rank "
            f"{h.rank} \u00b7 score {h.hypothesis.score:.2f}, {h.hypothesis.signals} kind(s) "
            f"of evidence</p><ul>{items or '<li>no evidence recorded</li>'}</ul>")

    def _on_evidence_anchor_clicked(self, url: QUrl) -> None:
        """A metric link shows that metric on the plot; any other selects its row of
        the timeline where it has one."""
        ref = url.toString()
        if self.plot.select_metric(metric_of_ref(ref)):
            return
        for row in range(self.timeline.rowCount()):
            if self.timeline.entry_at(row).ref == ref:
                self.timeline_table.selectRow(row)
                self.timeline_table.scrollTo(self.timeline.index(row, 0))
                return

    def closeEvent(self, event: QCloseEvent) -> None:
        self._job.shutdown()  # waits for an investigation in flight
        super().closeEvent(event)


def _investigate(folder: Path, classes: tuple[Any, Any], say: Any) -> RecordingView | str:
    """Runs on the worker thread: the view, or why the folder cannot be read."""
    try:
        return open_view(folder, *classes, progress=say)
    except RecordingError as exc:
        return str(exc)


def _entry(e: ViewEvent) -> TimelineEntry:
    return TimelineEntry(e.key, e.at, e.kind, e.actor, e.summary, e.ref, e.detail, e.tone,
                         e.mark)


def _column(parent: QWidget, *parts: tuple[str, QWidget],
            stretch: Sequence[int]) -> QWidget:
    box = QWidget(parent)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 4, 0, 0)
    layout.setSpacing(2)
    for (heading, widget), weight in zip(parts, stretch, strict=True):
        label = QLabel(heading, box)
        label.setObjectName("paneHeading")
        layout.addWidget(label)
        layout.addWidget(widget, weight)
    return box


def tint_css(color: str, alpha: float) -> str:
    c = QColor(color)
    return f"rgba({c.red()}, {c.green()}, {c.blue()}, {alpha:.2f})"


def open_recording_window(folder: Path, parent: QWidget | None = None, *,
                          investigator: tuple[Any, Any],
                          theme: str = DEFAULT_THEME) -> RecordingWindow:
    """A read-only window over the recording at `folder`; it reads and investigates it
    on a worker thread and shows the result (or what is wrong with the folder). The
    caller keeps a reference and shows it."""
    return RecordingWindow(Path(folder), investigator=investigator, theme=theme,
                           parent=parent)


"""The maturity self-assessment wizard: questions, evidence, placement, shadow mode, report.

A non-modal QWizard over one AssessmentService (given in `__init__`, no global lookups).
Everything that reads the database (the evidence, a shadow replay, recording the
assessment and its history) runs on one worker thread and comes back as a Qt signal,
so the console never freezes while an operator is assessing; placing is pure and quick
and runs where it is asked. The report page keeps the assessment (an audited operation),
plots the placements over time and exports the report as HTML (from the core) or PDF
(the same HTML printed by Qt's rich-text engine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QMarginsF, QObject, Qt, Signal
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from console.assessment_model import Answers, check_answers
from console.assessment_report import render_html
from console.assessment_service import AssessmentResult, AssessmentService, HistoryPoint
from widgets.assess_pages import (
    EvidencePage,
    IntroPage,
    PlacementPage,
    QuestionsPage,
    answered,
)
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, PlotColors

log = logging.getLogger(__name__)
ChoosePath = Callable[[str], Path | None]  # "html" | "pdf" -> where to write, or None


class _Worker(QObject):
    """One job at a time off the GUI thread. Emits ``done(tag, result)`` or
    ``failed(tag, message)``, delivered on the GUI thread (queued across threads)."""

    done = Signal(str, object)
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assess")
        self._closed = False

    def submit(self, tag: str, fn: Callable[[], Any]) -> None:
        if self._closed:
            return
        future = self._pool.submit(fn)
        future.add_done_callback(lambda f: self._finished(tag, f))

    def _finished(self, tag: str, future: Future[Any]) -> None:
        if self._closed:
            return
        exc = future.exception()
        if exc is not None:
            log.error("assessment job %s failed", tag, exc_info=exc)
            self.failed.emit(tag, f"{type(exc).__name__}: {exc}")
        else:
            self.done.emit(tag, future.result())

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class ReportPage(QWizardPage):
    """The kept assessment, its trend, and the exports."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reportPage")
        self.setTitle("Report")
        self.setSubTitle("The assessment is kept with the others, so the trend shows whether "
                         "autonomy is really growing.")
        self.summary = QLabel("", self)
        self.summary.setObjectName("reportSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.record_status = QLabel("Saving...", self)
        self.record_status.setObjectName("recordStatus")
        self.record_status.setWordWrap(True)
        self.plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.plot.setObjectName("trendPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        self.plot.setYRange(-0.3, 5.3, padding=0)
        self.plot.setMinimumHeight(180)
        left = self.plot.getAxis("left")
        left.setTicks([[(n, str(n)) for n in range(6)]])
        left.setLabel("level")
        self.legend = self.plot.addLegend(offset=(8, 8))
        self.placed_curve = self.plot.plot([], [], name="placed")
        self.evidence_curve = self.plot.plot([], [], name="evidence reaches")
        self.claimed_curve = self.plot.plot([], [], name="claimed")
        self.export_html_button = QPushButton("Export &HTML...", self)
        self.export_html_button.setObjectName("exportHtmlButton")
        self.export_pdf_button = QPushButton("Export P&DF...", self)
        self.export_pdf_button.setObjectName("exportPdfButton")
        self.export_status = QLabel("", self)
        self.export_status.setObjectName("exportStatus")
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_html_button)
        buttons.addWidget(self.export_pdf_button)
        buttons.addWidget(self.export_status, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.record_status)
        layout.addWidget(self.plot, 1)
        layout.addLayout(buttons)
        self.set_colors(PLOT_COLORS[DEFAULT_THEME])

    def set_colors(self, colors: PlotColors) -> None:
        self.plot.setBackground(colors.background)
        for axis in ("left", "bottom"):
            ax = self.plot.getPlotItem().getAxis(axis)
            ax.setPen(pg.mkPen(colors.foreground))
            ax.setTextPen(pg.mkPen(colors.foreground))
        self.legend.setLabelTextColor(colors.foreground)
        self.placed_curve.setPen(pg.mkPen(colors.latency, width=2))
        self.placed_curve.setSymbol("o")
        self.placed_curve.setSymbolBrush(pg.mkBrush(colors.latency))
        self.evidence_curve.setPen(pg.mkPen(colors.threshold, width=1,
                                            style=Qt.PenStyle.DashLine))
        self.claimed_curve.setPen(None)
        self.claimed_curve.setSymbol("x")
        self.claimed_curve.setSymbolPen(pg.mkPen(colors.foreground))

    def show_history(self, history: list[HistoryPoint]) -> None:
        xs = [h.at.timestamp() for h in history]
        self.placed_curve.setData(xs, [h.level for h in history])
        with_evidence = [(x, h.evidence_level) for x, h in zip(xs, history, strict=True)
                         if h.evidence_level is not None]
        self.evidence_curve.setData([x for x, _ in with_evidence],
                                    [v for _, v in with_evidence])
        claimed = [(x, h.claimed_level) for x, h in zip(xs, history, strict=True)
                   if h.claimed_level is not None]
        self.claimed_curve.setData([x for x, _ in claimed], [v for _, v in claimed])
        if xs:
            span = max(xs[-1] - xs[0], 3600.0)
            self.plot.setXRange(xs[0] - span * 0.05, xs[-1] + span * 0.05, padding=0)


class AssessWizard(QWizard):
    """Non-modal; emits ``recorded(int)`` with the id of each assessment it keeps."""

    recorded = Signal(int)

    def __init__(self, assessor: AssessmentService, user: str, *,
                 choose_path: ChoosePath | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("assessWizard")
        self.setWindowTitle("Maturity self-assessment")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.resize(900, 680)
        self.assessor = assessor
        self.user = user
        self._choose_path = choose_path
        self.answers: dict[str, str] = {}
        self.assessment: AssessmentResult | None = None
        self.history: list[HistoryPoint] = []
        self.recorded_id: int | None = None
        self._recorded_result: AssessmentResult | None = None
        self._classes: list[str] = []
        self._worker = _Worker(self)
        self._worker.done.connect(self._on_worker_done)
        self._worker.failed.connect(self._on_worker_failed)
        model = assessor.model
        self.intro = IntroPage(model, self)
        self.addPage(self.intro)
        self.question_pages = [QuestionsPage(model, lv.level, self.answers, self)
                               for lv in model.levels]
        for page in self.question_pages:
            self.addPage(page)
        self.evidence_page = EvidencePage(self._load_evidence, self)
        self.placement_page = PlacementPage(model, self._replay, self)
        self.report_page = ReportPage(self)
        for later in (self.evidence_page, self.placement_page, self.report_page):
            self.addPage(later)
        for which, name in ((QWizard.WizardButton.NextButton, "assessNext"),
                            (QWizard.WizardButton.BackButton, "assessBack"),
                            (QWizard.WizardButton.FinishButton, "assessFinish"),
                            (QWizard.WizardButton.CancelButton, "assessCancel")):
            self.button(which).setObjectName(name)
        self.report_page.export_html_button.clicked.connect(
            lambda: self._on_export_clicked("html"))
        self.report_page.export_pdf_button.clicked.connect(
            lambda: self._on_export_clicked("pdf"))
        self.currentIdChanged.connect(self._on_wizard_page_changed)

    # --- the flow -----------------------------------------------------------------------

    def current_answers(self) -> Answers:
        values = check_answers(self.assessor.model, answered(self.answers))
        return Answers(values, self.intro.claimed_level(), self.user, given=True)

    def _load_evidence(self) -> None:
        assessor = self.assessor

        def read() -> tuple[Any, list[str]]:
            classes = sorted({str(b.action_class) for b in assessor.library.values()})
            return assessor.evidence(), classes

        self._worker.submit("evidence", read)

    def _on_wizard_page_changed(self, page_id: int) -> None:
        page = self.page(page_id)
        if page is self.placement_page and self.evidence_page.evidence is not None:
            self.assessment = self.assessor.assess(self.current_answers(),
                                               evidence=self.evidence_page.evidence)
            self.placement_page.show_placement(self.assessment, self._classes)
        elif page is self.report_page and self.assessment is not None:
            self._record()

    def _replay(self, action_class: str) -> None:
        assessor = self.assessor

        def replay() -> Any:
            ceiling = max(assessor.service.status().autonomy_ceiling, 3)
            return assessor.shadow(assessor.raised_policy(action_class, 3),
                                   action_classes=(action_class,), ceiling=ceiling)

        self._worker.submit("shadow", replay)

    def _record(self) -> None:
        result = self.assessment
        assert result is not None
        shadow = (f"<br><b>Shadow replay:</b> {escape(result.shadow.headline())}"
                  if result.shadow is not None else "")
        self.report_page.summary.setText(
            f"<b>Level {result.placement.level} &mdash; {escape(result.placement.name)}</b>"
            f" (evidence reaches {result.placement.evidence_level}){shadow}")
        if self._recorded_result is result:
            return
        self._recorded_result = result
        assessor, user = self.assessor, self.user
        self.report_page.record_status.setText("Saving...")

        def record() -> tuple[int | None, str, list[HistoryPoint]]:
            from console.operations import PermissionDenied

            try:
                kept: int | None = assessor.record(result, as_user=user)
                why = ""
            except PermissionDenied as exc:
                kept, why = None, str(exc)
            return kept, why, assessor.history()

        self._worker.submit("record", record)

    def _on_worker_done(self, tag: str, value: Any) -> None:
        if tag == "evidence":
            evidence, self._classes = value
            self.evidence_page.show_evidence(evidence)
        elif tag == "shadow" and self.assessment is not None:
            self.assessment = replace(self.assessment, shadow=value)
            self.placement_page.show_shadow(value)
        elif tag == "record":
            kept, why, self.history = value
            self.report_page.show_history(self.history)
            if kept is None:
                self.report_page.record_status.setText(f"Not kept: {why}")
                return
            self.recorded_id = kept
            self.report_page.record_status.setText(
                f"Kept as assessment #{kept} (audited); {len(self.history)} on record.")
            self.recorded.emit(kept)

    def _on_worker_failed(self, tag: str, message: str) -> None:
        if tag == "evidence":
            self.evidence_page.show_error(message)
        elif tag == "shadow":
            self.placement_page.show_error(message)
        else:
            self.report_page.record_status.setText(f"Could not keep it: {message}")

    # --- exports ------------------------------------------------------------------------

    def report_html(self) -> str:
        assert self.assessment is not None
        return render_html(self.assessment, self.assessor.model, self.history)

    def export_html(self, path: Path) -> Path:
        path.write_text(self.report_html(), encoding="utf-8")
        self.report_page.export_status.setText(f"Wrote {path}")
        return path

    def export_pdf(self, path: Path) -> Path:
        document = QTextDocument()
        document.setHtml(self.report_html())
        writer = QPdfWriter(str(path))
        writer.setTitle("Maturity assessment")
        writer.setCreator("Watchfloor")
        writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                         QPageLayout.Orientation.Portrait,
                                         QMarginsF(15, 15, 15, 15),
                                         QPageLayout.Unit.Millimeter))
        document.print_(writer)
        self.report_page.export_status.setText(f"Wrote {path}")
        return path

    def _on_export_clicked(self, kind: str) -> None:
        if self.assessment is None:
            return
        export = self.export_html if kind == "html" else self.export_pdf
        if self._choose_path is not None:
            chosen = self._choose_path(kind)
            if chosen is not None:
                export(chosen)
            return
        dialog = QFileDialog(self, f"Export the report as {kind.upper()}")
        dialog.setObjectName(f"export{kind.capitalize()}Dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("HTML (*.html)" if kind == "html" else "PDF (*.pdf)")
        dialog.setDefaultSuffix(kind)
        dialog.selectFile(f"maturity-assessment.{kind}")
        dialog.fileSelected.connect(lambda name: export(Path(name)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()  # never exec(): the console keeps running behind it

    # --- teardown -----------------------------------------------------------------------

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)

    def shutdown(self) -> None:
        """Wait for the worker (a database read in flight); call before deleting."""
        self._worker.shutdown()

"""The outcomes dashboard: is the watchfloor getting faster, quieter and safer?

The numbers are computed by `console.kpis` (no Qt) on a worker thread and drawn here:
a row of current figures over the chosen window, three plots over time (how long,
how often by themselves, how noisy), and the headline of the latest `watchfloor eval`.
A report reads several tables, so it is recomputed only when an operation changed
incidents, recommendations or executions (or incidents were updated), at most once
per `debounce_ms`, and once a minute so that waiting ages stay true.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.kpis import KpiReport, Kpis
from widgets.offthread import BackgroundJob
from widgets.seen import on_screen
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, STATE_COLORS, PlotColors, StateColors

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

WINDOWS = (("Last 24 hours", timedelta(hours=24), "hour"),
           ("Last 7 days", timedelta(days=7), "day"),
           ("Last 30 days", timedelta(days=30), "day"))
BUCKET_CHOICES = (("per hour", "hour"), ("per day", "day"))
TICK_MS = 60_000
AXIS_WIDTH = 56


def duration(seconds: float | None) -> str:
    """Short, unambiguous at 3 a.m.: 45s, 4m 05s, 1h 20m, 2d 3h."""
    if seconds is None:
        return "\u2014"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def percent(rate: float | None) -> str:
    return "\u2014" if rate is None else f"{rate * 100:.0f}%"


def _series(values: Sequence[float | None], scale: float = 1.0) -> np.ndarray:
    return np.array([np.nan if v is None else v * scale for v in values], dtype=float)


class Tile(QFrame):
    """One KPI: caption, big value, a line of context."""

    def __init__(self, name: str, caption: str, tip: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tip)
        self.caption = QLabel(caption, self)
        self.value = QLabel("\u2014", self)
        self.value.setObjectName(f"{name}Value")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.7)
        font.setBold(True)
        self.value.setFont(font)
        self.detail = QLabel("", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.value)
        layout.addWidget(self.detail)

    def show_value(self, value: str, detail: str, color: str | None, dimmed: str) -> None:
        self.value.setText(value)
        self.detail.setText(detail)
        self.value.setStyleSheet(f"color: {color};" if color else "")
        self.caption.setStyleSheet(f"color: {dimmed};")
        self.detail.setStyleSheet(f"color: {dimmed};")


class OutcomesPane(QWidget):
    """KPIs now and over time. Emits ``reportShown(object)`` with each `KpiReport` drawn.

    `kpis` computes the reports (it only reads); `bridge`, when given, triggers refreshes.
    """

    reportShown = Signal(object)

    def __init__(self, kpis: Kpis, bridge: BusBridge | None = None, *,
                 window: timedelta = timedelta(hours=24), bucket: str = "hour",
                 debounce_ms: int = 1500, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outcomesPane")
        self.kpis = kpis
        self.span, self.bucket = window, bucket
        self.report: KpiReport | None = None
        self.plot_colors = PLOT_COLORS[DEFAULT_THEME]
        self.state_colors = STATE_COLORS[DEFAULT_THEME]
        self._job = BackgroundJob("outcomes-kpis", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.refresh)
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._on_tick_timeout)
        # While the pane is a tab behind another, nothing is recomputed (a storm would
        # have it read the whole history every debounce); it catches up when shown.
        self._stale = False

        self.window_choice = QComboBox(self)
        self.window_choice.setObjectName("outcomesWindow")
        for title, span, _bucket in WINDOWS:
            self.window_choice.addItem(title, span)
        self.bucket_choice = QComboBox(self)
        self.bucket_choice.setObjectName("outcomesBucket")
        for title, value in BUCKET_CHOICES:
            self.bucket_choice.addItem(title, value)
        self._select(window, bucket)
        self.window_choice.currentIndexChanged.connect(self._on_window_choice_changed)
        self.bucket_choice.currentIndexChanged.connect(self._on_bucket_choice_changed)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setObjectName("outcomesRefresh")
        self.refresh_button.clicked.connect(lambda _checked=False: self.refresh())
        self.updated_label = QLabel("Computing\u2026", self)
        self.updated_label.setObjectName("outcomesUpdated")
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.addWidget(self.window_choice)
        bar.addWidget(self.bucket_choice)
        bar.addWidget(self.refresh_button)
        bar.addStretch(1)
        bar.addWidget(self.updated_label)

        self.tiles = {
            "mttr": Tile("kpiMttr", "MTTR", "Mean time from an incident opening to its "
                         "resolution (resolved incidents)", self),
            "detect": Tile("kpiDetect", "Time to detect", "From the first firing alert on "
                           "its services to the incident opening", self),
            "diagnose": Tile("kpiDiagnose", "Time to diagnose", "From the incident opening "
                             "to the first hypothesis", self),
            "auto": Tile("kpiAuto", "Auto-resolved", "Resolved incidents fixed by agents "
                         "alone (every action autonomous)", self),
            "rollback": Tile("kpiRollback", "Rollback rate", "Finished actions that were "
                             "rolled back", self),
            "noise": Tile("kpiNoise", "Alerts per incident", "Alerts the correlator folded "
                          "into each incident", self),
            "repeat": Tile("kpiRepeat", "Repeat incidents", "Incidents that are an earlier "
                           "one coming back within 24 h", self),
            "approvals": Tile("kpiApprovals", "Approvals waiting", "Recommendations waiting "
                              "for a person, and the oldest one's age", self),
        }
        tiles = QGridLayout()
        tiles.setContentsMargins(6, 0, 6, 0)
        tiles.setSpacing(6)
        for i, tile in enumerate(self.tiles.values()):
            tiles.addWidget(tile, i // 4, i % 4)

        self.times_plot = self._plot("outcomesTimesPlot", "Time", "min")
        self.rates_plot = self._plot("outcomesRatesPlot", "Rate", "%")
        self.noise_plot = self._plot("outcomesNoisePlot", "Alerts / incident", "")
        for plot in (self.rates_plot, self.noise_plot):
            plot.setXLink(self.times_plot)
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key, title, plot in (("mttr_s", "MTTR", self.times_plot),
                                 ("time_to_detect_s", "detect", self.times_plot),
                                 ("time_to_diagnose_s", "diagnose", self.times_plot),
                                 ("auto_resolution_rate", "auto-resolved", self.rates_plot),
                                 ("rollback_rate", "rolled back", self.rates_plot),
                                 ("repeat_rate", "repeats", self.rates_plot)):
            self.curves[key] = plot.plot([], [], name=title, connect="finite",
                                         symbol="o", symbolSize=8)
        self.noise_bars = pg.BarGraphItem(x=[], height=[], width=1.0)
        self.noise_plot.addItem(self.noise_bars)
        self.eval_label = QLabel(self)
        self.eval_label.setObjectName("evalSummary")
        self.eval_label.setWordWrap(True)
        self.eval_label.setContentsMargins(8, 4, 8, 6)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(bar)
        layout.addLayout(tiles)
        layout.addWidget(self.times_plot, 1)
        layout.addWidget(self.rates_plot, 1)
        layout.addWidget(self.noise_plot, 1)
        layout.addWidget(self.eval_label)
        self.set_colors(self.plot_colors, self.state_colors)
        if bridge is not None:
            bridge.operationDone.connect(self._on_bridge_operation_done)
            incidents = getattr(bridge, "incidentsUpdated", None)  # when the bridge has it
            if incidents is not None:
                incidents.connect(self._on_bridge_incidents_updated)
        self._tick.start()
        self.refresh()

    # --- building ---------------------------------------------------------------------

    def _plot(self, name: str, label: str, units: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        plot.setObjectName(name)
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=True, y=False)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("left", label, units=units)
        left = plot.getAxis("left")
        left.enableAutoSIPrefix(False)
        left.setWidth(AXIS_WIDTH)
        plot.getPlotItem().getViewBox().setLimits(yMin=0)
        plot.setMinimumHeight(110)
        plot.addLegend(offset=(8, 4), labelTextSize="8pt")
        return plot

    def _select(self, window: timedelta, bucket: str) -> None:
        for i in range(self.window_choice.count()):
            if self.window_choice.itemData(i) == window:
                self.window_choice.setCurrentIndex(i)
        self.bucket_choice.setCurrentIndex(max(0, self.bucket_choice.findData(bucket)))

    def set_colors(self, plot_colors: PlotColors, state_colors: StateColors) -> None:
        """Follow the theme (pyqtgraph paints itself, so the QSS cannot reach it)."""
        self.plot_colors, self.state_colors = plot_colors, state_colors
        for plot in (self.times_plot, self.rates_plot, self.noise_plot):
            plot.setBackground(plot_colors.background)
            item = plot.getPlotItem()
            for axis in ("left", "bottom"):
                ax = item.getAxis(axis)
                ax.setPen(pg.mkPen(plot_colors.foreground))
                ax.setTextPen(pg.mkPen(plot_colors.foreground))
            legend = item.legend
            if legend is not None:
                legend.setLabelTextColor(plot_colors.foreground)
        pens = {"mttr_s": state_colors.blue, "time_to_detect_s": state_colors.amber,
                "time_to_diagnose_s": state_colors.green,
                "auto_resolution_rate": state_colors.green,
                "rollback_rate": state_colors.red, "repeat_rate": state_colors.amber}
        for key, color in pens.items():
            self.curves[key].setPen(pg.mkPen(color, width=2))
            self.curves[key].setSymbolBrush(color)
            self.curves[key].setSymbolPen(color)
        self.noise_bars.setOpts(brush=pg.mkBrush(state_colors.blue),
                                pen=pg.mkPen(state_colors.blue))
        if self.report is not None:
            self._show(self.report)

    # --- refreshing -------------------------------------------------------------------

    def refresh(self) -> None:
        """Recompute off the GUI thread (coalesced with a run in flight)."""
        kpis, span, bucket = self.kpis, self.span, self.bucket
        self._job.submit(lambda: kpis.report(span, bucket))

    def refresh_soon(self) -> None:
        if not on_screen(self):
            self._stale = True
        elif not self._debounce.isActive():
            self._debounce.start()

    def _on_tick_timeout(self) -> None:
        self.refresh_soon()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.shown()

    def shown(self) -> None:
        """On screen again (the dock came to the front): recompute what changed since."""
        if self._stale:
            self._stale = False
            self.refresh()

    def _on_bridge_operation_done(self, event: Any) -> None:
        changes = event.changes
        if changes.incidents or changes.recommendations or changes.executions:
            self.refresh_soon()

    def _on_bridge_incidents_updated(self, _event: Any) -> None:
        self.refresh_soon()

    def _on_window_choice_changed(self, index: int) -> None:
        self.span = self.window_choice.itemData(index)
        bucket = WINDOWS[index][2]  # a sensible bucket for the span: one refresh, not two
        self.bucket_choice.blockSignals(True)
        self.bucket_choice.setCurrentIndex(self.bucket_choice.findData(bucket))
        self.bucket_choice.blockSignals(False)
        self.bucket = bucket
        self.refresh()

    def _on_bucket_choice_changed(self, index: int) -> None:
        self.bucket = self.bucket_choice.itemData(index)
        self.refresh()

    def _on_job_failed(self, message: str) -> None:
        self.updated_label.setText(f"KPIs not updated: {message}")
        self.updated_label.setStyleSheet(f"color: {self.state_colors.red};")

    def _on_job_finished(self, report: KpiReport) -> None:
        self._show(report)
        self.reportShown.emit(report)

    def shutdown(self) -> None:
        self._tick.stop()
        self._debounce.stop()
        self._job.shutdown()

    # --- drawing ----------------------------------------------------------------------

    def _show(self, report: KpiReport) -> None:
        self.report = report
        t, c = report.totals, self.state_colors
        dim = c.dimmed
        self.updated_label.setText(f"as of {report.now:%Y-%m-%d %H:%M} UTC \u00b7 "
                                   f"{t.incidents} incident(s)")
        self.updated_label.setStyleSheet(f"color: {dim};")
        tiles = self.tiles
        tiles["mttr"].show_value(duration(t.mttr_s), f"{t.resolved} of {t.incidents} resolved",
                                 None, dim)
        tiles["detect"].show_value(duration(t.time_to_detect_s), "after the first alert",
                                   None, dim)
        tiles["diagnose"].show_value(duration(t.time_to_diagnose_s), "to the first hypothesis",
                                     None, dim)
        tiles["auto"].show_value(percent(t.auto_resolution_rate),
                                 f"{t.auto_resolved} of {t.resolved} resolved",
                                 c.green if t.auto_resolved else None, dim)
        tiles["rollback"].show_value(
            percent(t.rollback_rate), f"{t.rollbacks} of {t.executions} actions",
            c.red if (t.rollback_rate or 0) >= 0.2 else
            (c.amber if t.rollbacks else None), dim)
        noise = "\u2014" if t.signals_per_incident is None else f"{t.signals_per_incident:g}"
        tiles["noise"].show_value(noise, f"{t.alerts:,} alerts \u2192 {t.incidents} "
                                  f"incident(s)", None, dim)
        tiles["repeat"].show_value(percent(t.repeat_rate), f"{t.repeats} of {t.incidents}",
                                   c.amber if t.repeats else None, dim)
        oldest = report.oldest_wait_s
        tiles["approvals"].show_value(
            str(report.approvals_waiting),
            f"oldest {duration(oldest)}" if oldest is not None else
            f"answered in {duration(t.approval_wait_s)} on average",
            c.red if (oldest or 0) > 1800 else (c.amber if report.approvals_waiting else None),
            dim)
        self._draw(report)
        self._show_eval(report)

    def _draw(self, report: KpiReport) -> None:
        x = np.array([b.start.timestamp() + report.bucket_s / 2 for b in report.buckets],
                     dtype=float)
        for key, curve in self.curves.items():
            _, values = report.series(key)
            scale = 1 / 60 if key.endswith("_s") else 100.0
            y = _series(values, scale)
            if np.isnan(y).all():  # nothing to draw (pyqtgraph warns on all-NaN data)
                curve.setData([], [])
            else:
                curve.setData(x, y)
        _, noise = report.series("signals_per_incident")
        heights = _series(noise)
        some = ~np.isnan(heights)  # a bucket without incidents has no bar, not a 0 bar
        self.noise_bars.setOpts(x=x[some], height=heights[some], width=report.bucket_s * 0.7)
        heights = heights[some]
        if len(x):
            self.times_plot.setXRange(report.since.timestamp(), report.now.timestamp(),
                                      padding=0.01)
        self.rates_plot.setYRange(0, 105, padding=0)
        top = float(np.nanmax(heights)) if heights.size and np.nanmax(heights) > 0 else 1.0
        self.noise_plot.setYRange(0, top * 1.15, padding=0)
        times = [v for key in ("mttr_s", "time_to_detect_s", "time_to_diagnose_s")
                 for v in report.series(key)[1] if v is not None]
        self.times_plot.setYRange(0, max(times, default=60.0) / 60 * 1.15, padding=0)

    def _show_eval(self, report: KpiReport) -> None:
        run = report.eval
        if run is None:
            self.eval_label.setText("No <i>watchfloor eval</i> run yet: run it to score "
                                    "diagnosis and playbook choice against known faults.")
            self.eval_label.setStyleSheet(f"color: {self.state_colors.dimmed};")
            return
        at = _when(run.at)
        figures = [("top-1", percent(run.figure("accuracy", "top1"))),
                   ("top-3", percent(run.figure("accuracy", "top3"))),
                   ("playbook", percent(run.figure("playbook_selection", "accuracy"))),
                   ("auto-resolution", percent(run.figure("auto_resolution", "rate"))),
                   ("rollback", percent(run.figure("rollback", "rate")))]
        ece = run.figure("calibration", "ece")
        if ece is not None:
            figures.append(("calibration error", f"{ece:.3f}"))
        audit = run.figure("audit_ok")
        scope = f"{len(run.scenarios)} scenario(s)" if run.scenarios else "no scenarios"
        text = " \u00b7 ".join(f"{name} <b>{value}</b>" for name, value in figures)
        chain = "" if audit is None else (" \u00b7 audit chains hold" if audit else
                                          " \u00b7 <b>an audit chain failed</b>")
        self.eval_label.setText(f"Latest eval #{run.id} ({at}, {scope}): {text}{chain}")
        self.eval_label.setStyleSheet(f"color: {self.plot_colors.foreground};")


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso

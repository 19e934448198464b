"""Error rate and p99 latency history of one service, from the estate's snapshots.

`MetricHistory` keeps a bounded history for every service from the moment the window
opens, so that selecting another service shows its past at once; `MetricsPane` draws
the selected one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from console.events import EstateSnapshot
from widgets.bridge import BusBridge
from widgets.seen import on_screen
from widgets.service_model import HealthThresholds
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, PlotColors

DEFAULT_POINTS = 2000
REDRAW_MS = 1000  # the plots are redrawn at most this often while snapshots stream in
AXIS_WIDTH = 64  # px: room for "12,000" and the axis label


class Point(NamedTuple):
    t: float  # POSIX seconds, simulated time
    error_rate: float  # ratio 0-1
    p99_ms: float


def point(t: float, values: Mapping[str, float]) -> Point:
    """The point `MetricHistory.record` keeps of one service's snapshot."""
    return Point(t, float(values.get("error_rate", np.nan)),
                 float(values.get("latency_p99_ms", np.nan)))


class MetricHistory(QObject):
    """Bounded per-service history of (time, error rate, p99) built from snapshots.

    Emits ``updated()`` once per recorded snapshot.
    """

    updated = Signal()

    def __init__(self, *, bridge: BusBridge | None = None, max_points: int = DEFAULT_POINTS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_points = max_points
        self._series: dict[str, deque[Point]] = {}
        self._revision: dict[str, int] = {}  # per service, counts its recorded points
        if bridge is not None:
            bridge.estateSnapshot.connect(self._on_bridge_snapshot)

    def record(self, t: float, metrics: Mapping[str, Mapping[str, float]]) -> None:
        for service, values in metrics.items():
            series = self._series.get(service)
            if series is None:
                series = self._series[service] = deque(maxlen=self.max_points)
            series.append(Point(t, float(values.get("error_rate", np.nan)),
                                float(values.get("latency_p99_ms", np.nan))))
            self._revision[service] = self._revision.get(service, 0) + 1
        self.updated.emit()

    def record_many(self, points: Mapping[str, Sequence[Point]]) -> None:
        """Many points per service at once, oldest first, made with `point` off the GUI
        thread (the stored past a following console draws when it opens): one `updated`."""
        for service, new in points.items():
            series = self._series.get(service)
            if series is None:
                series = self._series[service] = deque(maxlen=self.max_points)
            series.extend(new)
            self._revision[service] = self._revision.get(service, 0) + len(new)
        self.updated.emit()

    def revision(self, service: str) -> int:
        """Changes whenever a point is recorded for `service` (0: none yet)."""
        return self._revision.get(service, 0)

    def _on_bridge_snapshot(self, event: EstateSnapshot) -> None:
        self.record(event.at.timestamp(), event.metrics)

    def services(self) -> list[str]:
        return list(self._series)

    def series(self, service: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times, error rates in percent and p99 in ms (empty arrays when unknown)."""
        points = self._series.get(service, ())
        if not points:
            empty = np.empty(0)
            return empty, empty, empty
        data = np.asarray(points, dtype=float)
        return data[:, 0], data[:, 1] * 100.0, data[:, 2]


class MetricsPane(QWidget):
    """Two stacked plots with a shared time axis: error rate (%) and p99 latency (ms),
    each with its degraded (amber) and critical (red) thresholds as dashed lines."""

    def __init__(self, history: MetricHistory, thresholds: HealthThresholds | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metricsPane")
        self.history = history
        self.thresholds = thresholds or HealthThresholds()
        self.service: str | None = None
        self._drawn: tuple[str, int] | None = None  # the service and revision on screen
        self.title = QLabel("Select a service to see its history", self)
        self.title.setObjectName("metricsTitle")
        self.error_plot = self._plot("errorPlot", "Error rate", "%")
        self.latency_plot = self._plot("latencyPlot", "p99 latency", "ms")
        self.latency_plot.setXLink(self.error_plot)
        self.error_curve = self.error_plot.plot([], [])
        self.latency_curve = self.latency_plot.plot([], [])
        t = self.thresholds
        self.error_limit = pg.InfiniteLine(pos=t.error_degraded * 100.0, angle=0)
        self.error_critical = pg.InfiniteLine(pos=t.error_critical * 100.0, angle=0)
        self.latency_limit = pg.InfiniteLine(pos=t.p99_degraded_ms, angle=0)
        self.latency_critical = pg.InfiniteLine(pos=t.p99_critical_ms, angle=0)
        for plot, lines in ((self.error_plot, (self.error_limit, self.error_critical)),
                            (self.latency_plot, (self.latency_limit, self.latency_critical))):
            for line in lines:
                plot.addItem(line, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.error_plot, 1)
        layout.addWidget(self.latency_plot, 1)
        self.set_colors(PLOT_COLORS[DEFAULT_THEME])
        # Redrawn at most every REDRAW_MS while snapshots stream in, and only when seen
        # (the pane is often a tab behind another).
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        history.updated.connect(self._on_history_updated)

    def _plot(self, name: str, label: str, units: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        plot.setObjectName(name)
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=True, y=False)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("left", label, units=units)
        left = plot.getAxis("left")
        left.enableAutoSIPrefix(False)  # "1.5 kms" reads badly at 3 a.m.
        left.setWidth(AXIS_WIDTH)  # the same for both plots, so their time axes line up
        plot.getPlotItem().getViewBox().setLimits(yMin=0)
        plot.enableAutoRange(axis="y", enable=False)  # _redraw keeps the threshold in view
        plot.setMinimumHeight(120)
        return plot

    def set_colors(self, colors: PlotColors) -> None:
        for plot in (self.error_plot, self.latency_plot):
            plot.setBackground(colors.background)
            item = plot.getPlotItem()
            for axis in ("left", "bottom"):
                ax = item.getAxis(axis)
                ax.setPen(pg.mkPen(colors.foreground))
                ax.setTextPen(pg.mkPen(colors.foreground))
        self.error_curve.setPen(pg.mkPen(colors.error, width=2))
        self.latency_curve.setPen(pg.mkPen(colors.latency, width=2))
        for line in (self.error_limit, self.latency_limit):
            line.setPen(pg.mkPen(colors.threshold, width=1, style=Qt.PenStyle.DashLine))
        for line in (self.error_critical, self.latency_critical):
            line.setPen(pg.mkPen(colors.critical, width=1, style=Qt.PenStyle.DashLine))

    def show_service(self, service: str) -> None:
        self.service = service
        self._redraw()

    def _on_history_updated(self) -> None:
        if self.service is not None and not self._redraw_timer.isActive():
            self._redraw_timer.start()  # not restarted: a steady stream must not starve it

    def _on_redraw_timer_timeout(self) -> None:
        if on_screen(self):
            self._redraw()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.shown()

    def shown(self) -> None:
        """On screen again: draw what came while hidden (nothing when already drawn)."""
        self._redraw()

    @staticmethod
    def _fit_y(plot: pg.PlotWidget, values: np.ndarray, threshold: float) -> None:
        top = threshold * 1.25
        if len(values) and np.isfinite(values).any():
            top = max(top, float(np.nanmax(values)) * 1.1)
        plot.setYRange(0, top, padding=0)

    def _redraw(self) -> None:
        """Draw the selected service's history; nothing to do when what is on screen is
        already its latest (the same service selected again, a snapshot without it)."""
        if self.service is None:
            return
        drawn = (self.service, self.history.revision(self.service))
        if drawn == self._drawn:
            return
        self._drawn = drawn
        t, errors, p99 = self.history.series(self.service)
        self.error_curve.setData(t, errors)
        self.latency_curve.setData(t, p99)
        self._fit_y(self.error_plot, errors, self.thresholds.error_degraded * 100.0)
        self._fit_y(self.latency_plot, p99, self.thresholds.p99_degraded_ms)
        if len(t):
            self.title.setText(f"{self.service} \u2014 error {errors[-1]:.2f} % \u00b7 "
                               f"p99 {p99[-1]:,.0f} ms  (dashed: degraded / critical)")
        else:
            self.title.setText(f"{self.service} \u2014 no data yet")

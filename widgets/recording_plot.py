"""The metrics plot of the recording window: the implicated services of a recorded
incident overlaid, one metric at a time, with the window shaded and the symptom and the
changes marked.

It is not the live `MetricsPane`: that one draws a single service against the live
alert thresholds, where a recording's normal is its own and the question is which
service moved first, so the services are overlaid on one plot (as the incidents pane
draws them), over the window and as long a stretch of normal before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from console.recording_view import RecordingView, ViewEvent
from widgets.incidents_pane import MARK_TONES, SERIES_COLORS
from widgets.metrics_pane import AXIS_WIDTH
from widgets.models import tint
from widgets.theme import PlotColors, StateColors

METRIC_TITLES = {"error_rate": ("Error rate", "%", 100.0),
                 "latency_p99_ms": ("p99 latency", "ms", 1.0),
                 "latency_p50_ms": ("p50 latency", "ms", 1.0),
                 "request_rate": ("Requests", "/s", 1.0)}
"""How a metric is labelled and scaled on the plot (others: their name, unscaled)."""


def metric_of_ref(ref: str) -> str:
    """The metric of an evidence link `metric:<service>/<metric>@<time>` ("" otherwise)."""
    if not ref.startswith("metric:"):
        return ""
    return ref.removeprefix("metric:").partition("@")[0].rpartition("/")[2]


class RecordingPlot(QWidget):
    """One metric of the implicated services; `highlight` widens one service's curve."""

    def __init__(self, colors: StateColors, plot_colors: PlotColors,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordingPlotPane")
        self.view: RecordingView | None = None
        self.highlighted: str | None = None
        self._colors = colors
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.marks: dict[str, pg.InfiniteLine] = {}
        self.plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.plot.setObjectName("recordingPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        left = self.plot.getAxis("left")
        left.setWidth(AXIS_WIDTH)
        left.enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(160)
        self.plot.setBackground(plot_colors.background)
        for axis in ("left", "bottom"):
            ax = self.plot.getPlotItem().getAxis(axis)
            ax.setPen(pg.mkPen(plot_colors.foreground))
            ax.setTextPen(pg.mkPen(plot_colors.foreground))
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.legend.setLabelTextColor(plot_colors.foreground)
        self.metric_choice = QComboBox(self)
        self.metric_choice.setObjectName("recordingMetric")
        self.metric_choice.currentIndexChanged.connect(self._on_metric_choice_changed)
        self.title = QLabel("Implicated services", self)
        self.title.setObjectName("paneHeading")
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.metric_choice)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)

    @property
    def shown_metric(self) -> str:
        """The metric on the plot (not `metric`: that is a Qt virtual of every widget)."""
        return str(self.metric_choice.currentData() or "")

    def show_view(self, view: RecordingView) -> None:
        """Draw an investigated recording (once): its metrics to choose from, the leading
        hypothesis's metric first shown."""
        self.view = view
        self.metric_choice.blockSignals(True)
        for metric in view.metrics:
            title, units, _scale = METRIC_TITLES.get(metric, (metric, "", 1.0))
            self.metric_choice.addItem(f"{title} ({units})" if units else title, metric)
        self.metric_choice.setCurrentIndex(max(self.metric_choice.findData(
            view.focus_metric), 0))
        self.metric_choice.blockSignals(False)
        region = pg.LinearRegionItem((view.start.timestamp(), view.end.timestamp()),
                                     movable=False, pen=pg.mkPen(None),
                                     brush=pg.mkBrush(tint(pg.mkColor(self._colors.blue), 18)))
        self.plot.addItem(region, ignoreBounds=True)
        self._add_marks(view.timeline)
        self._redraw()

    def select_metric(self, metric: str) -> bool:
        index = self.metric_choice.findData(metric)
        if index >= 0:
            self.metric_choice.setCurrentIndex(index)
        return index >= 0

    def highlight(self, service: str | None) -> None:
        if service != self.highlighted:
            self.highlighted = service
            self._redraw()

    def _on_metric_choice_changed(self, _index: int) -> None:
        self._redraw()

    def _redraw(self) -> None:
        view, metric = self.view, self.shown_metric
        if view is None:
            return
        title, units, scale = METRIC_TITLES.get(metric, (metric, "", 1.0))
        self.plot.setLabel("left", title, units=units)
        for n, service in enumerate(view.plotted):
            points = view.series.get((service, metric), [])
            curve = self.curves.get(service)
            if curve is None:
                curve = self.curves[service] = self.plot.plot([], [], name=service)
            width = 4 if service == self.highlighted else 2
            curve.setPen(pg.mkPen(SERIES_COLORS[n % len(SERIES_COLORS)], width=width))
            curve.setData([at.timestamp() for at, _ in points],
                          [value * scale for _, value in points])
        self.title.setText(f"Implicated services \u2014 {title}; the shaded band is the "
                           "recording window, dashed lines mark the symptom and changes")
        self.plot.enableAutoRange(axis="y", enable=True)
        span = (view.end - view.start).total_seconds()
        self.plot.setXRange(view.start.timestamp() - span, view.end.timestamp(),
                            padding=0.02)

    def _add_marks(self, events: Sequence[ViewEvent]) -> None:
        c = self._colors
        tones = {"red": c.red, "amber": c.amber, "green": c.green, "blue": c.blue}
        for event in events:
            if not event.mark:
                continue
            color = tones.get(event.tone or MARK_TONES.get(event.kind, ""), c.dimmed)
            line = pg.InfiniteLine(pos=event.at.timestamp(), angle=90, movable=False,
                                   label=event.mark,
                                   labelOpts={"position": 0.92 - 0.12 * (len(self.marks) % 5),
                                              "movable": False, "color": color},
                                   pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine))
            line.setToolTip(f"{event.at:%H:%M:%S} {event.summary}")
            self.plot.addItem(line, ignoreBounds=True)
            self.marks[event.key] = line

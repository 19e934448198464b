"""The live incident timeline: the incidents, the story of the selected one, and the
metrics of its services with that story's events marked on them.

The pane reads through the facade only (`incident_activity`, the agents' events) on the
`Worker`, and merges what it read into its models, so a busy night's refreshes neither
block the GUI thread nor reset the tables. Bus events tell it when to read again; an
agent's event is shown straight from the bus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from console.events import RemoteChange
from console.service import WatchfloorService
from console.steering import SteeringOps
from widgets.bridge import BusBridge
from widgets.filtering import RowFilterProxy
from widgets.incident_models import (
    KINDS,
    IncidentTableModel,
    TimelineEntry,
    TimelineModel,
    agent_entry,
    timeline_entries,
)
from widgets.metrics_pane import AXIS_WIDTH, MetricHistory
from widgets.ops import Worker
from widgets.plot_marks import TOP, restack
from widgets.seen import on_screen
from widgets.tables import make_table
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, STATE_COLORS

REFRESH_MS = 250  # bursts of events (340 alerts in two minutes) make one read
PLOT_REFRESH_MS = 2000  # the implicated metrics' plot is redrawn at most this often (each
# redraw re-ticks both axes and the legend in Python: about 40-100 ms of the storm's loop)
SERIES_COLORS = ("#6ea8ff", "#ff6b70", "#f2a623", "#4cc26a", "#c792ea", "#5fd7d7",
                 "#e6a0c4", "#b5bd68")
MAX_CURVES = 6  # the worst services of a big incident; more would hide each other
X_STEP_S = 120.0  # the plot's time axis grows in steps of this many seconds
MARK_TONES = {"change": "blue", "approval": "green", "action": "blue", "validation": "green"}


class IncidentFilterProxy(RowFilterProxy):
    """Free text over every column, and optionally open incidents only."""

    def __init__(self, model: IncidentTableModel, parent: QWidget) -> None:
        super().__init__(model, parent)
        self.incidents = model
        self.open_only = False

    def set_open_only(self, on: bool) -> None:
        self.open_only = on
        self.keep_only((lambda row: self.incidents.incident_at(row).state == "open")
                       if on else None)


class TimelineFilterProxy(RowFilterProxy):
    """Free text over every column, and one kind (or all)."""

    def __init__(self, model: TimelineModel, parent: QWidget) -> None:
        super().__init__(model, parent)
        self.timeline = model
        self.kind = ""

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.keep_only((lambda row: self.timeline.entry_at(row).kind == kind) if kind
                       else None)


class IncidentsPane(QWidget):
    """Emits ``incidentSelected(int)`` when another incident is shown (the coordination
    view follows it)."""

    incidentSelected = Signal(int)

    def __init__(self, model: IncidentTableModel, *, service: WatchfloorService,
                 steering: SteeringOps, bridge: BusBridge, history: MetricHistory,
                 worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("incidentsPane")
        self.model = model
        self.timeline = TimelineModel(self)
        self.history = history
        self._service, self._steering, self._worker = service, steering, worker
        self.pinned = False  # until the operator picks a row, the newest incident shows
        self._following = False
        self._marks: dict[str, pg.InfiniteLine] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._plot_label: tuple[str, str] | None = None
        self._curve_colors: dict[str, str] = {}
        self._x_range: tuple[float, float] | None = None
        self._plot_colors = PLOT_COLORS[DEFAULT_THEME]
        self._state_colors = STATE_COLORS[DEFAULT_THEME]
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self._on_refresh_timeout)
        self._agent_entries: list[tuple[int, TimelineEntry]] = []
        self._agent_timer = QTimer(self)
        self._agent_timer.setSingleShot(True)
        self._agent_timer.setInterval(REFRESH_MS)
        self._agent_timer.timeout.connect(self._merge_agent_entries)

        self.proxy = IncidentFilterProxy(model, self)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole + 1)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("incidentFilter")
        self.filter.setPlaceholderText("Search incidents: service, cause, severity\u2026")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter_text_changed)
        self.open_only = QCheckBox("Open only", self)
        self.open_only.setObjectName("incidentOpenOnly")
        self.open_only.toggled.connect(self._on_open_only_toggled)
        self.count_label = QLabel(self)
        self.table = make_table("incidentsTable", self.proxy,
                                ("888", "00:00:00", "CRITICAL", "waiting for approval",
                                 "payments/bad_deploy 0.99 \U0001f4cc", ""), self, fit=True)
        # The cause is what an operator reads first: it takes the room, the services
        # list gives it up.
        self.table.horizontalHeader().setSectionResizeMode(
            IncidentTableModel.CAUSE, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.pressed.connect(self._on_table_pressed)

        self.title = QLabel("No incident selected", self)
        self.title.setObjectName("incidentTitle")
        self.title.setWordWrap(True)
        self.timeline_proxy = TimelineFilterProxy(self.timeline, self)
        self.kind_filter = QComboBox(self)
        self.kind_filter.setObjectName("timelineKindFilter")
        self.kind_filter.addItem("Everything", "")
        for kind in KINDS:
            self.kind_filter.addItem(kind.capitalize() + "s", kind)
        self.kind_filter.currentIndexChanged.connect(self._on_kind_filter_changed)
        self.timeline_filter = QLineEdit(self)
        self.timeline_filter.setObjectName("timelineFilter")
        self.timeline_filter.setPlaceholderText("Search the timeline\u2026")
        self.timeline_filter.setClearButtonEnabled(True)
        self.timeline_filter.textChanged.connect(self._on_timeline_filter_changed)
        self.timeline_table = make_table("timelineTable", self.timeline_proxy,
                                         ("00:00:00", "validation", "investigator", ""), self)
        self.timeline_table.horizontalHeader().setSectionResizeMode(
            TimelineModel.WHAT, QHeaderView.ResizeMode.Stretch)

        self.plot = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.plot.setObjectName("incidentPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.getAxis("left").setWidth(AXIS_WIDTH)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(90)
        # Which labels collide depends on the zoom and the width: stacked again on both,
        # once pyqtgraph has moved the labels to the new range (hence the timer).
        self._restack = QTimer(self)
        self._restack.setSingleShot(True)
        self._restack.setInterval(0)
        self._restack.timeout.connect(lambda: restack(self._marks.values()))
        self.plot.getViewBox().sigXRangeChanged.connect(self._restack.start)
        self.plot.getViewBox().sigResized.connect(self._restack.start)
        self.legend = self.plot.addLegend(offset=(8, 8), labelTextSize="8pt")
        self.metric_choice = QComboBox(self)
        self.metric_choice.setObjectName("incidentMetric")
        self.metric_choice.addItem("Error rate (%)", "error")
        self.metric_choice.addItem("p99 latency (ms)", "p99")
        self.metric_choice.currentIndexChanged.connect(self._on_metric_changed)

        self._layout()
        self.set_theme(DEFAULT_THEME)
        bridge.agentEventPosted.connect(self._on_bridge_agent_event)
        bridge.incidentsUpdated.connect(self._on_bridge_incidents)
        bridge.auditAppended.connect(self._on_bridge_audit)
        bridge.signalsReceived.connect(self._on_bridge_signals)
        bridge.changesReceived.connect(self._on_bridge_changes)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        bridge.causesChanged.connect(self._on_bridge_causes)
        # Snapshots come many times a second in a fast scenario: the plot is redrawn at
        # most every PLOT_REFRESH_MS, and only while it can be seen.
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self._on_plot_timer_timeout)
        self._plot_stale = False
        history.updated.connect(self._on_history_updated)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.layoutChanged,
                    self.proxy.modelReset):
            sig.connect(self._on_proxy_changed)
        self._on_proxy_changed()

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.setContentsMargins(4, 4, 4, 0)
        top.setSpacing(12)
        top.addWidget(self.filter, 1)
        top.addWidget(self.open_only)
        top.addWidget(self.count_label)
        upper = QWidget(self)
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.setSpacing(4)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.table)
        story = QWidget(self)
        story_layout = QVBoxLayout(story)
        story_layout.setContentsMargins(0, 0, 0, 0)
        story_layout.setSpacing(4)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.setSpacing(8)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.kind_filter)
        bar.addWidget(self.timeline_filter)
        story_layout.addLayout(bar)
        story_layout.addWidget(self.timeline_table)
        chart = QWidget(self)
        chart_layout = QVBoxLayout(chart)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.setSpacing(2)
        chart_bar = QHBoxLayout()
        chart_bar.setContentsMargins(4, 0, 4, 0)
        label = QLabel("Implicated services \u2014 lines mark changes, approvals, runs and "
                       "validations", chart)
        label.setObjectName("incidentPlotTitle")
        label.setWordWrap(True)
        chart_bar.addWidget(label, 1)
        chart_bar.addWidget(self.metric_choice)
        chart_layout.addLayout(chart_bar)
        chart_layout.addWidget(self.plot, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("incidentsSplitter")
        for part in (upper, story, chart):
            self.splitter.addWidget(part)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setStretchFactor(2, 4)
        self.splitter.setSizes([120, 260, 240])
        # A small explicit minimum: a narrow window squeezes (or collapses) the parts
        # instead of refusing to shrink below the sum of their minimums.
        self.splitter.setMinimumSize(160, 72)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    # --- selection -----------------------------------------------------------------

    @property
    def selected_incident(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.incident_at(self.proxy.mapToSource(rows[0]).row()).id

    def select_incident(self, incident_id: int) -> None:
        """Select (and pin) an incident, as a click on its row does."""
        source = self.model.row_of(incident_id)
        if source < 0:
            return
        row = self.proxy.mapFromSource(self.model.index(source, 0)).row()
        if row >= 0:
            self.pinned = True
            self.table.selectRow(row)

    def _on_table_pressed(self, _index: QModelIndex) -> None:
        self.pinned = True

    def _on_table_selection_changed(self, _sel: QItemSelection, _desel: QItemSelection) -> None:
        if not self._following:
            self.pinned = True
        incident_id = self.selected_incident
        if incident_id == self.timeline.incident_id:
            return
        self.timeline.show_incident(incident_id)
        self._clear_marks()
        self._show_title()
        self._redraw_curves()
        if incident_id is not None:
            self._load(incident_id)
            self.incidentSelected.emit(incident_id)

    def _on_proxy_changed(self, *_args: object) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{total:,} incidents" if shown == total
                                 else f"{shown:,} of {total:,}")
        if self.pinned or not shown:
            return
        if self.table.selectionModel().isRowSelected(0, QModelIndex()):
            return
        self._following = True
        try:
            self.table.selectRow(0)
        finally:
            self._following = False

    def _show_title(self) -> None:
        incident_id = self.timeline.incident_id
        row = self.model.row_of(incident_id) if incident_id is not None else -1
        if row < 0:
            self.title.setText("No incident selected")
            return
        info = self.model.incident_at(row)
        live = self.model.live_state(info.id)
        self.title.setText(f"Incident {info.id} \u00b7 {info.severity.value} \u00b7 "
                           f"{live.label if live else info.state} \u2014 {info.title}")

    # --- reading and merging -------------------------------------------------------

    def refresh(self) -> None:
        """Read the selected incident's timeline again (debounced)."""
        if self.timeline.incident_id is not None and not self._refresh.isActive():
            self._refresh.start()  # not restarted: a steady stream must not starve it

    def _on_refresh_timeout(self) -> None:
        if self.timeline.incident_id is not None:
            self._load(self.timeline.incident_id)

    def _load(self, incident_id: int) -> None:
        """Read what is new of the incident: the whole timeline on its first read (the
        model was just reset), only the notes, signals and agent events after the last
        ones merged afterwards (a storm's timeline is read in steps of what is new)."""
        service, steering, timeline = self._service, self._steering, self.timeline
        same = incident_id == timeline.incident_id
        after_note = timeline.last_note_id if same else 0
        after_signal = timeline.last_signal_id if same else 0
        after_event = timeline.last_event_id if same else 0

        def read() -> tuple[list[TimelineEntry], int, int, int]:
            activity = service.incident_activity(incident_id, after_note_id=after_note,
                                                 after_signal_id=after_signal)
            if activity is None:
                return [], after_note, after_signal, after_event
            events = steering.agent_events(incident_id, after_id=after_event)
            entries = timeline_entries(activity, events)
            return (entries, activity.last_note_id, activity.last_signal_id,
                    max((e.id for e in events), default=after_event))

        self._worker.submit(f"reading incident {incident_id}", read,
                            on_done=lambda done: self._merge(incident_id, *done))

    def _merge(self, incident_id: int, entries: Sequence[TimelineEntry],
               last_note_id: int = 0, last_signal_id: int = 0,
               last_event_id: int = 0) -> None:
        view = self.timeline_table
        at_bottom = view.verticalScrollBar().value() >= view.verticalScrollBar().maximum() - 2
        added = self.timeline.merge(incident_id, entries, last_note_id, last_signal_id,
                                    last_event_id)
        if added:
            self._add_marks(added)
            if at_bottom:
                view.scrollToBottom()

    def _services(self) -> tuple[str, ...]:
        incident_id = self.timeline.incident_id
        row = self.model.row_of(incident_id) if incident_id is not None else -1
        return self.model.incident_at(row).services if row >= 0 else ()

    def _on_bridge_agent_event(self, event: Any) -> None:
        """The agents' steps on the shown incident go in together, at most every
        REFRESH_MS: in a storm they come about ten a second, and each insert on its own
        repainted the timeline and its scroll bar (most of the window's painting)."""
        incident_id = event.event.incident_id
        if incident_id is None or incident_id != self.timeline.incident_id:
            return
        self._agent_entries.append((incident_id, agent_entry(event.event)))
        if not self._agent_timer.isActive():
            self._agent_timer.start()

    def _merge_agent_entries(self) -> None:
        shown = self.timeline.incident_id
        entries = [entry for incident_id, entry in self._agent_entries if incident_id == shown]
        self._agent_entries.clear()
        if entries and shown is not None:
            self._merge(shown, entries)

    def _on_bridge_incidents(self, event: Any) -> None:
        if any(info.id == self.timeline.incident_id for info in event.incidents):
            self._show_title()
            self.refresh()

    def _on_bridge_causes(self, event: Any) -> None:
        if event.incident_id == self.timeline.incident_id:
            self._show_title()  # its live state

    def _on_bridge_audit(self, event: Any) -> None:
        if event.entry.target.startswith(("recommendation:", "execution:")):
            self.refresh()

    def _on_bridge_operation_done(self, event: Any) -> None:
        """Another console's change to what the timeline shows (this console's own come
        as the events above)."""
        shown = self.timeline.incident_id
        if not isinstance(event, RemoteChange) or shown is None:
            return
        changes = event.changes
        if changes.recommendations or changes.executions or str(shown) in changes.ids:
            self.refresh()

    def _on_bridge_signals(self, event: Any) -> None:
        services = set(self._services())
        if any(sig.service in services for sig in event.signals):
            self.refresh()

    def _on_bridge_changes(self, event: Any) -> None:
        services = set(self._services())
        if any(chg.service in services for chg in event.changes):
            self.refresh()

    # --- filters -------------------------------------------------------------------

    def _on_filter_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())

    def _on_open_only_toggled(self, on: bool) -> None:
        self.proxy.set_open_only(on)

    def _on_kind_filter_changed(self, _index: int) -> None:
        self.timeline_proxy.set_kind(str(self.kind_filter.currentData() or ""))

    def _on_timeline_filter_changed(self, text: str) -> None:
        self.timeline_proxy.setFilterFixedString(text.strip())

    def _on_metric_changed(self, _index: int) -> None:
        self._redraw_curves()

    # --- the plot ------------------------------------------------------------------

    def set_theme(self, name: str) -> None:
        self._plot_colors, self._state_colors = PLOT_COLORS[name], STATE_COLORS[name]
        self.model.set_colors(self._state_colors)
        self.timeline.set_colors(self._state_colors)
        colors = self._plot_colors
        self.plot.setBackground(colors.background)
        for axis in ("left", "bottom"):
            ax = self.plot.getPlotItem().getAxis(axis)
            ax.setPen(pg.mkPen(colors.foreground))
            ax.setTextPen(pg.mkPen(colors.foreground))
        self.legend.setLabelTextColor(colors.foreground)
        entries = {e.key: e for e in self.timeline.entries()}
        for key, line in self._marks.items():
            self._style_mark(line, entries[key])
        self._redraw_curves()

    def _tone(self, name: str) -> str:
        c = self._state_colors
        return {"red": c.red, "amber": c.amber, "green": c.green, "blue": c.blue}.get(
            name, c.dimmed)

    def _clear_marks(self) -> None:
        for line in self._marks.values():
            self.plot.removeItem(line)
        self._marks.clear()

    def _add_marks(self, entries: Sequence[TimelineEntry]) -> None:
        """A line per new marked entry; the x range is fitted again only when one was
        added (an agent's step has no mark, and refitting per step cost the storm's loop
        tens of ms each time)."""
        added = False
        for entry in entries:
            if not entry.mark or entry.key in self._marks:
                continue
            added = True
            at = entry.at.timestamp()
            line = pg.InfiniteLine(pos=at, angle=90, movable=False, label=entry.mark,
                                   labelOpts={"position": TOP, "movable": False})
            line.setToolTip(f"{entry.at:%H:%M:%S} {entry.summary}")
            self._style_mark(line, entry)
            self.plot.addItem(line, ignoreBounds=True)
            self._marks[entry.key] = line
        if added:
            self._fit_x()
            self._restack.start()

    def _style_mark(self, line: pg.InfiniteLine, entry: TimelineEntry) -> None:
        color = self._tone(entry.tone or MARK_TONES.get(entry.kind, ""))
        line.setPen(pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine))
        line.label.setColor(color)

    def _worst(self) -> tuple[str, ...]:
        """The incident's services, the worst (highest peak) first, at most MAX_CURVES."""
        use_error = self.metric_choice.currentData() != "p99"
        peaks = []
        for name in self._services():
            _t, errors, p99 = self.history.series(name)
            values = errors if use_error else p99
            peak = float(np.nanmax(values)) if len(values) and np.isfinite(values).any() \
                else 0.0
            peaks.append((-peak, name))
        return tuple(name for _p, name in sorted(peaks)[:MAX_CURVES])

    def _on_history_updated(self) -> None:
        if not self._plot_timer.isActive():
            self._plot_timer.start()  # not restarted: a steady stream must not starve it

    def _on_plot_timer_timeout(self) -> None:
        if on_screen(self.plot):
            self._redraw_curves()
        else:
            self._plot_stale = True  # drawn when next shown

    def draw_plot_now(self) -> None:
        """Draw the plot with what the history holds now, without waiting for the refresh
        timer (a snapshot steps the scenario faster than the timer fires)."""
        self._plot_timer.stop()
        self._redraw_curves()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.shown()

    def shown(self) -> None:
        """On screen again (the main window calls this when the dock comes to the front):
        draw what came while hidden."""
        if self._plot_stale:
            self._redraw_curves()

    def _redraw_curves(self) -> None:
        self._plot_stale = False
        services = self._worst()
        for name in list(self._curves):
            if name not in services:
                self.plot.removeItem(self._curves.pop(name))
                self._curve_colors.pop(name, None)
                self.legend.removeItem(name)
        use_error = self.metric_choice.currentData() != "p99"
        label = ("Error rate", "%") if use_error else ("p99 latency", "ms")
        if label != self._plot_label:  # a new label lays the axis out again: only on change
            self._plot_label = label
            self.plot.setLabel("left", label[0], units=label[1])
        every = self._services()
        for name in services:
            n = every.index(name)  # a service keeps its colour as the ranking changes
            t, errors, p99 = self.history.series(name)
            curve = self._curves.get(name)
            if curve is None:
                curve = self._curves[name] = self.plot.plot([], [], name=name)
            color = SERIES_COLORS[n % len(SERIES_COLORS)]
            if self._curve_colors.get(name) != color:
                self._curve_colors[name] = color
                curve.setPen(pg.mkPen(color, width=2))
            curve.setData(t, errors if use_error else p99)
        self._fit_x()

    def _fit_x(self) -> None:
        incident_id = self.timeline.incident_id
        row = self.model.row_of(incident_id) if incident_id is not None else -1
        if row < 0:
            return
        info = self.model.incident_at(row)
        starts = [info.opened_at.timestamp() - 600.0]
        starts += [line.value() - 60.0 for line in self._marks.values()]
        ends = [info.opened_at.timestamp() + 300.0]
        for name in info.services:
            t, _e, _p = self.history.series(name)
            if len(t):
                ends.append(float(np.nanmax(t)))
        start = min(starts)
        # The end moves on in whole steps: the axes (their ticks and dates) are laid out
        # again only when the range changes, not on every redraw of a live incident.
        end = math.ceil(max(ends) / X_STEP_S) * X_STEP_S
        if (start, end) != self._x_range:
            self._x_range = (start, end)
            self.plot.setXRange(start, end, padding=0.02)

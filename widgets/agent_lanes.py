"""One lane per agent: what each did, in order, and what it is doing now.

A painted widget rather than a plot: the agents' steps take milliseconds while the
simulated clock moves in seconds, so on a time axis a whole investigation would collapse
onto one pixel. Events are therefore laid out in the order they were recorded (the
`AgentEvent` id), evenly spaced, with the simulated time written under the lanes
wherever it moves on; the newest events stay in view. Messages are drawn from the
sender's lane to the receiver's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QHelpEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from console.domain import AgentEvent
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, STATE_COLORS, PlotColors, StateColors

KNOWN_ORDER = ("coordinator", "investigator", "impact_tracer", "retriever", "recommender",
               "playbook", "scribe", "learner")
LABEL_WIDTH = 210
REPAINT_MS = 250  # new events are painted at most this often
LANE_HEIGHT = 30
AXIS_HEIGHT = 22
MIN_LANE = 15.0  # below this a lane shows its name only
MIN_STEP = 14.0
MAX_STEP = 36.0
MAX_MARKS = 240  # the newest this many at most, however wide the widget
_KIND_COLORS = {"status": "dimmed", "tool_call": "blue", "hypothesis": "amber",
                "message": "green", "error": "red", "steer": "blue"}


@dataclass(frozen=True, slots=True)
class _Mark:
    x: float
    y: float
    event: AgentEvent


class AgentLanes(QWidget):
    """The lanes of one incident's agents; `add` appends events, `clear` starts over."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("agentLanes")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.events: list[AgentEvent] = []
        self._ids: set[int] = set()
        self._lanes: list[str] = []
        self._doing: dict[str, str] = {}
        self._marks: list[_Mark] = []
        self.plot_colors: PlotColors = PLOT_COLORS[DEFAULT_THEME]
        self.state_colors: StateColors = STATE_COLORS[DEFAULT_THEME]
        # New events are painted at most every REPAINT_MS (a busy incident posts dozens
        # a second; each paint walks every visible mark).
        self._repaint = QTimer(self)
        self._repaint.setSingleShot(True)
        self._repaint.setInterval(REPAINT_MS)
        self._repaint.timeout.connect(self.update)

    # --- data --------------------------------------------------------------------------

    @property
    def lanes(self) -> list[str]:
        return list(self._lanes)

    def doing_now(self, agent: str) -> str:
        """The agent's latest status line (what it is doing, or how it ended)."""
        return self._doing.get(agent, "")

    def clear(self) -> None:
        self.events, self._ids, self._lanes, self._doing = [], set(), [], {}
        self.update()

    def add(self, events: Iterable[AgentEvent]) -> None:
        added = False
        in_order = True
        for event in sorted(events, key=lambda e: e.id):
            if event.id in self._ids:
                continue
            self._ids.add(event.id)
            if self.events and self.events[-1].id > event.id:
                in_order = False
            self.events.append(event)
            added = True
            for agent in (event.agent, event.to_agent):
                if agent and agent not in self._lanes:
                    self._lanes.append(agent)
            if event.kind in ("status", "error"):  # "investigator done" -> "done"
                self._doing[event.agent] = event.summary.removeprefix(f"{event.agent} ")
            elif event.kind == "tool_call":
                self._doing[event.agent] = f"ran {event.summary}"
        if added:
            if not in_order:  # events come in id order but for the odd late one
                self.events.sort(key=lambda e: e.id)
            self._lanes.sort(key=lambda a: (KNOWN_ORDER.index(a) if a in KNOWN_ORDER
                                            else len(KNOWN_ORDER), a))
            self.updateGeometry()
            if not self._repaint.isActive():
                self._repaint.start()

    def set_colors(self, plot: PlotColors, state: StateColors) -> None:
        self.plot_colors, self.state_colors = plot, state
        self.update()

    # --- geometry ----------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(600, max(len(self._lanes), 6) * LANE_HEIGHT + AXIS_HEIGHT + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, int(3 * MIN_LANE) + AXIS_HEIGHT + 8)

    def _lane_y(self, agent: str) -> float:
        return 4 + (self._lanes.index(agent) + 0.5) * self._lane_height()

    def _lane_height(self) -> float:
        if not self._lanes:
            return LANE_HEIGHT
        return max(min((self.height() - AXIS_HEIGHT - 8) / len(self._lanes), 44.0), MIN_LANE)

    # --- painting ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pc, sc = self.plot_colors, self.state_colors
        painter.fillRect(self.rect(), QColor(pc.background))
        fg = QColor(pc.foreground)
        if not self._lanes:
            painter.setPen(QColor(sc.dimmed))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "No agent has worked on this incident yet")
            self._marks = []
            return
        lane_h = self._lane_height()
        right = self.width() - 12
        left = LABEL_WIDTH + 8
        grid = QColor(pc.foreground)
        grid.setAlpha(30)
        name_font = QFont(self.font())
        name_font.setBold(True)
        small = QFont(self.font())
        small.setPointSizeF(max(self.font().pointSizeF() - 1.5, 7.0))
        for n, agent in enumerate(self._lanes):
            top = 4 + n * lane_h
            if n % 2:
                band = QColor(pc.foreground)
                band.setAlpha(10)
                painter.fillRect(QRectF(0, top, self.width(), lane_h), band)
            painter.setPen(grid)
            painter.drawLine(QPointF(left, top + lane_h / 2), QPointF(right, top + lane_h / 2))
            painter.setPen(fg)
            painter.setFont(name_font)
            if lane_h < 30:  # one line: the name, then what it is doing, elided
                name_w = painter.fontMetrics().horizontalAdvance(agent) + 8
                painter.drawText(QRectF(8, top, LABEL_WIDTH, lane_h),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 agent)
                painter.setFont(small)
                painter.setPen(QColor(sc.dimmed))
                doing = painter.fontMetrics().elidedText(
                    self._doing.get(agent, ""), Qt.TextElideMode.ElideRight,
                    int(LABEL_WIDTH - name_w))
                painter.drawText(QRectF(8 + name_w, top, LABEL_WIDTH - name_w, lane_h),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 doing)
                continue
            painter.drawText(QRectF(8, top, LABEL_WIDTH, lane_h / 2 + 2),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, agent)
            painter.setFont(small)
            painter.setPen(QColor(sc.dimmed))
            doing = painter.fontMetrics().elidedText(self._doing.get(agent, ""),
                                                     Qt.TextElideMode.ElideRight, LABEL_WIDTH)
            painter.drawText(QRectF(8, top + lane_h / 2, LABEL_WIDTH, lane_h / 2),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, doing)
        width = max(right - left, 10)
        step = min(max(width / max(len(self.events), 1), MIN_STEP), MAX_STEP)
        visible = self.events[-min(max(int(width // step), 1), MAX_MARKS):]
        self._marks = []
        axis_y = 4 + len(self._lanes) * lane_h
        painter.setFont(small)
        # Worked out once per paint, not per mark: where each lane is, the pens, and
        # which part of the widget needs painting (a mark outside it is not drawn).
        lane_y = {agent: 4 + (n + 0.5) * lane_h for n, agent in enumerate(self._lanes)}
        pens: dict[str, tuple[QPen, QColor]] = {}
        exposed = event.rect()
        x_min, x_max = exposed.left() - MAX_STEP, exposed.right() + MAX_STEP
        dimmed = QColor(sc.dimmed)
        last_label_x = -1e9
        last_second: tuple[int, int, int] | None = None
        for i, agent_event in enumerate(visible):
            x = left + step * (i + 0.5)
            y = lane_y[agent_event.agent]
            self._marks.append(_Mark(x, y, agent_event))
            at = agent_event.at
            second = (at.hour, at.minute, at.second)
            if second != last_second and x - last_label_x > 64:
                if x_min <= x <= x_max:
                    painter.setPen(dimmed)
                    painter.drawLine(QPointF(x, axis_y), QPointF(x, axis_y + 4))
                    painter.drawText(QRectF(x - 30, axis_y + 4, 60, AXIS_HEIGHT - 4),
                                     Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                     f"{second[0]:02d}:{second[1]:02d}:{second[2]:02d}")
                last_label_x = x
            last_second = second
            if x_min <= x <= x_max:
                self._paint_mark(painter, agent_event, x, y, lane_h, lane_y, pens)

    def _paint_mark(self, painter: QPainter, event: AgentEvent, x: float, y: float,
                    lane_h: float, lane_y: dict[str, float],
                    pens: dict[str, tuple[QPen, QColor]]) -> None:
        sc = self.state_colors
        r = max(min(lane_h * 0.2, 6.0), 3.0)
        color = getattr(sc, _KIND_COLORS.get(event.kind, "dimmed"))
        if event.kind == "tool_call" and event.data.get("ok") is False:
            color = sc.red
        if event.kind == "status" and event.summary.endswith(" done"):
            color = sc.green
        drawing = pens.get(color)
        if drawing is None:
            pen = QPen(QColor(color))
            pen.setWidthF(1.6)
            drawing = pens[color] = (pen, QColor(color))
        painter.setPen(drawing[0])
        painter.setBrush(drawing[1])
        if event.kind == "message" and event.to_agent in lane_y:
            target = lane_y[event.to_agent]
            painter.drawLine(QPointF(x, y), QPointF(x, target))
            head = QPainterPath()
            sign = 1 if target > y else -1
            head.moveTo(x, target)
            head.lineTo(x - r, target - sign * r * 1.6)
            head.lineTo(x + r, target - sign * r * 1.6)
            head.closeSubpath()
            painter.drawPath(head)
        if event.kind == "tool_call":
            painter.drawRoundedRect(QRectF(x - r * 1.4, y - r * 0.8, r * 2.8, r * 1.6), 2, 2)
        elif event.kind == "status":
            painter.drawLine(QPointF(x, y - r * 1.3), QPointF(x, y + r * 1.3))
        elif event.kind in ("steer", "message") and not event.to_agent:
            diamond = QPainterPath()
            diamond.moveTo(x, y - r * 1.2)
            diamond.lineTo(x + r * 1.2, y)
            diamond.lineTo(x, y + r * 1.2)
            diamond.lineTo(x - r * 1.2, y)
            diamond.closeSubpath()
            painter.drawPath(diamond)
        elif event.kind == "error":
            painter.drawLine(QPointF(x - r, y - r), QPointF(x + r, y + r))
            painter.drawLine(QPointF(x - r, y + r), QPointF(x + r, y - r))
        else:
            painter.drawEllipse(QPointF(x, y), r, r)

    # --- tooltips ----------------------------------------------------------------------

    def event_at(self, x: float, y: float) -> AgentEvent | None:
        """The event drawn nearest to (x, y), within a few pixels."""
        best, best_d = None, 14.0 ** 2
        for mark in self._marks:
            d = (mark.x - x) ** 2 + (mark.y - y) ** 2
            if d < best_d:
                best, best_d = mark.event, d
        return best

    def _lane_under(self, y: float) -> str | None:
        n = int((y - 4) // self._lane_height())
        return self._lanes[n] if 0 <= n < len(self._lanes) else None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            found = self.event_at(event.pos().x(), event.pos().y())
            lane = self._lane_under(event.pos().y()) if event.pos().x() < LABEL_WIDTH else None
            if lane is not None:
                QToolTip.showText(event.globalPos(),
                                  f"{lane}: {self._doing.get(lane) or 'nothing yet'}", self)
            elif found is None:
                QToolTip.hideText()
            else:
                to = f" \u2192 {found.to_agent}" if found.to_agent else ""
                took = f" ({found.duration_ms:.0f} ms)" if found.duration_ms else ""
                QToolTip.showText(event.globalPos(),
                                  f"{found.at:%H:%M:%S} {found.agent}{to} \u00b7 "
                                  f"{found.kind}{took}\n{found.summary}", self)
            return True
        return super().event(event)

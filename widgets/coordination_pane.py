"""The coordination view: the agents working the selected incident, each in its lane,
the messages between them, and the board's hypotheses, with pin / exclude.

Pinning and excluding are the steering operations (`SteeringOps`), run on the `Worker`;
the board the pane shows afterwards is the one the operation published
(``steeringChanged``), not one the pane worked out.
"""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer, QUrl
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.steering import SteeringOps
from console.storage.repos_agents import RankedHypothesis
from widgets.agent_lanes import REPAINT_MS, AgentLanes
from widgets.bridge import BusBridge
from widgets.coordination_models import AgentMessageModel, HypothesisModel
from widgets.delegates import ConfidenceDelegate
from widgets.ops import Worker, describe_error
from widgets.recommendation_view import document_css
from widgets.tables import make_table
from widgets.theme import DEFAULT_THEME, PLOT_COLORS, STATE_COLORS


class CoordinationPane(QWidget):
    """Emits ``linkActivated(str)`` with an evidence link the operator clicked."""

    linkActivated = QtSignal(str)

    def __init__(self, *, steering: SteeringOps, user: str, bridge: BusBridge,
                 worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("coordinationPane")
        self._steering, self._user, self._worker = steering, user, worker
        self._colors = STATE_COLORS[DEFAULT_THEME]
        self.incident_id: int | None = None
        self._board_heard = False  # a board from the bus is newer than a read in flight
        self._events: list[Any] = []  # agent events heard, not yet in the lanes and table
        self._events_timer = QTimer(self)
        self._events_timer.setSingleShot(True)
        self._events_timer.setInterval(REPAINT_MS)
        self._events_timer.timeout.connect(self._add_events)
        self._busy = False
        self.messages = AgentMessageModel(self)
        self.hypotheses = HypothesisModel(self)
        self.lanes = AgentLanes(self)
        self.title = QLabel("Agents \u2014 select an incident", self)
        self.title.setObjectName("coordinationTitle")
        self.hypotheses_table = make_table("hypothesesTable", self.hypotheses,
                                           ("payments/connection_pool_exhaustion",
                                            "0.00 \u2588\u2588\u2588\u2588",
                                            "live \u00b7 contested", "888", ""), self,
                                           fit=True)
        self.hypotheses_table.horizontalHeader().setSectionResizeMode(
            HypothesisModel.KEY, QHeaderView.ResizeMode.Stretch)
        self.delegate = ConfidenceDelegate(self.hypotheses_table)
        self.hypotheses_table.setItemDelegateForColumn(HypothesisModel.CONFIDENCE,
                                                       self.delegate)
        self.messages_table = make_table("agentMessagesTable", self.messages,
                                         ("00:00:00", "impact_tracer", "board", ""),
                                         self)
        self.pin_button = QPushButton("Pin as the cause", self)
        self.pin_button.setObjectName("pinButton")
        self.pin_button.setToolTip("The agents act on this cause (the recommender follows it)")
        self.pin_button.clicked.connect(self.pin_selected)
        self.exclude_button = QPushButton("Exclude", self)
        self.exclude_button.setObjectName("excludeButton")
        self.exclude_button.setToolTip("Rule this cause out; it stays on the board, marked")
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.message = QLabel(self)
        self.message.setObjectName("coordinationMessage")
        self.message.setWordWrap(True)
        self.evidence = QTextBrowser(self)
        self.evidence.setObjectName("hypothesisEvidence")
        self.evidence.setOpenLinks(False)
        self.evidence.anchorClicked.connect(self._on_evidence_anchor_clicked)
        self._layout()
        self.hypotheses_table.selectionModel().selectionChanged.connect(
            self._on_hypothesis_selection_changed)
        self.hypotheses.dataChanged.connect(self._on_hypotheses_changed)
        self.hypotheses.rowsInserted.connect(self._on_hypotheses_changed)
        self.hypotheses.modelReset.connect(self._on_hypotheses_changed)
        bridge.agentEventPosted.connect(self._on_bridge_agent_event)
        bridge.hypothesesUpdated.connect(self._on_bridge_hypotheses)
        bridge.incidentsUpdated.connect(self._on_bridge_incidents)
        bridge.steeringChanged.connect(self._on_bridge_steering)
        self.set_theme(DEFAULT_THEME)
        self._show_selected()

    def _layout(self) -> None:
        """Lanes on top, the board under them at full width (hypotheses are long names),
        then the selected hypothesis's evidence beside the agents' messages."""
        board = QWidget(self)
        board_layout = QVBoxLayout(board)
        board_layout.setContentsMargins(0, 0, 0, 0)
        board_layout.setSpacing(4)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.setSpacing(8)
        heading = QLabel("Hypotheses", board)
        heading.setObjectName("paneHeading")
        bar.addWidget(heading)
        bar.addWidget(self.message, 1)
        bar.addWidget(self.pin_button)
        bar.addWidget(self.exclude_button)
        board_layout.addLayout(bar)
        board_layout.addWidget(self.hypotheses_table)
        evidence = QWidget(self)
        evidence_layout = QVBoxLayout(evidence)
        evidence_layout.setContentsMargins(0, 0, 0, 0)
        evidence_layout.setSpacing(2)
        heading = QLabel("Evidence", evidence)
        heading.setObjectName("paneHeading")
        evidence_layout.addWidget(heading)
        evidence_layout.addWidget(self.evidence)
        talk = QWidget(self)
        talk_layout = QVBoxLayout(talk)
        talk_layout.setContentsMargins(0, 0, 0, 0)
        talk_layout.setSpacing(2)
        heading = QLabel("Messages between agents", talk)
        heading.setObjectName("paneHeading")
        talk_layout.addWidget(heading)
        talk_layout.addWidget(self.messages_table)
        lower = QSplitter(Qt.Orientation.Horizontal, self)
        lower.addWidget(evidence)
        lower.addWidget(talk)
        lower.setStretchFactor(0, 2)
        lower.setStretchFactor(1, 3)
        upper = QWidget(self)
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.setSpacing(2)
        upper_layout.addWidget(self.title)
        upper_layout.addWidget(self.lanes, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("coordinationSplitter")
        for part, stretch in ((upper, 3), (board, 3), (lower, 2)):
            self.splitter.addWidget(part)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        # A small explicit minimum: a narrow window squeezes (or collapses) the parts
        # instead of refusing to shrink below the sum of their minimums.
        self.splitter.setMinimumSize(160, 72)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def set_theme(self, name: str) -> None:
        self._colors = STATE_COLORS[name]
        self.messages.set_colors(self._colors)
        self.hypotheses.set_colors(self._colors)
        self.delegate.set_colors(self._colors)
        self.lanes.set_colors(PLOT_COLORS[name], self._colors)
        self.evidence.document().setDefaultStyleSheet(document_css(self._colors))
        self._show_selected()

    # --- the incident shown ----------------------------------------------------------

    def show_incident(self, incident_id: int) -> None:
        """Follow another incident: read its board and its agents' events once."""
        if incident_id == self.incident_id:
            return
        self.incident_id = incident_id
        self.title.setText(f"Agents on incident {incident_id}")
        self.lanes.clear()
        self._board_heard = False
        self.messages.show_incident(incident_id)
        self.hypotheses.show_incident(incident_id)
        steering = self._steering

        def read() -> tuple[list[Any], list[RankedHypothesis], bool]:
            found = steering.service.incidents(ids=[incident_id])
            closed = bool(found) and found[0].state != "open"
            return steering.agent_events(incident_id), steering.hypotheses(incident_id), \
                closed

        self._worker.submit(f"reading the agents of incident {incident_id}", read,
                            on_done=lambda result: self._on_read(incident_id, *result))

    def _on_read(self, incident_id: int, events: list[Any],
                 hypotheses: list[RankedHypothesis], closed: bool = False) -> None:
        if incident_id != self.incident_id:
            return
        self.hypotheses.set_closed(incident_id, closed)
        self.lanes.add(events)
        self.messages.add(events)
        if not self._board_heard:
            self.hypotheses.set_board(incident_id, hypotheses)

    def _on_bridge_incidents(self, event: Any) -> None:
        """A resolved incident's hypotheses are no longer live (reopened: live again)."""
        for info in event.incidents:
            if info.id == self.incident_id:
                self.hypotheses.set_closed(info.id, info.state != "open")

    def _on_bridge_agent_event(self, event: Any) -> None:
        """Events on the shown incident go in together, at most every REPAINT_MS (each
        message inserted on its own repainted the table, ten times a second in a storm)."""
        if event.event.incident_id == self.incident_id and self.incident_id is not None:
            self._events.append(event.event)
            if not self._events_timer.isActive():
                self._events_timer.start()

    def _add_events(self) -> None:
        events = [e for e in self._events if e.incident_id == self.incident_id]
        self._events.clear()
        if events:
            self.lanes.add(events)
            self.messages.add(events)

    def _on_bridge_hypotheses(self, event: Any) -> None:
        if event.incident_id == self.incident_id:
            self._board_heard = True
            self.hypotheses.set_board(event.incident_id, event.hypotheses, event.contested)

    def _on_bridge_steering(self, event: Any) -> None:
        if event.incident_id == self.incident_id:
            self._board_heard = True
            self.hypotheses.set_board(event.incident_id, event.hypotheses,
                                      self.hypotheses.contested)

    # --- selection and steering -------------------------------------------------------

    @property
    def selected(self) -> RankedHypothesis | None:
        rows = self.hypotheses_table.selectionModel().selectedRows()
        return self.hypotheses.hypothesis_at(rows[0].row()) if rows else None

    def select_hypothesis(self, key: str) -> bool:
        row = self.hypotheses.row_of(key)
        if row >= 0:
            self.hypotheses_table.selectRow(row)
        return row >= 0

    def _on_hypothesis_selection_changed(self, _s: QItemSelection, _d: QItemSelection) -> None:
        self.message.clear()
        self._show_selected()

    def _on_hypotheses_changed(self, *_args: object) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        h = self.selected
        if h is None:
            self.evidence.setHtml(f"<p style='color:{self._colors.dimmed}'>Select a "
                                  "hypothesis to see its evidence.</p>")
        else:
            items = "".join(
                f"<li>{escape(e.summary)} \u2014 "
                f"<a href=\"{escape(e.ref, quote=True)}\">{escape(e.ref)}</a></li>"
                for e in h.hypothesis.evidence)
            self.evidence.setHtml(f"<p><b>{escape(h.key)}</b> {h.confidence:.2f} "
                                  f"({escape(h.state)}, by {escape(h.agent)})</p>"
                                  f"<ul>{items or '<li>no evidence recorded</li>'}</ul>")
        self.pin_button.setEnabled(h is not None and h.state != "pinned" and not self._busy)
        self.exclude_button.setEnabled(h is not None and h.state != "excluded"
                                       and not self._busy)

    def _on_evidence_anchor_clicked(self, url: QUrl) -> None:
        self.linkActivated.emit(url.toString())

    def pin_selected(self) -> None:
        self._steer("pin")

    def exclude_selected(self) -> None:
        self._steer("exclude")

    def _steer(self, how: str) -> None:
        h, incident_id = self.selected, self.incident_id
        if h is None or incident_id is None or self._busy:
            return
        steering, user, key = self._steering, self._user, h.key
        operation = steering.pin_hypothesis if how == "pin" else steering.exclude_hypothesis
        done_word = "pinned" if how == "pin" else "excluded"
        self._busy = True
        self._show_selected()

        def done(_changes: Any) -> None:
            self._busy = False
            self._say(f"{key} {done_word}; the agents re-plan")
            self._show_selected()

        def failed(exc: BaseException) -> None:
            self._busy = False
            self._say(f"{key} not {done_word}: {describe_error(exc)}", error=True)
            self._show_selected()

        self._worker.submit(f"{how} {key}",
                            lambda: operation(incident_id, key, as_user=user,
                                              reason="from the console's coordination view"),
                            on_done=done, on_error=failed)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("level", "error" if error else "info")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

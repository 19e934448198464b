"""The one place where bus events cross into Qt.

The core's `EventBus` calls plain subscribers synchronously on the thread that publishes,
which is the event loop's thread (qasync runs asyncio inside Qt, so that is the GUI
thread). The bridge re-emits every event as a Qt signal so that panes connect with Qt's
usual lifetime rules: a pane that is destroyed is disconnected by Qt, whereas a bound
method left on the bus would be called on a deleted C++ object.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, SignalInstance

from agents.board import AgentEventPosted, HypothesesUpdated
from console.bus import EventBus
from console.events import (
    AuditAppended,
    CausesChanged,
    ChangesReceived,
    EstateSnapshot,
    Event,
    HandlerFailed,
    IncidentsUpdated,
    LeadershipChanged,
    LogsReceived,
    OperationDenied,
    OperationDone,
    ScenarioFinished,
    SignalsReceived,
    SourceHealthChanged,
)
from console.steering import SteeringChanged


class BusBridge(QObject):
    """Re-emits bus events as Qt signals, each carrying the event object itself.

    Signals (all ``Signal(object)``, the payload is the frozen event dataclass):

    - ``signalsReceived(SignalsReceived)``: a batch of new alert/log signals, oldest first.
    - ``changesReceived(ChangesReceived)``: deploys, config changes, flag flips.
    - ``logsReceived(LogsReceived)``: log records from the sources.
    - ``auditAppended(AuditAppended)``: one new record of the audit chain.
    - ``estateSnapshot(EstateSnapshot)``: current metrics of every service, once per step.
    - ``operationDone(OperationDone)``: an operation committed; ``changes`` names what moved.
    - ``operationDenied(OperationDenied)``: an operation was refused (already audited).
    - ``scenarioFinished(ScenarioFinished)``: the scenario played to its end.
    - ``handlerFailed(HandlerFailed)``: a bus subscriber raised; shown, never lost.
    - ``sourceHealth(SourceHealthChanged)``: a signal source went degraded or recovered.
    - ``incidentsUpdated(IncidentsUpdated)``: incidents opened, grew, resolved, reopened.
    - ``agentEventPosted(AgentEventPosted)``: an agent's message, status, tool call,
      hypothesis or error, as stored.
    - ``hypothesesUpdated(HypothesesUpdated)``: an incident's board of hypotheses changed.
    - ``steeringChanged(SteeringChanged)``: an operator pinned or excluded something.
    - ``leadershipChanged(LeadershipChanged)``: who leads the team, or who is in it, changed.
    - ``causesChanged(CausesChanged)``: an incident's causes, or their states, changed.

    `close()` unsubscribes from the bus; call it before the bridge's owner goes away.
    """

    signalsReceived = Signal(object)
    changesReceived = Signal(object)
    logsReceived = Signal(object)
    auditAppended = Signal(object)
    estateSnapshot = Signal(object)
    operationDone = Signal(object)
    operationDenied = Signal(object)
    scenarioFinished = Signal(object)
    handlerFailed = Signal(object)
    sourceHealth = Signal(object)
    incidentsUpdated = Signal(object)
    agentEventPosted = Signal(object)
    hypothesesUpdated = Signal(object)
    steeringChanged = Signal(object)
    leadershipChanged = Signal(object)
    causesChanged = Signal(object)

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        routes: dict[type[Event], SignalInstance] = {
            SignalsReceived: self.signalsReceived,
            ChangesReceived: self.changesReceived,
            LogsReceived: self.logsReceived,
            AuditAppended: self.auditAppended,
            EstateSnapshot: self.estateSnapshot,
            OperationDone: self.operationDone,
            OperationDenied: self.operationDenied,
            ScenarioFinished: self.scenarioFinished,
            HandlerFailed: self.handlerFailed,
            SourceHealthChanged: self.sourceHealth,
            IncidentsUpdated: self.incidentsUpdated,
            AgentEventPosted: self.agentEventPosted,
            HypothesesUpdated: self.hypothesesUpdated,
            SteeringChanged: self.steeringChanged,
            LeadershipChanged: self.leadershipChanged,
            CausesChanged: self.causesChanged,
        }
        self._unsubscribers: list[Callable[[], None]] = [
            bus.subscribe(event_type, signal.emit) for event_type, signal in routes.items()
        ]

    @property
    def closed(self) -> bool:
        return not self._unsubscribers

    def close(self) -> None:
        """Stop listening to the bus (idempotent)."""
        while self._unsubscribers:
            self._unsubscribers.pop()()

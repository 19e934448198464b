"""What another console of the team changed, brought into this console's models.

A change made here reaches the models as the core's own events (IncidentsUpdated,
AuditAppended, HypothesesUpdated, SignalsReceived). A change made at another console
arrives as a `RemoteChange` (console/team_sync.py), which names only the collections
that moved and their ids; this reads what moved, off the GUI thread, and hands it to the
incident and audit models the way a local change would, and the signals another console
stored to every pane that listens for signals (the bridge's `signalsReceived`, as if they
had come in here; nothing of the core hears them again). (The recommendation, history,
outcomes and status panes re-read on any OperationDone already, and a RemoteChange is
one.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer

from console.domain import AuditEntry, IncidentInfo, Signal
from console.events import RemoteChange, SignalsReceived
from console.service import WatchfloorService
from console.steering import SteeringOps
from console.team_sync import signal_ranges
from widgets.bridge import BusBridge
from widgets.incident_models import IncidentTableModel
from widgets.ops import Worker, describe_error

log = logging.getLogger(__name__)

GATHER_MS = 100  # changes that come together are read together
MAX_IDS = 200
SEEN_SIGNALS = 100_000  # signal ids remembered (a range read twice shows each once)


class AuditModel(Protocol):
    @property
    def last_seq(self) -> int: ...

    def add_entry(self, entry: AuditEntry) -> None: ...


Read = tuple[list[IncidentInfo], dict[int, tuple[str, float, str]], list[AuditEntry],
             list[tuple[int, Signal]]]


class RemoteFollower(QObject):
    """Feeds the incident model and the audit models with other consoles' changes."""

    def __init__(self, service: WatchfloorService, steering: SteeringOps, *,
                 bridge: BusBridge, worker: Worker, incidents: IncidentTableModel,
                 audit_models: Sequence[AuditModel], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service, self._steering, self._worker = service, steering, worker
        self._incidents, self._audit_models = incidents, tuple(audit_models)
        self._bridge = bridge
        self._ids: set[int] = set()
        self._audit = False
        self._signal_ranges: list[tuple[int, int]] = []
        self._signals_seen: set[int] = set()
        self._in_read: list[tuple[int, int]] = []  # the ranges the read under way reads
        # Records up to this seq are in the models: the ones read when they were made,
        # then each read here. (Not the models' newest: a record this console appended
        # may be newer than another console's it has not read yet.)
        self._read_upto = min((m.last_seq for m in self._audit_models), default=0)
        self._reading = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(GATHER_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        bridge.operationDone.connect(self._on_bridge_operation_done)

    def _on_bridge_operation_done(self, event: Any) -> None:
        if not isinstance(event, RemoteChange):
            return
        changes = event.changes
        if changes.incidents:
            self._ids.update(int(i) for i in changes.ids if str(i).isdigit())
        self._audit = self._audit or changes.audit
        if changes.signals:
            self._signal_ranges += signal_ranges(changes)
        if (self._ids or self._audit or self._signal_ranges) and not self._timer.isActive():
            self._timer.start()

    def _on_timer_timeout(self) -> None:
        if self._reading:  # one read at a time; what came meanwhile is read after it
            self._timer.start()
            return
        ids = sorted(self._ids)[-MAX_IDS:]
        audit, ranges = self._audit, self._signal_ranges
        self._ids, self._audit, self._signal_ranges = set(), False, []
        after = self._read_upto
        service, steering = self._service, self._steering

        def read() -> Read:
            incidents = service.incidents(len(ids), ids=ids) if ids else []
            causes: dict[int, tuple[str, float, str]] = {}
            for info in incidents:
                usable = [h for h in steering.hypotheses(info.id)
                          if h.state in ("pinned", "live")]
                if usable:
                    causes[info.id] = (usable[0].key, usable[0].confidence, usable[0].state)
            entries = service.audit_entries(after=after) if audit else []
            signals = [s for low, high in ranges for s in service.signals_between(low, high)]
            return incidents, causes, entries, signals

        self._reading, self._in_read = True, ranges
        self._worker.submit("reading another console's changes", read,
                            on_done=self._on_read, on_error=self._on_read_failed)

    def _on_read(self, read: Read) -> None:
        self._reading = False
        incidents, causes, entries, signals = read
        if entries:
            self._read_upto = max(self._read_upto, entries[-1].seq)
        if incidents:
            self._incidents.update(incidents)
        for incident_id, (key, confidence, state) in causes.items():
            self._incidents.set_cause(incident_id, key, confidence, state)
        for entry in entries:  # oldest first; each model skips what it has
            for model in self._audit_models:
                model.add_entry(entry)
        new = self._new_signals(signals)
        if new:
            self._bridge.signalsReceived.emit(SignalsReceived(new))

    def _new_signals(self, signals: list[tuple[int, Signal]]) -> tuple[Signal, ...]:
        """The ones not shown yet, oldest first (ranges of two writers may overlap)."""
        new = []
        for ident, signal in sorted(signals, key=lambda pair: pair[0]):
            if ident not in self._signals_seen:
                self._signals_seen.add(ident)
                new.append(signal)
        if len(self._signals_seen) > SEEN_SIGNALS:  # ranges are recent: forget the oldest
            floor = max(self._signals_seen) - SEEN_SIGNALS // 2
            self._signals_seen = {i for i in self._signals_seen if i > floor}
        return tuple(new)

    def _on_read_failed(self, exc: BaseException) -> None:
        self._reading = False  # the next change reads again (the audit from `after`)
        self._signal_ranges = self._in_read + self._signal_ranges  # and these signals
        log.error("reading another console's changes failed", exc_info=exc)
        self._worker.failed.emit(f"reading another console's changes failed: "
                                 f"{describe_error(exc)}")

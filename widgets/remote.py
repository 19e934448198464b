"""What another console of the team changed, brought into this console's models.

A change made here reaches the models as the core's own events (IncidentsUpdated,
AuditAppended, HypothesesUpdated). A change made at another console arrives as a
`RemoteChange` (console/team_sync.py), which names only the collections that moved and
their ids; this reads what moved, off the GUI thread, and hands it to the incident and
audit models the way a local change would. (The recommendation, history, outcomes and
status panes re-read on any OperationDone already, and a RemoteChange is one.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer

from console.domain import AuditEntry, IncidentInfo
from console.events import RemoteChange
from console.service import WatchfloorService
from console.steering import SteeringOps
from widgets.bridge import BusBridge
from widgets.incident_models import IncidentTableModel
from widgets.ops import Worker, describe_error

log = logging.getLogger(__name__)

GATHER_MS = 100  # changes that come together are read together
MAX_IDS = 200


class AuditModel(Protocol):
    @property
    def last_seq(self) -> int: ...

    def add_entry(self, entry: AuditEntry) -> None: ...


Read = tuple[list[IncidentInfo], dict[int, tuple[str, float, str]], list[AuditEntry]]


class RemoteFollower(QObject):
    """Feeds the incident model and the audit models with other consoles' changes."""

    def __init__(self, service: WatchfloorService, steering: SteeringOps, *,
                 bridge: BusBridge, worker: Worker, incidents: IncidentTableModel,
                 audit_models: Sequence[AuditModel], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service, self._steering, self._worker = service, steering, worker
        self._incidents, self._audit_models = incidents, tuple(audit_models)
        self._ids: set[int] = set()
        self._audit = False
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
        if (self._ids or self._audit) and not self._timer.isActive():
            self._timer.start()

    def _on_timer_timeout(self) -> None:
        if self._reading:  # one read at a time; what came meanwhile is read after it
            self._timer.start()
            return
        ids = sorted(self._ids)[-MAX_IDS:]
        audit = self._audit
        self._ids, self._audit = set(), False
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
            return incidents, causes, entries

        self._reading = True
        self._worker.submit("reading another console's changes", read,
                            on_done=self._on_read, on_error=self._on_read_failed)

    def _on_read(self, read: Read) -> None:
        self._reading = False
        incidents, causes, entries = read
        if entries:
            self._read_upto = max(self._read_upto, entries[-1].seq)
        if incidents:
            self._incidents.update(incidents)
        for incident_id, (key, confidence, state) in causes.items():
            self._incidents.set_cause(incident_id, key, confidence, state)
        for entry in entries:  # oldest first; each model skips what it has
            for model in self._audit_models:
                model.add_entry(entry)

    def _on_read_failed(self, exc: BaseException) -> None:
        self._reading = False  # the next change reads again (the audit from `after`)
        log.error("reading another console's changes failed", exc_info=exc)
        self._worker.failed.emit(f"reading another console's changes failed: "
                                 f"{describe_error(exc)}")

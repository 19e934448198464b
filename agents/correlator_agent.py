"""The correlator as an agent: feeds it signals, stores what it decided.

Grouping decisions become timeline notes of their incident (with the reason); opening,
resolving and reopening an incident are also audited as the agent's acts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from agents.correlator import Correlator, CorrelatorSettings, Decision
from console.domain import IncidentInfo, IncidentUpdate, Signal, TimelineNote
from console.maintenance import hold_back
from console.service import WatchfloorService

ACTOR = "agent:correlator"
_NOTED = {"open", "join", "reopen", "flapping", "resolve"}
_AUDITED = {"open": "incident.open", "reopen": "incident.reopen", "resolve": "incident.resolve"}
# Rows per transaction (each incident, timeline note and audit record counts one): a
# delivery of 10,000 unrelated alerts opens 10,000 incidents, and one transaction for all
# of them held the database's write lock for seconds (the receiver and the team's
# heartbeat waited behind it), while a transaction per few incidents spent more on
# committing and on taking the audit chain's head than on the rows.
SAVE_ROWS = 1500


@dataclass(frozen=True, slots=True)
class Placement:
    """A firing alert and the incident (agent key) it was put in."""

    service: str
    at: datetime
    key: int


class CorrelatorAgent:
    name = "correlator"

    def __init__(self, service: WatchfloorService, topology: Mapping[str, Iterable[str]],
                 settings: CorrelatorSettings | None = None) -> None:
        self.service = service
        self.correlator = Correlator(topology, settings)
        self.ids: dict[int, int] = {}  # agent key -> stored incident id
        self.placements: list[Placement] = []
        self._lock = threading.Lock()  # sources deliver from their own threads

    def handle(self, signals: Iterable[Signal], now: datetime) -> list[IncidentInfo]:
        """Correlate one batch (thread safe); returns the incidents it changed."""
        with self._lock:
            return self._handle(signals, now)

    def _handle(self, signals: Iterable[Signal], now: datetime) -> list[IncidentInfo]:
        # Alerts of a service under maintenance are stored, but open no incident
        decisions = self.correlator.observe(hold_back(self.service, signals, now)) + \
            self.correlator.tick(now)
        touched: dict[int, list[Decision]] = {}
        for d in decisions:
            if d.incident_id is None:
                continue
            touched.setdefault(d.incident_id, []).append(d)
            if d.kind in ("open", "join", "reopen", "flapping"):
                self.placements.append(Placement(d.service, d.at, d.incident_id))
        updates = []
        for key, group in touched.items():
            inc = self.correlator.incidents[key]
            notes = tuple(TimelineNote(d.at, "agent", f"{d.kind}: {d.service}", d.fingerprint,
                                       {"agent": self.name, "decision": d.kind,
                                        "reason": d.reason}) for d in group if d.kind in _NOTED)
            audit = tuple((_AUDITED[d.kind], d.reason) for d in group if d.kind in _AUDITED)
            if not notes and not audit and key in self.ids:
                continue
            services = tuple(s for s, _ in sorted(inc.services.items(),
                                                  key=lambda kv: (-kv[1], kv[0])))
            updates.append(IncidentUpdate(key, self.ids.get(key), inc.title, inc.severity,
                                          inc.state, services, inc.opened_at, inc.resolved_at,
                                          notes, audit))
        saved: list[IncidentInfo] = []
        for chunk in _chunks(updates, SAVE_ROWS):
            stored = self.service.save_incidents(chunk, actor=ACTOR)
            for update, info in zip(chunk, stored, strict=True):
                self.ids[update.key] = info.id
            saved.extend(stored)
        return saved


def _chunks(updates: list[IncidentUpdate], rows: int) -> Iterator[list[IncidentUpdate]]:
    """The updates in order, in runs of about `rows` rows to write (an update with more
    notes than that is a run of its own)."""
    chunk: list[IncidentUpdate] = []
    size = 0
    for update in updates:
        weight = 1 + len(update.notes) + len(update.audit)
        if chunk and size + weight > rows:
            yield chunk
            chunk, size = [], 0
        chunk.append(update)
        size += weight
    if chunk:
        yield chunk

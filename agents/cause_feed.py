"""Announces an incident's causes whenever what decides them moved.

A cause's row changes when a ranking is recorded (the board) or when someone gives up on
it (escalation), but what a person sees of a cause (waiting, running, validating,
resolved...) follows its recommendations and their runs, which change through the
execution engine's operations. Nothing of that said "the causes changed", so a pane
showing causes had to read them on a timer or go stale. `CauseFeed` listens to the
events that can move a cause (a ranking, an operation on recommendations or executions,
an incident opening or resolving), reads the incidents' causes again and publishes
`CausesChanged` only for an incident whose causes differ from what it last announced.

Its reads run wherever the subscriber given runs them: with an `OffLoopSubscriber` in
the console they stay off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select

from agents.board import HypothesesUpdated
from console.bus import EventBus, Subscriber
from console.events import CausesChanged, IncidentsUpdated, OperationDone
from console.storage.models import ExecutionRow, RecommendationRow
from console.storage.repos_causes import Cause, CauseRepo

STARTUP_INCIDENTS = 20  # the newest incidents announced when the feed starts


class CauseFeed:
    def __init__(self, service: Any, bus: EventBus) -> None:
        self._service = service
        self._bus = bus
        self._repo = CauseRepo()
        self._last: dict[int, tuple[Cause, ...]] = {}

    def attach(self, subscriber: Subscriber) -> Callable[[], None]:
        """Listen through `subscriber` (the bus itself, or an `OffLoopSubscriber`);
        returns what detaches it."""
        undo = [
            subscriber.subscribe(HypothesesUpdated,
                                 lambda e: self.refresh((e.incident_id,))),
            subscriber.subscribe(IncidentsUpdated,
                                 lambda e: self.refresh(i.id for i in e.incidents)),
            subscriber.subscribe(OperationDone, self._on_operation_done),
            # Announced by someone else (an escalation): known, not announced again.
            subscriber.subscribe(CausesChanged, self._on_causes_changed),
        ]

        def detach() -> None:
            for one in undo:
                one()

        return detach

    def announce_newest(self, limit: int = STARTUP_INCIDENTS) -> None:
        """Announce the causes of the newest incidents (a window that just opened)."""
        self.refresh(i.id for i in self._service.incidents(limit))

    def refresh(self, incident_ids: Iterable[int]) -> list[int]:
        """Read these incidents' causes; publish those that changed. Returns their ids."""
        changed: list[tuple[int, tuple[Cause, ...]]] = []
        with self._service.db.sessions() as session:
            for incident_id in dict.fromkeys(incident_ids):
                causes = tuple(self._repo.causes(session, incident_id))
                if causes != self._last.get(incident_id, ()):
                    self._last[incident_id] = causes
                    changed.append((incident_id, causes))
        for incident_id, causes in changed:
            self._bus.publish(CausesChanged(incident_id, causes))
        return [i for i, _ in changed]

    def _on_causes_changed(self, event: CausesChanged) -> None:
        self._last[event.incident_id] = event.causes

    def _on_operation_done(self, event: OperationDone) -> None:
        changes = event.changes
        if changes.incidents:
            self.refresh(int(i) for i in changes.ids if str(i).isdigit())
        if changes.recommendations or changes.executions:
            self.refresh(self._incidents_of(
                [int(i) for i in changes.ids if str(i).isdigit()]))

    def _incidents_of(self, ids: list[int]) -> list[int]:
        """The incidents of these recommendations or executions. An operation names
        either kind by its bare id, so both are looked up: an incident too many is read
        and found unchanged, none is missed."""
        if not ids:
            return []
        with self._service.db.sessions() as session:
            by_rec = session.scalars(select(RecommendationRow.incident_id).where(
                RecommendationRow.id.in_(ids)))
            by_run = session.scalars(select(RecommendationRow.incident_id).join(
                ExecutionRow, ExecutionRow.recommendation_id == RecommendationRow.id)
                .where(ExecutionRow.id.in_(ids)))
            return sorted({i for i in (*by_rec, *by_run) if i is not None})

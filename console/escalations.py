"""Escalations and action outcomes as the rest of the product reads them.

The team's circuit breaker (agents/escalation.py) decides; what it decided is kept in
what already holds an incident's story, so a window, the run summary or an auditor
reads it without the agents: an audit record per outcome (`cause.outcome`, target
`execution:<id>`) and per escalation (`cause.escalated`, target `incident:<id>`), a
timeline note on the incident (kind `escalation` or `outcome`), and the page/ticket the
scribe opened for it (`scribe.paged`, target `incident:<id>`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select

from console.domain import AuditEntry, TimelineNote
from console.storage.db import Database
from console.storage.models import AuditRow, TimelineEventRow

OUTCOME_ACTION = "cause.outcome"
ESCALATED_ACTION = "cause.escalated"
PAGED_ACTION = "scribe.paged"
NEEDS_PERSON = "needs a person: no safe fix"


@dataclass(frozen=True, slots=True)
class Escalation:
    """One cause handed to a person, with why and what was tried."""

    incident_id: int
    service: str
    fault_class: str
    at: datetime
    reason: str
    tried: tuple[str, ...]
    ticket: str | None = None

    def as_dict(self, start: datetime | None = None) -> dict[str, Any]:
        return {"service": self.service, "fault_class": self.fault_class,
                "reason": self.reason, "tried": list(self.tried), "ticket": self.ticket,
                "at_s": None if start is None else (self.at - start).total_seconds()}


def add_note(db: Database, incident_id: int, note: TimelineNote) -> None:
    """One note on an incident's timeline (it is read back by id, as every note is)."""
    with db.sessions() as session:
        session.execute(insert(cast(Table, TimelineEventRow.__table__)), [
            {"incident_id": incident_id, "at": note.at, "kind": note.kind,
             "summary": note.summary[:2000], "ref": note.ref, "data": dict(note.data)}])
        session.commit()


def stored_decisions(db: Database, since: datetime) -> list[AuditEntry]:
    """The breaker's outcomes and escalations audited at or after `since`, oldest first:
    what a console that starts again rebuilds its breaker from (agents/escalation.py),
    so a cause handed to a person stays handed over and no outcome is judged twice."""
    with db.sessions() as session:
        rows = session.scalars(select(AuditRow)
                               .where(AuditRow.action.in_((OUTCOME_ACTION, ESCALATED_ACTION)),
                                      AuditRow.at >= since)
                               .order_by(AuditRow.seq))
        return [AuditEntry(seq=r.seq, at=r.at, actor=r.actor, action=r.action,
                           target=r.target, reason=r.reason, inputs=r.inputs,
                           outputs=r.outputs, decision=r.decision, prev_hash=r.prev_hash,
                           hash=r.hash) for r in rows]


def escalations(entries: Iterable[AuditEntry],
                incident_id: int | None = None) -> list[Escalation]:
    """The escalations in an audit chain (of one incident, or all), oldest first, each
    with the page/ticket the scribe opened for it when there is one."""
    found: list[Escalation] = []
    tickets: dict[tuple[int, str], str] = {}
    for entry in entries:
        kind, _, ident = entry.target.partition(":")
        if kind != "incident" or not ident.isdigit():
            continue
        number = int(ident)
        if incident_id is not None and number != incident_id:
            continue
        inputs: Mapping[str, Any] = entry.inputs or {}
        outputs: Mapping[str, Any] = entry.outputs or {}
        cause = f"{inputs.get('service')}/{inputs.get('fault_class')}"
        if entry.action == ESCALATED_ACTION:
            found.append(Escalation(number, str(inputs.get("service", "")),
                                    str(inputs.get("fault_class", "")), entry.at,
                                    str(outputs.get("why") or entry.reason),
                                    tuple(outputs.get("tried") or ())))
        elif entry.action == PAGED_ACTION and outputs.get("ticket"):
            tickets[(number, cause)] = str(outputs["ticket"])
    return [_with_ticket(e, tickets.get((e.incident_id, f"{e.service}/{e.fault_class}")))
            for e in found]


def _with_ticket(escalation: Escalation, ticket: str | None) -> Escalation:
    if ticket is None:
        return escalation
    return Escalation(escalation.incident_id, escalation.service, escalation.fault_class,
                      escalation.at, escalation.reason, escalation.tried, ticket)


def outcomes(entries: Iterable[AuditEntry]) -> dict[int, dict[str, Any]]:
    """Execution id -> its latest judged outcome (effective, ineffective, did_not_last)
    and why, as the breaker recorded it."""
    out: dict[int, dict[str, Any]] = {}
    for entry in entries:
        kind, _, ident = entry.target.partition(":")
        if entry.action == OUTCOME_ACTION and kind == "execution" and ident.isdigit():
            outputs = entry.outputs or {}
            out[int(ident)] = {"outcome": outputs.get("outcome"), "why": entry.reason}
    return out


def annotate_run(incidents: list[dict[str, Any]], entries: Iterable[AuditEntry],
                 start: datetime) -> list[dict[str, Any]]:
    """The run summary's incidents (console/run_summary.py) with what the breaker
    decided: per action its judged `outcome` (and `outcome_why`), per incident
    `escalated` and `needs_person` (None, or the reason, what was tried and the page's
    ticket, one item per escalated cause under `causes`)."""
    entries = list(entries)
    judged = outcomes(entries)
    found = escalations(entries)
    for incident in incidents:
        for action in incident.get("actions", ()):
            verdict = judged.get(int(action["id"]), {})
            action["outcome"] = verdict.get("outcome")
            action["outcome_why"] = verdict.get("why")
        mine = [e for e in found if e.incident_id == incident.get("id")]
        incident["escalated"] = bool(mine)
        incident["needs_person"] = None if not mine else {
            "reason": f"{NEEDS_PERSON}: {mine[0].reason}", "tried": list(mine[0].tried),
            "ticket": mine[0].ticket, "causes": [e.as_dict(start) for e in mine]}
    return incidents

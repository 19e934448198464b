"""The scribe: tickets, stakeholder update drafts and the post-incident report.

It is a set of plain methods that whoever follows an incident calls as the incident
moves; the coordinator's agent wrapper calls them (and `attach()` wires them to the bus
until it does):

- `on_incident(info)`     opened, grew (new services, higher severity), reopened;
                          a resolved `info` is handed to `on_resolved`
- `on_hypotheses(id, hs)` diagnosed: the ranked causes with their evidence
- `on_recommendation(r)`  a remediation was proposed (or rejected, expired...)
- `on_execution(e)`       an action ran, validated, failed or was rolled back
- `on_resolved(info)`     the incident's alerts have cleared

What it writes:
- one ticket per incident, opened through the TicketSystem with an idempotency key
  (`scribe:incident:<id>:<opened at>`), so a retry or a restart finds the same ticket;
  one note per event (each event has a key and is written once); closed once, when the
  incident is resolved and none of its actions is still in flight;
- a stakeholder update draft (reports, kind `stakeholder_update`) when the incident
  opens, grows, is diagnosed, when an action ends, and when it is resolved: plain words,
  no alert text; the operator sends it, the scribe never does;
- after resolution, once its actions have settled, the post-incident report (kind
  `postmortem`, Markdown and HTML) that the retriever finds for similar incidents.

Every document is audited (actor agent:scribe). A ticket system that fails is audited
too (`scribe.ticket_failed`) and never stops the scribe; notes that could not be written
wait for the next successful call. Notes are tracked in memory: after a restart the
ticket is found again by its key, and the report is never written twice (it is looked up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agents import scribe_docs as docs
from console.domain import Execution, Hypothesis, IncidentInfo, Recommendation
from console.escalations import ESCALATED_ACTION, PAGED_ACTION
from console.events import AuditAppended, IncidentsUpdated, OpChanges, OperationDone
from console.itsm.base import TicketRef, TicketSystem
from console.storage.repos import IncidentRepo
from console.storage.repos_retrieval import RetrievalRepo

if TYPE_CHECKING:
    from console.bus import Subscriber
    from console.service import WatchfloorService

ACTOR = "agent:scribe"
IN_FLIGHT = ("intent", "running", "validating", "rolling_back")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_NOTED_DECISIONS = ("open", "reopen", "resolve", "flapping")
_PAST = {"recommendation.approve": "approved", "recommendation.reject": "rejected"}


@dataclass
class _Case:
    info: IncidentInfo
    ticket: TicketRef | None = None
    seen: set[str] = field(default_factory=set)  # events handled
    written: set[str] = field(default_factory=set)  # ticket calls made
    waiting: list[tuple[str, str]] = field(default_factory=list)  # notes without a ticket
    hypotheses: tuple[Hypothesis, ...] = ()
    diagnosed_at: datetime | None = None
    drafts: int = 0
    last_draft: tuple[Any, ...] = ()
    status: str = "investigating"
    doing: str = "The on-call team is investigating."
    resolved: bool = False
    finished: bool = False
    reopened: int = 0


class Scribe:
    name = "scribe"

    def __init__(self, service: WatchfloorService, tickets: TicketSystem | None, *,
                 update_every: timedelta = timedelta(minutes=30)) -> None:
        self.service = service
        self.tickets = tickets
        self.update_every = update_every
        self._repo = RetrievalRepo()
        self._cases: dict[int, _Case] = {}
        self._lock = threading.RLock()

    # --- what the coordinator calls ---------------------------------------------------

    def on_incident(self, info: IncidentInfo) -> None:
        if info.state == "resolved":
            self.on_resolved(info)
            return
        with self._lock:
            case = self._cases.get(info.id)
            if case is None:
                self._case(info.id, info)
                return
            before, case.info = case.info, info
            if case.resolved:
                case.reopened += 1
                case.resolved = case.finished = False
                if self._event(case, f"reopen:{case.reopened}", f"Incident reopened at "
                               f"{docs.hhmm(self._now())}: alerts fired again on "
                               f"{', '.join(info.services)}."):
                    self._draft(case, "investigating", "The problem came back; the on-call "
                                "team is investigating again.")
                return
            new = [s for s in info.services if s not in before.services]
            worse = SEVERITY_RANK[info.severity.value] > SEVERITY_RANK[before.severity.value]
            if new or worse:
                key = f"grew:{','.join(sorted(info.services))}:{info.severity.value}"
                if self._event(case, key, f"Now affects {', '.join(info.services)}"
                               + (f" (new: {', '.join(new)})" if new else "")
                               + f"; severity {info.severity.value}."):
                    self._draft(case, case.status, case.doing)

    def on_hypotheses(self, incident_id: int, hypotheses: Sequence[Hypothesis]) -> None:
        ranked = tuple(sorted(hypotheses, key=lambda h: -h.confidence))
        if not ranked:
            return
        with self._lock:
            case = self._case(incident_id)
            if case is None:
                return
            previous = case.hypotheses[0] if case.hypotheses else None
            case.hypotheses = ranked
            case.diagnosed_at = case.diagnosed_at or self._now()
            top = ranked[0]
            if previous is not None and previous.key == top.key and \
                    abs(previous.confidence - top.confidence) < 0.1:
                return
            evidence = "; ".join(f"{e.summary} [{e.ref}]" for e in top.evidence[:5])
            others = ", ".join(f"{h.fault_class} on {h.service} ({h.confidence:.2f})"
                               for h in ranked[1:3])
            if self._event(case, f"diagnosis:{top.key}:{top.confidence:.1f}",
                           f"Diagnosis: {top.fault_class} on {top.service} (confidence "
                           f"{top.confidence:.2f})."
                           + (f" Evidence: {evidence}." if evidence else "")
                           + (f" Also considered: {others}." if others else "")):
                self._draft(case, "cause found", f"The team has found the likely cause: "
                            f"{docs.plain_fault(top.fault_class)} affecting {top.service}. A "
                            "fix is being prepared.")

    def on_recommendation(self, recommendation: Recommendation) -> None:
        rec = recommendation
        if rec.incident_id is None:
            return
        with self._lock:
            case = self._case(rec.incident_id)
            if case is None:
                return
            summary = rec.preview.get("summary") or rec.runbook_id
            if rec.state in ("pending", "queued"):
                waits = "queued to run under policy" if rec.state == "queued" else \
                    "waiting for approval"
                if not self._event(case, f"rec:{rec.id}", f"Recommended: {summary} "
                                   f"(recommendation {rec.id}, runbook {rec.runbook_id}, risk "
                                   f"{rec.risk}, confidence {rec.confidence:.2f}); {waits}."):
                    return
                case.status = "fixing"
                case.doing = (f"A fix ({docs.plain_action(rec.action_class)}) is ready and "
                              "waiting for approval." if rec.state == "pending" else
                              f"The team is {docs.plain_action(rec.action_class)}.")
            elif rec.state in ("rejected", "expired", "cancelled", "denied"):
                self._event(case, f"rec:{rec.id}:{rec.state}",
                            f"Recommendation {rec.id} ({summary}) {rec.state}.")

    def on_execution(self, execution: Execution) -> None:
        with self._lock:
            incident_id = self._incident_of(execution)
            case = self._case(incident_id) if incident_id is not None else None
            if case is None:
                return
            title = f"{execution.plan.get('title') or execution.runbook_id} on " \
                    f"{execution.target} (execution {execution.id})"
            outcome = str(execution.result.get("outcome") or "")
            plain = docs.plain_action(execution.action_class)
            state = execution.state
            if state in ("intent", "running"):
                if self._event(case, f"exec:{execution.id}:started",
                               f"Action started: {title}, by {execution.initiator}."):
                    case.status, case.doing = "fixing", f"The team is {plain}."
            elif state == "validating":
                self._event(case, f"exec:{execution.id}:validating",
                            f"Action executed: {title}; checking that it worked.")
            elif state == "succeeded":
                if self._event(case, f"exec:{execution.id}:succeeded",
                               f"Action succeeded: {title}. {outcome}".strip()) \
                        and not case.resolved:  # resolved: the final update follows at once
                    self._draft(case, "monitoring", f"A fix ({plain}) has been applied and "
                                "checked; the team is watching that the services stay healthy.")
            elif state in ("failed", "rolled_back", "rollback_failed", "interrupted",
                           "cancelled"):
                first = self._event(case, f"exec:{execution.id}:{state}",
                                    f"Action {state.replace('_', ' ')}: {title}. "
                                    f"{outcome}".strip())
                if first and state != "cancelled":
                    self._draft(case, "fixing", f"A first fix ({plain}) did not work; the team "
                                "is working on another way to restore the services.")
            self._finish_if_settled(case)

    def on_escalation(self, incident_id: int, service: str, fault_class: str,
                      summary: str, *, page: bool = True) -> None:
        """A cause was handed to a person (agents/escalation.py): page through the
        ticket system (a ticket of its own, found again by its key), say so on the
        incident's ticket, and tell the stakeholders that a person is on it."""
        with self._lock:
            case = self._case(incident_id)
            if case is None or not self._event(case, f"escalated:{service}/{fault_class}",
                                               summary):
                return
            if page:  # False: paged already for the same cause from another incident
                self._page(case, service, fault_class, summary)
            self._draft(case, "needs a person", f"The team found no safe automatic fix for "
                        f"{docs.plain_fault(fault_class)} affecting {service}; an engineer "
                        "has been paged and is taking over.")

    def _page(self, case: _Case, service: str, fault_class: str, summary: str) -> None:
        if self.tickets is None:
            return
        incident_id = case.info.id
        try:
            page = self.tickets.open(
                kind="incident", title=f"Needs a person: no safe fix for {fault_class} on "
                f"{service} (incident {incident_id})"[:200],
                body=f"{summary}\nWatchfloor link: incident:{incident_id}."[:8000],
                service=service, severity="critical",
                idempotency_key=f"scribe:escalation:{incident_id}:{service}/{fault_class}")
        except Exception as exc:  # a ticket system down never stops the scribe
            self._ticket_failed(case, "page", exc)
            return
        self.service.record(actor=ACTOR, action=PAGED_ACTION, target=f"incident:{incident_id}",
                            reason=f"paged for {fault_class} on {service}",
                            inputs={"service": service, "fault_class": fault_class},
                            outputs={"ticket": f"{page.system}:{page.id}"})

    def on_resolved(self, info: IncidentInfo) -> None:
        with self._lock:
            case = self._case(info.id, info)
            if case is None:
                return
            case.info = info
            if not case.resolved:
                case.resolved = True
                at = info.resolved_at or self._now()
                self._event(case, f"resolved:{at.isoformat()}",
                            f"All alerts cleared at {docs.hhmm(at)}; incident resolved.")
            self._finish_if_settled(case)

    def attach(self, bus: Subscriber) -> Callable[[], None]:
        """Follow incidents and the execution lifecycle on the bus (until a coordinator
        calls the methods itself); returns a function that detaches."""

        def incidents(event: IncidentsUpdated) -> None:
            for info in event.incidents:
                self.on_incident(info)

        def audited(event: AuditAppended) -> None:
            kind, _, ident = event.entry.target.partition(":")
            if not ident.isdigit():
                return
            action = event.entry.action
            if kind == "execution" and action.startswith("execution."):
                with self.service.db.sessions() as session:
                    execution = self._repo.execution(session, int(ident))
                if execution is not None:
                    self.on_execution(execution)
            elif kind == "incident" and action == ESCALATED_ACTION:
                inputs = event.entry.inputs or {}
                self.on_escalation(int(ident), str(inputs.get("service", "")),
                                   str(inputs.get("fault_class", "")), event.entry.reason,
                                   page=(event.entry.outputs or {}).get("page") is not False)
            elif kind == "recommendation" and action in (
                    "recommendation.create", "recommendation.reject", "policy.decide"):
                with self.service.db.sessions() as session:
                    rec = self._repo.recommendation(session, int(ident), self._now())
                if rec is not None:
                    self.on_recommendation(rec)

        detachers = (bus.subscribe(IncidentsUpdated, incidents),
                     bus.subscribe(AuditAppended, audited))

        def detach() -> None:
            for unsubscribe in detachers:
                unsubscribe()

        return detach

    def ticket_of(self, incident_id: int) -> TicketRef | None:
        with self._lock:
            case = self._cases.get(incident_id)
            return case.ticket if case is not None else None

    # --- cases --------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.service.clock.now()

    def _case(self, incident_id: int, info: IncidentInfo | None = None) -> _Case | None:
        case = self._cases.get(incident_id)
        if case is not None:
            return case
        with self.service.db.sessions() as session:
            info = info or self._repo.incident(session, incident_id)
            drafts = self._repo.reports(session, kind="stakeholder_update",
                                        incident_id=incident_id, limit=1000)
            done = info is not None and info.resolved_at is not None and any(
                r.data.get("resolved_at") == info.resolved_at.isoformat()
                for r in self._repo.reports(session, kind="postmortem",
                                            incident_id=incident_id))
        if info is None:
            return None
        case = self._cases[incident_id] = _Case(info, drafts=len(drafts))
        if done and info.resolved_at is not None:  # finished before a restart
            at = info.resolved_at.isoformat()
            case.resolved = case.finished = True
            case.seen.add(f"resolved:{at}")
            case.written |= {f"resolved:{at}", f"close:{at}"}
        self._open(case)
        if not drafts and info.state != "resolved":  # a restart goes on, never over
            self._draft(case, "investigating", case.doing)
        return case

    def _incident_of(self, execution: Execution) -> int | None:
        if execution.recommendation_id is None:
            return None
        with self.service.db.sessions() as session:
            rec = self._repo.recommendation(session, execution.recommendation_id, self._now())
        return rec.incident_id if rec is not None else None

    def _finish_if_settled(self, case: _Case) -> None:
        """Close the ticket and write the report once the incident is resolved and none
        of its actions is in flight (so their outcomes are in the report)."""
        if not case.resolved or case.finished:
            return
        with self.service.db.sessions() as session:
            if self._repo.executions(session, incident_id=case.info.id, states=IN_FLIGHT):
                return
        case.finished = True
        resolved_at = case.info.resolved_at or self._now()
        report_id = self._postmortem(case, resolved_at)
        self._draft(case, "resolved", f"The problem is resolved; the services have worked "
                    f"normally since {docs.hhmm(resolved_at)}. A full report will follow.",
                    final=True)
        top = case.hypotheses[0] if case.hypotheses else None
        took = docs.duration_text((resolved_at - case.info.opened_at).total_seconds())
        self._close(case, f"close:{resolved_at.isoformat()}",
                    f"Resolved at {docs.hhmm(resolved_at)} after {took}. "
                    + (f"Cause: {top.fault_class} on {top.service}. " if top else "")
                    + f"Post-incident report: report:{report_id}.")

    # --- tickets ------------------------------------------------------------------------

    def _open(self, case: _Case) -> None:
        if self.tickets is None or case.ticket is not None:
            return
        info = case.info
        key = f"scribe:incident:{info.id}:{info.opened_at:%Y%m%dT%H%M%S}"
        body = (f"Incident {info.id} opened at {docs.stamp(info.opened_at)} on "
                f"{', '.join(info.services)} (severity {info.severity.value}). "
                f"Watchfloor link: incident:{info.id}.")
        try:
            case.ticket = self.tickets.open(
                kind="incident", title=f"[{info.severity.value}] {info.title}"[:200],
                body=body, service=info.services[0] if info.services else "-",
                severity=info.severity.value, idempotency_key=key)
        except Exception as exc:  # a ticket system down never stops the scribe
            self._ticket_failed(case, "open", exc)
            return
        case.written.add("open")
        waiting, case.waiting = case.waiting, []
        for note_key, text in waiting:
            self._note(case, note_key, text)

    def _event(self, case: _Case, key: str, text: str) -> bool:
        """Note an event on the ticket once; True the first time it is seen."""
        if key in case.seen:
            return False
        case.seen.add(key)
        self._note(case, key, text)
        return True

    def _note(self, case: _Case, key: str, text: str) -> None:
        if key in case.written:
            return
        if self.tickets is None:
            case.written.add(key)
            return
        self._open(case)
        if case.ticket is None:
            if all(k != key for k, _ in case.waiting):
                case.waiting.append((key, text))
            return
        try:
            self.tickets.update(case.ticket, text[:8000])
        except Exception as exc:
            self._ticket_failed(case, "update", exc)
            case.waiting.append((key, text))
            return
        case.written.add(key)

    def _close(self, case: _Case, key: str, resolution: str) -> None:
        if key in case.written or self.tickets is None:
            return
        self._open(case)
        if case.ticket is None:
            return
        try:
            self.tickets.close(case.ticket, resolution[:8000], success=True)
        except Exception as exc:
            self._ticket_failed(case, "close", exc)
            case.finished = False  # the next event tries again
            return
        case.written.add(key)

    def _ticket_failed(self, case: _Case, step: str, exc: Exception) -> None:
        self.service.record(actor=ACTOR, action="scribe.ticket_failed",
                            target=f"incident:{case.info.id}",
                            reason=f"{type(exc).__name__}: {exc}"[:2000],
                            outputs={"step": step})

    # --- documents ----------------------------------------------------------------------

    def _draft(self, case: _Case, status: str, doing: str, *, final: bool = False) -> None:
        case.status, case.doing = status, doing
        signature = (status, doing, case.info.services)
        if signature == case.last_draft:
            return
        now = self._now()
        update = docs.StakeholderUpdate(case.drafts + 1, status, case.info.services,
                                        case.info.opened_at, now, doing,
                                        None if final else now + self.update_every)
        title, markdown, html = docs.stakeholder_doc(update, case.info.id)
        self._store(case.info.id, "stakeholder_update", title, markdown, html, {
            "incident_id": case.info.id, "number": update.number, "status": status,
            "services": list(case.info.services), "sent": False,
            "next_update": update.next_update.isoformat() if update.next_update else None})
        case.drafts += 1
        case.last_draft = signature

    def _store(self, incident_id: int, kind: str, title: str, markdown: str, html: str,
               data: dict[str, Any]) -> int:
        now = self._now()
        with self.service.db.sessions() as session:
            report_id = self._repo.add_report(session, incident_id=incident_id, kind=kind,
                                              title=title, markdown=markdown, html=html,
                                              data=data, at=now)
            entry = self.service.audit.append(
                session, actor=ACTOR, action=f"report.{kind}", target=f"incident:{incident_id}",
                reason=title[:2000], outputs={"report": report_id, "kind": kind}, at=now)
            session.commit()
        self.service.bus.publish(AuditAppended(entry))
        self.service.bus.publish(OperationDone(
            f"report.{kind}", OpChanges(incidents=True, ids=(f"report:{report_id}",)), ACTOR,
            {"report": report_id, "incident": incident_id, "kind": kind}))
        return report_id

    def _postmortem(self, case: _Case, resolved_at: datetime) -> int:
        """Write the report once per resolution (looked up, so a restart never doubles it)."""
        with self.service.db.sessions() as session:
            for report in self._repo.reports(session, kind="postmortem",
                                             incident_id=case.info.id):
                if report.data.get("resolved_at") == resolved_at.isoformat():
                    return report.id
            pm = self._gather(session, case, resolved_at)
        title, markdown, html, data = docs.postmortem_doc(pm)
        return self._store(case.info.id, "postmortem", title, markdown, html, data)

    def _gather(self, session: Any, case: _Case, resolved_at: datetime) -> docs.Postmortem:
        repo, info, now = self._repo, case.info, self._now()
        hypotheses = case.hypotheses or tuple(repo.hypotheses(session, info.id))
        top = hypotheses[0] if hypotheses else None
        timeline: list[tuple[datetime, str, str]] = []
        changes = [c for c in (repo.change(session, e.ref.partition(":")[2])
                               for e in (top.evidence if top else ())
                               if e.ref.startswith("change:")) if c is not None]
        timeline += [(c.at, f"{c.kind} of {c.service}: {c.description}", f"change:{c.id}")
                     for c in changes]
        joined: set[str] = set()
        for note in IncidentRepo().timeline(session, info.id):
            decision = str(note.data.get("decision", ""))
            service = note.summary.partition(": ")[2]
            if decision in _NOTED_DECISIONS or (decision == "join" and service not in joined):
                joined.add(service)
                ref = f"signal:{note.ref}" if note.ref else f"incident:{info.id}"
                why = str(note.data.get("reason", ""))
                timeline.append((note.at, note.summary + (f" ({why})" if why else ""), ref))
        if case.diagnosed_at is not None and top is not None:
            timeline.append((case.diagnosed_at, f"diagnosis: {top.fault_class} on "
                             f"{top.service} ({top.confidence:.2f})", f"incident:{info.id}"))
        recs = sorted(repo.recommendations(session, now, incident_id=info.id),
                      key=lambda r: r.id)
        runs = {e.recommendation_id: e for e in repo.executions(session, incident_id=info.id)}
        audit = repo.audit_for(session, [f"recommendation:{r.id}" for r in recs])
        actions = []
        for rec in recs:
            summary = str(rec.preview.get("summary") or rec.runbook_id)
            timeline.append((rec.created_at, f"recommended: {summary} by {rec.requester} "
                             f"(confidence {rec.confidence:.2f})", f"recommendation:{rec.id}"))
            approvers = tuple(dict.fromkeys(
                e.actor.removeprefix("user:") for e in audit
                if e.target == f"recommendation:{rec.id}" and e.action ==
                "recommendation.approve" and e.decision == "allow"))
            timeline += [(e.at, f"{e.actor} {_PAST[e.action]} recommendation {rec.id}",
                          f"audit:{e.seq}") for e in audit
                         if e.target == f"recommendation:{rec.id}" and e.action in _PAST
                         and e.decision == "allow"]
            run = runs.get(rec.id)
            if run is not None:
                timeline.append((run.started_at, f"{summary}: started by {run.initiator}",
                                 f"execution:{run.id}"))
                if run.finished_at is not None:
                    timeline.append((run.finished_at, f"{summary}: {run.state}",
                                     f"execution:{run.id}"))
            actions.append(docs.ActionOutcome(
                rec.id, run.id if run else None, rec.runbook_id, summary, rec.action_class,
                rec.target, run.state if run else rec.state,
                str(run.result.get("outcome") or "") if run else "",
                run.started_at if run else None, run.finished_at if run else None,
                approvers, bool(run.autonomous) if run else rec.autonomous))
        timeline.append((resolved_at, "all alerts cleared; incident resolved",
                         f"incident:{info.id}"))
        timeline.sort(key=lambda t: t[0])
        alerts = sorted(repo.incident_alert_names(session, [info.id])[info.id])
        return docs.Postmortem(
            info.id, info.title, info.severity.value, info.services, info.opened_at,
            resolved_at, tuple(alerts), tuple(timeline), top, tuple(hypotheses[1:3]),
            tuple(actions), min((c.at for c in changes), default=None), case.diagnosed_at,
            case.ticket.id if case.ticket is not None else None)

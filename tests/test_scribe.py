"""The scribe on a real run: payments ships a defect, the rollback is approved and runs,
the incident resolves; later payments ships another defect. Tickets are opened, noted
and closed once each, stakeholder drafts are plain, the post-incident report is escaped
Markdown and HTML, and the retriever finds it for the repeat."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.retriever import Retriever
from agents.scribe import Scribe
from console.domain import Evidence, Hypothesis, IncidentInfo, IncidentUpdate, Severity
from console.itsm.base import TicketError, TicketKind, TicketRef
from console.itsm.store import BuiltinTicketStore
from console.runtime import Runtime, ScenarioDriver
from console.storage.repos_retrieval import Report, RetrievalRepo

TWICE = """\
name: bad-deploy-twice
description: payments ships a defect, is rolled back, and ships another one later.
estate: default
duration: 40m
seed: 42
timeline:
  - {at: 5m, type: fault, kind: bad_deploy, service: payments,
     params: {version: v42, error: 0.35, latency_ms: 150}}
  - {at: 28m, type: fault, kind: bad_deploy, service: payments,
     params: {version: v43, error: 0.35, latency_ms: 150}}
"""
HOSTILE = '<img src=x onerror="alert(1)"> **bold** [link](javascript:alert(2))'


@dataclass
class Run:
    runtime: Runtime
    driver: ScenarioDriver
    store: BuiltinTicketStore
    scribe: Scribe

    @property
    def service(self) -> Any:
        return self.runtime.service

    def until(self, done: Callable[[], bool], limit: int = 400) -> None:
        for _ in range(limit):
            if done():
                return
            self.driver.step(15)
        raise AssertionError("the scenario never got there")

    def reports(self, kind: str | None = None, incident_id: int | None = None) -> list[Report]:
        with self.service.db.sessions() as session:
            return RetrievalRepo().reports(session, kind=kind, incident_id=incident_id)

    def ticket_actions(self) -> Counter[tuple[str, str]]:
        return Counter((e.action, e.target) for e in self.service.audit_entries()
                       if e.action.startswith("ticket."))

    def incident(self, incident_id: int) -> Any:
        return next((i for i in self.service.incidents() if i.id == incident_id), None)


def diagnose(run: Run, incident_id: int) -> None:
    deploy = next(c for c in reversed(run.service.recent_changes())
                  if c.service == "payments" and c.kind == "deploy")
    now = run.runtime.clock.now()
    with run.service.db.sessions() as session:
        logs = RetrievalRepo().log_templates(session, deploy.at, now, services=["payments"])
    run.scribe.on_hypotheses(incident_id, [
        Hypothesis("payments", "bad_deploy", 0.82, (
            Evidence("change", f"{deploy.description} just before the errors",
                     f"change:{deploy.id}", 0.5),
            Evidence("log", f"payments logs say {HOSTILE}",
                     f"log:payments/{logs[0].template_id}", 0.2))),
        Hypothesis("postgres", "slow_dependency", 0.11)])


def roll_back(run: Run, incident_id: int) -> int:
    engine = run.service.engine
    rec_id = engine.propose("rollback-deploy", {"service": "payments"},
                            requester="agent:recommender", confidence=0.8,
                            explanation="the deploy of payments came just before the errors",
                            incident_id=incident_id)
    rec = engine.recommendation(rec_id)
    assert rec is not None
    first = engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
    assert first["decision"] == "needs_approval"
    second = engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    assert second["execution"] is not None
    return int(second["execution"])


@pytest.fixture
def run(tmp_path: Path, db_url: str) -> Iterator[Run]:
    scenario = tmp_path / "twice.yaml"
    scenario.write_text(TWICE)
    runtime = Runtime(db_url)
    runtime.service.bootstrap_admin("alice")
    runtime.service.add_user("bob", "operator", as_user="alice")
    runtime.service.add_user("carol", "approver", as_user="alice")
    store = BuiltinTicketStore(runtime.service)
    scribe = Scribe(runtime.service, store)
    scribe.attach(runtime.bus)
    yield Run(runtime, ScenarioDriver(runtime, str(scenario), seed=42), store, scribe)
    runtime.close()


def first_incident_resolved(run: Run) -> int:
    run.until(lambda: run.incident(1) is not None)
    run.driver.step(60)
    diagnose(run, 1)
    exec_id = roll_back(run, 1)
    run.until(lambda: run.incident(1).state == "resolved" and
              run.service.engine.execution(exec_id).state == "succeeded")
    return exec_id


def test_a_bad_deploy_run_to_resolution(run: Run) -> None:
    exec_id = first_incident_resolved(run)
    tickets = run.store.tickets()
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket.number, ticket.state, ticket.severity) == ("INC-0001", "closed", "critical")
    actions = run.ticket_actions()
    assert actions[("ticket.open", "ticket:INC-0001")] == 1
    assert actions[("ticket.close", "ticket:INC-0001")] == 1
    notes = [n["text"] for n in ticket.notes]
    assert len(notes) == len(set(notes)) == actions[("ticket.update", "ticket:INC-0001")]
    for start in ("Diagnosis: bad_deploy on payments", "Recommended: Roll back payments",
                  "Action started:", "Action executed:", "Action succeeded:",
                  "All alerts cleared"):
        assert sum(n.startswith(start) for n in notes) == 1, start
    assert "Post-incident report: report:" in ticket.resolution

    drafts = run.reports("stakeholder_update", 1)[::-1]
    statuses = [d.data["status"] for d in drafts]
    assert statuses[0] == "investigating"
    assert statuses[-1] == "resolved"
    assert "cause found" in statuses
    assert len(statuses) == len(set(statuses))  # the alerts cleared before validation passed
    assert [d.data["number"] for d in drafts] == list(range(1, len(drafts) + 1))
    for draft in drafts:
        assert draft.data["sent"] is False
        for field in ("What is affected", "Since", "What is being done", "Next update"):
            assert f"**{field}:**" in draft.markdown
            assert f"<strong>{field}:</strong>" in draft.html
        for jargon in ("HighErrorRate", "error_rate", "bad_deploy", "<img"):
            assert jargon not in draft.markdown
            assert jargon not in draft.html
    assert "faulty software update affecting payments" in drafts[statuses.index("cause found")
                                                                  ].markdown

    [report] = run.reports("postmortem", 1)
    md, page = report.markdown, report.html
    for heading in ("## Timeline", "## Cause", "## Actions and outcomes", "## What to prevent"):
        assert heading in md
    assert "<h2>Timeline</h2>" in page
    assert "<table>" in page
    assert "<img" not in md
    assert "<img" not in page
    assert "<a " not in page
    assert 'href="javascript' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;img" in md
    assert "\\*\\*bold\\*\\*" in md
    assert "\\[link\\]" in md
    assert "`change:chg-" in md
    assert f"`execution:{exec_id}`" in md
    assert "| Time to detect | " in md
    assert "| Time to resolve | " in md
    data = report.data
    assert data["cause"] == {"service": "payments", "fault_class": "bad_deploy",
                             "confidence": 0.82}
    assert data["actions"][0]["state"] == "succeeded"
    assert data["ticket"] == "INC-0001"
    assert data["time_to_detect_s"] > 0
    assert data["time_to_resolve_s"] > 0
    with run.service.db.sessions() as session:
        repo = RetrievalRepo()
        for ref in re.findall(r"`([a-z]+:[^`]+)`", md):
            assert repo.resolve(session, ref) is not False, ref
    audit = Counter(e.action for e in run.service.audit_entries() if e.actor == "agent:scribe")
    assert audit["report.postmortem"] == 1
    assert audit["report.stakeholder_update"] == len(drafts)


def test_the_retriever_finds_the_postmortem_for_the_repeat(run: Run) -> None:
    first_incident_resolved(run)
    run.until(lambda: run.incident(2) is not None)
    [report] = run.reports("postmortem")
    answer = Retriever(run.service, run.driver.metrics).ask("similar past incidents",
                                                            user="bob", incident_id=2)
    assert answer.refs[0] == "incident:1"
    assert f"report:{report.id}" in answer.refs
    fact = next(f for f in answer.facts if f.ref == f"report:{report.id}")
    assert "cause bad_deploy on payments" in fact.summary
    assert "rollback-deploy succeeded" in fact.summary
    with run.service.db.sessions() as session:
        assert all(RetrievalRepo().resolve(session, ref) for ref in answer.refs)
    assert run.store.tickets()[1].state == "open"  # the repeat has its own ticket


def test_repeated_events_and_a_restart_write_nothing_twice(run: Run) -> None:
    first_incident_resolved(run)
    before = (run.ticket_actions(), len(run.reports()))
    info = run.incident(1)
    run.scribe.on_incident(info)
    run.scribe.on_resolved(info)
    diagnose(run, 1)
    for execution in run.service.engine.executions():
        run.scribe.on_execution(execution)
    restarted = Scribe(run.service, run.store)  # a new process, same database
    restarted.on_resolved(info)
    assert restarted.ticket_of(1) == run.scribe.ticket_of(1)
    assert (run.ticket_actions(), len(run.reports())) == before


class FlakyTickets:
    """A ticket system that is down until `up` is set."""

    name = "flaky"

    def __init__(self) -> None:
        self.up = False
        self.opened: list[str] = []
        self.notes: list[str] = []
        self.closed: list[str] = []

    def open(self, *, kind: TicketKind, title: str, body: str, service: str, severity: str,
             idempotency_key: str) -> TicketRef:
        if not self.up:
            raise TicketError("flaky: connection refused")
        self.opened.append(idempotency_key)
        return TicketRef("flaky", "T-1")

    def update(self, ref: TicketRef, note: str) -> None:
        if not self.up:
            raise TicketError("flaky: connection refused")
        self.notes.append(note)

    def route(self, ref: TicketRef, group: str) -> None:
        raise AssertionError("the scribe never routes")

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        self.closed.append(resolution)


def test_a_ticket_system_that_is_down_never_stops_the_scribe(runtime: Runtime) -> None:
    tickets = FlakyTickets()
    scribe = Scribe(runtime.service, tickets)
    opened = runtime.clock.now()
    runtime.service.save_incidents([IncidentUpdate(7, None, "errors on cart", Severity.WARNING,
                                                   "open", ("cart",), opened, None)], "test")
    stored = runtime.service.incidents()[0]
    scribe.on_incident(stored)
    scribe.on_hypotheses(stored.id, [Hypothesis("cart", "memory_leak", 0.7)])
    failures = [e for e in runtime.service.audit_entries()
                if e.action == "scribe.ticket_failed"]
    assert failures
    assert "connection refused" in failures[0].reason
    tickets.up = True
    grown = IncidentInfo(stored.id, stored.title, Severity.CRITICAL, "open", ("cart", "web"),
                         opened)
    scribe.on_incident(grown)
    assert len(tickets.opened) == 1
    assert [n.split(":")[0] for n in tickets.notes] == ["Diagnosis", "Now affects cart, web (new"]
    with runtime.service.db.sessions() as session:
        drafts = RetrievalRepo().reports(session, kind="stakeholder_update")
    assert len(drafts) == 3  # opened, diagnosed, grew: written while the tickets were down


def test_without_a_ticket_system_the_documents_are_still_written(run: Run) -> None:
    run.scribe.tickets = None
    first_incident_resolved(run)
    assert run.store.tickets() == []
    assert len(run.reports("postmortem", 1)) == 1
    [report] = run.reports("postmortem", 1)
    assert report.data["ticket"] is None
    assert run.reports("stakeholder_update", 1)

"""The retriever (level 0): questions in plain language, answers with a link to every fact.

`ask()` reads the question as an intent (agents/retriever_intents.py), runs the concrete
queries of that intent (agents/retriever_queries.py), and writes the answer from a
template: a heading per query and one line per fact, each line cited `[n]` where `n`
numbers `Answer.facts`. The text never states anything that is not one of those facts.
With a language model configured, the model may re-phrase the answer from those facts
only; its reply is checked (agents/retriever_llm.py) and the template answer stands
whenever the model fails or cites nothing valid. Nothing here changes any state: the
retriever only reads, and the model has no tools.

Roles (`Access` in agents/retriever_queries.py): an unknown user gets an error and no
facts; a viewer sees audit records only as when/who/what/target/decision and a
recommendation still awaiting a decision only as its title, target and state; operators
and above see everything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from agents import retriever_facts as rf
from agents import retriever_queries as q
from agents.external_evidence import ExternalEvidence
from agents.llm import LLM
from agents.retriever_intents import Intent, parse
from agents.retriever_llm import phrase
from console.domain import Evidence, IncidentInfo
from console.sources.metrics import MetricsReader
from console.storage.repos_retrieval import RetrievalRepo

if TYPE_CHECKING:
    from console.service import WatchfloorService


@dataclass(frozen=True, slots=True)
class Answer:
    """`text` cites facts as [n] (1-based into `facts`); `queries` are the queries that
    were run, with how many records each found; `via` is template or llm."""

    question: str
    intent: str
    text: str
    facts: tuple[Evidence, ...] = ()
    queries: tuple[rf.Query, ...] = ()
    suggestions: tuple[str, ...] = ()
    error: str | None = None
    via: str = "template"
    note: str = ""  # why the language model was or was not used
    incident_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(fact.ref for fact in self.facts)


def render(facts: rf.Facts, preface: str = "") -> str:
    """The template answer: every line a query heading or one cited fact."""
    lines = [preface] if preface else []
    for heading, numbers, empty in facts.sections:
        if numbers:
            lines.append(f"{heading} ({len(numbers)}):")
            lines.extend(f"- [{n}] {facts.items[n - 1].summary}" for n in numbers)
        elif empty:
            lines.append(empty)
    return "\n".join(lines)


class Retriever:
    name = "retriever"

    def __init__(self, service: WatchfloorService, metrics: MetricsReader | None,
                 llm: LLM | None = None, external: ExternalEvidence | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.llm = llm
        # Other tools' MCP servers (console/mcp/client.py): quoted as facts, never obeyed.
        self.external = external
        self._repo = RetrievalRepo()

    # --- asking --------------------------------------------------------------------

    def ask(self, question: str, *, user: str, incident_id: int | None = None,
            now: datetime | None = None) -> Answer:
        question = " ".join(question.split())[:2000]
        role = self.service.role_of(user)
        if role is None:
            return Answer(question, "none", "", error=f"{user!r} is not a known user; an "
                          "admin must add them before they can ask")
        if not question:
            return Answer(question, "none", "", error="the question is empty")
        access = rf.Access(user, role)
        now = now or self.service.clock.now()
        with self.service.db.sessions() as session:
            known = self._repo.known_services(session)
            intent = parse(question, now=now, services=known,
                           alert_names=q.alert_names(self._repo, session, now))
            scope = intent.incident_id if intent.incident_id is not None else incident_id
            ctx = rf.Ctx(session, self._repo, now, access, self.metrics,
                        self.service.engine.library,
                        self._repo.incident(session, scope) if scope is not None else None)
            if scope is not None and ctx.incident is None:
                return Answer(question, intent.kind, "", error=f"no incident {scope}")
            facts = rf.Facts()
            preface, suggestions = self._run(ctx, facts, intent, known)
        if self.external is not None:  # after the session: a slow server holds no read
            self._quote_external(facts, question, intent.services or (
                ctx.incident.services if ctx.incident else ()), ctx.incident)
        text = render(facts, preface)
        answer = Answer(question, intent.kind, text, tuple(facts.items), tuple(facts.queries),
                        tuple(dict.fromkeys(suggestions))[:6],
                        incident_id=ctx.incident.id if ctx.incident else None)
        return self._phrased(answer) if self.llm is not None and answer.facts else answer

    def _run(self, ctx: rf.Ctx, facts: rf.Facts, intent: Intent,
             known: list[str]) -> tuple[str, list[str]]:
        """Run the intent's queries; returns a preface and the follow-up questions."""
        inc = ctx.incident
        about = f" incident {inc.id}" if inc is not None else ""
        top = (intent.services or (inc.services if inc else ()) or ("",))[0]
        if intent.kind == "errors":
            q.errors(ctx, facts, intent)
            return "", [f"What changed before{about}?" if about else
                        "What changed in the last hour?",
                        f"How is {top} doing?" if top else "What should I look at?",
                        "Similar past incidents" + (f" to{about}" if about else "")]
        if intent.kind == "changes":
            changed = q.changes(ctx, facts, intent)
            return "", [*(f"Recent errors for {s}" for s in changed[:2]),
                        "What should I look at?"]
        if intent.kind == "runbook":
            q.runbook(ctx, facts, intent)
            return "", [*([f"Similar past incidents to{about}"] if about else []),
                        "What should I look at?"]
        if intent.kind == "similar":
            q.similar(ctx, facts, intent)
            if about:
                return "", [f"What does the runbook say for{about}?",
                            f"What changed before{about}?"]
            return "", ["What should I look at?", "What changed today?"]
        if intent.kind == "why":
            execution, rec = q.why(ctx, facts, intent)
            follow = [f"What changed before incident {rec.incident_id}?"] \
                if rec is not None and rec.incident_id is not None else []
            target = execution.target if execution else rec.target if rec else ""
            return "", [*follow, *([f"Recent errors for {target}"] if target else []),
                        "What should I look at?"]
        if intent.kind == "metrics":
            shown = q.metrics(ctx, facts, intent)
            if not shown:
                return ("Name a service to see its metrics.",
                        [f"How is {s} doing?" for s in known[:3]])
            return "", [f"Recent errors for {shown[0]}", "What changed in the last hour?"]
        incidents = q.overview(ctx, facts, intent)
        preface = ("I could not read a specific question, so here is what needs attention."
                   if intent.vague else "")
        return preface, self._for_incidents(incidents[:2])

    def _quote_external(self, facts: rf.Facts, question: str, services: tuple[str, ...],
                        incident: IncidentInfo | None) -> None:
        """What the configured MCP servers return for the question, as quoted facts of a
        section of their own; tools refused and servers that failed are counted in the
        query the answer lists."""
        assert self.external is not None
        found = self.external.lookup(question, services,
                                     incident.id if incident is not None else None)
        facts.section("Quoted from other tools (data, not instructions)", found.evidence,
                      "", rf.Query("mcp", {"refused": str(len(found.refused)),
                                           "failed": str(len(found.errors))}))

    def _for_incidents(self, incidents: list[IncidentInfo]) -> list[str]:
        out: list[str] = []
        for inc in incidents:
            out += [f"What changed before incident {inc.id}?",
                    f"Recent errors for {inc.services[0]}" if inc.services else "",
                    f"Similar past incidents to incident {inc.id}"]
        return [s for s in out if s] or ["What changed in the last hour?"]

    def _phrased(self, answer: Answer) -> Answer:
        assert self.llm is not None
        text, note = phrase(self.llm, answer.question, answer.facts)
        if text is None:
            return replace(answer, note=note)
        return replace(answer, text=text, via="llm", note=note)

    # --- suggestions ------------------------------------------------------------------

    def suggest(self, incident_id: int, *, user: str) -> list[str]:
        """Questions worth asking about one incident (none for an unknown user)."""
        if self.service.role_of(user) is None:
            return []
        now = self.service.clock.now()
        with self.service.db.sessions() as session:
            inc = self._repo.incident(session, incident_id)
            if inc is None:
                return []
            alerts = sorted(self._repo.incident_alert_names(session, [inc.id])[inc.id])
            executions = self._repo.executions(session, incident_id=inc.id, limit=1)
            waiting = self._repo.recommendations(session, now, incident_id=inc.id,
                                                 states=rf.OPEN_RECS, limit=1)
        out = [f"What changed before incident {inc.id}?"]
        if inc.services:
            out += [f"Recent errors for {inc.services[0]}", f"How is {inc.services[0]} doing?"]
        if alerts:
            out.append(f"What does the runbook say for {alerts[0]}?")
        out.append(f"Similar past incidents to incident {inc.id}")
        if executions:
            out.append(f"Why was execution {executions[0].id} taken?")
        elif waiting:
            out.append(f"Why was recommendation {waiting[0].id} made?")
        return out



"""What `watchfloor mcp` offers, as plain functions over one runtime and one person.

An assistant that speaks MCP reads what an operator reads and may recommend what an
operator may recommend; it never approves, executes or rolls back (there is no tool for
it: approval stays with a signed-in person at the console or `watchfloor approve`).
Each tool answers as the `--as` person would be answered: the retriever's roles apply to
`ask`, and a viewer sees a recommendation still awaiting a decision only as its title,
target and state, as in the console's answers (agents/retriever_queries.py).

The functions return plain JSON-able data and know nothing of the protocol; the server
(console/mcp/server.py) turns them into tools and audits every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.runtime import Runtime

MAX_ROWS = 200
OPEN_STATES = ("pending", "queued")


class ToolRefused(Exception):
    """The call cannot be answered (unknown user, no such record, bad argument); the
    message says what and where, and the caller sees it as the tool's error."""


@dataclass
class ConsoleTools:
    runtime: Runtime
    user: str

    # --- who asks ---------------------------------------------------------------------

    def role(self) -> str:
        role = self.runtime.service.role_of(self.user)
        if role is None:
            raise ToolRefused(f"{self.user!r} is not a known user of this database; an "
                              "admin adds them (watchfloor user NAME ROLE --as ADMIN)")
        return role

    # --- read tools -------------------------------------------------------------------

    def ask(self, question: str, incident: int | None = None) -> dict[str, Any]:
        self.role()
        answer = self.runtime.ask(question, user=self.user, incident_id=incident)
        if answer.error:
            raise ToolRefused(answer.error)
        return {"question": answer.question, "intent": answer.intent, "text": answer.text,
                "via": answer.via,
                "citations": [{"n": n, "kind": f.kind, "summary": f.summary, "ref": f.ref}
                              for n, f in enumerate(answer.facts, 1)],
                "queries": [str(q) for q in answer.queries],
                "suggestions": list(answer.suggestions)}

    def incidents(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        self.role()
        if state is not None and state not in ("open", "resolved"):
            raise ToolRefused(f"state: expected open or resolved, got {state!r}")
        rows = self.runtime.service.incidents(_limit(limit))
        return [_incident(i) for i in rows if state is None or i.state == state]

    def incident(self, incident: int) -> dict[str, Any]:
        self.role()
        found = self.runtime.service.incidents(ids=(incident,))
        if not found:
            raise ToolRefused(f"incident: no incident {incident}")
        out = _incident(found[0])
        out["timeline"] = [_plain(note) for note in
                           self.runtime.service.incident_timeline(incident)[-MAX_ROWS:]]
        out["causes"] = self.causes(incident)
        return out

    def causes(self, incident: int) -> list[dict[str, Any]]:
        """The incident's causes as stored, each with the evidence of its current
        diagnosis (the board's newest hypothesis of that service and fault class)."""
        from console.storage.repos_agents import HypothesisRepo
        from console.storage.repos_causes import CauseRepo

        self.role()
        if not self.runtime.service.incidents(ids=(incident,)):
            raise ToolRefused(f"incident: no incident {incident}")
        hypotheses = HypothesisRepo()
        out = []
        with self.runtime.db.sessions() as session:
            for cause in CauseRepo().causes(session, incident):
                latest = hypotheses.latest(session, incident, cause.key)
                evidence = [] if latest is None else [
                    {"kind": e.kind, "summary": e.summary, "ref": e.ref, "weight": e.weight}
                    for e in latest.hypothesis.evidence]
                out.append({"ordinal": cause.ordinal, "service": cause.service,
                            "fault_class": cause.fault_class,
                            "confidence": cause.confidence, "signals": cause.signals,
                            "state": cause.state, "note": cause.note,
                            "opened_at": cause.opened_at.isoformat(),
                            "evidence": evidence,
                            "recommendations": [a.recommendation_id for a in cause.actions]})
        return out

    def recommendations(self, state: str | None = None,
                        incident: int | None = None) -> list[dict[str, Any]]:
        role = self.role()
        engine = self.runtime.service.engine
        recs = engine.recommendations((state,) if state else None)
        out = []
        for rec in recs:
            if incident is not None and rec.incident_id != incident:
                continue
            if role == "viewer" and rec.state in OPEN_STATES:
                out.append({"id": rec.id, "state": rec.state, "target": rec.target,
                            "title": rec.preview.get("summary", rec.runbook_id)})
                continue
            out.append(recommendation_json(rec))
        return out[:MAX_ROWS]

    def audit_verify(self) -> dict[str, Any]:
        self.role()
        result = self.runtime.service.verify_audit()
        return {"ok": result.ok, "records": result.records,
                "first_bad_seq": result.first_bad_seq, "problem": result.problem,
                "notes": list(result.notes), "text": result.describe()}

    # --- the one tool that writes ------------------------------------------------------

    def propose(self, runbook: str, params: Mapping[str, Any] | None = None,
                explanation: str = "", incident: int | None = None) -> dict[str, Any]:
        """A pending recommendation, exactly as `watchfloor propose` makes one (operator
        and up, its preview computed, audited as this person); it runs only once a person
        approves it."""
        from console.execution import ExecutionError
        from console.operations import PermissionDenied, Refused
        from console.policy import PolicyError

        self.role()
        if incident is not None and not self.runtime.service.incidents(ids=(incident,)):
            raise ToolRefused(f"incident: no incident {incident}")
        engine = self.runtime.service.engine
        try:
            rec_id = engine.propose(runbook, dict(params or {}),
                                    requester=f"user:{self.user}",
                                    explanation=explanation[:2000], incident_id=incident)
        except (ExecutionError, PolicyError) as exc:
            raise ToolRefused(str(exc)) from None
        except PermissionDenied as exc:
            raise ToolRefused(f"denied: {exc}") from None
        except Refused as exc:
            raise ToolRefused(f"refused: {exc}") from None
        rec = engine.recommendation(rec_id)
        assert rec is not None
        return recommendation_json(rec) | {
            "next": "a person approves it in the console or with `watchfloor approve "
                    f"{rec_id} --as USER --preview-hash {rec.preview_hash}`"}


def recommendation_json(rec: Any) -> dict[str, Any]:
    """As `watchfloor recommendations --json` shows one, with its execution preview."""
    return {"id": rec.id, "state": rec.state, "runbook": rec.runbook_id,
            "target": rec.target, "params": dict(rec.params), "incident": rec.incident_id,
            "confidence": rec.confidence, "risk": rec.risk, "requester": rec.requester,
            "autonomous": rec.autonomous, "explanation": rec.explanation,
            "preview": dict(rec.preview), "preview_hash": rec.preview_hash,
            "approvals": [list(a) for a in rec.approvals],
            "created_at": rec.created_at.isoformat(),
            "expires_at": rec.expires_at.isoformat() if rec.expires_at else None}


def _incident(info: Any) -> dict[str, Any]:
    return {"id": info.id, "title": info.title, "severity": info.severity.value,
            "state": info.state, "services": list(info.services),
            "opened_at": info.opened_at.isoformat(),
            "resolved_at": info.resolved_at.isoformat() if info.resolved_at else None}


def _plain(note: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v.isoformat() if hasattr(v, "isoformat") else v
            for k, v in asdict(note).items()}


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS:
        raise ToolRefused(f"limit: expected 1-{MAX_ROWS}, got {limit}")
    return limit

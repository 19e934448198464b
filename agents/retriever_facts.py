"""The facts an answer is made of, and who may see what of them.

Every fact is an `Evidence` whose `ref` links the record it was read from; its summary
says only what that record says. What a person may see depends on their role (see
`Access`): the filter is applied here, where facts are made, so nothing hidden can
reach an answer's text, its facts, or a language model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from agents.retriever_intents import Window, fmt_time
from console.actions.runbooks import Runbook
from console.domain import (
    AlertStatus,
    AuditEntry,
    ChangeEvent,
    Evidence,
    Execution,
    IncidentInfo,
    Recommendation,
    Severity,
    Signal,
)
from console.sources.metrics import MetricsReader
from console.storage.repos import role_rank
from console.storage.repos_retrieval import RetrievalRepo

SEVERITY_RANK = {Severity.CRITICAL: 2, Severity.WARNING: 1, Severity.INFO: 0}
OPEN_RECS = ("pending", "queued")
LOW_IS_BAD = {"cache_hit_ratio", "instances_ready", "cert_expiry_hours"}
MAX_TEXT = 300  # characters of any one stored text quoted in a fact


@dataclass(frozen=True, slots=True)
class Access:
    """What one asker may see. Viewers see every kind of record, but (1) an audit record
    only as when / who / what / on which target / decision, never its reason, inputs or
    outputs, and (2) a recommendation still awaiting a decision (pending, queued) only as
    its title, target and state, never its explanation, confidence, parameters, preview
    or approvals. Operators and above see everything."""

    user: str
    role: str

    @property
    def full(self) -> bool:
        return role_rank(self.role) >= role_rank("operator")


@dataclass(frozen=True, slots=True)
class Query:
    """One query the retriever ran, as the answer shows it."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)
    found: int = 0

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args}) -> {self.found}"


@dataclass
class Facts:
    """The numbered facts of one answer, grouped into the sections of its text."""

    items: list[Evidence] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    sections: list[tuple[str, list[int], str]] = field(default_factory=list)

    def add(self, fact: Evidence) -> int:
        """The fact's number (1-based); a fact already present keeps its number."""
        for number, known in enumerate(self.items, 1):
            if known.ref == fact.ref and known.summary == fact.summary:
                return number
        self.items.append(fact)
        return len(self.items)

    def section(self, heading: str, facts: Iterable[Evidence], empty: str,
                query: Query) -> list[Evidence]:
        found = list(facts)
        self.queries.append(Query(query.name, query.params, len(found)))
        self.sections.append((heading, [self.add(f) for f in found], empty))
        return found


@dataclass
class Ctx:
    session: Session
    repo: RetrievalRepo
    now: datetime
    access: Access
    metrics: MetricsReader | None
    library: Mapping[str, Runbook]
    incident: IncidentInfo | None = None


def clip(text: str, limit: int = MAX_TEXT) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def fmt_value(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:.1f}%"
    if metric.endswith("_ms"):
        return f"{value:.0f} ms"
    if metric in ("cpu", "memory", "disk"):
        return f"{value:.0f}%"
    if metric in ("saturation", "pool_usage", "cache_hit_ratio"):
        return f"{value * 100:.0f}%"
    if metric == "cert_expiry_hours":
        return f"{value:.0f} h"
    if metric == "request_rate":
        return f"{value:.0f} req/s"
    return f"{value:.3g}"


def duration(total: float) -> str:
    seconds = round(total)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def window_params(window: Window, services: Sequence[str] = ()) -> dict[str, str]:
    params = {"start": window.start.isoformat(), "end": window.end.isoformat()}
    if services:
        params["services"] = ",".join(services)
    return params


# --- facts of each kind ---------------------------------------------------------------

def alert_fact(signal: Signal, now: datetime) -> Evidence:
    summary = signal.annotations.get("summary", "")
    where = signal.labels.get("instance") or signal.service
    text = f"{signal.name} {signal.status.value} on {where} ({signal.severity.value}) at " \
           f"{fmt_time(signal.at, now)}"
    return Evidence("alert", text + (f": {clip(summary, 200)}" if summary else ""),
                    f"signal:{signal.fingerprint}")


def incident_fact(info: IncidentInfo, now: datetime, extra: str = "") -> Evidence:
    when = f"open since {fmt_time(info.opened_at, now)}" if info.state != "resolved" else \
        f"opened {fmt_time(info.opened_at, now)}, resolved after " \
        f"{duration(((info.resolved_at or now) - info.opened_at).total_seconds())}"
    return Evidence("incident", f"incident {info.id} [{info.severity.value}] "
                    f"“{clip(info.title, 120)}”, {when}, on {', '.join(info.services)}"
                    + (f"; {extra}" if extra else ""), f"incident:{info.id}")


def recommendation_fact(rec: Recommendation, access: Access, now: datetime) -> Evidence:
    title = str(rec.preview.get("summary") or rec.preview.get("title") or rec.runbook_id)
    head = f"recommendation {rec.id}: {clip(title, 160)} ({rec.state})"
    if rec.state in OPEN_RECS and not access.full:
        return Evidence("recommendation", head, f"recommendation:{rec.id}")
    parts = [head, f"runbook {rec.runbook_id}, risk {rec.risk}",
             f"requested by {rec.requester} at {fmt_time(rec.created_at, now)} with "
             f"confidence {rec.confidence:.2f}"]
    if rec.explanation:
        parts.append(f"why: {clip(rec.explanation, 240)}")
    if rec.state in OPEN_RECS and rec.approvals:
        parts.append("approved so far by " + ", ".join(f"{u} ({r})" for u, r in rec.approvals))
    return Evidence("recommendation", "; ".join(parts), f"recommendation:{rec.id}")


def execution_fact(execution: Execution, now: datetime) -> Evidence:
    title = execution.plan.get("title") or execution.runbook_id
    text = (f"execution {execution.id}: {clip(str(title), 120)} on {execution.target}, "
            f"{execution.state}; started {fmt_time(execution.started_at, now)} by "
            f"{execution.initiator}" + (" on its own (autonomous)" if execution.autonomous
                                        else ""))
    outcome = execution.result.get("outcome")
    if outcome:
        text += f"; outcome: {clip(str(outcome), 200)}"
    return Evidence("execution", text, f"execution:{execution.id}")


def audit_fact(entry: AuditEntry, access: Access, now: datetime) -> Evidence:
    text = (f"audit {entry.seq}: {fmt_time(entry.at, now)} {entry.actor} {entry.action} "
            f"{entry.target}" + (f" — decision {entry.decision}"
                                 if entry.decision != "n/a" else ""))
    if access.full:
        if entry.reason:
            text += f"; reason: {clip(entry.reason, 240)}"
        details = {**{f"in.{k}": v for k, v in entry.inputs.items()},
                   **{f"out.{k}": v for k, v in entry.outputs.items()}}
        shown = [f"{k}={clip(str(v), 60)}" for k, v in details.items()
                 if k not in ("in.plan", "out.steps") and v not in (None, "", [], {})]
        if shown:
            text += "; " + ", ".join(shown[:6])
    return Evidence("audit", text, f"audit:{entry.seq}")


def change_fact(change: ChangeEvent, now: datetime) -> Evidence:
    return Evidence("change", f"{fmt_time(change.at, now)} {change.kind} of {change.service}: "
                    f"{clip(change.description, 200)} (by {change.author})",
                    f"change:{change.id}")


def change_facts(ctx: Ctx, window: Window, services: Sequence[str] = (),
                 limit: int = 20) -> list[Evidence]:
    changes = ctx.repo.changes_between(ctx.session, window.start, window.end,
                                       services=services or None, limit=limit)
    return [change_fact(c, ctx.now) for c in changes]


def metric_facts(ctx: Ctx, service: str, names: Sequence[str],
                 window: Window) -> list[Evidence]:
    if ctx.metrics is None:
        return []
    out = []
    for metric in names:
        points = ctx.metrics.series(service, metric, window.start, window.end)
        if not points:
            continue
        pick = min if metric in LOW_IS_BAD else max
        worst_at, worst = pick(points, key=lambda p: p[1])
        last_at, last = points[-1]
        word = "lowest" if metric in LOW_IS_BAD else "peak"
        out.append(Evidence("metric", f"{metric} of {service}: {word} {fmt_value(metric, worst)}"
                            f" at {fmt_time(worst_at, ctx.now)}, latest "
                            f"{fmt_value(metric, last)} at {fmt_time(last_at, ctx.now)}",
                            f"metric:{service}/{metric}@{worst_at.isoformat()}"))
    return out


def latest_per_series(signals: Iterable[Signal]) -> list[Signal]:
    newest: dict[str, Signal] = {}
    for signal in signals:
        newest[signal.fingerprint] = signal
    return sorted(newest.values(), key=lambda s: (s.status is not AlertStatus.FIRING,
                                                  -SEVERITY_RANK[s.severity], s.at))


def is_error_alert(signal: Signal) -> bool:
    return "error" in signal.name.lower() or \
        signal.annotations.get("metric") == "error_rate"

"""The scribe's documents: stakeholder update drafts and post-incident reports.

A document is built once as neutral blocks (headings, paragraphs, lists, tables, each
piece of text optionally with a record link) and rendered twice, as Markdown and as
HTML. Every value is escaped on the way out: `html.escape` for HTML, and for Markdown
the HTML escape plus a backslash before Markdown's own punctuation, so text that came
from an alert, a log line or another agent can never become markup in either form.

Stakeholder updates are for people outside the NOC: no alert names, no metrics, no
jargon, only what is affected, since when, what is being done and when the next
update comes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from console.domain import Hypothesis

Text = str | tuple[str, str]  # plain text, or (text, record link)

FAULT_PLAIN = {
    "bad_deploy": "a faulty software update", "config_error": "a faulty configuration change",
    "memory_leak": "a service gradually running out of memory",
    "disk_filling": "a server running out of storage space",
    "cpu_saturation": "servers running out of processing capacity",
    "traffic_surge": "an unusual surge in traffic",
    "connection_pool_exhaustion": "a limit on database connections being reached",
    "cache_stampede": "a caching problem", "certificate_expiry": "an expiring security "
    "certificate", "queue_backlog": "a backlog of queued work",
    "network_partition": "a network problem in part of a data centre",
    "slow_dependency": "a slow internal system",
}
ACTION_PLAIN = {
    "deploy_rollback": "undoing the recent change", "restart": "restarting the service",
    "scale": "adding capacity", "disk_hygiene": "freeing storage space",
    "cache_flush": "clearing a cache", "failover": "moving traffic to healthy servers",
    "feature_flag": "switching off a feature", "cert_rotation": "renewing a certificate",
    "queue_drain": "clearing a backlog",
}
PREVENT = {
    "bad_deploy": "Gate deploys of {service} behind a canary stage with an error-rate check, "
                  "so a faulty version stops before it reaches every instance.",
    "config_error": "Validate configuration changes of {service} before they are pushed, "
                    "and roll them out gradually.",
    "memory_leak": "Add a memory-growth alert on {service} and a soak test before release.",
    "disk_filling": "Alert on the disk-usage trend of {service}, not only on the level, and "
                    "check its log rotation.",
    "cpu_saturation": "Review the capacity plan and autoscaling limits of {service}.",
    "traffic_surge": "Review the autoscaling and rate limits of {service} for surges.",
    "connection_pool_exhaustion": "Size the connection pool of {service} for peak load and "
                                  "alert on pool usage.",
    "cache_stampede": "Add request coalescing or jittered expiry to the cache of {service}.",
    "certificate_expiry": "Automate certificate renewal for {service} and alert weeks "
                          "before expiry.",
    "queue_backlog": "Alert on the queue depth trend of {service} and review its consumers.",
    "network_partition": "Review zone redundancy and failover of {service}.",
    "slow_dependency": "Add timeouts and a circuit breaker where {service} calls its "
                       "dependencies.",
}


def plain_fault(fault_class: str) -> str:
    return FAULT_PLAIN.get(fault_class, "a technical fault")


def plain_action(action_class: str) -> str:
    return ACTION_PLAIN.get(action_class, "applying a fix")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: Text
    label: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[Text, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Text, ...], ...]


Block = Heading | Para | Bullets | Table


@dataclass
class Doc:
    blocks: list[Block] = field(default_factory=list)

    def h1(self, text: str) -> None:
        self.blocks.append(Heading(1, text))

    def h2(self, text: str) -> None:
        self.blocks.append(Heading(2, text))

    def p(self, text: Text, label: str = "") -> None:
        self.blocks.append(Para(text, label))

    def ul(self, items: Sequence[Text]) -> None:
        self.blocks.append(Bullets(tuple(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Text]]) -> None:
        self.blocks.append(Table(tuple(headers), tuple(tuple(r) for r in rows)))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!~])")


def md_escape(text: str) -> str:
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _ref_text(ref: str) -> str:
    return re.sub(r"[`\s]", "", ref)[:200]


def _md(piece: Text) -> str:
    if isinstance(piece, tuple):
        text, ref = piece
        return f"{md_escape(text)} (`{_ref_text(ref)}`)" if ref else md_escape(text)
    return md_escape(piece)


def _html(piece: Text) -> str:
    if isinstance(piece, tuple):
        text, ref = piece
        if not ref:
            return html.escape(text)
        return (f'{html.escape(text)} <code class="ref">{html.escape(_ref_text(ref))}'
                "</code>")
    return html.escape(piece)


def to_markdown(doc: Doc) -> str:
    out: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + md_escape(block.text), ""]
        elif isinstance(block, Para):
            label = f"**{md_escape(block.label)}:** " if block.label else ""
            out += [label + _md(block.text), ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md(item)}" for item in block.items] + [""]
        else:
            out.append("| " + " | ".join(md_escape(h) for h in block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in block.rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_html(doc: Doc, title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;"
           "text-align:left;vertical-align:top}code.ref{color:#555}</style></head><body>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            label = f"<strong>{html.escape(block.label)}:</strong> " if block.label else ""
            out.append(f"<p>{label}{_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_html(i)}</li>" for i in block.items) + "</ul>")
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_html(c)}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def hhmm(at: datetime) -> str:
    return f"{at:%H:%M} UTC"


def stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def plain_list(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True)
class StakeholderUpdate:
    number: int
    status: str  # investigating | cause found | fixing | monitoring | resolved
    services: tuple[str, ...]
    since: datetime
    now: datetime
    doing: str
    next_update: datetime | None


def stakeholder_doc(update: StakeholderUpdate, incident_id: int) -> tuple[str, str, str]:
    """(title, markdown, html) of one plain-language update draft."""
    title = f"Service disruption update {update.number} (incident {incident_id})"
    minutes = max(0, int((update.now - update.since).total_seconds() // 60))
    affected = plain_list(update.services) or "Some services"
    doc = Doc()
    doc.h1(title)
    doc.p("Draft for the operator to review and send. Watchfloor does not send it.", "Note")
    doc.p(update.status.capitalize(), "Status")
    doc.p(f"{affected}. People using them may see errors or slow responses."
          if update.status != "resolved" else f"{affected} (now working normally).",
          "What is affected")
    doc.p(f"{hhmm(update.since)} ({minutes} minutes before this update).", "Since")
    doc.p(update.doing, "What is being done")
    doc.p(f"By {hhmm(update.next_update)}." if update.next_update is not None else
          "No further updates are planned; a post-incident report will follow.",
          "Next update")
    return title, to_markdown(doc), to_html(doc, title)


@dataclass(frozen=True)
class ActionOutcome:
    """One remediation of the incident: what was proposed, who let it run, how it ended."""

    recommendation_id: int | None
    execution_id: int | None
    runbook: str
    title: str
    action_class: str
    target: str
    state: str  # the execution's final state, or the recommendation's when it never ran
    outcome: str
    started_at: datetime | None
    finished_at: datetime | None
    approved_by: tuple[str, ...] = ()
    autonomous: bool = False


@dataclass(frozen=True)
class Postmortem:
    incident_id: int
    title: str
    severity: str
    services: tuple[str, ...]
    opened_at: datetime
    resolved_at: datetime
    alerts: tuple[str, ...]
    timeline: tuple[tuple[datetime, str, str], ...]  # (at, what happened, record link)
    cause: Hypothesis | None
    alternatives: tuple[Hypothesis, ...]
    actions: tuple[ActionOutcome, ...]
    impact_start: datetime | None  # the earliest dated cause evidence (a change), if any
    diagnosed_at: datetime | None
    ticket: str | None = None

    def seconds(self) -> dict[str, float | None]:
        detect = (None if self.impact_start is None or self.impact_start > self.opened_at
                  else (self.opened_at - self.impact_start).total_seconds())
        diagnose = (None if self.diagnosed_at is None
                    else max(0.0, (self.diagnosed_at - self.opened_at).total_seconds()))
        return {"time_to_detect_s": detect, "time_to_diagnose_s": diagnose,
                "time_to_resolve_s": (self.resolved_at - self.opened_at).total_seconds()}


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "not known"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _prevent(pm: Postmortem, times: dict[str, float | None]) -> list[str]:
    out = []
    if pm.cause is not None:
        out.append(PREVENT.get(pm.cause.fault_class, "Find out why {service} failed this way "
                               "and add a check that catches it earlier.")
                   .format(service=pm.cause.service))
    else:
        out.append("No cause was diagnosed: record which evidence was missing, so the "
                   "investigation can use it next time.")
    for action in pm.actions:
        if action.state == "succeeded" and not action.autonomous:
            out.append(f"{action.runbook} fixed it after a person approved it; if it keeps "
                       f"working on {action.target}, consider a higher autonomy level for "
                       f"{action.action_class} there (policy).")
        elif action.state in ("failed", "rolled_back", "rollback_failed", "interrupted"):
            out.append(f"{action.runbook} on {action.target} ended {action.state}: review "
                       "the runbook, its preconditions and its validation.")
    if not pm.actions:
        out.append("It resolved without any action: check whether the problem was transient "
                   "or is only hidden.")
    detect = times["time_to_detect_s"]
    if detect is not None and detect > 300:
        out.append(f"Detection took {duration_text(detect)} after the first cause evidence: "
                   "an alert closer to the cause would fire sooner.")
    return out


def postmortem_doc(pm: Postmortem) -> tuple[str, str, str, dict[str, object]]:
    """(title, markdown, html, data) of the post-incident report; `data` is what the
    retriever compares when it looks for similar incidents."""
    title = f"Post-incident report: incident {pm.incident_id}"
    times = pm.seconds()
    doc = Doc()
    doc.h1(f"{title} — {pm.title}")
    doc.table(("Field", "Value"), (
        ("Incident", (f"incident {pm.incident_id}", f"incident:{pm.incident_id}")),
        ("Severity", pm.severity), ("Services", ", ".join(pm.services)),
        ("Alerts", ", ".join(pm.alerts) or "-"),
        ("Opened", stamp(pm.opened_at)), ("Resolved", stamp(pm.resolved_at)),
        ("Time to detect", duration_text(times["time_to_detect_s"])),
        ("Time to diagnose", duration_text(times["time_to_diagnose_s"])),
        ("Time to resolve", duration_text(times["time_to_resolve_s"])),
        ("Ticket", (pm.ticket, f"ticket:{pm.ticket}") if pm.ticket else "-")))
    doc.h2("Timeline")
    doc.table(("Time (UTC)", "What happened"),
              [(f"{at:%H:%M:%S}", (what, ref)) for at, what, ref in pm.timeline])
    doc.h2("Cause")
    if pm.cause is None:
        doc.p("No cause was diagnosed.")
    else:
        cause = pm.cause
        doc.p(f"{cause.fault_class} on {cause.service} (confidence {cause.confidence:.2f}).",
              "Likely cause")
        doc.ul([(e.summary, e.ref) for e in cause.evidence] or ["No evidence was recorded."])
        if pm.alternatives:
            doc.p(", ".join(f"{h.fault_class} on {h.service} ({h.confidence:.2f})"
                            for h in pm.alternatives), "Also considered")
    doc.h2("Actions and outcomes")
    if pm.actions:
        doc.table(("Action", "Target", "Approved by", "Started", "State", "Outcome"), [
            ((a.title or a.runbook, f"execution:{a.execution_id}" if a.execution_id
              else f"recommendation:{a.recommendation_id}"), a.target,
             "on its own (policy)" if a.autonomous else ", ".join(a.approved_by) or "-",
             f"{a.started_at:%H:%M:%S}" if a.started_at else "-", a.state, a.outcome or "-")
            for a in pm.actions])
    else:
        doc.p("No action was taken.")
    doc.h2("What to prevent")
    doc.ul(_prevent(pm, times))
    cause_data = None if pm.cause is None else {
        "service": pm.cause.service, "fault_class": pm.cause.fault_class,
        "confidence": round(pm.cause.confidence, 3)}
    data: dict[str, object] = {
        "incident_id": pm.incident_id, "services": list(pm.services),
        "alerts": list(pm.alerts), "cause": cause_data,
        "actions": [{"execution": a.execution_id, "recommendation": a.recommendation_id,
                     "runbook": a.runbook, "action_class": a.action_class,
                     "target": a.target, "state": a.state} for a in pm.actions],
        "opened_at": pm.opened_at.isoformat(), "resolved_at": pm.resolved_at.isoformat(),
        "ticket": pm.ticket, **times}
    return title, to_markdown(doc), to_html(doc, title), data

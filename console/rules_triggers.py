"""What fires a rule: matching alerts, incident transitions and schedules, and the
context (subject key, time, template fields) a run is given.

Kept apart from the engine because all of it is pure: no clock, no database, no bus,
so each matching rule can be tested on its own and read in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any

from console.domain import IncidentInfo, Signal
from console.rules_format import (
    SEVERITY_RANK,
    AlertTrigger,
    IncidentTrigger,
    Rule,
    ScheduleTrigger,
    render_template,
)

DAY = timedelta(days=1)


@dataclass
class Context:
    """What fired a rule: its subject key, its time and the fields templates can use."""

    kind: str  # alert | incident | schedule
    subject: str  # alert:FINGERPRINT | incident:ID | schedule:RULE
    at: datetime
    service: str
    severity: str
    summary: dict[str, Any]
    values: dict[str, str] = field(default_factory=dict)
    incident_id: int | None = None
    due: datetime | None = None


def allowed(globs: Iterable[str], value: str) -> bool:
    return any(fnmatchcase(value, g) for g in globs)


def alert_matches(trigger: Any, signal: Signal) -> bool:
    if not isinstance(trigger, AlertTrigger):
        return False
    return (signal.status.value in trigger.state and allowed(trigger.name, signal.name)
            and allowed(trigger.service, signal.service)
            and allowed(trigger.severity, signal.severity.value)
            and SEVERITY_RANK[signal.severity.value] >= SEVERITY_RANK[trigger.min_severity]
            and all(name in signal.labels and allowed(globs, signal.labels[name])
                    for name, globs in trigger.labels.items()))


def transitions(before: str | None, now: str) -> list[str]:
    if before is None:
        return ["opened", "resolved"] if now == "resolved" else ["opened"]
    if before != now:
        return ["resolved"] if now == "resolved" else ["reopened"]
    return []


def incident_matches(trigger: Any, incident: IncidentInfo, transition: str) -> bool:
    if not isinstance(trigger, IncidentTrigger):
        return False
    return (transition in trigger.state and
            SEVERITY_RANK[incident.severity.value] >= SEVERITY_RANK[trigger.min_severity]
            and any(allowed(trigger.services, s) for s in incident.services))


def conditions_hold(rule: Rule, ctx: Context) -> bool:
    for condition in rule.conditions:
        if condition.between is not None:
            start, end = condition.between
            now = ctx.at.astimezone(UTC).time()
            inside = start <= now < end if start <= end else (now >= start or now < end)
            if not inside:
                return False
            continue
        value = ctx.values.get(condition.field or "", "")
        if condition.matches is not None and not allowed(condition.matches, value):
            return False
        if condition.not_matches is not None and allowed(condition.not_matches, value):
            return False
    return True


def _base(kind: str, subject: str, at: datetime) -> dict[str, str]:
    return {"trigger.kind": kind, "trigger.subject": subject, "trigger.at": at.isoformat()}


def alert_context(signal: Signal) -> Context:
    subject = f"alert:{signal.fingerprint}"
    values = {**_base("alert", subject, signal.at), "alert.name": signal.name,
              "alert.service": signal.service, "alert.severity": signal.severity.value,
              "alert.status": signal.status.value, "alert.fingerprint": signal.fingerprint,
              "alert.source": signal.source, "alert.at": signal.at.isoformat(),
              "alert.summary": signal.annotations.get("summary", "")}
    values.update({f"alert.labels.{k}": v for k, v in signal.labels.items()})
    values.update({f"alert.annotations.{k}": v for k, v in signal.annotations.items()})
    summary = {"kind": "alert", "name": signal.name, "service": signal.service,
               "severity": signal.severity.value, "status": signal.status.value,
               "fingerprint": signal.fingerprint, "at": signal.at.isoformat()}
    return Context("alert", subject, signal.at, signal.service, signal.severity.value,
                   summary, values)


def incident_context(incident: IncidentInfo, transition: str, now: datetime) -> Context:
    subject = f"incident:{incident.id}"
    at = incident.opened_at if transition == "opened" else \
        (incident.resolved_at or now) if transition == "resolved" else now
    service = incident.services[0] if incident.services else ""
    values = {**_base("incident", subject, at), "incident.id": str(incident.id),
              "incident.title": incident.title, "incident.severity": incident.severity.value,
              "incident.state": incident.state, "incident.transition": transition,
              "incident.service": service, "incident.services": ", ".join(incident.services),
              "incident.opened_at": incident.opened_at.isoformat()}
    summary = {"kind": "incident", "id": incident.id, "title": incident.title,
               "severity": incident.severity.value, "transition": transition,
               "services": list(incident.services)}
    return Context("incident", subject, at, service, incident.severity.value, summary,
                   values, incident_id=incident.id)


def schedule_context(rule: Rule, due: datetime) -> Context:
    subject = f"schedule:{rule.id}"
    values = {**_base("schedule", subject, due), "schedule.due": due.isoformat()}
    return Context("schedule", subject, due, "", "info",
                   {"kind": "schedule", "due": due.isoformat()}, values, due=due)


def latest_due(trigger: ScheduleTrigger, now: datetime) -> datetime | None:
    """The last time at or before `now` that the schedule was due (UTC days)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    anchors = trigger.at or (time(0, 0),)
    best: datetime | None = None
    for day in (midnight - DAY, midnight):
        for anchor in anchors:
            start = day + timedelta(hours=anchor.hour, minutes=anchor.minute)
            if start > now:
                continue
            due = start
            if trigger.every:
                last_of_day = (day + DAY - start).total_seconds() - 1e-6
                steps = min((now - start).total_seconds(), last_of_day) // trigger.every
                due = start + timedelta(seconds=steps * trigger.every)
            best = due if best is None or due > best else best
    return best


def template_param(value: int | bool | str, values: Mapping[str, str], spec: Any) -> Any:
    """A runbook parameter: fixed, or templated text. A whole-field template for an int
    or bool parameter is converted when the text is exactly a number or true/false;
    anything else stays text, and check_arguments decides (it refuses what does not fit)."""
    if not isinstance(value, str):
        return value
    text = render_template(value, values)
    kind = getattr(spec, "type", "str")
    if kind == "int" and text.strip().lstrip("-").isdigit():
        return int(text)
    if kind == "bool" and text in ("true", "false"):
        return text == "true"
    return text


def describe_trigger(ctx: Context) -> str:
    s = ctx.summary
    if ctx.kind == "alert":
        return f"alert {s['name']} {s['status']} on {s['service']}"
    if ctx.kind == "incident":
        return f"incident #{s['id']} {s['transition']} ({s['severity']}): {s['title']}"
    return f"schedule due {s['due']}"

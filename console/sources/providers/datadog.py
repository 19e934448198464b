"""Datadog in: the Webhooks integration's JSON payload, built from its $-variables.

The integration posts whatever payload the webhook declares, its `$VARIABLES` filled in
as text. The default payload (body, last_updated, event_type, title, date, org, id) is
read as it comes; the monitor variables most teams add ($ALERT_ID, $ALERT_TITLE,
$ALERT_TRANSITION, $ALERT_TYPE, $ALERT_PRIORITY, $ALERT_SCOPE, $HOSTNAME, $TAGS,
$AGGREG_KEY) are read when present. Which service an event is about comes, in order,
from a `service:` tag, the monitor's scope, the group Datadog writes into a
multi-alert title ("[Triggered on {service:payments}] ..."), or the host; an event that
names none is refused with what to add. Times are `$DATE`: Unix time in milliseconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.alertmanager import MAX_NAME, MAX_VALUE, PayloadError, Text, explain
from console.sources.providers.base import Kind, Parsed, Provider
from console.sources.timestamps import to_utc

_TITLE = re.compile(r"^\[(?P<state>[A-Za-z -]+?)(?: on \{(?P<group>[^}]*)\})?\]\s*(?P<rest>.*)$")
_PRIORITY = re.compile(r"^\[(?P<priority>P[1-5])\]\s*")
_RESOLVED = ("recovered", "success", "ok")


class _Text(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class DatadogOrg(_Text):
    id: Text = Field("", max_length=64)
    name: Text = Field("", max_length=256)


class DatadogPayload(_Text):
    """The default payload's fields, and the monitor variables read when present."""

    body: Text = Field("", max_length=16 * MAX_VALUE)
    last_updated: Text = Field("", max_length=20)
    event_type: Text = Field(max_length=64)
    title: Text = Field(min_length=1, max_length=MAX_VALUE)
    date: Text = Field(min_length=1, max_length=20)
    org: DatadogOrg = DatadogOrg()
    id: Text = Field(min_length=1, max_length=64)
    alert_id: Text = Field("", max_length=64)
    alert_title: Text = Field("", max_length=MAX_VALUE)
    alert_transition: Text = Field("", max_length=32)
    alert_status: Text = Field("", max_length=MAX_VALUE)
    alert_type: Text = Field("", max_length=32)
    alert_priority: Text = Field("", max_length=8)
    alert_scope: Text = Field("", max_length=MAX_VALUE)
    alert_metric: Text = Field("", max_length=MAX_VALUE)
    aggreg_key: Text = Field("", max_length=256)
    host_name: Text = Field("", max_length=MAX_NAME)
    hostname: Text = Field("", max_length=MAX_NAME)
    tags: Text = Field("", max_length=4 * MAX_VALUE)
    link: Text = Field("", max_length=MAX_VALUE)


def _tags(text: str) -> dict[str, str]:
    """"env:prod,service:payments" -> {"env": "prod", "service": "payments"}."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition(":")
        if sep and key and value:
            out.setdefault(key, value)
    return out


def _when(text: str) -> datetime:
    if not text.isdigit():
        raise PayloadError(f"date: not Unix time in milliseconds: {text[:40]!r}")
    number = int(text)
    try:
        at = datetime.fromtimestamp(number / 1000 if number >= 100_000_000_000 else number,
                                    UTC)
        return to_utc(at)
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"date: {text[:40]!r} is out of range ({exc})") from None


def _service(p: DatadogPayload, group: dict[str, str]) -> str:
    for candidate in (_tags(p.tags).get("service"), _tags(p.alert_scope).get("service"),
                      group.get("service"), group.get("host"), p.host_name, p.hostname):
        if candidate and not candidate.startswith("$"):
            return candidate
    raise PayloadError("no service: the event names none (no service: tag, scope, "
                       "multi-alert group or host); add \"tags\": \"$TAGS\" or "
                       "\"host_name\": \"$HOSTNAME\" to the webhook's payload")


def parse_datadog(body: Any) -> Parsed:
    try:
        p = DatadogPayload.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(explain(exc, "Datadog webhook payload")) from None
    shown = _PRIORITY.match(p.title)
    match = _TITLE.match(p.title[shown.end():] if shown else p.title)
    state = (p.alert_transition or (match["state"] if match else "")).strip().lower()
    group = _tags(match["group"]) if match and match["group"] else {}
    name = (p.alert_title or (match["rest"] if match else p.title)).strip() or p.title
    service = _service(p, group)
    for what, text in (("title", name), ("service", service)):
        if len(text) > MAX_NAME:
            raise PayloadError(f"{what}: {len(text)} characters long; at most {MAX_NAME} "
                               "are allowed")
    resolved = state in _RESOLVED or p.alert_type.lower() == "success"
    priority = p.alert_priority.upper() or (shown["priority"] if shown else "")
    if priority in ("P1", "P2") or p.alert_type.lower() == "error" or state == "triggered":
        severity = Severity.CRITICAL
    elif p.alert_type.lower() == "info" or priority in ("P4", "P5"):
        severity = Severity.INFO
    else:
        severity = Severity.WARNING
    labels = {"alertname": name, "service": service, "datadog_event_type": p.event_type}
    if p.alert_id and not p.alert_id.startswith("$"):
        labels["datadog_monitor"] = p.alert_id
    notes = {"summary": p.body[:4000], "datadog_event": p.id, "datadog_title": p.title}
    if p.link:
        notes["link"] = p.link
    if p.org.name:
        notes["datadog_org"] = p.org.name
    signal = Signal("datadog", SignalKind.ALERT, name, service, severity,
                    AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                    _when(p.date), labels, {k: v for k, v in notes.items() if v})
    return [signal], []


class DatadogProvider(Provider):
    name: ClassVar[str] = "datadog"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = "Datadog: the Webhooks integration's $-variable payload"

    def parse(self, body: Any) -> Parsed:
        return parse_datadog(body)

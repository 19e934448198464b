"""Change events and offline imports: files turned into signals and changes, or refused.

An import is all or nothing: the whole file is parsed and validated first, and only
then stored in one transaction, so a bad line stores nothing from that file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.domain import AlertStatus, ChangeEvent, LogRecord, Severity, Signal, SignalKind
from console.sources import jsonbody
from console.sources.alertmanager import (
    Annotations,
    Labels,
    PayloadError,
    Text,
    check_names,
    explain,
    parse_webhook,
)
from console.sources.logs import MinedLog, parse_logs
from console.sources.timestamps import Timestamp

MAX_FILE = 64 * 1024 * 1024
# the providers' payloads as their systems send them (console/sources/providers)
PROVIDER_FORMATS = ("grafana", "zabbix", "datadog", "otlp")
FORMATS = ("alertmanager", "prometheus-alerts", "pagerduty", "changes", "logs",
           *PROVIDER_FORMATS)


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")
    kind: Literal["deploy", "config", "feature_flag", "scale", "rollback"]
    description: Text = Field(max_length=4000)
    at: Timestamp
    author: Text = Field("unknown", max_length=200)
    version_from: Text | None = Field(None, max_length=64)
    version_to: Text | None = Field(None, max_length=64)


def parse_changes(items: Iterable[Any]) -> list[ChangeEvent]:
    out = []
    for index, item in enumerate(items):
        try:
            c = ChangeIn.model_validate(item)
        except ValidationError as exc:
            raise PayloadError(f"change {index}: " + explain(exc, "change event")) from None
        out.append(ChangeEvent(c.service, c.kind, c.description, c.at, c.author,
                               c.version_from, c.version_to))
    return out


class PromAlert(BaseModel):
    """One alert of Prometheus's GET /api/v1/alerts."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    labels: Labels
    annotations: Annotations = {}
    state: Literal["firing", "pending", "inactive"]
    activeAt: Timestamp
    value: str = ""


class PagerDutyData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(max_length=64)
    title: str = Field(max_length=4000)
    service: dict[str, Any] = {}
    urgency: Literal["high", "low"] = "high"
    status: str = Field("triggered", max_length=32)
    created_at: Timestamp


class PagerDutyEvent(BaseModel):
    """A PagerDuty v3 webhook event (incident.triggered, incident.resolved...)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: str = Field(pattern=r"^incident\.[a-z_]+$")
    occurred_at: Timestamp
    data: PagerDutyData


def _records(text: str) -> list[Any]:
    """A JSON document (object or list) or JSON lines; each record is held to the
    receiver's limits (console/sources/jsonbody.py), so a file stores what a delivery
    would."""
    stripped = text.strip()
    if not stripped:
        raise PayloadError("the file is empty")
    try:
        body = jsonbody.decode(stripped)
    except json.JSONDecodeError:
        return _json_lines(text)
    items = body if isinstance(body, list) else [body]
    for index, item in enumerate(items):
        try:
            jsonbody.check(item)
        except PayloadError as exc:
            raise PayloadError(f"document {index}: {exc}") from None
    return items


def _json_lines(text: str) -> list[Any]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                record = jsonbody.decode(line)
                jsonbody.check(record)
            except json.JSONDecodeError as exc:
                raise PayloadError(f"line {number}: not valid JSON (column {exc.colno})") from None
            except PayloadError as exc:
                raise PayloadError(f"line {number}: {exc}") from None
            out.append(record)
    return out


def _prometheus(items: list[Any]) -> list[Signal]:
    signals = []
    for index, item in enumerate(items):
        data = item.get("data") if isinstance(item, dict) else None
        alerts = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(alerts, list):
            raise PayloadError(f"document {index}: expected Prometheus /api/v1/alerts output "
                               "({\"status\": \"success\", \"data\": {\"alerts\": [...]}})")
        for n, raw in enumerate(alerts):
            where = f"document {index}: data.alerts.{n}"
            try:
                a = PromAlert.model_validate(raw)
            except ValidationError as exc:
                raise PayloadError(f"{where}: " + explain(exc, "Prometheus alert")) from None
            if a.state != "firing":
                continue
            name = a.labels.get("alertname")
            if not name:
                raise PayloadError(f"{where}: no alertname label")
            service = a.labels.get("service") or a.labels.get("job") or "unknown"
            try:
                check_names(name, service)
            except PayloadError as exc:
                raise PayloadError(f"{where}: {exc}") from None
            sev = a.labels.get("severity", "warning")
            signals.append(Signal("prometheus", SignalKind.ALERT, name, service,
                                  Severity(sev) if sev in Severity._value2member_map_
                                  else Severity.WARNING, AlertStatus.FIRING, a.activeAt,
                                  dict(a.labels), {**a.annotations, "value": a.value[:64]}))
    return signals


def _pagerduty(items: list[Any]) -> list[Signal]:
    signals = []
    for index, raw in enumerate(items):
        body = raw.get("event", raw) if isinstance(raw, dict) else raw
        try:
            ev = PagerDutyEvent.model_validate(body)
        except ValidationError as exc:
            raise PayloadError(f"event {index}: " + explain(exc, "PagerDuty v3 event")) from None
        service = str(ev.data.service.get("summary") or "unknown")[:200]
        resolved = ev.event_type == "incident.resolved"
        labels = {"alertname": "PagerDutyIncident", "service": service,
                  "pagerduty_id": ev.data.id}
        signals.append(Signal("pagerduty", SignalKind.ALERT, "PagerDutyIncident", service,
                              Severity.CRITICAL if ev.data.urgency == "high" else
                              Severity.WARNING,
                              AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                              ev.occurred_at, labels, {"summary": ev.data.title}))
    return signals


def parse_file(path: Path, fmt: str) -> tuple[list[Signal], list[ChangeEvent], list[Any],
                                              list[MinedLog]]:
    """Parse and validate a whole file; returns signals, changes, the raw documents (what
    the import is remembered by) and log lines with their templates."""
    if fmt not in FORMATS:
        raise PayloadError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise PayloadError(f"the file is {size} bytes; the limit is {MAX_FILE}")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PayloadError(f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8 (byte {exc.start})") from None
    if fmt == "logs":
        mined = parse_logs(text)
        return [], [], [{"digest_of_text": hashlib.sha256(text.encode()).hexdigest(),
                         "lines": len(mined)}], mined
    items = _records(text)
    signals: list[Signal] = []
    changes: list[ChangeEvent] = []
    if fmt in PROVIDER_FORMATS:
        return _provider_file(fmt, items)
    if fmt == "alertmanager":
        for index, item in enumerate(items):
            try:
                signals.extend(parse_webhook(item)[1])
            except PayloadError as exc:
                raise PayloadError(f"payload {index}: {exc}") from None
    elif fmt == "prometheus-alerts":
        signals = _prometheus(items)
    elif fmt == "pagerduty":
        signals = _pagerduty(items)
    else:
        changes = parse_changes(items)
    return signals, changes, items, []


def _provider_file(name: str, items: list[Any]) -> tuple[list[Signal], list[ChangeEvent],
                                                         list[Any], list[MinedLog]]:
    """Saved deliveries of a push provider (one per document or line), read as its
    receiver path reads them, log lines included."""
    from console.sources.logs import StreamMiner
    from console.sources.providers.registry import endpoints

    endpoint = next(e for e in endpoints().values() if e.source == name)
    signals: list[Signal] = []
    changes: list[ChangeEvent] = []
    lines: list[LogRecord] = []
    for index, item in enumerate(items):
        try:
            found, moved = endpoint.parse(item)
            if endpoint.logs is not None:
                lines.extend(endpoint.logs(item))
        except PayloadError as exc:
            raise PayloadError(f"document {index}: {exc}") from None
        signals.extend(found)
        changes.extend(moved)
    return signals, changes, items, StreamMiner().mine(lines) if lines else []

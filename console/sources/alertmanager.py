"""Alertmanager in: the webhook payload (version 4) and the API v2 alert list.

Both are validated with pydantic and normalized into `Signal`s with the same
fingerprint (alert name + labels), so an alert seen by polling and by webhook is one
series. Limits keep a hostile or broken sender from exhausting memory or the database.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.timestamps import OptionalEnd, Timestamp

MAX_ALERTS = 10_000
MAX_LABELS = 64
MAX_VALUE = 4096
MAX_NAME = 200  # an alert's name and service (console/storage/models.py name200)
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class PayloadError(ValueError):
    """A payload that cannot be used; the message says what and where."""


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels, got {len(value)}")
    for key, text in value.items():
        if not _LABEL_NAME.match(key):
            raise ValueError(f"label name {key[:40]!r} is not a valid Prometheus label name")
        if len(text) > MAX_VALUE:
            raise ValueError(f"label {key} is longer than {MAX_VALUE} characters")
        if "\x00" in text:
            raise ValueError(f"label {key} contains a NUL character")
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} annotations")
    for key, text in value.items():
        if len(key) > 128 or len(text) > 4 * MAX_VALUE or "\x00" in key + text:
            raise ValueError(f"annotation {key[:40]!r} is too long or contains NUL")
    return value


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotations)]
Text = Annotated[str, AfterValidator(_no_nul)]
"""Text that is stored (PostgreSQL text cannot hold NUL); give its length with Field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)


class WebhookAlert(_Model):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = {}
    startsAt: Timestamp
    endsAt: OptionalEnd = None
    generatorURL: Text = Field("", max_length=MAX_VALUE)
    fingerprint: Text = Field("", max_length=64)


class WebhookPayload(_Model):
    """Alertmanager's webhook body, version 4."""

    version: Literal["4"]
    groupKey: Text = Field(max_length=MAX_VALUE)
    truncatedAlerts: int = Field(0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: Text = Field("", max_length=256)
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Annotations = {}
    externalURL: Text = Field("", max_length=MAX_VALUE)
    alerts: list[WebhookAlert] = Field(max_length=MAX_ALERTS)


class ApiAlertStatus(_Model):
    state: Literal["active", "suppressed", "unprocessed"]
    silencedBy: list[Text] = []
    inhibitedBy: list[Text] = []


class ApiAlert(_Model):
    """One element of GET /api/v2/alerts."""

    labels: Labels
    annotations: Annotations = {}
    startsAt: Timestamp
    endsAt: OptionalEnd = None
    updatedAt: OptionalEnd = None
    fingerprint: Text = Field("", max_length=64)
    status: ApiAlertStatus


def _severity(labels: dict[str, str]) -> Severity:
    text = labels.get("severity", "warning").lower()
    if text in ("critical", "page", "error", "high"):
        return Severity.CRITICAL
    if text in ("info", "none", "low"):
        return Severity.INFO
    return Severity.WARNING


def check_names(name: str, service: str) -> None:
    """An alert's name and service are stored in 200-character columns: longer is refused
    here, on every database (PostgreSQL would refuse it at the insert; SQLite keeps it)."""
    for what, text in (("alertname", name), ("service (or job/instance)", service)):
        if len(text) > MAX_NAME:
            raise PayloadError(f"an alert's {what} label is {len(text)} characters long; "
                               f"at most {MAX_NAME} are allowed ({text[:40]!r}...)")


def _signal(source: str, labels: dict[str, str], annotations: dict[str, str], firing: bool,
            at: datetime, extra: dict[str, str] | None = None) -> Signal:
    name = labels.get("alertname", "")
    if not name:
        raise PayloadError("an alert has no alertname label")
    service = labels.get("service") or labels.get("job") or labels.get("instance") or "unknown"
    check_names(name, service)
    notes = dict(annotations)
    if extra:
        notes.update(extra)
    return Signal(source, SignalKind.ALERT, name, service, _severity(labels),
                  AlertStatus.FIRING if firing else AlertStatus.RESOLVED, at, dict(labels),
                  notes)


def explain(exc: ValidationError, what: str) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    more = exc.error_count() - 5
    return f"not a valid {what}: " + "; ".join(parts) + (f" (and {more} more)" if more > 0
                                                         else "")


def parse_webhook(body: Any) -> tuple[WebhookPayload, list[Signal]]:
    """Validate an Alertmanager webhook body; raise PayloadError with the reason."""
    try:
        payload = WebhookPayload.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(explain(exc, "Alertmanager webhook payload (version 4)")) from None
    signals = []
    for index, alert in enumerate(payload.alerts):
        labels = {**payload.commonLabels, **alert.labels}
        annotations = {**payload.commonAnnotations, **alert.annotations}
        firing = alert.status == "firing"
        at = alert.startsAt if firing or alert.endsAt is None else alert.endsAt
        try:
            signals.append(_signal("alertmanager", labels, annotations, firing, at,
                                   {"group_key": payload.groupKey[:256]}))
        except PayloadError as exc:
            raise PayloadError(f"alerts.{index}: {exc}") from None
    return payload, signals


def parse_api_alerts(body: Any) -> list[tuple[Signal, str]]:
    """GET /api/v2/alerts -> (firing signal, state) per alert; state active|suppressed|..."""
    if not isinstance(body, list):
        raise PayloadError("expected a JSON list of alerts from /api/v2/alerts")
    if len(body) > MAX_ALERTS:
        raise PayloadError(f"at most {MAX_ALERTS} alerts per answer, got {len(body)}")
    out: list[tuple[Signal, str]] = []
    for index, item in enumerate(body):
        try:
            alert = ApiAlert.model_validate(item)
        except ValidationError as exc:
            raise PayloadError(f"{index}: " + explain(exc, "Alertmanager API v2 alert")) from None
        extra: dict[str, str] = {"am_state": alert.status.state}
        if alert.status.silencedBy:
            extra["silenced_by"] = ",".join(alert.status.silencedBy)[:256]
        if alert.status.inhibitedBy:
            extra["inhibited_by"] = ",".join(alert.status.inhibitedBy)[:256]
        try:
            sig = _signal("alertmanager", dict(alert.labels), dict(alert.annotations), True,
                          alert.startsAt, extra)
        except PayloadError as exc:
            raise PayloadError(f"{index}: {exc}") from None
        out.append((sig, alert.status.state))
    return out

"""Zabbix in: a webhook media type pushes each problem and recovery; the API's
`problem.get` is polled for what is open (console/sources/providers/zabbix_api.py).

The webhook: Zabbix fills a media type's parameters from macros and hands them to the
media type's script as one JSON object of text values; the script posts that object
as it is (`req.post(url, value)`). The parameters read here, by the macros that fill
them:

    event_id {EVENT.ID}          event_name {EVENT.NAME}     event_value {EVENT.VALUE}
    event_date {EVENT.DATE}      event_time {EVENT.TIME}     host_name {HOST.NAME}
    event_nseverity {EVENT.NSEVERITY}   event_tags {EVENT.TAGSJSON}   trigger_id {TRIGGER.ID}
    event_recovery_date {EVENT.RECOVERY.DATE}   event_recovery_time {EVENT.RECOVERY.TIME}
    host_host {HOST.HOST}        timezone (a constant: the Zabbix server's zone, e.g. UTC)

Zabbix writes dates in the server's local time without a zone, hence `timezone` (UTC
when left out). A macro Zabbix could not resolve arrives as its own text
("{EVENT.RECOVERY.DATE}" in a problem's message) and is read as absent. The service is
the problem's `service` tag, else the host's visible name. A problem and its recovery
are one series: the signal's labels are the trigger, host and service, not the event.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources import jsonbody
from console.sources.alertmanager import MAX_NAME, MAX_VALUE, PayloadError, Text, explain
from console.sources.clients import SourceError
from console.sources.providers.base import Health, Kind, Parsed, Provider
from console.sources.timestamps import to_utc

_MACRO = re.compile(r"^\{[A-Z0-9_.]+(\:[^}]*)?\}$")
MAX_TAGS = 64


def severity_of(level: int) -> Severity:
    """0 not classified, 1 information, 2 warning, 3 average, 4 high, 5 disaster."""
    if level >= 4:
        return Severity.CRITICAL
    return Severity.WARNING if level >= 2 else Severity.INFO


def _absent(value: Any) -> Any:
    return None if isinstance(value, str) and (not value or _MACRO.match(value)) else value


class ZabbixTag(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    tag: Text = Field(min_length=1, max_length=255)
    value: Text = Field("", max_length=MAX_VALUE)


class ZabbixWebhook(BaseModel):
    """The media type's parameters, as its script posts them: every value is text."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    event_id: Text = Field(pattern=r"^[0-9]{1,20}$")
    event_name: Text = Field(min_length=1, max_length=MAX_NAME)
    event_value: Text = Field(pattern=r"^[01]$")
    event_date: Text = Field(pattern=r"^[0-9]{4}\.[0-9]{2}\.[0-9]{2}$")
    event_time: Text = Field(pattern=r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$")
    host_name: Text = Field(min_length=1, max_length=MAX_NAME)
    host_host: Text | None = Field(None, max_length=MAX_NAME)
    event_nseverity: Text | None = Field(None, pattern=r"^[0-5]$")
    event_severity: Text | None = Field(None, max_length=64)
    event_tags: Text | None = Field(None, max_length=64 * 1024)
    trigger_id: Text | None = Field(None, pattern=r"^[0-9]{1,20}$")
    event_recovery_date: Text | None = Field(None, pattern=r"^[0-9]{4}\.[0-9]{2}\.[0-9]{2}$")
    event_recovery_time: Text | None = Field(None, pattern=r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$")
    timezone: Text = Field("UTC", max_length=64)

    @field_validator("*", mode="before")
    @classmethod
    def _unresolved(cls, value: Any) -> Any:
        return _absent(value)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PayloadError(f"timezone: {name[:64]!r} is not a time zone name (such as UTC "
                           "or Europe/Berlin)") from None


def _local_time(date: str, time: str, zone: ZoneInfo, what: str) -> datetime:
    try:
        naive = datetime.strptime(f"{date} {time}", "%Y.%m.%d %H:%M:%S")
        return to_utc(naive.replace(tzinfo=zone))
    except ValueError as exc:
        raise PayloadError(f"{what}: {date} {time} is not a time ({exc})") from None


def tags_of(text: str | None, where: str) -> list[ZabbixTag]:
    """{EVENT.TAGSJSON}: a JSON array of {"tag", "value"} objects, as text."""
    if text is None:
        return []
    try:
        items = jsonbody.parse(text, max_depth=4)
    except PayloadError as exc:
        raise PayloadError(f"{where}: not the JSON array {{EVENT.TAGSJSON}} gives: "
                           f"{exc}") from None
    if not isinstance(items, list):
        raise PayloadError(f"{where}: expected a JSON array of tags")
    if len(items) > MAX_TAGS:
        raise PayloadError(f"{where}: more than {MAX_TAGS} tags")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(ZabbixTag.model_validate(item))
        except ValidationError as exc:
            raise PayloadError(f"{where}: {index}: " + explain(exc, "Zabbix tag")) from None
    return out


def problem_signal(*, name: str, host: str, level: int, firing: bool, at: datetime,
                   tags: list[ZabbixTag], trigger: str | None,
                   notes: dict[str, str]) -> Signal:
    """One Zabbix problem (webhook or API) as a signal: the `service` tag names the
    service, else the host."""
    by_name = {t.tag: t.value for t in tags}
    service = by_name.get("service") or host
    labels = {"alertname": name, "service": service, "host": host}
    if trigger:
        labels["zabbix_trigger"] = trigger
    return Signal("zabbix", SignalKind.ALERT, name, service[:MAX_NAME], severity_of(level),
                  AlertStatus.FIRING if firing else AlertStatus.RESOLVED, at, labels,
                  {**notes, "zabbix_tags": ", ".join(f"{t.tag}:{t.value}" if t.value
                                                     else t.tag for t in tags)[:MAX_VALUE]})


def parse_webhook(body: Any) -> Parsed:
    if not isinstance(body, dict):
        raise PayloadError("expected the media type's parameters as one JSON object")
    try:
        w = ZabbixWebhook.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(explain(exc, "Zabbix webhook message")) from None
    zone = _zone(w.timezone)
    firing = w.event_value == "1"
    if not firing and w.event_recovery_date and w.event_recovery_time:
        at = _local_time(w.event_recovery_date, w.event_recovery_time, zone,
                         "event_recovery_date/event_recovery_time")
    else:
        at = _local_time(w.event_date, w.event_time, zone, "event_date/event_time")
    level = int(w.event_nseverity) if w.event_nseverity is not None else 2
    signal = problem_signal(
        name=w.event_name, host=w.host_name, level=level, firing=firing, at=at,
        tags=tags_of(w.event_tags, "event_tags"), trigger=w.trigger_id,
        notes={"zabbix_event": w.event_id, "severity_name": w.event_severity or ""})
    return [signal], []


class ZabbixProvider(Provider):
    """Pushed by a webhook media type at /providers/zabbix; pulled from the API when an
    address is given (`urls["zabbix"]`, the frontend's base URL)."""

    name: ClassVar[str] = "zabbix"
    kind: ClassVar[Kind] = "both"
    summary: ClassVar[str] = ("Zabbix: a webhook media type's problems and recoveries, and "
                              "the API's problem.get")

    def parse(self, body: Any) -> Parsed:
        return parse_webhook(body)

    def configured(self) -> bool:
        return True  # the webhook needs no address

    async def check(self, client: httpx.AsyncClient) -> Health:
        """`apiinfo.version` needs no token: it says the API is there and which one."""
        url = self.config.urls.get(self.name)
        if url is None:
            return self.health()
        from console.sources.providers.zabbix_api import ZabbixPoller

        try:
            version = await ZabbixPoller(client, url, "").call("apiinfo.version", {},
                                                               token=False)
        except SourceError as exc:
            return Health("degraded", str(exc))
        return Health("ok", f"{url}: Zabbix API {str(version)[:20]}")

"""A generic JSON webhook: any sender, mapped to signals by a declared field mapping.

Mappings live in a YAML file (`--webhook-mappings FILE`); each becomes a receiver at
`POST /webhook/generic/<name>`. A field is a dotted path into the body (`labels.service`,
`alerts.0.title`); `items` names the list of alerts when a body carries several.

    mappings:
      grafana:
        items: alerts
        fields: {name: labels.alertname, service: labels.service, severity: labels.severity,
                 status: status, at: startsAt, summary: annotations.summary}
        firing: [firing, alerting]
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.alertmanager import PayloadError
from console.yamlpos import ScenarioError, load_yaml, validate

_PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
_DATETIME = TypeAdapter(datetime)


class Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=_PATH)
    service: str = Field(pattern=_PATH)
    at: str = Field(pattern=_PATH)
    status: str | None = Field(None, pattern=_PATH)
    severity: str | None = Field(None, pattern=_PATH)
    summary: str | None = Field(None, pattern=_PATH)


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    items: str | None = Field(None, pattern=_PATH)
    fields: Fields
    firing: tuple[str, ...] = ("firing", "alerting", "triggered", "open", "problem")
    max_items: int = Field(1000, ge=1, le=10_000)


class MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mappings: dict[str, Mapping] = Field(min_length=1)


def load_mappings(path: Path) -> dict[str, Mapping]:
    """Read a mapping file; a bad one raises ScenarioError naming file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    data, lines = load_yaml(text, str(path))
    parsed: MappingFile = validate(MappingFile, data, lines, str(path))
    for name in parsed.mappings:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ScenarioError(f"{path}:{lines.get(('mappings', name), 1)}: mappings.{name}: "
                                "names are letters, digits, - and _")
    return dict(parsed.mappings)


def _get(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _text(value: Any, what: str, limit: int = 400) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"{what}: expected text, got {type(value).__name__}")
    text = str(value)
    if not text or len(text) > limit or "\x00" in text:
        raise PayloadError(f"{what}: empty, longer than {limit} characters, or has NUL")
    return text


def apply_mapping(name: str, mapping: Mapping, body: Any) -> list[Signal]:
    items = _get(body, mapping.items) if mapping.items else [body]
    if not isinstance(items, list):
        raise PayloadError(f"{mapping.items}: expected a list of alerts")
    if len(items) > mapping.max_items:
        raise PayloadError(f"{mapping.items}: more than {mapping.max_items} alerts")
    f = mapping.fields
    out = []
    for index, item in enumerate(items):
        where = f"{mapping.items}.{index}" if mapping.items else "body"
        alert = _text(_get(item, f.name), f"{where}.{f.name}")
        service = _text(_get(item, f.service), f"{where}.{f.service}", 200)
        raw_at = _get(item, f.at)
        try:
            at = _DATETIME.validate_python(raw_at)
        except ValidationError:
            raise PayloadError(f"{where}.{f.at}: not a date-time: {str(raw_at)[:40]!r}") \
                from None
        if at.tzinfo is None:
            raise PayloadError(f"{where}.{f.at}: needs a timezone")
        status = str(_get(item, f.status) or "firing").lower() if f.status else "firing"
        sev = str(_get(item, f.severity) or "warning").lower() if f.severity else "warning"
        summary = _get(item, f.summary) if f.summary else None
        labels = {"alertname": alert, "service": service, "mapping": name}
        out.append(Signal(f"webhook:{name}", SignalKind.ALERT, alert, service,
                          Severity(sev) if sev in ("info", "warning", "critical")
                          else Severity.WARNING,
                          AlertStatus.FIRING if status in mapping.firing
                          else AlertStatus.RESOLVED, at, labels,
                          {"summary": _text(summary, f"{where}.{f.summary}", 4000)}
                          if summary is not None else {}))
    return out

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

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.alertmanager import MAX_NAME, PayloadError
from console.sources.timestamps import TIMESTAMP
from console.yamlpos import ScenarioError, load_yaml, validate

_PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# A mapping's signals are stored with the source "webhook:<name>" in a 64-character column.
MAX_MAPPING_NAME = 64 - len("webhook:")


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
        if not re.fullmatch(rf"[A-Za-z0-9_-]{{1,{MAX_MAPPING_NAME}}}", name):
            raise ScenarioError(f"{path}:{lines.get(('mappings', name), 1)}: "
                                f"mappings.{name[:40]}: names are letters, digits, - and _, "
                                f"at most {MAX_MAPPING_NAME} characters")
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


def _text(value: Any, what: str, limit: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"{what}: expected text, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise PayloadError(f"{what}: is empty")
    if len(text) > limit:
        raise PayloadError(f"{what}: {len(text)} characters long; at most {limit} are allowed")
    if "\x00" in text:
        raise PayloadError(f"{what}: contains a NUL character")
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
        alert = _text(_get(item, f.name), f"{where}.{f.name}", MAX_NAME)
        service = _text(_get(item, f.service), f"{where}.{f.service}", MAX_NAME)
        raw_at = _get(item, f.at)
        try:
            at = TIMESTAMP.validate_python(raw_at)
        except ValidationError as exc:
            reason = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            raise PayloadError(f"{where}.{f.at}: not a time ({reason}): "
                               f"{str(raw_at)[:40]!r}") from None
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

"""The policy as rows an editor can show, and back, with errors that name the row.

The settings dialog edits three parts of the policy as tables (autonomy per service and
action class, rate limits, change windows) and the whole of it as YAML text. Turning
rows into a `Policy` is a decision about what is valid, so it lives here, without Qt:
every problem is reported as "<table> row N: <field>: <reason>", and the YAML text
goes through the same loader as `watchfloor policy set` (file:line: field: reason).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from console.policy import Policy, PolicyError, load_policy_text
from console.yamlpos import parse_duration

ALL_SERVICES = "*"
ALL_CLASSES = "*"  # with ALL_SERVICES: the default level
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class LevelRow:
    """Autonomy level of an action class, for one service or every service (`*`)."""

    service: str
    action_class: str
    level: int


@dataclass(frozen=True, slots=True)
class RateRow:
    action_class: str  # or "default"
    max: int
    per: str  # a duration: 3600, "90s", "1h"


@dataclass(frozen=True, slots=True)
class WindowRow:
    action_classes: str  # comma-separated
    start: str  # HH:MM (UTC)
    end: str


def _duration_text(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{secs}s" if secs else "")
    return text or "0s"


def rows_of(policy: Policy) -> tuple[list[LevelRow], list[RateRow], list[WindowRow]]:
    """The three tables of a policy, in a stable order: the default level first (every
    service, every action class: an empty table would hide the level that applies),
    then the global levels, then each service's."""
    levels = [LevelRow(ALL_SERVICES, ALL_CLASSES, policy.default_level)]
    levels += [LevelRow(ALL_SERVICES, cls, lvl) for cls, lvl in sorted(policy.levels.items())]
    levels += [LevelRow(svc, cls, lvl) for svc, per in sorted(policy.service_levels.items())
               for cls, lvl in sorted(per.items())]
    rates = [RateRow(cls, lim.max, _duration_text(lim.per))
             for cls, lim in sorted(policy.rate_limits.items())]
    windows = [WindowRow(", ".join(w.action_classes), f"{w.start:%H:%M}", f"{w.end:%H:%M}")
               for w in policy.change_windows]
    return levels, rates, windows


def _name(value: str, where: str, field: str) -> str:
    text = value.strip()
    if not text:
        raise PolicyError(f"{where}: {field}: must not be empty")
    if any(c.isspace() for c in text):
        raise PolicyError(f"{where}: {field}: {text!r} must not contain spaces")
    return text


def _time(value: str, where: str, field: str) -> time:
    match = _TIME.match(value.strip())
    if not match:
        raise PolicyError(f"{where}: {field}: expected HH:MM (UTC), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def apply_rows(policy: Policy, levels: Sequence[LevelRow], rates: Sequence[RateRow],
               windows: Sequence[WindowRow]) -> Policy:
    """`policy` with its levels, rate limits and change windows replaced by the rows;
    PolicyError naming the table, the row (1-based) and the field otherwise."""
    global_levels: dict[str, int] = {}
    service_levels: dict[str, dict[str, int]] = {}
    default_level = policy.default_level
    for n, row in enumerate(levels, 1):
        where = f"autonomy row {n}"
        service = _name(row.service, where, "service")
        cls = _name(row.action_class, where, "action class")
        if isinstance(row.level, bool) or not isinstance(row.level, int) \
                or not 0 <= row.level <= 5:
            raise PolicyError(f"{where}: level: must be 0-5, got {row.level!r}")
        if service == ALL_SERVICES and cls == ALL_CLASSES:
            default_level = row.level
            continue
        target = global_levels if service == ALL_SERVICES else \
            service_levels.setdefault(service, {})
        if cls in target:
            raise PolicyError(f"{where}: action class: {cls} on {service} is listed twice")
        target[cls] = row.level
    rate_limits: dict[str, dict[str, Any]] = {}
    for n, rate in enumerate(rates, 1):
        where = f"rate limit row {n}"
        cls = _name(rate.action_class, where, "action class")
        if isinstance(rate.max, bool) or not isinstance(rate.max, int) or rate.max < 0:
            raise PolicyError(f"{where}: max: must be a whole number 0 or more, "
                              f"got {rate.max!r}")
        try:
            per = parse_duration(rate.per)
        except ValueError as exc:
            raise PolicyError(f"{where}: per: {exc}") from None
        if per <= 0:
            raise PolicyError(f"{where}: per: must be longer than 0s")
        if cls in rate_limits:
            raise PolicyError(f"{where}: action class: {cls} is listed twice")
        rate_limits[cls] = {"max": rate.max, "per": per}
    change_windows = []
    for n, window in enumerate(windows, 1):
        where = f"change window row {n}"
        classes = tuple(c.strip() for c in window.action_classes.split(",") if c.strip())
        if not classes:
            raise PolicyError(f"{where}: action classes: name at least one "
                              "(comma-separated)")
        change_windows.append({"action_classes": classes,
                               "start": _time(window.start, where, "start"),
                               "end": _time(window.end, where, "end")})
    data = policy.model_dump()
    data.update(default_level=default_level, levels=global_levels,
                service_levels=service_levels,
                rate_limits=rate_limits, change_windows=change_windows)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise PolicyError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def policy_yaml(policy: Policy) -> str:
    """The policy as YAML text that `policy_from_yaml` (and `policy set`) read back;
    durations as a person writes them ("1h", "15m"), not as seconds ("3600.0")."""
    return yaml.safe_dump(_readable(policy), sort_keys=False,
                          default_flow_style=False, allow_unicode=True)


def _is_duration(field: Any) -> bool:
    return any(getattr(getattr(m, "func", None), "__name__", "") == parse_duration.__name__
               for m in field.metadata)


def _readable(value: Any) -> Any:
    """`model_dump(mode="json")` with each `Duration` field as duration text."""
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        dumped = value.model_dump(mode="json")
        return {name: (_duration_text(float(getattr(value, name)))
                       if name in fields and _is_duration(fields[name])
                       and isinstance(getattr(value, name), int | float)
                       else _readable_part(getattr(value, name), dumped[name]))
                for name in dumped}
    return value


def _readable_part(value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel):
        return _readable(value)
    if isinstance(value, list | tuple) and isinstance(dumped, list):
        return [_readable_part(v, d) for v, d in zip(value, dumped, strict=True)]
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {k: _readable_part(value[k], dumped[k]) if k in value else dumped[k]
                for k in dumped}
    return dumped


def policy_from_yaml(text: str, source: str = "policy") -> Policy:
    """Parse edited YAML; PolicyError "source:line: field: reason" on any problem."""
    return load_policy_text(text, source)

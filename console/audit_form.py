"""How an audit record is written down: the JSON form its fields are stored in, and the
canonical serialization its hash is taken over (sorted keys, no whitespace, UTC times
with microseconds), so a record hashes alike when written, read back or exported."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

HASHED_FIELDS = (
    "seq", "at", "actor", "action", "target", "reason", "inputs", "outputs", "decision",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def stored_json(value: Any) -> str:
    """How the database writes every JSON column: canonical (sorted keys, no spaces),
    so an audit record's stored `inputs` and `outputs` are the bytes its hash covers.
    Values that cannot be sorted (keys of mixed types) are written as before."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def plain(value: Any) -> Any:
    """The JSON-safe form a value will have when read back from storage."""
    copied = _plain_copy(value, 0)
    if copied is not _NOT_PLAIN:
        return copied
    return json.loads(json.dumps(value, default=_json_default, allow_nan=False))


_NOT_PLAIN = object()
_PLAIN_DEPTH = 32  # deeper: left to the JSON round trip


def _plain_copy(value: Any, depth: int) -> Any:
    """A copy of a value that is JSON already (dicts with text keys, lists, text, whole
    numbers, finite floats, booleans, None: what a JSON round trip gives back equal and
    of the same types), or _NOT_PLAIN. Most audit inputs are such, and the round trip
    cost each record twice as much as hashing it."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:  # one too long to write as text is refused by the round trip
        return value if value.bit_length() <= 64 else _NOT_PLAIN
    if kind is float:
        return value if math.isfinite(value) else _NOT_PLAIN
    if depth >= _PLAIN_DEPTH:
        return _NOT_PLAIN
    if kind is dict:
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            copied[key] = item = _plain_copy(item, depth + 1)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
        return copied
    if kind is list:
        items = [_plain_copy(item, depth + 1) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items
    return _NOT_PLAIN


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def format_time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"audit times must be timezone-aware, got {at!r}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def record_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["at"] = format_time(body["at"]) if isinstance(body["at"], datetime) else body["at"]
    return body


def record_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(record_body(fields)).encode()).hexdigest()

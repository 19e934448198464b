"""JSON in: one reader for the receiver's bodies and the imported files.

What it refuses is what could not be stored as it came or would break the code after it:
NaN and Infinity (not JSON, and PostgreSQL's JSON refuses them), numbers too large for a
float or too long to convert (Python stops at 4,300 digits), nesting deeper than
`MAX_DEPTH` (no real sender nests that deep, and deeper documents exhaust the parser's
stack), NUL characters (PostgreSQL text cannot hold them) and unpaired surrogates (not
encodable as UTF-8). Every refusal is a `PayloadError` naming the place: the dotted path
of the value, or the line and column where nesting went too deep.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from console.sources.alertmanager import PayloadError

MAX_DEPTH = 32
_SHOWN_PATH = 80  # characters of a dotted path quoted in a message


def decode(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document. A syntax error is left as `json.JSONDecodeError` (a caller
    may try another reading, such as JSON lines); anything else becomes PayloadError."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise PayloadError(f"{_too_deep_at(text, max_depth)}: nested deeper than "
                           f"{max_depth} levels") from None
    except (json.JSONDecodeError, PayloadError):
        raise
    except ValueError:  # Python reads integers of at most 4,300 digits
        raise PayloadError(f"a number has more than {sys.get_int_max_str_digits()} digits") \
            from None


def parse(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse and check one JSON document; PayloadError for anything unusable."""
    try:
        value = decode(text, max_depth=max_depth)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"not valid JSON at line {exc.lineno} column {exc.colno}") \
            from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed document without recursion; PayloadError at the first value that is
    nested too deep or holds a NUL or an unpaired surrogate, naming its path."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, path, "")
            continue
        if isinstance(item, dict):
            children: list[tuple[Any, tuple[str, ...]]] = []
            for key, child in item.items():
                _check_text(key, path, "a key ")
                children.append((child, (*path, str(key))))
        elif isinstance(item, list):
            children = [(child, (*path, str(n))) for n, child in enumerate(item)]
        else:
            continue
        if len(path) >= max_depth:
            raise PayloadError(f"{_where(path)}: nested deeper than {max_depth} levels")
        stack.extend(reversed(children))


def _check_text(text: str, path: tuple[str, ...], what: str) -> None:
    if "\x00" in text:
        raise PayloadError(f"{_where(path)}: {what}contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError(f"{_where(path)}: {what}contains an unpaired surrogate "
                               "(invalid unicode)") from None


def _where(path: tuple[str, ...]) -> str:
    text = ".".join(path) or "top level"
    return text if len(text) <= _SHOWN_PATH else text[:_SHOWN_PATH - 3] + "..."


def _no_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not allowed in JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise PayloadError(f"the number {text[:40]} is too large")
    return number


def _too_deep_at(text: str, max_depth: int) -> str:
    """Where brackets first open deeper than `max_depth` (outside strings): only asked
    after the parser gave up, so the scan's cost is paid for bad input alone."""
    depth, line, column, in_string, escaped = 0, 1, 0, False, False
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        elif in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return f"line {line} column {column}"
        elif char in "]}":
            depth -= 1
    return "the document"

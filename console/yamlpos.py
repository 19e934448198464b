"""YAML loading that remembers where each value came from.

pydantic reports a bad field by its location (`timeline.3.kind`); an operator needs
the file and the line. We compose the YAML node tree once, map every location to its
line and build the data from that same tree with the safe constructor (libyaml's
parser where PyYAML has it, which is many times faster than the pure-Python one and
keeps the same marks), and translate validation errors into `file:line: field: message`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"^\s*(?:{_NUMBER}h)?\s*(?:{_NUMBER}m)?\s*(?:{_NUMBER}s)?\s*$")
# The safe loader, on libyaml when this PyYAML was built with it.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "90s", "5m", "1h30m"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 5m or 1h30m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value)):
        hours, minutes, secs = (float(g) if g else 0.0 for g in m.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError(f"expected a duration such as 90s, 5m or 1h30m, got {value!r}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class ScenarioError(ValueError):
    """A scenario or estate file that cannot be used; the message names file, line, field."""


def _walk(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _walk(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def load_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parse `text`; return the data and a map from location to 1-based line."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{source}{line}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the longest known prefix of `loc` (pydantic adds union tags we skip)."""
    plain = tuple(part for part in loc if isinstance(part, int) or part in _known(lines, loc))
    for end in range(len(plain), -1, -1):
        if plain[:end] in lines:
            return lines[plain[:end]]
    return None


def _known(lines: dict[Loc, int], loc: Loc) -> set[str | int]:
    names: set[str | int] = {part for key in lines for part in key if isinstance(part, str)}
    return names & set(loc)


def validate(model: type[BaseModel], data: Any, lines: dict[Loc, int], source: str,
             context: dict[str, Any] | None = None) -> Any:
    """Validate `data` against `model`; on failure raise ScenarioError naming line and field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: expected a mapping at the top level")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        messages = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = line_of(loc, lines)
            where = ".".join(str(p) for p in loc if p in _known(lines, loc) or isinstance(p, int))
            msg = err["msg"].removeprefix("Value error, ")
            messages.append(f"{source}:{line or 1}: {where or '(top)'}: {msg}")
        raise ScenarioError("\n".join(messages)) from None


E = TypeVar("E", bound=ValueError)


def read_config_text(path: Path, error: type[E] = ScenarioError) -> str:  # type: ignore[assignment]
    """A config file's text, or `error` saying which file could not be read and why."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def load_model_text(model: type[M], text: str, source: str,
                    error: type[E] = ScenarioError) -> M:  # type: ignore[assignment]
    """Parse YAML and validate it as `model`; any problem is `error` naming file:line: field."""
    try:
        data, lines = load_yaml(text, source)
        result: M = validate(model, {} if data is None else data, lines, source)
    except ScenarioError as exc:
        if error is ScenarioError:
            raise
        raise error(str(exc)) from None
    return result

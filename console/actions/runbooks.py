"""The runbook format: what a remediation is, before anything can run it.

A runbook declares what it applies to, its typed parameters, its preconditions, its
steps (executor + arguments), a preview of what will change, a validation with a
deadline, its rollback, its risk tier, its blast radius and its owner. Every
placeholder in it must be a declared parameter, every estate step must name a real
action with arguments that action takes, and every error names file, line and field.
The format is documented in the README ("Runbooks").

Rendering is where a checked value meets a command line or a URL, so each kind of
template has its own escaping: a command argument is one whole placeholder (one value,
one argument), a URL placeholder is percent-encoded (a value can never add a path
segment, a query or a fragment), and an HTTP body is JSON built from the rendered
values (json encoding is the escaping; JSON is never assembled as text).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from console.yamlpos import Duration, ScenarioError, load_model_text, read_config_text

_ID = r"^[a-z][a-z0-9-]{1,62}$"
PARAM_TYPES = ("service", "instance", "int", "str", "bool", "version", "flag")
RISKS = ("low", "medium", "high")
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.:@/+=,-]*$")  # what a str/flag/version may hold
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")  # an RFC 9110 token
# The executor sets these itself; a runbook overriding them could retarget or split a request.
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class RunbookError(ScenarioError):
    """A runbook that cannot be used; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    type: Literal["service", "instance", "int", "str", "bool", "version", "flag"]
    description: str = ""
    default: int | bool | str | None = None
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None


def _argv_problem(argv: tuple[str, ...]) -> str | None:
    """Why an argv template is unsafe, or None: the program is fixed and a placeholder is
    a whole argument, so a value can never become a second argument or a shell fragment."""
    if not argv:
        return "a command needs argv (a list, never a shell string)"
    if _placeholders(argv[0]):
        return "argv[0], the program, cannot be a placeholder"
    for arg in argv[1:]:
        names = _placeholders(arg)
        if names and arg != "{" + min(names) + "}":
            return f"argv item {arg!r}: a placeholder must be a whole argument, never part of one"
    return None


def _url_problem(url: str) -> str | None:
    """Why a URL template is unsafe, or None. Scheme, host and port are fixed text (what
    an allow-list of hosts can rely on); placeholders go in the path or the query."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        return "an http step needs an http(s) url"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if not authority or "{" in authority or "}" in authority or "@" in authority:
        return f"url {url!r}: the host and port are fixed text (no placeholder, no user@)"
    if any(ch.isspace() for ch in url):
        return f"url {url!r}: no whitespace in a url"
    _placeholders(url)  # a conversion other than a whole !not is an error here too
    return None


def _headers_problem(headers: dict[str, str]) -> str | None:
    """Headers are fixed text: a value from an alert must never become a header line."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in _RESERVED_HEADERS:
            return f"header name {name!r} is not allowed"
        if any(ch in value for ch in "\r\n\0"):
            return f"header {name}: a value cannot hold CR, LF or NUL"
        if _placeholders(value):
            return f"header {name}: header values cannot hold placeholders"
    return None


def _body_strings(body: Any) -> Iterator[str]:
    """Every string value of a JSON body template (keys are fixed text)."""
    if isinstance(body, str):
        yield body
    elif isinstance(body, dict):
        for value in body.values():
            yield from _body_strings(value)
    elif isinstance(body, list):
        for value in body:
            yield from _body_strings(value)


class Step(_Strict):
    executor: Literal["estate", "command", "http"]
    action: str | None = Field(None, description="estate: the action to run")
    args: dict[str, str] = Field(default_factory=dict, description="estate: its arguments")
    argv: tuple[str, ...] = Field((), description="command: program and arguments")
    timeout: Duration = Field(60.0, gt=0, le=86400)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = ""
    body: dict[str, Any] | list[Any] | None = Field(
        None, description="http: a JSON template; placeholders only in string values")
    headers: dict[str, str] = Field(default_factory=dict, description="http: fixed headers")

    @model_validator(mode="after")
    def _fits_executor(self) -> Step:
        if self.executor == "estate":
            from console.estate.actions import ACTIONS

            if self.action not in ACTIONS:
                raise ValueError(f"estate action {self.action!r} is unknown; known: "
                                 f"{', '.join(ACTIONS)}")
            model = ACTIONS[self.action][0]
            extra = set(self.args) - set(model.model_fields) - {"service"}
            if extra:
                raise ValueError(f"{self.action} takes no argument(s) {sorted(extra)}")
            if "service" not in self.args:
                raise ValueError("an estate step needs args.service")
        elif self.executor == "command":
            problem = _argv_problem(self.argv)
            if problem:
                raise ValueError(problem)
        else:
            problem = _url_problem(self.url) or _headers_problem(self.headers)
            if problem:
                raise ValueError(problem)
            for text in _body_strings(self.body):
                _placeholders(text)
        return self


class Check(_Strict):
    """An estate check: `metric` of `service` compared with `threshold`."""

    service: str
    metric: str
    op: Literal["<", ">", "<=", ">="]
    threshold: float


class CommandProbe(_Strict):
    """A local program that exits 0 when the remediation worked (same argv rules as a step)."""

    argv: tuple[str, ...]
    timeout: Duration = Field(30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _safe_argv(self) -> CommandProbe:
        problem = _argv_problem(self.argv)
        if problem:
            raise ValueError(problem)
        return self


class HttpProbe(_Strict):
    """A request whose status says whether the remediation worked. Read-only methods
    only: a validation observes, it never changes the target."""

    method: Literal["GET", "HEAD"] = "GET"
    url: str
    expect_status: int = Field(200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _safe_request(self) -> HttpProbe:
        problem = _url_problem(self.url) or _headers_problem(self.headers)
        if problem:
            raise ValueError(problem)
        return self


class Validation(_Strict):
    check: Check | None = None
    promql: str | None = Field(None, description="must return a non-empty result to pass")
    command: CommandProbe | None = Field(None, description="passes when it exits 0")
    http: HttpProbe | None = Field(None, description="passes on the expected status")
    deadline: Duration = Field(600.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _one_kind(self) -> Validation:
        kinds = [k for k in (self.check, self.promql, self.command, self.http) if k is not None]
        if len(kinds) != 1:
            raise ValueError("a validation has exactly one of check, promql, command or http")
        return self


class SideEffect(_Strict):
    """What running the runbook itself does to a metric for a while (a restart drops
    instances, a scale-out warms new ones): the team reads it so that it does not take
    its own action's wake for a new fault. `scope: callers` is every service that calls
    the target, directly or not (their errors while it restarts)."""

    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    change: Literal["rises", "drops", "moves"]
    window: Duration = Field(gt=0, le=86400, description="from the start of the action")
    scope: Literal["target", "callers"] = "target"
    service: str = Field("{service}", description="the target: a service parameter")
    description: str = Field("", max_length=300)


class AppliesTo(_Strict):
    faults: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    services: tuple[str, ...] = ("*",)


class Runbook(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=3, max_length=200)
    description: str = ""
    action_class: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")
    applies_to: AppliesTo = AppliesTo()
    parameters: dict[str, Param] = Field(default_factory=dict)
    preconditions: tuple[Check, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1)
    preview: str = Field(min_length=3)
    validation: Validation
    rollback: tuple[Step, ...] | Literal["none"]
    risk: Literal["low", "medium", "high"]
    blast_radius: int = Field(ge=1, le=1000, description="targets touched at most")
    owner: str = Field(min_length=1)
    version: int = Field(1, ge=1)
    side_effects: tuple[SideEffect, ...] = Field((), description="what the action itself "
                                                  "does to metrics, and for how long")

    @field_validator("side_effects")
    @classmethod
    def _effects_name_a_service(cls, value: tuple[SideEffect, ...],
                                info: ValidationInfo) -> tuple[SideEffect, ...]:
        params = info.data.get("parameters") or {}
        for i, effect in enumerate(value):
            named = _placeholders(effect.service)
            name = min(named) if len(named) == 1 else ""
            if effect.service != "{" + name + "}" or \
                    getattr(params.get(name), "type", None) != "service":
                raise ValueError(f"item {i}: service {effect.service!r} must be one whole "
                                 "placeholder of a declared service parameter")
        return value

    @field_validator("parameters")
    @classmethod
    def _names(cls, value: dict[str, Param]) -> dict[str, Param]:
        for name in value:
            if not re.match(r"^[a-z][a-z0-9_]{0,30}$", name):
                raise ValueError(f"parameter name {name!r}: lower-case letters, digits, _")
        return value

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> Runbook:
        used: set[str] = set(_placeholders(self.preview))
        for step in (*self.steps, *(() if self.rollback == "none" else self.rollback)):
            for text in (*step.args.values(), *step.argv, step.url, *_body_strings(step.body)):
                used |= _placeholders(text)
        validation = self.validation
        for check in (*self.preconditions, *((validation.check,) if validation.check else ())):
            used |= _placeholders(check.service)
        if validation.promql:
            used |= _placeholders(validation.promql)
        for text in (*(validation.command.argv if validation.command else ()),
                     *((validation.http.url,) if validation.http else ())):
            used |= _placeholders(text)
        unknown = used - set(self.parameters)
        if unknown:
            raise ValueError(f"placeholder(s) {sorted(unknown)} are not declared parameters")
        return self

    @property
    def reversible(self) -> bool:
        return self.rollback != "none"


def _placeholders(text: str) -> set[str]:
    try:
        fields = [(name, conv) for _, name, _, conv in string.Formatter().parse(text) if name]
    except ValueError:  # an unbalanced brace is literal text, not a placeholder
        return set()
    for name, conv in fields:
        if conv not in (None, "not") or (conv == "not" and not _WHOLE.match(text)):
            raise ValueError(f"{text!r}: the only conversion is a whole '{{{name}!not}}'")
    return {name for name, _ in fields}


def load_runbook_text(text: str, source: str) -> Runbook:
    return load_model_text(Runbook, text, source, RunbookError)


def load_runbook(path: Path) -> Runbook:
    return load_runbook_text(read_config_text(path, RunbookError), str(path))


def load_library(extra: Path | None = None) -> dict[str, Runbook]:
    """The shipped runbooks, plus a folder of your own (same id: yours wins)."""
    found: dict[str, Runbook] = {}
    folder = resources.files("resources").joinpath("runbooks")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            book = load_runbook_text(entry.read_text(encoding="utf-8"),
                                     f"runbooks/{entry.name}")
            found[book.id] = book
    if extra is not None:
        for path in sorted(extra.glob("*.yaml")):
            book = load_runbook(path)
            found[book.id] = book
    return found


def check_arguments(runbook: Runbook, given: dict[str, Any],
                    services: set[str] | None = None) -> dict[str, Any]:
    """Parameters as the runbook declares them, or ValueError saying which is wrong.

    This is where alert or LLM text meets a runbook: nothing that does not fit the
    declared type (a service that exists, an int in range, a str of safe characters)
    gets through to an executor.
    """
    unknown = set(given) - set(runbook.parameters)
    if unknown:
        raise ValueError(f"{runbook.id}: unknown parameter(s) {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name, spec in runbook.parameters.items():
        value = given.get(name, spec.default)
        if value is None:
            raise ValueError(f"{runbook.id}: parameter {name} is required")
        out[name] = _coerce(runbook.id, name, spec, value, services)
    return out


def _coerce(book: str, name: str, spec: Param, value: Any, services: set[str] | None) -> Any:
    where = f"{book}: parameter {name}"
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected true or false")
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer")
        if (spec.min is not None and value < spec.min) or \
                (spec.max is not None and value > spec.max):
            raise ValueError(f"{where}: {value} is outside {spec.min}..{spec.max}")
        return value
    if not isinstance(value, str) or not value or len(value) > 200 or \
            not _SAFE_TEXT.match(value):
        raise ValueError(f"{where}: {str(value)[:60]!r} is not a plain name "
                         "(letters, digits and _.:@/+=,- only)")
    if value.startswith("-"):  # one whole argument still reads as an option to a program
        raise ValueError(f"{where}: {value[:60]!r} may not start with '-'")
    if spec.choices and value not in spec.choices:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(spec.choices)}")
    if spec.type == "service" and services is not None and value not in services:
        raise ValueError(f"{where}: no service {value!r}")
    return value


_WHOLE = re.compile(r"^\{([a-z][a-z0-9_]*)(!not)?\}$")


def render(template: str, params: dict[str, Any]) -> Any:
    """A step argument with its placeholders filled.

    `"{count}"` alone keeps the parameter's type (an int stays an int); `"{enabled!not}"`
    is the negation of a bool (a flag's rollback); anything else is text.
    """
    whole = _WHOLE.match(template)
    if whole:
        value = params[whole.group(1)]
        if whole.group(2):
            if not isinstance(value, bool):
                raise ValueError(f"{{{whole.group(1)}!not}} needs a bool parameter")
            return not value
        return value
    try:
        list(string.Formatter().parse(template))
    except ValueError:  # an unbalanced brace is literal text (as `_placeholders` reads it)
        return template
    return template.format(**{k: v for k, v in params.items()})


def render_url(template: str, params: dict[str, Any]) -> str:
    """A URL with every placeholder percent-encoded (`quote(value, safe="")`), so a value
    is always part of one path segment or one query value; a value of only dots is
    encoded too, or a client would resolve it as `.`/`..` and climb the path."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return template
    out: list[str] = []
    for literal, name, spec, _ in parts:
        out.append(literal)
        if name is not None:
            encoded = quote(format(params[name], spec or ""), safe="")
            out.append(encoded.replace(".", "%2E") if set(encoded) <= {"."} else encoded)
    return "".join(out)


def render_body(template: Any, params: dict[str, Any]) -> Any:
    """A JSON body template with its string values rendered (`"{count}"` stays an int);
    keys and non-string values are fixed."""
    if isinstance(template, str):
        return render(template, params)
    if isinstance(template, dict):
        return {key: render_body(value, params) for key, value in template.items()}
    if isinstance(template, list):
        return [render_body(value, params) for value in template]
    return template


def _render_argv(argv: tuple[str, ...], params: dict[str, Any]) -> list[str]:
    return [argv[0], *(str(render(a, params)) for a in argv[1:])]


def render_step(step: Step, params: dict[str, Any]) -> dict[str, Any]:
    """The concrete arguments of one step for the given (checked) parameters."""
    if step.executor == "estate":
        return {"action": step.action,
                "args": {k: render(v, params) for k, v in step.args.items()}}
    if step.executor == "command":
        return {"argv": _render_argv(step.argv, params), "timeout": step.timeout}
    return {"method": step.method, "url": render_url(step.url, params),
            "body": render_body(step.body, params), "headers": dict(step.headers),
            "timeout": step.timeout}


def render_probe(validation: Validation, params: dict[str, Any]) -> dict[str, Any]:
    """The runbook's validation as a probe dict for an executor's `validate`."""
    if validation.check is not None:
        check = validation.check
        return {"kind": "check", "service": render(check.service, params),
                "metric": check.metric, "op": check.op, "threshold": check.threshold}
    if validation.command is not None:
        return {"kind": "command", "argv": _render_argv(validation.command.argv, params),
                "timeout": validation.command.timeout}
    if validation.http is not None:
        http = validation.http
        return {"kind": "http", "method": http.method, "url": render_url(http.url, params),
                "expect_status": http.expect_status, "headers": dict(http.headers),
                "timeout": http.timeout}
    return {"kind": "promql", "query": render(validation.promql or "", params)}

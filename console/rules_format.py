"""The level-1 rule format: a trigger, conditions, a fixed workflow and its guardrails.

A rule is written and reviewed by a person, so everything it can do must be visible in
the file and checked when the file loads, not when the alert fires at 03:00: each step
is one of a short list, every template field must be a field the trigger really has
(or one an earlier step produces), every runbook must exist in the library with the
parameters it declares, and every error names file, line and field like the other
YAML formats (console/yamlpos.py). Templates are a restricted substitution: `{alert.name}`
is replaced by text, nothing is evaluated, and a value is never expanded twice, so text
from an alert label cannot inject a field, a format spec or an attribute lookup.
The engine that runs rules is console/rules.py; the format is documented in the README
("Level-1 rules").
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from console.domain import Severity
from console.rules_checks import BurnRate, Expiry, Forecast
from console.yamlpos import Duration, Loc, ScenarioError, line_of, load_yaml, validate

_ID = r"^[a-z][a-z0-9-]{1,62}$"
_FIELD = re.compile(r"^[a-z]+(?:\.[A-Za-z0-9_]+)+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MAX_RUNS = re.compile(r"^\s*(\d+)\s+per\s+(\S+)\s*$")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class RuleError(ScenarioError):
    """A rule file that cannot be used; the message names file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- templates ------------------------------------------------------------------------


def template_fields(text: str) -> list[str]:
    """The fields a template uses; ValueError when it is not a plain substitution."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc} (write {{{{ or }}}} for a literal brace)") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if conversion or spec:
            raise ValueError(f"{{{name}...}}: a template field takes no conversion or format")
        if not _FIELD.match(name):
            raise ValueError(f"{{{name}}} is not a field such as {{alert.name}}")
        names.append(name)
    return names


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Fill the fields with text (a missing label is empty); the result is never re-read
    as a template, so a value holding braces stays literal."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, ""))
    return "".join(out)


def _template(text: str) -> str:
    template_fields(text)
    return text


Template = Annotated[str, Field(max_length=4000), AfterValidator(_template)]


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else (value,)


def _clock_time(value: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("quote clock times (\"03:00\"): unquoted, YAML reads 03:00 as a number")
    if not isinstance(value, str) or not (m := _CLOCK.match(value)):
        raise ValueError(f"expected a UTC time \"HH:MM\", got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


Globs = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]

# The fields each trigger gives a template; labels and annotations by name.
COMMON_FIELDS = ("rule.id", "rule.description", "trigger.kind", "trigger.at",
                 "trigger.subject")
TRIGGER_FIELDS: dict[str, tuple[str, ...]] = {
    "alert": ("alert.name", "alert.service", "alert.severity", "alert.status",
              "alert.fingerprint", "alert.source", "alert.at", "alert.summary"),
    "incident": ("incident.id", "incident.title", "incident.severity", "incident.state",
                 "incident.transition", "incident.service", "incident.services",
                 "incident.opened_at"),
    "schedule": ("schedule.due",),
}
TRIGGER_PREFIXES = {"alert": ("alert.labels.", "alert.annotations."), "incident": (),
                    "schedule": ()}


# --- triggers and conditions ------------------------------------------------------------


class AlertTrigger(_Strict):
    type: Literal["alert"]
    state: Annotated[tuple[Literal["firing", "resolved"], ...],
                     BeforeValidator(_one_or_many)] = ("firing",)
    name: Globs = ("*",)
    service: Globs = ("*",)
    severity: Globs = ("*",)
    min_severity: Severity = Severity.INFO
    labels: dict[str, Globs] = Field(default_factory=dict)


class IncidentTrigger(_Strict):
    type: Literal["incident"]
    state: Annotated[tuple[Literal["opened", "resolved", "reopened"], ...],
                     BeforeValidator(_one_or_many)] = ("opened",)
    min_severity: Severity = Severity.INFO
    services: Globs = ("*",)


class ScheduleTrigger(_Strict):
    """Due at each `at` (UTC) every day, and every `every` after it until midnight;
    `every` alone counts from 00:00 UTC."""

    type: Literal["schedule"]
    every: Duration | None = Field(None, ge=60, le=86400)
    at: Annotated[tuple[ClockTime, ...], BeforeValidator(_one_or_many)] = ()

    @model_validator(mode="after")
    def _when(self) -> ScheduleTrigger:
        if self.every is None and not self.at:
            raise ValueError("a schedule needs every (such as 5m), at (\"HH:MM\") or both")
        return self


Trigger = Annotated[AlertTrigger | IncidentTrigger | ScheduleTrigger,
                    Field(discriminator="type")]


class Condition(_Strict):
    """`field` matches (or does not match) globs, or the trigger time is `between` two
    UTC clock times (which may wrap midnight)."""

    field: str | None = None
    matches: Globs | None = None
    not_matches: Globs | None = None
    between: tuple[ClockTime, ClockTime] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if self.between is not None:
            if self.field or self.matches is not None or self.not_matches is not None:
                raise ValueError("a between condition takes nothing else")
        elif not self.field or (self.matches is None) == (self.not_matches is None):
            raise ValueError("a condition is {field, matches} or {field, not_matches} or "
                             "{between: [\"HH:MM\", \"HH:MM\"]}")
        return self


# --- workflow steps -------------------------------------------------------------------


class TicketOpen(_Strict):
    do: Literal["ticket.open"]
    title: Template = Field(min_length=1)
    body: Template = ""
    kind: Literal["incident"] = "incident"
    templates: ClassVar[tuple[str, ...]] = ("title", "body")
    produces: ClassVar[tuple[str, ...]] = ("ticket.id", "ticket.url", "ticket.system")


class TicketRoute(_Strict):
    do: Literal["ticket.route"]
    group: Template = Field(min_length=1)
    templates: ClassVar[tuple[str, ...]] = ("group",)
    produces: ClassVar[tuple[str, ...]] = TicketOpen.produces


class TicketUpdate(_Strict):
    do: Literal["ticket.update"]
    note: Template = Field(min_length=1)
    templates: ClassVar[tuple[str, ...]] = ("note",)
    produces: ClassVar[tuple[str, ...]] = TicketOpen.produces


class TicketClose(_Strict):
    do: Literal["ticket.close"]
    resolution: Template = Field(min_length=1)
    success: bool = True
    templates: ClassVar[tuple[str, ...]] = ("resolution",)
    produces: ClassVar[tuple[str, ...]] = TicketOpen.produces


class Notify(_Strict):
    do: Literal["notify"]
    channel: str = Field("noc", pattern=r"^[a-z][a-z0-9_.-]{0,40}$")
    message: Template = Field(min_length=1)
    severity: Severity = Severity.INFO
    templates: ClassVar[tuple[str, ...]] = ("message",)
    produces: ClassVar[tuple[str, ...]] = ()


class RunbookStep(_Strict):
    do: Literal["runbook"]
    runbook: str = Field(pattern=_ID)
    params: dict[str, int | bool | str] = Field(default_factory=dict)
    explanation: Template = ""
    templates: ClassVar[tuple[str, ...]] = ("explanation",)
    produces: ClassVar[tuple[str, ...]] = ("runbook.recommendation", "runbook.state")


class HealthCheck(_Strict):
    do: Literal["health_check"]
    service: Template = Field(min_length=1)
    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,60}$")
    op: Literal["<", ">", "<=", ">="]
    threshold: float
    required: bool = Field(False, description="a check that does not pass stops the run")
    templates: ClassVar[tuple[str, ...]] = ("service",)
    produces: ClassVar[tuple[str, ...]] = ("check.passed", "check.detail", "check.value")


Step = Annotated[TicketOpen | TicketRoute | TicketUpdate | TicketClose | Notify
                 | RunbookStep | HealthCheck | Expiry | Forecast | BurnRate,
                 Field(discriminator="do")]


# --- guardrails and the rule ------------------------------------------------------------


class MaxRuns(_Strict):
    count: int = Field(ge=1, le=10000)
    per: Duration = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            m = _MAX_RUNS.match(value)
            if not m:
                raise ValueError(f"expected \"COUNT per DURATION\" such as \"5 per 1h\", "
                                 f"got {value!r}")
            return {"count": int(m.group(1)), "per": m.group(2)}
        return value


class Guardrails(_Strict):
    max_runs: MaxRuns = Field(default_factory=lambda: MaxRuns(count=20, per=3600.0),
                              description="runs of this rule per window")
    cooldown: Duration = Field(0.0, le=7 * 86400, description="between runs for one key")
    cooldown_key: Template | None = Field(None, description="default: the trigger's "
                                          "subject (alert fingerprint, incident id)")
    services: Globs = Field(("*",), description="services the rule may act on")
    dry_run: bool = False


class Rule(_Strict):
    id: str = Field(pattern=_ID)
    description: str = Field("", max_length=2000)
    enabled: bool = True
    trigger: Trigger
    conditions: tuple[Condition, ...] = ()
    workflow: tuple[Step, ...] = Field(max_length=20)  # not empty: see _check_rule
    guardrails: Guardrails = Field(default_factory=Guardrails)
    _source: str = PrivateAttr("")

    @property
    def source(self) -> str:
        """The file (or `rules/NAME.yaml` for a shipped one) the rule was loaded from."""
        return self._source


class RuleFile(_Strict):
    rules: tuple[Rule, ...]  # not empty: checked after the rules themselves validate


# --- checks that need the whole rule (and the runbook library) ----------------------------


def _known(rule: Rule, produced: Iterable[str]) -> tuple[set[str], tuple[str, ...]]:
    kind = rule.trigger.type
    return ({*COMMON_FIELDS, *TRIGGER_FIELDS[kind], *produced}, TRIGGER_PREFIXES[kind])


def _field_problem(name: str, known: set[str], prefixes: tuple[str, ...]) -> str | None:
    if name in known or any(name.startswith(p) and len(name) > len(p) for p in prefixes):
        return None
    return f"unknown field {{{name}}}; known here: {', '.join(sorted(known))}" + \
        "".join(f", {p}NAME" for p in prefixes)


def _check_rule(rule: Rule, at: Loc, library: Mapping[str, Any] | None
                ) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = [] if rule.workflow else [
        ((*at, "workflow"), "a workflow has at least one step")]
    known, prefixes = _known(rule, ())

    def fields(loc: Loc, text: str, names: set[str]) -> None:
        try:
            used = template_fields(text)
        except ValueError as exc:
            problems.append((loc, str(exc)))
            return
        for name in used:
            if (why := _field_problem(name, names, prefixes)) is not None:
                problems.append((loc, why))

    for index, condition in enumerate(rule.conditions):
        if condition.field and (why := _field_problem(condition.field, known, prefixes)):
            problems.append(((*at, "conditions", index, "field"), why))
    if rule.guardrails.cooldown_key is not None:
        fields((*at, "guardrails", "cooldown_key"), rule.guardrails.cooldown_key, known)
    produced: set[str] = set()
    for index, step in enumerate(rule.workflow):
        here = (*at, "workflow", index)
        visible = known | produced
        for attr in step.templates:
            fields((*here, attr), getattr(step, attr), visible)
        if isinstance(step, RunbookStep):
            for name, value in step.params.items():
                if isinstance(value, str):
                    fields((*here, "params", name), value, visible)
            problems.extend(_check_runbook(step, here, library))
        produced |= set(step.produces)
    return problems


def _check_runbook(step: RunbookStep, here: Loc, library: Mapping[str, Any] | None
                   ) -> list[tuple[Loc, str]]:
    if library is None:
        return []
    book = library.get(step.runbook)
    if book is None:
        return [((*here, "runbook"), f"no runbook {step.runbook!r} in the library; known: "
                 f"{', '.join(sorted(library))}")]
    problems: list[tuple[Loc, str]] = []
    for name in step.params:
        if name not in book.parameters:
            problems.append(((*here, "params", name), f"{book.id} has no parameter {name!r}; "
                             f"it takes {', '.join(book.parameters) or 'none'}"))
    missing = [n for n, p in book.parameters.items() if p.default is None and
               n not in step.params]
    if missing:
        problems.append(((*here, "params"), f"{book.id} needs parameter(s) "
                         f"{', '.join(missing)}"))
    return problems


def _raise(problems: list[tuple[Loc, str]], lines: dict[Loc, int], source: str) -> None:
    if problems:
        raise RuleError("\n".join(
            f"{source}:{line_of(loc, lines) or 1}: {'.'.join(map(str, loc))}: {msg}"
            for loc, msg in problems))


# --- loading ---------------------------------------------------------------------------


def load_rules_text(text: str, source: str,
                    library: Mapping[str, Any] | None = None) -> list[Rule]:
    """The rules of one file; `library` (runbook id -> Runbook) checks runbook steps."""
    try:
        data, lines = load_yaml(text, source)
        if isinstance(data, dict) and "rules" not in data:
            raise RuleError(f"{source}:1: rules: a rule file is a mapping with a list "
                            "under rules: (rules: [{id: ..., trigger: ..., workflow: ...}])")
        parsed: RuleFile = validate(RuleFile, data, lines, source)
    except ScenarioError as exc:
        raise RuleError(str(exc)) from None
    problems: list[tuple[Loc, str]] = [] if parsed.rules else [
        (("rules",), "a rule file holds at least one rule")]
    seen: set[str] = set()
    for index, rule in enumerate(parsed.rules):
        if rule.id in seen:
            problems.append((("rules", index, "id"), f"rule id {rule.id!r} is used twice"))
        seen.add(rule.id)
        problems.extend(_check_rule(rule, ("rules", index), library))
    _raise(problems, lines, source)
    for rule in parsed.rules:
        rule._source = source
    return list(parsed.rules)


def load_rules_file(path: Path, library: Mapping[str, Any] | None = None) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read: {exc}") from None
    return load_rules_text(text, str(path), library)


def user_rules_dir() -> Path:
    """Where an operator keeps their own rules (a rule there replaces a shipped one)."""
    from console.storage.db import config_dir

    return config_dir() / "rules"


def rule_packs() -> dict[str, Any]:
    """The shipped packs (resources/rule_packs/NAME.yaml) by name: rules switched on as
    a whole from the settings (`rules: {packs: [NAME]}`) instead of copied one by one."""
    folder = resources.files("resources").joinpath("rule_packs")
    return {entry.name.rsplit(".", 1)[0]: entry for entry in folder.iterdir()
            if entry.name.endswith(".yaml")}


def load_rules(folder: Path | None = None,
               library: Mapping[str, Any] | None = None,
               packs: Iterable[str] = ()) -> list[Rule]:
    """The shipped rules, the enabled packs, then every *.yaml in `folder`: the same id
    there wins (that is how a shipped example is switched on); the same id in two of
    your files is an error."""
    found: dict[str, Rule] = {}
    shipped = resources.files("resources").joinpath("rules")
    known = rule_packs()
    entries = sorted((e for e in shipped.iterdir() if e.name.endswith((".yaml", ".yml"))),
                     key=lambda p: p.name)
    for name in packs:
        if name not in known:
            raise RuleError(f"rules.packs: no rule pack {name!r}; shipped: "
                            f"{', '.join(sorted(known)) or 'none'}")
        entries.append(known[name])
    for entry in entries:
        where = "rule_packs" if entry in known.values() else "rules"
        for rule in load_rules_text(entry.read_text(encoding="utf-8"),
                                    f"{where}/{entry.name}", library):
            found[rule.id] = rule
    mine: dict[str, str] = {}
    if folder is not None and folder.is_dir():
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for rule in load_rules_file(path, library):
                if rule.id in mine:
                    raise RuleError(f"{path}:1: rules: rule id {rule.id!r} is also defined "
                                    f"in {mine[rule.id]}")
                mine[rule.id] = str(path)
                found[rule.id] = rule
    return list(found.values())

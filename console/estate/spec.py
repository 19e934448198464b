"""The file formats of the embedded estate: estate specs and scenarios (YAML).

Both are validated with pydantic; every error names the file, the line and the field
(see yamlpos.py). The formats are documented in the README ("Scenario format").
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from console.yamlpos import Duration, ScenarioError, load_yaml, validate

SERVICE_KINDS = ("web", "api", "worker", "database", "cache", "queue")
METRICS = ("request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms", "cpu", "memory",
           "disk", "queue_depth", "saturation", "instances_ready", "pool_usage",
           "cache_hit_ratio", "cert_expiry_hours")
_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the estate ------------------------------------------------------------------------

class Baseline(Strict):
    request_rate: float = Field(100.0, ge=0, description="requests per second, whole service")
    error_rate: float = Field(0.002, ge=0, le=1)
    latency_p50_ms: float = Field(40.0, gt=0)
    latency_p99_ms: float = Field(200.0, gt=0)
    cpu: float = Field(35.0, ge=0, le=100, description="percent at baseline load")
    memory: float = Field(50.0, ge=0, le=100, description="percent per instance")
    disk: float = Field(40.0, ge=0, le=100, description="percent per instance")


class ServiceSpec(Strict):
    kind: Literal["web", "api", "worker", "database", "cache", "queue"]
    instances: int = Field(3, ge=1, le=2000)
    version: str = "v1"
    depends_on: tuple[str, ...] = ()
    consumes: str | None = Field(None, description="queue this worker drains")
    capacity_rps: float = Field(100.0, gt=0, description="requests per second per instance")
    baseline: Baseline = Baseline.model_validate({})
    feature_flags: dict[str, bool] = {}
    cert_days: float = Field(90.0, ge=0, description="days until the TLS certificate expires")
    team: str = "platform"


class BaselineOverride(Strict):
    """A scenario's changes to one service of the estate it runs on."""

    instances: int | None = Field(None, ge=1, le=2000)
    version: str | None = None
    capacity_rps: float | None = Field(None, gt=0)
    request_rate: float | None = Field(None, ge=0)
    cpu: float | None = Field(None, ge=0, le=100)
    memory: float | None = Field(None, ge=0, le=100)
    disk: float | None = Field(None, ge=0, le=100)
    cert_days: float | None = Field(None, ge=0)
    feature_flags: dict[str, bool] | None = None


class AlertRule(Strict):
    alert: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    scope: Literal["service", "instance"]
    metric: str
    op: Literal[">", "<"]
    threshold: float
    relative_to_baseline: bool = False
    for_: Duration = Field(0.0, alias="for")
    severity: Literal["info", "warning", "critical"]
    kinds: tuple[str, ...] = SERVICE_KINDS
    summary: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in (*METRICS, "up"):
            raise ValueError(f"unknown metric {value!r}; known: {', '.join((*METRICS, 'up'))}")
        return value


class EstateSpec(Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    zones: tuple[str, ...] = ("a", "b", "c")
    services: dict[str, ServiceSpec] = Field(min_length=1)
    alert_rules: tuple[AlertRule, ...] = ()

    @model_validator(mode="after")
    def _graph_is_sound(self) -> EstateSpec:
        for name, svc in self.services.items():
            if not re.match(_NAME, name):
                raise ValueError(f"service name {name!r} must be lower-case letters, digits, -")
            for dep in svc.depends_on:
                if dep not in self.services:
                    raise ValueError(f"{name} depends on unknown service {dep!r}")
            if svc.consumes and self.services.get(svc.consumes, None) is None:
                raise ValueError(f"{name} consumes unknown queue {svc.consumes!r}")
        import networkx as nx

        graph = nx.DiGraph([(n, d) for n, s in self.services.items() for d in s.depends_on])
        if not nx.is_directed_acyclic_graph(graph):
            cycle = " -> ".join(a for a, _ in nx.find_cycle(graph))
            raise ValueError(f"the dependency graph has a cycle: {cycle}")
        return self


# --- scenarios --------------------------------------------------------------------------

def _check_service(value: str | None, info: ValidationInfo) -> str | None:
    services = (info.context or {}).get("services")
    if value is not None and services is not None and value not in services:
        raise ValueError(f"unknown service {value!r} (the estate has: {', '.join(services)})")
    return value


Catalog = dict[str, type[BaseModel]]


class _CatalogEntry(Strict):
    """A timeline entry naming something from a catalog (a fault kind, an action), whose
    params are checked against that entry's own model when the file is loaded."""

    what: ClassVar[str]
    at: Duration
    kind: str
    service: str
    params: dict[str, Any] = {}

    _service = field_validator("service")(_check_service)

    @classmethod
    def catalog(cls) -> Catalog:
        raise TypeError(f"{cls.__name__} must name its catalog")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        known = cls.catalog()
        if value not in known:
            raise ValueError(f"unknown {cls.what} {value!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _params_fit_kind(self) -> _CatalogEntry:
        try:
            self.catalog()[self.kind].model_validate(self.params)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"params.{where}: {first['msg']} ({self.what} {self.kind})") \
                from None
        return self


class FaultEntry(_CatalogEntry):
    what = "fault kind"
    type: Literal["fault"]

    @classmethod
    def catalog(cls) -> Catalog:
        from console.estate.faults import FAULT_KINDS

        return {name: fault.params_model for name, fault in FAULT_KINDS.items()}


class ChangeEntry(Strict):
    """A benign change (noise that an investigator must not blame)."""

    type: Literal["change"]
    at: Duration
    kind: Literal["deploy", "config", "feature_flag", "scale"]
    service: str
    description: str = ""
    version: str | None = None
    flag: str | None = None

    _service = field_validator("service")(_check_service)


class LoadEntry(Strict):
    """Traffic: multiply a service's request rate (and, by default, its dependencies')."""

    type: Literal["load"]
    at: Duration
    service: str
    factor: float = Field(gt=0, le=50)
    ramp: Duration = 60.0
    until: Duration | None = None
    propagate: bool = True

    _service = field_validator("service")(_check_service)


class ActionEntry(_CatalogEntry):
    """A scripted remediation, as if an operator ran it (for what-if scenarios and tests)."""

    what = "action"
    type: Literal["action"]

    @classmethod
    def catalog(cls) -> Catalog:
        from console.estate.actions import ACTIONS

        return {name: model for name, (model, _) in ACTIONS.items()}


TimelineEntry = Annotated[FaultEntry | ChangeEntry | LoadEntry | ActionEntry,
                          Field(discriminator="type")]


class Scenario(Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    estate: str = Field("default", pattern=_NAME)
    duration: Duration = Field(gt=0, le=7 * 86400)
    seed: int = 1
    tick: Duration = Field(5.0, ge=1, le=60)
    baselines: dict[str, BaselineOverride] = {}
    timeline: tuple[TimelineEntry, ...] = ()

    @field_validator("baselines")
    @classmethod
    def _known_services(cls, value: dict[str, BaselineOverride],
                        info: ValidationInfo) -> dict[str, BaselineOverride]:
        for name in value:
            _check_service(name, info)
        return value

    @field_validator("timeline")
    @classmethod
    def _timeline_inside_run(cls, value: tuple[Any, ...],
                             info: ValidationInfo) -> tuple[Any, ...]:
        duration = info.data.get("duration")
        for index, entry in enumerate(value):
            if duration is not None and entry.at > duration:
                raise ValueError(f"entry {index} at {entry.at:.0f}s is after the end of the "
                                 f"scenario ({duration:.0f}s)")
        return value


# --- loading ----------------------------------------------------------------------------

def _resource_text(folder: str, name: str) -> str | None:
    path = resources.files("resources").joinpath(folder, f"{name}.yaml")
    return path.read_text(encoding="utf-8") if path.is_file() else None


def load_estate_spec(name: str = "default") -> EstateSpec:
    text = _resource_text("estates", name)
    if text is None:
        raise ScenarioError(f"unknown estate {name!r}")
    data, lines = load_yaml(text, f"estates/{name}.yaml")
    spec: EstateSpec = validate(EstateSpec, data, lines, f"estates/{name}.yaml")
    return spec


def builtin_scenarios() -> list[str]:
    folder = resources.files("resources").joinpath("scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    text_name = str(name_or_path)
    if text_name.endswith((".yaml", ".yml")) or Path(text_name).is_file():
        path = Path(text_name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: cannot read: {exc}") from None
        source = str(path)
    else:
        found = _resource_text("scenarios", text_name)
        if found is None:
            raise ScenarioError(f"unknown scenario {text_name!r}; built-in: "
                                f"{', '.join(builtin_scenarios())}")
        text, source = found, f"scenarios/{text_name}.yaml"
    data, lines = load_yaml(text, source)
    estate_name = data.get("estate", "default") if isinstance(data, dict) else "default"
    try:
        estate = load_estate_spec(estate_name if isinstance(estate_name, str) else "default")
    except ScenarioError as exc:
        line = lines.get(("estate",), 1)
        raise ScenarioError(f"{source}:{line}: estate: {exc}") from None
    scenario: Scenario = validate(Scenario, data, lines, source,
                                  context={"services": list(estate.services)})
    return scenario

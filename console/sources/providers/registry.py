"""Finding the providers: Python entry points in the group `watchfloor.providers`.

Why entry points: a team that watches with a system the console does not ship can
`pip install` a package that declares one (`[project.entry-points."watchfloor.providers"]
mysystem = "their_module:TheirProvider"`) and the receiver, `watchfloor providers` and the
Settings dialog have it without a change here. The shipped providers are declared the
same way in the console's own pyproject.toml; when the console runs from a source tree
that was never installed (no entry points), they are still there, said so in `origin`.

A provider that fails to load, or breaks the rules, is listed with the reason and left
out of the receiver; the others carry on. The rules keep one package from taking over
another's deliveries: a provider from another package receives only under
/providers/<its name>, and stores under its name (or "<its name>:<something>"); names
are unique, and the shipped ones come first.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from console.sources.providers.base import Endpoint, Health, Parser, Provider, ProviderConfig

log = logging.getLogger(__name__)

GROUP = "watchfloor.providers"
OWN_DISTRIBUTION = "watchfloor"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# name -> object reference, as pyproject.toml declares them
SHIPPED = {
    "alertmanager": "console.sources.providers.builtin:AlertmanagerProvider",
    "prometheus": "console.sources.providers.builtin:PrometheusProvider",
    "pagerduty": "console.sources.providers.builtin:PagerDutyProvider",
    "changes": "console.sources.providers.builtin:ChangesProvider",
    "webhook": "console.sources.providers.builtin:GenericWebhookProvider",
    "logs": "console.sources.providers.builtin:LogsProvider",
    "grafana": "console.sources.providers.grafana:GrafanaProvider",
    "zabbix": "console.sources.providers.zabbix:ZabbixProvider",
    "datadog": "console.sources.providers.datadog:DatadogProvider",
    "otlp": "console.sources.providers.otlp:OtlpLogsProvider",
}


@dataclass(frozen=True, slots=True)
class Discovered:
    """One provider as found: `origin` is the package and version it came from;
    `provider` is None when it could not be used, and `error` says why."""

    name: str
    value: str
    origin: str
    provider: Provider | None
    error: str = ""

    @property
    def shipped(self) -> bool:
        return self.origin.split(" ", 1)[0] == OWN_DISTRIBUTION or \
            self.origin == "this source tree"

    def describe(self, health: Health | None = None) -> dict[str, Any]:
        """What `watchfloor providers --json` and the Settings dialog show; `health` is
        the provider's answer to `check` when it was asked."""
        p = self.provider
        out: dict[str, Any] = {"name": self.name, "kind": p.kind if p else None,
                               "summary": p.summary if p else "", "origin": self.origin,
                               "object": self.value}
        if p is None:
            out.update(health={"state": "unusable", "detail": self.error})
            return out
        health = health or p.health()
        out.update(paths=[e.path for e in p.endpoints()], configured=p.configured(),
                   health={"state": health.state, "detail": health.detail})
        return out


def discover(config: ProviderConfig | None = None) -> list[Discovered]:
    """Every provider, shipped ones first, each once; read afresh on every call (a
    package installed since is seen)."""
    config = config or ProviderConfig()
    points = list(entry_points(group=GROUP))
    origins = _origins(points)

    def origin(point: EntryPoint) -> tuple[str, str]:
        return origins.get(f"{point.name}={point.value}", ("", "an unknown package"))

    points.sort(key=lambda ep: (origin(ep)[0] != OWN_DISTRIBUTION, ep.name))
    found: dict[str, Discovered] = {}
    for point in points:
        where = origin(point)[1]
        if point.name in found:
            first = found[point.name]
            log.warning("provider %s of %s ignored: %s has that name", point.name, where,
                        first.origin)
            found.setdefault(f"{point.name} ({where})", Discovered(
                point.name, point.value, where, None,
                f"the name {point.name!r} is taken by the provider of {first.origin}"))
            continue
        found[point.name] = _load(point, config, origin=where, shipped=(
            origin(point)[0] == OWN_DISTRIBUTION))
    for name, value in SHIPPED.items():  # a source tree run without installing
        if name not in found:
            found[name] = _load(EntryPoint(name, value, GROUP), config,
                                origin="this source tree", shipped=True, installed=False)
    shipped = [d for d in found.values() if d.shipped]
    others = sorted((d for d in found.values() if not d.shipped), key=lambda d: d.name)
    return sorted(shipped, key=lambda d: list(SHIPPED).index(d.name)
                  if d.name in SHIPPED else len(SHIPPED)) + others


def usable(config: ProviderConfig | None = None) -> list[Provider]:
    return [d.provider for d in discover(config) if d.provider is not None]


def endpoints(config: ProviderConfig | None = None) -> dict[str, Endpoint]:
    """The receiver's routes: path -> endpoint, over every usable provider."""
    out: dict[str, Endpoint] = {}
    for provider in usable(config):
        for endpoint in provider.endpoints():
            out.setdefault(endpoint.path, endpoint)
    return out


def parsers(config: ProviderConfig | None = None) -> dict[str, Parser]:
    """Stored source name -> parser, over every usable provider's endpoints."""
    out: dict[str, Parser] = {}
    for endpoint in endpoints(config).values():
        out.setdefault(endpoint.source, endpoint.parse)
    return out


def _origins(points: list[EntryPoint]) -> dict[str, tuple[str, str]]:
    """Entry point value -> (package name, "name version"): each package's metadata read
    once (reading it is most of what finding the providers costs)."""
    by_dist: dict[str, tuple[str, str]] = {}
    out = {}
    for point in points:
        dist = point.dist
        if dist is None:
            continue  # read as an unknown package
        key = str(getattr(dist, "_path", id(dist)))
        if key not in by_dist:
            name = dist.metadata["Name"] or ""
            by_dist[key] = (name, f"{name} {dist.version}")
        out[f"{point.name}={point.value}"] = by_dist[key]
    return out


def _load(point: EntryPoint, config: ProviderConfig, *, origin: str, shipped: bool,
          installed: bool = True) -> Discovered:
    """`shipped`: the console's own (it keeps the paths it always had); `installed`:
    found as an entry point (else imported from the source tree by its reference)."""
    try:
        if not _NAME.match(point.name):
            raise ValueError(f"the name {point.name[:40]!r} is not lower-case letters, digits, "
                             "- and _ (at most 40)")
        if installed:
            target = point.load()
        else:
            module, _, attr = point.value.partition(":")
            target = getattr(import_module(module), attr)
        if not (isinstance(target, type) and issubclass(target, Provider)):
            raise TypeError(f"{point.value} is not a subclass of "
                            "console.sources.providers.base.Provider")
        if getattr(target, "name", None) != point.name:
            raise ValueError(f"{point.value} calls itself {getattr(target, 'name', None)!r}, "
                             f"not {point.name!r} as its entry point does")
        if getattr(target, "kind", None) not in ("push", "pull", "both"):
            raise ValueError(f"{point.value}: kind must be push, pull or both")
        provider = target(config)
        if not shipped:
            _check_paths(point.name, provider.endpoints())
    except Exception as exc:  # a broken plugin is shown, never fatal
        log.warning("provider %s of %s cannot be used: %s", point.name, origin, exc)
        return Discovered(point.name, point.value, origin, None, f"{type(exc).__name__}: {exc}")
    return Discovered(point.name, point.value, origin, provider)


def _check_paths(name: str, found: list[Endpoint]) -> None:
    for endpoint in found:
        if not (endpoint.path == f"/providers/{name}"
                or endpoint.path.startswith(f"/providers/{name}/")):
            raise ValueError(f"receives at {endpoint.path[:80]!r}; a provider of another "
                             f"package receives only under /providers/{name}")
        if not (endpoint.source == name or endpoint.source.startswith(f"{name}:")):
            raise ValueError(f"stores under {endpoint.source[:60]!r}; it may store only "
                             f"under {name!r} or '{name}:...'")

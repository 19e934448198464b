"""Remediation actions on the estate, with their real consequences.

Each action first does what it does to the estate (instances restart, new instances
start on the service's current version, a cache empties...) and then every active
fault is told, so that a wrong action leaves the fault in place, a restart only
delays a leak, and scaling out a bad deploy spreads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.estate.model import RESTART_S, Estate


class ActionRefused(ValueError):
    """The action cannot run on that target (wrong kind, bad parameter, nothing to do)."""


@dataclass(frozen=True)
class ActionResult:
    action: str
    service: str
    message: str
    outcomes: tuple[dict[str, Any], ...] = field(default_factory=tuple)


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RestartParams(_P):
    instance: str | None = None


class ScaleParams(_P):
    count: int = Field(1, ge=1, le=50)


class FlagParams(_P):
    flag: str = Field(min_length=1, max_length=80)
    enabled: bool


class DiskParams(_P):
    instance: str | None = None


def _restart(estate: Estate, service: str, p: RestartParams) -> str:
    svc = estate.services[service]
    targets = [i for i in svc.instances if p.instance in (None, i.id)]
    if not targets:
        raise ActionRefused(f"{service} has no instance {p.instance!r}")
    for n, inst in enumerate(targets):  # rolling: one instance every 10 s
        inst.down_until = estate.elapsed + n * 10.0 + RESTART_S
    return f"rolling restart of {len(targets)} instance(s) of {service}"


def _scale_out(estate: Estate, service: str, p: ScaleParams) -> str:
    svc = estate.services[service]
    for _ in range(p.count):
        inst = svc.add_instance(estate.rng, svc.version)
        inst.down_until = estate.elapsed + 60.0  # warm-up
    estate.record_change(service, "scale", f"scale {service} out by {p.count} to "
                         f"{len(svc.instances)} instances ({svc.version})", author="watchfloor")
    return f"{service} scaled out to {len(svc.instances)} instances on {svc.version}"


def _scale_in(estate: Estate, service: str, p: ScaleParams) -> str:
    svc = estate.services[service]
    if len(svc.instances) - p.count < 1:
        raise ActionRefused(f"{service} has {len(svc.instances)} instance(s); "
                            f"cannot remove {p.count}")
    del svc.instances[-p.count:]
    estate.record_change(service, "scale", f"scale {service} in by {p.count} to "
                         f"{len(svc.instances)} instances", author="watchfloor")
    return f"{service} scaled in to {len(svc.instances)} instances"


def _rollback(estate: Estate, service: str, p: _P) -> str:
    svc = estate.services[service]
    if svc.config_pending:
        key, svc.config_pending = svc.config_pending, None
        estate.record_change(service, "config", f"revert {key} on {service}",
                             author="watchfloor")
        return f"reverted configuration {key} on {service}"
    if svc.previous_version is None:
        raise ActionRefused(f"{service} has no earlier version to roll back to")
    to, came_from = svc.previous_version, svc.version
    estate.deploy(service, to, author="watchfloor", kind="rollback")
    svc.previous_version = None
    return f"rolling back {service} from {came_from} to {to}"


def _clear_queue(estate: Estate, service: str, p: _P) -> str:
    svc = estate.services[service]
    if svc.kind != "queue":
        raise ActionRefused(f"{service} is a {svc.kind}, not a queue")
    dropped, svc.queue_depth = int(svc.queue_depth), 0.0
    estate.log(service, "WARN", f"purged {dropped} messages from {service} by operator request")
    return f"purged {dropped} messages from {service}"


def _flush_cache(estate: Estate, service: str, p: _P) -> str:
    svc = estate.services[service]
    if svc.kind != "cache":
        raise ActionRefused(f"{service} is a {svc.kind}, not a cache")
    svc.hit_ratio = 0.0
    return f"flushed {service}"


def _failover(estate: Estate, service: str, p: _P) -> str:
    svc = estate.services[service]
    if svc.kind in ("database", "cache"):
        svc.failed_over = not svc.failed_over
        estate.record_change(service, "config", f"fail over {service} to its replica",
                             author="watchfloor")
        return f"{service} failed over to its replica"
    drained = [i for i in svc.instances if i.unreachable]
    if not drained:
        raise ActionRefused(f"{service} has no unreachable zone to fail over from")
    for inst in drained:
        inst.drained = True
    zones = sorted({i.zone for i in drained})
    estate.record_change(service, "config", f"drain zone(s) {', '.join(zones)} of {service}",
                         author="watchfloor")
    return f"{service}: drained {len(drained)} instance(s) in zone(s) {', '.join(zones)}"


def _toggle_flag(estate: Estate, service: str, p: FlagParams) -> str:
    svc = estate.services[service]
    svc.flags[p.flag] = p.enabled
    state = "on" if p.enabled else "off"
    estate.record_change(service, "feature_flag", f"turn feature flag {p.flag} {state} "
                         f"on {service}", author="watchfloor")
    return f"feature flag {p.flag} is {state} on {service}"


def _free_disk(estate: Estate, service: str, p: DiskParams) -> str:
    svc = estate.services[service]
    targets = [i for i in svc.instances if p.instance in (None, i.id)]
    if not targets:
        raise ActionRefused(f"{service} has no instance {p.instance!r}")
    freed = 0.0
    for inst in targets:
        freed += max(0.0, inst.disk - svc.base.disk)
        inst.disk = min(inst.disk, svc.base.disk)
    return f"freed {freed:.0f} disk percentage points on {len(targets)} instance(s) of {service}"


def _rotate_cert(estate: Estate, service: str, p: _P) -> str:
    estate.services[service].cert_expires_at = estate.elapsed + 90 * 86400.0
    estate.record_change(service, "config", f"rotate TLS certificate of {service}",
                         author="watchfloor")
    return f"new certificate for {service}, valid 90 days"


ACTIONS: dict[str, tuple[type[_P], Callable[[Estate, str, Any], str]]] = {
    "restart": (RestartParams, _restart),
    "scale_out": (ScaleParams, _scale_out),
    "scale_in": (ScaleParams, _scale_in),
    "rollback": (_P, _rollback),
    "clear_queue": (_P, _clear_queue),
    "flush_cache": (_P, _flush_cache),
    "failover": (_P, _failover),
    "toggle_feature_flag": (FlagParams, _toggle_flag),
    "free_disk": (DiskParams, _free_disk),
    "rotate_certificate": (_P, _rotate_cert),
}


def apply_action(estate: Estate, action: str, service: str,
                 params: dict[str, Any] | None = None) -> ActionResult:
    """Run one remediation; raise ActionRefused (nothing changed) when it cannot run."""
    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if service not in estate.services:
        raise ActionRefused(f"unknown service {service!r}")
    model, run = ACTIONS[action]
    try:
        parsed = model.model_validate(params or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise ActionRefused(f"{action} on {service}: {where}: {first['msg']}") from None
    message = run(estate, service, parsed)
    raw = parsed.model_dump()
    outcomes = []
    for fault in estate.faults:
        if fault.active:
            effect = fault.react(estate, action, service, raw)
            if effect != "no effect" or fault.service == service:
                record = {"at_s": estate.elapsed, "action": action, "service": service,
                          "effect": effect}
                fault.outcomes.append(record)
                outcomes.append({"fault": fault.kind, "fault_service": fault.service,
                                 "effect": effect})
    return ActionResult(action, service, message, tuple(outcomes))

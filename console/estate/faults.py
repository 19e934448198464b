"""The fault catalog: what can go wrong in the estate, and which actions really fix it.

A fault changes the estate's physics (effects, defects, instance state); it never
emits alerts itself — alerts come from the rules watching metrics, so symptoms show
wherever the graph carries them. `on_action` says what a remediation did to this
fault: fixed, mitigated (symptoms eased, cause remains), delayed, worsened or nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from console.estate.model import Defect, Estate
from console.yamlpos import Duration


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault:
    kind: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[Params]] = Params

    def __init__(self, service: str, at: float, params: dict[str, Any]) -> None:
        self.service = service
        self.at = at
        self.params: Any = self.params_model.model_validate(params)
        self.started = False
        self.ended_at: float | None = None
        self.fixed_by: str | None = None
        self.outcomes: list[dict[str, Any]] = []

    @property
    def active(self) -> bool:
        return self.started and self.ended_at is None

    def prepare(self, estate: Estate) -> None:
        """Called when the scenario starts (before the fault's time)."""

    def start(self, estate: Estate) -> None:
        self.started = True

    def tick(self, estate: Estate, dt: float) -> None:
        """Apply this tick's effects."""

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        """What `action` on `service` does to this fault; the base says nothing."""
        return "no effect"

    def end(self, estate: Estate, by: str | None) -> None:
        self.ended_at = estate.elapsed
        self.fixed_by = by

    def ground_truth(self) -> dict[str, Any]:
        return {"kind": self.kind, "service": self.service, "at_s": self.at,
                "params": self.params.model_dump(), "fixed_at_s": self.ended_at,
                "fixed_by": self.fixed_by, "actions": list(self.outcomes)}


# --- change-borne faults ----------------------------------------------------------------

class BadDeployParams(Params):
    version: str | None = None
    error: float = Field(0.3, gt=0, le=1)
    latency_ms: float = Field(120.0, ge=0)


class _DefectiveVersion(Fault):
    """A fault that ships as a new version: it rolls out, and only rolling back ends it."""

    reactions: ClassVar[dict[str, str]]

    def defect(self) -> Defect:
        raise TypeError(f"{type(self).__name__} must say what its version does wrong")

    def start(self, estate: Estate) -> None:
        super().start(estate)
        svc = estate.services[self.service]
        self.version = self.params.version or _bump(svc.version)
        estate.defects[(self.service, self.version)] = self.defect()
        estate.deploy(self.service, self.version)

    def tick(self, estate: Estate, dt: float) -> None:
        svc = estate.services[self.service]
        if svc.version != self.version and all(i.version != self.version
                                               for i in svc.instances):
            self.end(estate, "rollback")

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service != self.service:
            return "no effect"
        return self.reactions.get(action, "no effect")


class BadDeploy(_DefectiveVersion):
    kind = "bad_deploy"
    description = "a new version with a defect rolls out; errors grow as instances switch"
    params_model = BadDeployParams
    reactions: ClassVar[dict[str, str]] = {
        "rollback": "fixed (rolling back)",
        "restart": "no effect: instances restart on the same bad version",
        "scale_out": "worsened: new instances run the bad version"}

    def defect(self) -> Defect:
        return Defect(self.params.error, self.params.latency_ms, fault=self)


class ConfigErrorParams(Params):
    key: str = "upstream.timeout_ms"
    value: str = "50"
    error: float = Field(0.4, gt=0, le=1)


class ConfigError(Fault):
    kind = "config_error"
    description = "a configuration push breaks a share of requests until it is reverted"
    params_model = ConfigErrorParams

    def start(self, estate: Estate) -> None:
        super().start(estate)
        estate.services[self.service].config_pending = self.params.key
        estate.record_change(self.service, "config",
                             f"set {self.params.key}={self.params.value} on {self.service}",
                             author="config-bot")

    def tick(self, estate: Estate, dt: float) -> None:
        eff = estate.services[self.service].effects
        eff.error += self.params.error
        eff.causes.append((self.params.error, "config", {"key": self.params.key}))

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service == self.service and action == "rollback":
            self.end(estate, "rollback")
            return "fixed (configuration reverted)"
        if service == self.service and action == "restart":
            return "no effect: the bad configuration is reloaded on start"
        return "no effect"


class MemoryLeakParams(Params):
    rate_pct_per_min: float = Field(1.5, gt=0, le=50)
    version: str | None = None


class MemoryLeak(_DefectiveVersion):
    kind = "memory_leak"
    description = "a new version leaks memory; instances climb until the OOM killer restarts them"
    params_model = MemoryLeakParams
    reactions: ClassVar[dict[str, str]] = {
        "rollback": "fixed (rolling back)",
        "restart": "delayed: memory is back to normal and starts leaking again",
        "scale_out": "mitigated: more instances, each still leaking"}

    def defect(self) -> Defect:
        return Defect(leak_pct_per_min=self.params.rate_pct_per_min, fault=self)


class CpuSaturationParams(Params):
    cost: float = Field(3.0, gt=1, le=20, description="CPU cost per request, times normal")
    flag: str = "dynamic-pricing"


class CpuSaturation(Fault):
    kind = "cpu_saturation"
    description = "a feature flag turns on an expensive code path; CPU and latency climb"
    params_model = CpuSaturationParams

    def start(self, estate: Estate) -> None:
        super().start(estate)
        estate.services[self.service].flags[self.params.flag] = True
        estate.record_change(self.service, "feature_flag",
                             f"enable feature flag {self.params.flag} on {self.service}",
                             author="product")

    def tick(self, estate: Estate, dt: float) -> None:
        svc = estate.services[self.service]
        if not svc.flags.get(self.params.flag, False):
            self.end(estate, "toggle_feature_flag")
            return
        svc.effects.cost *= self.params.cost
        svc.effects.causes.append((0.2, "cpu", {}))

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service != self.service:
            return "no effect"
        if action == "toggle_feature_flag" and params.get("flag") == self.params.flag:
            return "fixed" if not params.get("enabled", False) else "no effect"
        return {"scale_out": "mitigated: more capacity for the same expensive path",
                "restart": "no effect: the flag stays on"}.get(action, "no effect")


# --- infrastructure faults --------------------------------------------------------------

class SlowDependencyParams(Params):
    latency_ms: float = Field(1800.0, gt=0, le=60000)


class SlowDependency(Fault):
    kind = "slow_dependency"
    description = "a database or cache answers slowly (noisy neighbour, lost index)"
    params_model = SlowDependencyParams

    def tick(self, estate: Estate, dt: float) -> None:
        eff = estate.services[self.service].effects
        eff.latency_ms += self.params.latency_ms
        eff.causes.append((0.1, "slow", {"ms": self.params.latency_ms}))

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service != self.service:
            return "no effect"
        if action == "failover":
            self.end(estate, "failover")
            return "fixed (traffic moved to the healthy replica)"
        return "no effect"


class PoolExhaustionParams(Params):
    rate_per_min: float = Field(0.12, gt=0, le=1, description="pool share leaked per minute")
    recurs: bool = False


class PoolExhaustion(Fault):
    kind = "connection_pool_exhaustion"
    description = "a service leaks database connections until its pool is exhausted"
    params_model = PoolExhaustionParams

    leaked = 0.0

    def tick(self, estate: Estate, dt: float) -> None:
        self.leaked = min(1.0, self.leaked + self.params.rate_per_min * dt / 60.0)
        estate.services[self.service].effects.pool_usage += self.leaked

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service != self.service:
            return "no effect"
        if action == "restart":
            self.leaked = 0.0
            if self.params.recurs:
                return "delayed: connections released, the leak goes on"
            self.end(estate, "restart")
            return "fixed (connections released)"
        if action == "scale_out":
            return "mitigated: new instances bring fresh pools"
        return "no effect"


class DiskFillingParams(Params):
    rate_pct_per_hour: float = Field(20.0, gt=0, le=1000)
    instance: int = Field(0, ge=0)


class DiskFilling(Fault):
    kind = "disk_filling"
    description = "logs or an index grow on one instance until the disk is full"
    params_model = DiskFillingParams

    def tick(self, estate: Estate, dt: float) -> None:
        svc = estate.services[self.service]
        inst = svc.instances[min(self.params.instance, len(svc.instances) - 1)]
        inst.disk = min(100.0, inst.disk + self.params.rate_pct_per_hour * dt / 3600.0)
        if inst.disk >= 99.9:
            share = 1.0 / len(svc.instances)
            svc.effects.error += share
            svc.effects.causes.append((share, "disk_full", {"instance": inst.id}))

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service == self.service and action == "free_disk":
            self.end(estate, "free_disk")
            return "fixed (old files removed, rotation repaired)"
        return "no effect"


class QueueBacklogParams(Params):
    consume_factor: float = Field(0.15, gt=0, lt=1)


class QueueBacklog(Fault):
    kind = "queue_backlog"
    description = "consumers get stuck (a poison message); the queue they drain backs up"
    params_model = QueueBacklogParams

    def tick(self, estate: Estate, dt: float) -> None:
        eff = estate.services[self.service].effects
        eff.consume *= self.params.consume_factor
        eff.causes.append((0.05, "stuck", {}))

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        svc = estate.services[self.service]
        if service == self.service and action == "restart":
            self.end(estate, "restart")
            return "fixed (consumers restarted past the poison message)"
        if service == self.service and action == "scale_out":
            return "mitigated: more consumers, each still slow"
        if action == "clear_queue" and service == svc.spec.consumes:
            return "no effect on the cause; messages were dropped"
        return "no effect"


class CertificateExpiry(Fault):
    kind = "certificate_expiry"
    description = "a TLS certificate expires; every caller's handshake fails"

    def prepare(self, estate: Estate) -> None:
        estate.services[self.service].cert_expires_at = self.at

    def tick(self, estate: Estate, dt: float) -> None:
        svc = estate.services[self.service]
        if svc.cert_expires_at > estate.elapsed:
            self.end(estate, "rotate_certificate")

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service == self.service and action == "rotate_certificate":
            return "fixed (new certificate installed)"
        if service == self.service and action == "restart":
            return "no effect: the same certificate is loaded again"
        return "no effect"


class CacheStampedeParams(Params):
    hit_ratio: float = Field(0.25, ge=0, lt=0.9)
    flag: str = "request-coalescing"


class CacheStampede(Fault):
    kind = "cache_stampede"
    description = "hot keys expire together; misses flood the database behind the cache"
    params_model = CacheStampedeParams

    def tick(self, estate: Estate, dt: float) -> None:
        svc = estate.services[self.service]
        if svc.flags.get(self.params.flag, False):
            self.end(estate, "toggle_feature_flag")
            return
        svc.hit_ratio = min(svc.hit_ratio, self.params.hit_ratio)

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service != self.service:
            return "no effect"
        if action == "toggle_feature_flag" and params.get("flag") == self.params.flag:
            return "fixed" if params.get("enabled", True) else "no effect"
        if action == "flush_cache":
            return "worsened: an empty cache sends every read to the database"
        return "no effect"


class PartitionParams(Params):
    zone: str = "b"
    all_services: bool = False
    duration: Duration | None = None
    flap_on: Duration = 0.0
    flap_off: Duration = 0.0


class NetworkPartition(Fault):
    kind = "network_partition"
    description = "a zone loses connectivity; its instances cannot be reached (may flap)"
    params_model = PartitionParams

    def _targets(self, estate: Estate) -> list[str]:
        return list(estate.services) if self.params.all_services else [self.service]

    def tick(self, estate: Estate, dt: float) -> None:
        since = estate.elapsed - self.at
        if self.params.duration is not None and since >= self.params.duration:
            self._set(estate, False)
            self.end(estate, "network repaired")
            return
        cut = True
        period = self.params.flap_on + self.params.flap_off
        if self.params.flap_on > 0 and period > 0:
            cut = since % period < self.params.flap_on
        self._set(estate, cut)

    def _set(self, estate: Estate, cut: bool) -> None:
        for name in self._targets(estate):
            for inst in estate.services[name].instances:
                if inst.zone == self.params.zone:
                    inst.unreachable = cut

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if action == "failover" and service in self._targets(estate):
            return f"mitigated: {service} drained zone {self.params.zone}"
        return "no effect"


class SurgeParams(Params):
    factor: float = Field(3.0, gt=1, le=50)
    duration: Duration | None = None


class TrafficSurge(Fault):
    kind = "traffic_surge"
    description = "traffic multiplies (a campaign, a retry storm); capacity runs out"
    params_model = SurgeParams
    scaled = False

    def tick(self, estate: Estate, dt: float) -> None:
        if self.params.duration is not None and estate.elapsed - self.at >= self.params.duration:
            self.end(estate, "traffic subsided")
            return
        estate.load_inputs.append((self.service, self.params.factor, True))
        svc = estate.services[self.service]
        if self.scaled and svc.metrics.get("saturation", 1.0) < 0.8:
            self.end(estate, "scale_out")

    def react(self, estate: Estate, action: str, service: str, params: dict[str, Any]) -> str:
        if service == self.service and action == "scale_out":
            self.scaled = True
            return "mitigated: capacity added (fixed once saturation is back under 80%)"
        return "no effect"


def _bump(version: str) -> str:
    head = version.rstrip("0123456789")
    tail = version[len(head):]
    return f"{head}{int(tail) + 1}" if tail else f"{version}-1"


FAULT_KINDS: dict[str, type[Fault]] = {cls.kind: cls for cls in (
    BadDeploy, ConfigError, MemoryLeak, CpuSaturation, SlowDependency, PoolExhaustion,
    DiskFilling, QueueBacklog, CertificateExpiry, CacheStampede, NetworkPartition,
    TrafficSurge)}

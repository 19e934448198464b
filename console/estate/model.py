"""The estate's state and its physics: how load, faults and dependencies become metrics.

Each tick, faults set per-service effects; then services are computed dependencies
first, so that a caller sees its dependency's errors, latency and timeouts. Symptoms
therefore travel up the graph and the loudest service is often not the cause.
Everything random draws from one seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import networkx as nx

from console.domain import ChangeEvent, LogRecord
from console.estate.spans import EstateSpans
from console.estate.spec import BaselineOverride, EstateSpec, ServiceSpec

if TYPE_CHECKING:
    from console.estate.faults import Fault

HISTORY_POINTS = 720
ROLLOUT_STEP_S = 20.0  # one instance switches version every 20 s
RESTART_S = 30.0
OOM_AT = 98.0
TIMEOUT_MS = 3000.0
BASE_MISS = 0.08


@dataclass
class Defect:
    """What is wrong with one version of a service's code (set by a fault)."""

    error: float = 0.0
    latency_ms: float = 0.0
    leak_pct_per_min: float = 0.0
    fault: Fault | None = None


@dataclass
class Instance:
    id: str
    zone: str
    version: str
    memory: float
    disk: float
    noise: float
    down_until: float = -1.0
    unreachable: bool = False
    drained: bool = False
    cpu: float = 0.0

    def up(self, t: float) -> bool:
        return t >= self.down_until


@dataclass
class Effects:
    """Per-tick contributions of active faults to one service (reset every tick)."""

    error: float = 0.0
    latency_ms: float = 0.0
    cpu: float = 0.0
    cost: float = 1.0
    capacity: float = 1.0
    pool_usage: float = 0.0
    consume: float = 1.0
    causes: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)


class Service:
    def __init__(self, name: str, spec: ServiceSpec, zones: tuple[str, ...],
                 rng: random.Random) -> None:
        self.name = name
        self.spec = spec
        self.kind = spec.kind
        self.base = spec.baseline
        self.version = spec.version
        self.previous_version: str | None = None
        self.flags = dict(spec.feature_flags)
        self.cert_expires_at = spec.cert_days * 86400.0
        self.load = 1.0
        self.queue_depth = 0.0
        self.hit_ratio = 1.0 - BASE_MISS
        self.miss_amp = 1.0
        self.failed_over = False
        self.rollout_next = 0.0
        self.inflow = 0.0
        self.config_pending: str | None = None
        self.zones = zones
        self.instances: list[Instance] = []
        self.effects = Effects()
        self.metrics: dict[str, float] = {}
        self.history: deque[tuple[float, dict[str, float]]] = deque(maxlen=HISTORY_POINTS)
        self.base_sat = self.base.request_rate / (spec.instances * spec.capacity_rps)
        for _ in range(spec.instances):
            self.add_instance(rng, self.version)

    def add_instance(self, rng: random.Random, version: str) -> Instance:
        index = len(self.instances)
        inst = Instance(f"{self.name}-{index}", self.zones[index % len(self.zones)], version,
                        memory=self.base.memory * rng.uniform(0.92, 1.08),
                        disk=self.base.disk * rng.uniform(0.9, 1.1),
                        noise=rng.uniform(0.9, 1.1))
        self.instances.append(inst)
        return inst


def _queueing(sat: float) -> float:
    return 1.0 / (1.0 - min(sat, 0.95))


class Estate:
    """The simulated production estate. Agents never see this object, only its outputs."""

    def __init__(self, spec: EstateSpec, overrides: dict[str, BaselineOverride],
                 start: datetime, rng: random.Random) -> None:
        self.spec = spec
        self.start = start
        self.elapsed = 0.0
        self.rng = rng
        self.services: dict[str, Service] = {}
        for name, svc_spec in spec.services.items():
            self.services[name] = Service(name, _override(svc_spec, overrides.get(name)),
                                          spec.zones, rng)
        self.graph: nx.DiGraph = nx.DiGraph()
        self.graph.add_nodes_from(self.services)
        self.graph.add_edges_from((n, d) for n, s in spec.services.items() for d in s.depends_on)
        self.graph.add_edges_from((n, s.consumes) for n, s in spec.services.items() if s.consumes)
        self.order = list(reversed(list(nx.topological_sort(self.graph))))
        self.callers = {n: sorted(self.graph.predecessors(n)) for n in self.services}
        self.defects: dict[tuple[str, str], Defect] = {}
        self.faults: list[Fault] = []
        self.pending_changes: list[ChangeEvent] = []
        self.pending_logs: list[LogRecord] = []
        self.load_inputs: list[tuple[str, float, bool]] = []
        self._descendants = {n: sorted(nx.descendants(self.graph, n)) for n in self.services}
        self._caches_for_db = {
            db: sorted({d for c in self.callers[db] for d in spec.services[c].depends_on
                        if self.services[d].kind == "cache"})
            for db, s in self.services.items() if s.kind == "database"}
        # the spans its traffic makes (console/estate/spans.py): request/response calls only
        self.spans = EstateSpans({n: s.depends_on for n, s in spec.services.items()},
                                 TIMEOUT_MS, start)
        self._compute(0.0)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    # --- what the outside sees -----------------------------------------------------------

    def metrics(self, name: str) -> dict[str, float]:
        return dict(self.services[name].metrics)

    def instance_metrics(self, name: str) -> list[dict[str, Any]]:
        svc, t = self.services[name], self.elapsed
        return [{"instance": i.id, "zone": i.zone, "version": i.version,
                 "up": 0.0 if (i.unreachable or not i.up(t)) else 1.0,
                 "cpu": i.cpu, "memory": i.memory, "disk": i.disk} for i in svc.instances]

    def describe(self, name: str) -> dict[str, Any]:
        """The control plane's view of a service (what `kubectl get` would show): its
        desired configuration, never the faults behind its behaviour."""
        svc = self.services[name]
        return {"kind": svc.kind, "version": svc.version,
                "previous_version": svc.previous_version,
                "instances": [{"id": i.id, "zone": i.zone, "version": i.version,
                               "drained": i.drained} for i in svc.instances],
                "flags": dict(sorted(svc.flags.items())), "failed_over": svc.failed_over,
                "cert_expires": (self.start + timedelta(seconds=svc.cert_expires_at))
                .isoformat(timespec="seconds")}

    def history(self, name: str, metric: str) -> list[tuple[float, float]]:
        return [(t, m[metric]) for t, m in self.services[name].history]

    def topology(self) -> dict[str, list[str]]:
        return {n: sorted(self.graph.successors(n)) for n in self.services}

    # --- changes the world ---------------------------------------------------------------

    def record_change(self, service: str, kind: str, description: str, *, author: str = "ci",
                      version_from: str | None = None, version_to: str | None = None) -> None:
        self.pending_changes.append(ChangeEvent(service, kind, description, self.now, author,
                                                version_from, version_to))

    def log(self, service: str, level: str, message: str, instance: str = "") -> None:
        self.pending_logs.append(LogRecord(service, level, message, self.now, instance))

    def deploy(self, service: str, version: str, *, author: str = "ci",
               kind: str = "deploy") -> None:
        """Start a rolling deploy of `version` (instances switch one per ROLLOUT_STEP_S)."""
        svc = self.services[service]
        if version == svc.version:
            return
        self.record_change(service, kind, f"{'roll back' if kind == 'rollback' else 'deploy'} "
                           f"{service} {svc.version} -> {version}", author=author,
                           version_from=svc.version, version_to=version)
        svc.previous_version, svc.version = svc.version, version
        svc.rollout_next = self.elapsed

    def step(self, dt: float) -> None:
        self.elapsed += dt
        t = self.elapsed
        for svc in self.services.values():
            svc.effects = Effects()
            self._roll_out(svc, t)
            for inst in svc.instances:
                if inst.down_until >= 0 and inst.up(t) and inst.down_until > t - dt:
                    inst.memory = svc.base.memory * self.rng.uniform(0.92, 1.08)
            if svc.kind == "cache":
                svc.hit_ratio += (1.0 - BASE_MISS - svc.hit_ratio) * min(1.0, dt / 300.0)
        for fault in self.faults:
            if fault.active:
                fault.tick(self, dt)
        self._apply_load()
        self._apply_defects(dt)
        self._compute(dt)

    def _apply_load(self) -> None:
        """Traffic multipliers: at their service and, diluted, at everything it calls."""
        for svc in self.services.values():
            svc.load = 1.0
        for root, factor, propagate in self.load_inputs:
            self.services[root].load *= factor
            if propagate:
                for dep in self._descendants[root]:
                    self.services[dep].load *= 1.0 + (factor - 1.0) * 0.8
        self.load_inputs = []

    def _roll_out(self, svc: Service, t: float) -> None:
        stale = [i for i in svc.instances if i.version != svc.version]
        if not stale:
            return
        next_at = svc.rollout_next
        while stale and next_at <= t:
            inst = stale.pop(0)
            inst.version = svc.version
            inst.memory = svc.base.memory * self.rng.uniform(0.92, 1.08)
            next_at += ROLLOUT_STEP_S
        svc.rollout_next = next_at

    def _apply_defects(self, dt: float) -> None:
        for (name, version), defect in self.defects.items():
            if defect.leak_pct_per_min <= 0:
                continue
            svc = self.services[name]
            for inst in svc.instances:
                if inst.version != version or not inst.up(self.elapsed):
                    continue
                inst.memory += defect.leak_pct_per_min * dt / 60.0 * inst.noise
                if inst.memory >= OOM_AT:
                    inst.memory = OOM_AT
                    inst.down_until = self.elapsed + RESTART_S
                    self.log(name, "ERROR", f"java.lang.OutOfMemoryError: Java heap space "
                             f"(heap {inst.memory:.0f}% of limit); container {inst.id} killed",
                             inst.id)

    # --- the physics ---------------------------------------------------------------------

    def _compute(self, dt: float) -> None:
        t = self.elapsed
        diurnal = 1.0 + 0.08 * math.sin(2 * math.pi * t / 86400.0)
        for db, caches in self._caches_for_db.items():
            extra = sum(max(0.0, (1 - self.services[c].hit_ratio) - BASE_MISS) for c in caches)
            self.services[db].miss_amp = 1.0 + 6.0 * extra
        for name in self.order:
            self._compute_service(self.services[name], t, dt, diurnal)
            svc = self.services[name]
            svc.history.append((t, dict(svc.metrics)))
        self.spans.observe(t, dt, {n: s.metrics for n, s in self.services.items()})

    def _compute_service(self, svc: Service, t: float, dt: float, diurnal: float) -> None:
        eff, base, rng = svc.effects, svc.base, self.rng
        causes = eff.causes
        traffic = base.request_rate * svc.load * diurnal * svc.miss_amp * rng.uniform(0.97, 1.03)
        if svc.kind == "worker" and svc.spec.consumes:
            queue = self.services[svc.spec.consumes]
            traffic = min(queue.inflow + queue.queue_depth / max(dt, 1.0),
                          self._capacity(svc, t))
        serving = [i for i in svc.instances if i.up(t) and not i.drained]
        reachable = [i for i in serving if not i.unreachable]
        capacity = len(serving) * svc.spec.capacity_rps * eff.capacity
        sat = traffic * eff.cost / capacity if capacity > 0 else 10.0
        errors = [base.error_rate * rng.uniform(0.7, 1.3), eff.error]
        if sat > 1.0:
            errors.append((sat - 1.0) / sat)
            causes.append(((sat - 1.0) / sat, "overload", {"sat": sat}))
        if serving:
            cut = 1.0 - len(reachable) / len(serving)
            if cut > 0:
                errors.append(cut)
                causes.append((cut, "unreachable", {"n": len(serving) - len(reachable)}))
        else:
            errors.append(1.0)
            causes.append((1.0, "no_instances", {}))
        bad_error, bad_latency = 0.0, 0.0
        for inst in serving:
            defect = self.defects.get((svc.name, inst.version))
            if defect is not None:
                bad_error += defect.error / len(serving)
                bad_latency += defect.latency_ms / len(serving)
        if bad_error > 0:
            errors.append(bad_error)
            causes.append((bad_error, "defect", {"version": svc.version}))
        pool = 0.0
        if any(self.services[d].kind == "database" for d in svc.spec.depends_on):
            pool = min(1.0, 0.3 * sat / max(svc.base_sat, 1e-6) + eff.pool_usage)
            if pool >= 0.999:
                errors.append(0.35)
                causes.append((0.35, "pool", {}))
        dep_p50 = dep_p99 = 0.0
        for dep_name in svc.spec.depends_on:
            dep = self.services[dep_name]
            dm = dep.metrics
            excess = max(0.0, dm["error_rate"] - dep.base.error_rate * 1.5)
            if excess > 0.01:
                errors.append(excess * 0.9)
                causes.append((excess, "upstream_error", {"dep": dep_name}))
            if t >= dep.cert_expires_at:
                errors.append(0.95)
                causes.append((0.95, "tls", {"dep": dep_name}))
            if dm["latency_p99_ms"] > TIMEOUT_MS:
                share = min(0.6, (dm["latency_p99_ms"] - TIMEOUT_MS) / TIMEOUT_MS * 0.3 + 0.05)
                errors.append(share)
                causes.append((share, "timeout", {"dep": dep_name}))
            dep_p50 += max(0.0, dm["latency_p50_ms"] - dep.base.latency_p50_ms) * 0.8
            dep_p99 += max(0.0, dm["latency_p99_ms"] - dep.base.latency_p99_ms) * 0.9
        ok = 1.0
        for e in errors:
            ok *= 1.0 - min(max(e, 0.0), 1.0)
        error_rate = 1.0 - ok
        q = _queueing(sat) / _queueing(svc.base_sat)
        pool_wait = 800.0 if pool >= 0.999 else 0.0
        own_latency = eff.latency_ms + bad_latency + pool_wait
        p50 = base.latency_p50_ms * q * rng.uniform(0.95, 1.05) + own_latency + dep_p50
        p99 = base.latency_p99_ms * q**1.5 * rng.uniform(0.93, 1.07) + 3 * own_latency + dep_p99
        if svc.kind == "queue":
            self._compute_queue(svc, t, dt)
        if t >= svc.cert_expires_at:
            traffic *= 0.02  # handshakes fail before any request is served
        cpu_load = sat / max(svc.base_sat, 1e-6) if capacity > 0 else 0.0
        cpu = min(100.0, base.cpu * min(cpu_load, 100.0 / max(base.cpu, 1)) + eff.cpu)
        for inst in svc.instances:
            inst.cpu = min(100.0, cpu * inst.noise) if inst.up(t) else 0.0
        up = [i for i in svc.instances if i.up(t)] or svc.instances
        svc.metrics = {
            "request_rate": traffic,
            "error_rate": min(error_rate, 1.0),
            "latency_p50_ms": min(p50, 60000.0),
            "latency_p99_ms": min(max(p99, p50), 60000.0),
            "cpu": cpu,
            "memory": sum(i.memory for i in up) / len(up),
            "disk": max(i.disk for i in svc.instances),
            "queue_depth": svc.queue_depth,
            "saturation": min(sat, 10.0),
            "instances_ready": float(len(reachable)),
            "pool_usage": pool,
            "cache_hit_ratio": svc.hit_ratio if svc.kind == "cache" else 0.0,
            "cert_expiry_hours": (svc.cert_expires_at - t) / 3600.0,
        }

    def _capacity(self, svc: Service, t: float) -> float:
        serving = [i for i in svc.instances if i.up(t) and not i.drained and not i.unreachable]
        return len(serving) * svc.spec.capacity_rps * svc.effects.consume

    def _compute_queue(self, queue: Service, t: float, dt: float) -> None:
        inflow = sum(self.services[p].metrics.get("request_rate", 0.0) * 0.5
                     for p in self.callers[queue.name]
                     if self.services[p].spec.consumes != queue.name)
        drain = sum(self._capacity(self.services[c], t) for c in self.callers[queue.name]
                    if self.services[c].spec.consumes == queue.name)
        queue.queue_depth = max(0.0, queue.queue_depth + (inflow - drain) * dt)
        queue.inflow = inflow


def _override(spec: ServiceSpec, override: BaselineOverride | None) -> ServiceSpec:
    if override is None:
        return spec
    values: dict[str, Any] = override.model_dump(exclude_none=True)
    top_level = ("instances", "version", "capacity_rps", "cert_days", "feature_flags")
    top: dict[str, Any] = {k: values.pop(k) for k in top_level if k in values}
    baseline = spec.baseline.model_copy(update=values)
    return spec.model_copy(update={**top, "baseline": baseline})

"""Generated scenarios: incidents the team was not tuned on, for fitting and for evaluation.

The built-in scenarios are a dozen hand-written stories the agents were tuned against; a
team that is right on them can still be wrong on the next night's incident. This writes
as many valid scenario files as wanted, composed at random (but the same for the same
seed) over every service and fault kind of an estate: one fault, two overlapping, three
ten minutes apart, a fault no runbook can end, a real fault behind a harmless deploy,
a quiet day of changes, a load pulse that breaks nothing. Each file says its family in
its description (`[double] ...`), so scores can be broken down by it.

Seeds are split once and for all (the README says so): generator seeds 1000-1999 are
for fitting weights and calibration, seeds from 2000 for reporting. Figures reported on
fit seeds say so, so a fitted number is never mistaken for a held-out one.

The generator knows the estate's physics only as far as a scenario author would (which
service kinds show which symptoms, what load a service takes); it never runs the estate.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.estate.spec import EstateSpec, load_estate_spec
from console.scenario_split import (  # noqa: F401  (the generator's callers find them here)
    DEFAULT_REPORT_SEED,
    FAMILIES,
    FIT_SEEDS,
    MAX_COUNT,
    REPORT_SEEDS_FROM,
    split_of,
)

FAULTLESS_FAMILIES = frozenset({"quiet", "pulse"})
APP_KINDS = frozenset({"web", "api", "worker"})
_FAMILY = re.compile(r"^\[([a-z]+)\]")
_NEW_FLAGS = ("fraud-scoring", "live-inventory", "personalised-search", "bulk-pricing",
              "ml-ranking-v2", "edge-rendering")
_HARMLESS_FLAGS = ("carousel-v2", "dark-mode", "new-footer", "gift-wrap", "wishlist-share")
_CONFIG_KEYS = ("upstream.timeout_ms", "pool.max_connections", "retry.budget",
                "cache.ttl_s", "tls.min_version")


class GeneratorError(ValueError):
    """A bad request to the generator (count, folder, estate): exit 2."""


def family_of(description: str) -> str | None:
    """The family a generated scenario's description names (None for any other file)."""
    m = _FAMILY.match(description or "")
    return m.group(1) if m and m.group(1) in FAMILIES else None


def _dur(seconds: float) -> str:
    whole = int(round(seconds / 5.0) * 5)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


@dataclass(frozen=True)
class _Facts:
    """What a scenario author reads off the estate file."""

    spec: EstateSpec
    rates: dict[str, float]  # request rate per service, after the scenario's overrides

    def kind(self, name: str) -> str:
        return self.spec.services[name].kind

    def base_sat(self, name: str) -> float:
        s = self.spec.services[name]
        return self.rates[name] / (s.instances * s.capacity_rps)

    def zones(self, name: str) -> list[str]:
        zones = self.spec.zones
        return sorted({zones[i % len(zones)] for i in range(self.spec.services[name].instances)})

    def callers(self, name: str) -> list[str]:
        return [n for n, s in self.spec.services.items() if name in s.depends_on]

    def descendants(self, name: str) -> set[str]:
        out: set[str] = set()
        todo = list(self.spec.services[name].depends_on)
        while todo:
            dep = todo.pop()
            if dep not in out:
                out.add(dep)
                todo.extend(self.spec.services[dep].depends_on)
        return out

    def near(self, name: str) -> set[str]:
        """Services within one hop either way (a second fault there joins the same story)."""
        return {name, *self.spec.services[name].depends_on, *self.callers(name)}

    def peak_sat(self, name: str, factor: float) -> float:
        """The busiest saturation when `name` takes `factor` times its traffic (its
        dependencies take a diluted share of it, as the estate carries load down)."""
        dilute = 1.0 + (factor - 1.0) * 0.8
        return max([self.base_sat(name) * factor,
                    *(self.base_sat(d) * dilute for d in self.descendants(name))])

    def factor_for(self, name: str, peak: float) -> float:
        """The largest load factor (in steps of 0.05, at most 50) that keeps peak_sat
        at or under `peak`."""
        factor = 1.0
        while factor < 50 and self.peak_sat(name, factor + 0.05) <= peak:
            factor += 0.05
        return factor

    def serving(self, name: str) -> bool:
        """Takes requests itself (not a worker draining a queue)."""
        s = self.spec.services[name]
        return s.kind in ("web", "api") and s.consumes is None


# --- faults: where each kind can happen, and parameters that make it visible ----------------

Params = dict[str, Any]
_Builder = Callable[[random.Random, _Facts, str], Params]


def _bad_deploy(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"error": round(rng.uniform(0.15, 0.45), 2),
            "latency_ms": float(rng.randrange(40, 260, 10))}


def _config_error(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"key": rng.choice(_CONFIG_KEYS), "value": str(rng.randrange(10, 90, 5)),
            "error": round(rng.uniform(0.2, 0.5), 2)}


def _memory_leak(rng: random.Random, f: _Facts, svc: str) -> Params:
    headroom = 85.0 - f.spec.services[svc].baseline.memory  # to the HighMemory threshold
    return {"rate_pct_per_min": round(min(50.0, headroom / rng.uniform(5.0, 12.0)), 2)}


def _cpu_saturation(rng: random.Random, f: _Facts, svc: str) -> Params:
    flags = f.spec.services[svc].feature_flags
    off = [name for name, on in flags.items() if not on]
    flag = rng.choice(off) if off and rng.random() < 0.5 else \
        rng.choice([n for n in _NEW_FLAGS if n not in flags])
    return {"cost": round(min(20.0, max(1.5, rng.uniform(1.35, 2.2) / f.base_sat(svc))), 2),
            "flag": flag}


def _slow_dependency(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"latency_ms": float(rng.randrange(1500, 4200, 100))}


def _pool(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"rate_per_min": round(rng.uniform(0.07, 0.16), 3)}


def _disk_filling(rng: random.Random, f: _Facts, svc: str) -> Params:
    spec = f.spec.services[svc]
    fill_min = rng.uniform(15.0, 35.0)  # until the disk is all but full
    return {"rate_pct_per_hour": round(min(1000.0, (97.0 - spec.baseline.disk) * 60 / fill_min),
                                       1),
            "instance": rng.randrange(spec.instances)}


def _queue_backlog(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"consume_factor": round(rng.uniform(0.05, 0.2), 2)}


def _no_params(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {}


def _cache_stampede(rng: random.Random, f: _Facts, svc: str) -> Params:
    return {"hit_ratio": round(rng.uniform(0.1, 0.4), 2)}


def _partition(rng: random.Random, f: _Facts, svc: str) -> Params:
    params: Params = {"zone": rng.choice(f.zones(svc)),
                      "duration": _dur(rng.uniform(12, 25) * 60)}
    if rng.random() < 0.2:
        params |= {"flap_on": _dur(rng.uniform(60, 120)), "flap_off": _dur(rng.uniform(30, 60))}
    return params


def _surge(rng: random.Random, f: _Facts, svc: str) -> Params:
    # a campaign or a retry storm that subsides by itself; scaling out carries it meanwhile
    return {"factor": round(max(1.2, f.factor_for(svc, rng.uniform(1.1, 1.35))), 2),
            "duration": _dur(rng.uniform(15, 30) * 60)}


def _targets(kind: str, f: _Facts) -> list[str]:
    """Services where `kind` shows symptoms an operator could see."""
    names = list(f.spec.services)
    app = [n for n in names if f.kind(n) in APP_KINDS]
    on_db = [n for n in app if any(f.kind(d) == "database"
                                   for d in f.spec.services[n].depends_on)]
    return {
        "bad_deploy": app, "config_error": app, "memory_leak": app,
        "cpu_saturation": [n for n in app if f.serving(n)],
        "slow_dependency": [n for n in names if f.kind(n) in ("database", "cache")],
        "connection_pool_exhaustion": on_db,
        "disk_filling": names,
        "queue_backlog": [n for n in app if f.spec.services[n].consumes],
        "certificate_expiry": [n for n in names if f.callers(n)],
        "cache_stampede": [n for n in names if f.kind(n) == "cache"],
        "network_partition": [n for n in app if len(f.zones(n)) > 1],
        "traffic_surge": [n for n in app if f.serving(n)],
    }[kind]


BUILDERS: dict[str, _Builder] = {
    "bad_deploy": _bad_deploy, "config_error": _config_error, "memory_leak": _memory_leak,
    "cpu_saturation": _cpu_saturation, "slow_dependency": _slow_dependency,
    "connection_pool_exhaustion": _pool, "disk_filling": _disk_filling,
    "queue_backlog": _queue_backlog, "certificate_expiry": _no_params,
    "cache_stampede": _cache_stampede, "network_partition": _partition,
    "traffic_surge": _surge,
}


def _remedyless(rng: random.Random, f: _Facts, busy: set[str]) -> tuple[str, str, Params]:
    """A fault no shipped runbook ends: a connection leak that a restart only delays, or
    an application that answers slowly for a reason no failover can move away from."""
    app = [n for n in f.spec.services if f.kind(n) in APP_KINDS and n not in busy]
    if rng.random() < 0.5:
        pool = [n for n in _targets("connection_pool_exhaustion", f) if n not in busy]
        svc = rng.choice(pool)
        return "connection_pool_exhaustion", svc, {**_pool(rng, f, svc), "recurs": True}
    svc = rng.choice(app)
    return "slow_dependency", svc, _slow_dependency(rng, f, svc)


# --- composing a scenario ---------------------------------------------------------------------

class _Composer:
    """One scenario file's timeline, built entry by entry."""

    def __init__(self, rng: random.Random, facts: _Facts, deck: list[str]) -> None:
        self.rng, self.f, self.deck = rng, facts, deck
        self.timeline: list[dict[str, Any]] = []
        self.faulty: list[str] = []
        self.notes: list[tuple[float, str]] = []
        self.end_s = 0.0

    def fault(self, at: float, *, avoid: frozenset[str] | set[str] = frozenset(),
              zone_not: str | None = None) -> None:
        """The next fault kind from the deck, on a service not yet at fault."""
        for _ in range(len(self.deck)):
            kind = self.deck.pop(0)
            choices = [s for s in _targets(kind, self.f)
                       if s not in self.faulty and s not in avoid]
            if choices:
                break
            self.deck.append(kind)  # nowhere left for it here: later
        else:
            raise GeneratorError("the estate has no service left for another fault")
        svc = self.rng.choice(choices)
        params = BUILDERS[kind](self.rng, self.f, svc)
        if kind == "network_partition" and zone_not and len(self.f.zones(svc)) > 1:
            params["zone"] = self.rng.choice([z for z in self.f.zones(svc) if z != zone_not])
        self._add_fault(at, kind, svc, params)

    def _add_fault(self, at: float, kind: str, svc: str, params: Params) -> None:
        self.timeline.append({"at": _dur(at), "type": "fault", "kind": kind, "service": svc,
                              "params": params})
        self.faulty.append(svc)
        self.notes.append((at, f"{kind} on {svc} at {_dur(at)}"))
        tail = 30 * 60.0
        if kind == "disk_filling":  # it takes the fill time before anything shows
            tail += (97.0 - self.f.spec.services[svc].baseline.disk) * 3600 \
                / params["rate_pct_per_hour"]
        self.end_s = max(self.end_s, at + tail)

    def remedyless(self, at: float) -> None:
        kind, svc, params = _remedyless(self.rng, self.f, set(self.faulty))
        self._add_fault(at, kind, svc, params)

    def healthy(self) -> list[str]:
        return [s for s in self.f.spec.services if s not in self.faulty]

    def change(self, at: float, kind: str | None = None, service: str | None = None) -> None:
        """A benign change on a service that is not at fault."""
        rng = self.rng
        kind = kind or rng.choice(("deploy", "config", "feature_flag", "scale"))
        pool = [s for s in self.healthy()
                if kind not in ("deploy", "feature_flag") or self.f.kind(s) in APP_KINDS]
        svc = service or rng.choice(pool)
        entry: dict[str, Any] = {"at": _dur(at), "type": "change", "kind": kind, "service": svc}
        if kind == "feature_flag":
            entry["flag"] = rng.choice(_HARMLESS_FLAGS)
        elif kind == "config":
            entry["description"] = f"set {rng.choice(_CONFIG_KEYS)} on {svc} (reviewed)"
        elif kind == "scale":
            entry["description"] = f"scheduled capacity check of {svc}, no change"
        self.timeline.append(entry)
        self.notes.append((at, f"harmless {kind} of {svc} at {_dur(at)}"))
        self.end_s = max(self.end_s, at + 10 * 60)

    def pulse(self, at: float, length: float, peak: float, service: str | None = None) -> None:
        """A load pulse on a serving service whose busiest point stays under `peak`."""
        svc = service or self.rng.choice([s for s in self.healthy() if self.f.serving(s)])
        factor = 1.0
        factor = round(max(1.05, self.f.factor_for(svc, peak)), 2)
        self.timeline.append({"at": _dur(at), "type": "load", "service": svc,
                              "factor": factor, "ramp": _dur(min(60.0, length / 3)),
                              "until": _dur(at + length)})
        self.notes.append((at, f"load x{factor} on {svc} {_dur(at)}-{_dur(at + length)}"))
        self.end_s = max(self.end_s, at + length + 15 * 60)

    def noise(self, until: float) -> None:
        for _ in range(self.rng.randrange(0, 3)):
            self.change(self.rng.uniform(60, max(120.0, until)),
                        kind=self.rng.choice(("config", "feature_flag", "scale")))


def _compose(family: str, rng: random.Random, facts: _Facts, deck: list[str]) -> _Composer:
    c = _Composer(rng, facts, deck)
    start = rng.uniform(3, 9) * 60
    if family == "single":
        c.fault(start)
    elif family == "double":  # overlapping: the second begins before the first can be fixed
        c.fault(start)
        first = c.timeline[-1]
        apart = rng.random() < 0.5  # half anywhere (often the same incident), half apart
        avoid = facts.near(c.faulty[-1]) if apart else set()
        zone = first["params"].get("zone") if first["kind"] == "network_partition" else None
        c.fault(start + rng.uniform(1, 6) * 60, avoid=avoid, zone_not=zone)
    elif family == "triple":
        at = start
        for _ in range(3):
            c.fault(at)
            at += rng.uniform(8, 12) * 60
    elif family == "remedyless":
        c.remedyless(start)
    elif family == "herring":  # a harmless deploy elsewhere minutes before the real fault
        c.fault(start + 4 * 60)
        c.change(start + 4 * 60 - rng.uniform(0.5, 3) * 60, kind="deploy")
    elif family == "quiet":
        for _ in range(rng.randrange(2, 5)):
            c.change(rng.uniform(2, 50) * 60)
        c.pulse(rng.uniform(10, 30) * 60, rng.uniform(20, 40) * 60, peak=rng.uniform(0.5, 0.65))
    elif family == "pulse":
        svc = rng.choice([s for s in c.healthy() if facts.serving(s)])
        if rng.random() < 0.5:  # one short pulse
            c.pulse(start, rng.uniform(3, 6) * 60, peak=rng.uniform(0.7, 0.85), service=svc)
        else:  # a train of short pulses: alerts that fire and clear again (flapping)
            at = start
            for _ in range(rng.randrange(3, 5)):
                length = rng.uniform(3, 4) * 60
                c.pulse(at, length, peak=rng.uniform(0.75, 0.85), service=svc)
                at += length + rng.uniform(3, 5) * 60
    else:
        raise GeneratorError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if family not in ("quiet",):
        c.noise(c.end_s - 10 * 60)
    c.timeline.sort(key=lambda e: _seconds(e["at"]))
    return c


def _seconds(text: str) -> float:
    from console.yamlpos import parse_duration

    return parse_duration(text)


def _overrides(rng: random.Random, spec: EstateSpec) -> dict[str, dict[str, float]]:
    """Noise in the estate itself: a few services carry a little more or less traffic."""
    out = {}
    for name in rng.sample(sorted(spec.services), k=min(3, len(spec.services))):
        base = spec.services[name].baseline.request_rate
        out[name] = {"request_rate": round(base * rng.uniform(0.85, 1.15), 1)}
    return out


def generate(count: int, seed: int, estate: str = "default") -> list[tuple[str, dict[str, Any]]]:
    """`count` scenarios as (file name, scenario data); the same for the same seed. The
    families take turns (each appears once `count` reaches their number) and every fault
    kind is dealt from a shuffled deck, so a modest count covers them all."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise GeneratorError(f"--count must be 1-{MAX_COUNT}, got {count!r}")
    try:
        spec = load_estate_spec(estate)
    except ValueError as exc:
        raise GeneratorError(str(exc)) from None
    rng = random.Random(seed)
    families = list(FAMILIES)
    rng.shuffle(families)
    deck: list[str] = []
    out = []
    for index in range(count):
        family = families[index % len(families)]
        if len(deck) < 3:
            fresh = list(BUILDERS)
            rng.shuffle(fresh)
            deck += fresh
        overrides = _overrides(rng, spec)
        rates = {n: s.baseline.request_rate for n, s in spec.services.items()}
        rates |= {n: o["request_rate"] for n, o in overrides.items()}
        c = _compose(family, rng, _Facts(spec, rates), deck)
        name = f"gen-{seed}-{index:04d}-{family}"
        data = {"name": name,
                "description": f"[{family}] " + "; ".join(n for _, n in sorted(c.notes)),
                "estate": estate,
                "duration": _dur(max(c.end_s, 20 * 60)),
                "seed": seed * 10_000 + index,
                "baselines": overrides,
                "timeline": c.timeline}
        out.append((f"{name}.yaml", data))
    return out


def write(count: int, seed: int, out: Path, estate: str = "default") -> list[Path]:
    """Generate and write the files into `out` (created if missing); GeneratorError when
    the folder cannot be written. Returns the paths, in order."""
    if out.exists() and not out.is_dir():
        raise GeneratorError(f"--out {out}: not a folder")
    scenarios = generate(count, seed, estate)
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for file_name, data in scenarios:
            path = out / file_name
            header = (f"# generated by `watchfloor scenarios generate --seed {seed}` "
                      f"({split_of(seed)} split)\n")
            path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=100),
                            encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise GeneratorError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    return paths

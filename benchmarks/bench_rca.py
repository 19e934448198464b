"""Root-cause analysis over every built-in fault scenario and several seeds.

Each scenario is played on the simulated clock into a fresh in-memory store, as a live
run would; every incident the correlator opens is investigated when it opens and every
30 s for ten minutes. The figures:

- AC@1 / AC@3: the top (top three) hypotheses, three minutes after the incident opened,
  name a fault of that incident with its service and fault class (an estate-wide
  partition names its class only: every service is the "service" of that fault);
- ECE: expected calibration error (10 equal-width bins) of the top-1 confidence at the
  same moment; `ece_all_checkpoints` is the same over every investigation;
- time to diagnosis: from the incident's opening to the first investigation whose top
  hypothesis is right (incidents never diagnosed in ten minutes are counted apart);
- investigate() latency p50/p95 (wall clock, this process, every call; the garbage the
  scenario player leaves is collected before each call, so that a collection it caused
  is not billed to the investigator).

An incident "has" a fault when the fault had begun by then (a certificate is at fault
before it expires: its warning is the incident) and one of the incident's services lies
within two hops of the faulty service or calls such a service, as console/evaluation.py
attributes alerts. Incidents with no fault (quiet-day's lunchtime bump) are reported on
their own: their top confidence should be low.

With `--dataset DIR` it scores recorded incidents instead (PetShop issues, Nezha cases or
Watchfloor recordings under DIR, each with its known root cause): AC@1, AC@3 and Avg@5
(the mean of AC@1..AC@5) of the investigator's ranking of services (its hypotheses'
services in order, first appearance; every candidate listed, as `watchfloor
investigate` lists them), beside two baselines that read the same data
(benchmarks/rca_baselines.py), overall, per family (benchmarks/rca_families.py: PetShop
low / high / temporal traffic, each Nezha system) with the family's best baseline and
how many cases got no candidate, and per dataset scenario; each case carries its
investigation gaps (what could not be checked).

`--fit` refits the calibration constants (temperature, "none" score) on seeds disjoint
from the benchmark's and prints them; they live in agents/investigator_scoring.py.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SCORE_AT_S = 180.0  # "the correlator has opened the incident, plus a few minutes"
CHECK_EVERY_S = 30.0
CHECK_FOR_S = 600.0
STEP_S = 15.0
FIT_SEEDS = (1000, 1001, 1002, 1003, 1004)


@dataclass
class Check:
    offset_s: float
    keys: list[str]  # service/fault_class, best first
    confidences: list[float]
    scores: list[float]
    ms: float
    seen: Any = None  # what a fitting investigator kept of this investigation


@dataclass
class IncidentRun:
    scenario: str
    seed: int
    incident_id: int
    opened_s: float
    services: tuple[str, ...]
    truth: list[str] = field(default_factory=list)  # fault keys of this incident
    estate_wide: list[str] = field(default_factory=list)  # fault classes matched by class
    checks: list[Check] = field(default_factory=list)

    def right(self, key: str) -> bool:
        return key in self.truth or key.split("/", 1)[1] in self.estate_wide

    def at(self, offset: float) -> Check | None:
        done = [c for c in self.checks if c.offset_s <= offset + 1e-6]
        return done[-1] if done else None


def fault_scenarios() -> list[str]:
    from console.estate import load_scenario
    from console.estate.spec import FaultEntry, builtin_scenarios

    return [name for name in builtin_scenarios()
            if any(isinstance(e, FaultEntry) for e in load_scenario(name).timeline)]


def fault_classes() -> list[str]:
    from console.actions.runbooks import load_library

    return sorted({f for book in load_library().values() for f in book.applies_to.faults})


def _reach(topology: Mapping[str, Iterable[str]], service: str) -> set[str]:
    from console.evaluation import reach

    return reach(topology, service)


@contextmanager
def without_team(runtime_class: Any) -> Iterator[None]:
    """The driver puts the whole agent team on every incident (their lanes call this
    investigator); what is measured here is the investigator alone, so the team stays
    home: its runs would only slow the scenarios down."""
    original = getattr(runtime_class, "start_agents", None)
    if original is None:
        yield
        return
    runtime_class.start_agents = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        runtime_class.start_agents = original


def play(scenario: str, seed: int | None, *, settings: Any = None,
         until_s: float | None = None, investigator_class: Any = None,
         check_for_s: float = CHECK_FOR_S) -> list[IncidentRun]:
    """Play one scenario and investigate its incidents (see the module docstring).
    `investigator_class`: an Investigator subclass to use (one that keeps what it saw,
    for a fit); each check then holds its `seen` attribute after each investigation.
    `check_for_s`: how long after its opening an incident is investigated."""
    from agents.investigator import Investigator
    from console.estate.spec import FaultEntry
    from console.runtime import Runtime, ScenarioDriver
    from console.storage.repos_evidence import EvidenceRepo

    runtime = Runtime("sqlite://")
    try:
        with without_team(Runtime):
            driver = ScenarioDriver(runtime, scenario, seed=seed)
        topology = driver.player.estate.topology()
        investigator = (investigator_class or Investigator)(
            driver.metrics, topology, fault_classes(), EvidenceRepo(runtime.db), settings)
        start = driver.player.start
        faults = [e for e in driver.scenario.timeline if isinstance(e, FaultEntry)]
        reach = [_reach(topology, f.service) for f in faults]
        runs: dict[int, IncidentRun] = {}
        end = driver.scenario.duration if until_s is None else until_s
        while not driver.finished and driver.elapsed < end:
            driver.step(STEP_S)
            now = driver.player.estate.now
            for incident in runtime.service.incidents():
                opened = (incident.opened_at - start).total_seconds()
                run = runs.get(incident.id)
                if run is None:
                    run = runs[incident.id] = IncidentRun(scenario, driver.player.seed,
                                                          incident.id, opened,
                                                          incident.services)
                offset = (now - incident.opened_at).total_seconds()
                due = len(run.checks) * CHECK_EVERY_S
                if offset + 1e-6 < due or due > check_for_s:
                    continue
                run.services = incident.services
                gc.collect()  # the player's garbage is not the investigator's to collect
                started = time.perf_counter()
                found = investigator.investigate(incident, now)
                ms = (time.perf_counter() - started) * 1000.0
                run.checks.append(Check(offset, [h.key for h in found],
                                        [h.confidence for h in found],
                                        [h.score for h in found], ms,
                                        getattr(investigator, "seen", None)))
                if len(run.checks) == 1 + int(SCORE_AT_S // CHECK_EVERY_S) or (
                        check_for_s > CHECK_FOR_S and offset > SCORE_AT_S):
                    # a longer watch (a fit) also takes in the faults that join later
                    _attribute(run, faults, reach, driver.elapsed, opened)
        return [r for r in runs.values() if r.checks]
    finally:
        runtime.close()


def _attribute(run: IncidentRun, faults: Sequence[Any], reach: Sequence[set[str]],
               now_s: float, opened_s: float) -> None:
    from console.estate.spec import FaultEntry

    for fault, around in zip(faults, reach, strict=True):
        assert isinstance(fault, FaultEntry)
        begun = fault.at <= now_s or fault.kind == "certificate_expiry"
        if not begun:
            continue
        key = f"{fault.service}/{fault.kind}"
        if fault.params.get("all_services"):
            if fault.kind not in run.estate_wide:
                run.estate_wide.append(fault.kind)
        elif set(run.services) & around and key not in run.truth:
            run.truth.append(key)
    del opened_s


def ece(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error of (confidence, correct) pairs, equal-width bins."""
    if not pairs:
        return 0.0
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if inside:
            conf = statistics.fmean(c for c, _ in inside)
            acc = statistics.fmean(1.0 if ok else 0.0 for _, ok in inside)
            total += len(inside) / len(pairs) * abs(acc - conf)
    return total


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarise(runs: Sequence[IncidentRun]) -> dict[str, Any]:
    with_fault = [r for r in runs if r.truth or r.estate_wide]
    scored = [(r, r.at(SCORE_AT_S)) for r in with_fault]
    top1 = [bool(c and c.keys and r.right(c.keys[0])) for r, c in scored]
    top3 = [bool(c and any(r.right(k) for k in c.keys[:3])) for r, c in scored]
    pairs = [(c.confidences[0] if c and c.confidences else 0.0, ok)
             for (r, c), ok in zip(scored, top1, strict=True)]
    every = [(c.confidences[0] if c.confidences else 0.0, bool(c.keys and r.right(c.keys[0])))
             for r in with_fault for c in r.checks]
    diagnosed = []
    never = 0
    for r in with_fault:
        first = next((c.offset_s for c in r.checks if c.keys and r.right(c.keys[0])), None)
        if first is None:
            never += 1
        else:
            diagnosed.append(first)
    latencies = [c.ms for r in runs for c in r.checks]
    per_scenario: dict[str, dict[str, Any]] = {}
    for (r, c), ok1, ok3 in zip(scored, top1, top3, strict=True):
        row = per_scenario.setdefault(r.scenario, {"incidents": 0, "ac1": 0, "ac3": 0,
                                                   "all_causes_top3": 0, "confidence": [],
                                                   "top": {}})
        row["incidents"] += 1
        row["ac1"] += ok1
        row["ac3"] += ok3
        keys = c.keys[:3] if c else []
        row["all_causes_top3"] += all(k in keys for k in r.truth) if r.truth else ok3
        row["confidence"].append(c.confidences[0] if c and c.confidences else 0.0)
        top = c.keys[0] if c and c.keys else "-"
        row["top"][top] = row["top"].get(top, 0) + 1
    table = {name: {"incidents": row["incidents"], "ac1": round(row["ac1"] / row["incidents"], 3),
                    "ac3": round(row["ac3"] / row["incidents"], 3),
                    "all_causes_top3": round(row["all_causes_top3"] / row["incidents"], 3),
                    "mean_confidence": round(statistics.fmean(row["confidence"]), 3),
                    "top1": row["top"]}
             for name, row in sorted(per_scenario.items())}
    no_fault = [(r, r.at(SCORE_AT_S)) for r in runs if not (r.truth or r.estate_wide)]
    return {
        "incidents": len(with_fault),
        "ac_at_1": round(statistics.fmean(top1), 4) if top1 else None,
        "ac_at_3": round(statistics.fmean(top3), 4) if top3 else None,
        "ece": round(ece(pairs), 4),
        "ece_all_checkpoints": round(ece(every), 4),
        "mean_top1_confidence": round(statistics.fmean(c for c, _ in pairs), 4) if pairs else None,
        "mean_time_to_diagnosis_s": round(statistics.fmean(diagnosed), 1) if diagnosed else None,
        "not_diagnosed_in_10_min": never,
        "investigate_ms_p50": round(_percentile(latencies, 0.50), 2),
        "investigate_ms_p95": round(_percentile(latencies, 0.95), 2),
        "investigate_ms_max": round(max(latencies, default=0.0), 2),
        "investigations": len(latencies),
        "no_fault_incidents": [{"scenario": r.scenario, "seed": r.seed,
                                "top": c.keys[0] if c and c.keys else None,
                                "confidence": c.confidences[0] if c and c.confidences else 0.0}
                               for r, c in no_fault],
        "per_scenario": table,
    }


def seeds_for(scenario: str, count: int) -> list[int]:
    """The scenario's own seed, then others derived from it (never the fitting seeds)."""
    from console.estate import load_scenario

    own = load_scenario(scenario).seed
    return [own + 7919 * i for i in range(count)]


def _nll(scores: Sequence[float], right: Sequence[int], t: float, b: float) -> float:
    top = max([*scores, b])
    weights = [math.exp((s - top) / t) for s in scores]
    none = math.exp((b - top) / t)
    p = (sum(weights[i] for i in right) if right else none) / (sum(weights) + none)
    return -math.log(max(p, 1e-300))


def fit(runs: Sequence[IncidentRun]) -> dict[str, Any]:
    """The temperature and "none" score of the calibration, by maximum likelihood.

    Every investigation of an incident counts, each incident weighing one (so a long one
    does not outvote a short one); the right answer of an incident with no fault is
    "none". On the built-in scenarios the investigator is right at every check, and plain
    maximum likelihood would then drive the temperature to zero (a hard threshold, sure of
    everything). Laplace's rule of succession keeps it honest: one more incident is added
    that the investigator got wrong - the median incident's ranking, with its runner-up
    the right answer - so the fit says "right about (n+1)/(n+2) of the time", not always.
    """
    incidents = []
    for r in runs:
        checks = [(c.scores, [i for i, k in enumerate(c.keys) if r.right(k)]) for c in r.checks]
        if checks:
            incidents.append(checks)
    ranked = sorted((c.scores for r in runs if (r.truth or r.estate_wide)
                     for c in [r.at(SCORE_AT_S)] if c is not None and len(c.scores) > 1),
                    key=lambda scores: scores[0])
    if ranked:
        incidents.append([(ranked[len(ranked) // 2], [1])])

    def loss(t: float, b: float) -> float:
        return sum(sum(_nll(s, right, t, b) for s, right in checks) / len(checks)
                   for checks in incidents) / len(incidents)

    grid = [(0.05 + 0.05 * i, 0.25 * j) for i in range(40) for j in range(25)]
    t, b = min(grid, key=lambda tb: loss(*tb))
    for step in (0.02, 0.005):  # refine around the best point of the coarse grid
        near = [(t + step * i, b + step * 5 * j) for i in range(-5, 6) for j in range(-5, 6)
                if t + step * i > 0.01]
        t, b = min(near, key=lambda tb: loss(*tb))
    return {"temperature": round(t, 3), "null_score": round(b, 3),
            "mean_nll": round(loss(t, b), 5), "incidents": len(incidents) - 1,
            "checks": sum(len(c) for c in incidents) - 1}


METHODS = ("watchfloor", "zscore", "correlation")


def _accuracy(positions: Sequence[int | None]) -> dict[str, float | int]:
    n = len(positions)
    at = [sum(1 for p in positions if p is not None and p <= k) / n if n else 0.0
          for k in range(1, 6)]
    return {"cases": n, "ac_at_1": round(at[0], 4), "ac_at_3": round(at[2], 4),
            "avg_at_5": round(statistics.fmean(at), 4)}


def rank_recording(recording: Any) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """Each method's ranking of services for one recording, best first, and what the
    investigator could not check (its investigation gaps). The investigator lists every
    candidate, as `watchfloor investigate` does."""
    from agents.investigator import Investigator, InvestigatorSettings
    from benchmarks.rca_baselines import correlation_ranking, zscore_ranking
    from console.investigate_cli import investigation, settings_for

    done = investigation(recording, Investigator, InvestigatorSettings,
                         max_hypotheses=1000, rank_all=True)
    incident = done.incident
    ours: list[str] = []
    for h in done.hypotheses:
        if h.service not in ours:
            ours.append(h.service)
    baseline_end = incident.opened_at - settings_for(recording, incident.opened_at,
                                                     InvestigatorSettings).baseline_gap
    return ({"watchfloor": ours,
             "zscore": zscore_ranking(recording, incident.opened_at, baseline_end),
             "correlation": correlation_ranking(recording, incident.opened_at, baseline_end)},
            done.gaps)


def _best_baseline(by: Mapping[str, Sequence[int | None]]) -> str:
    """The baseline with the higher AC@1 in this family (AC@3 on a tie)."""
    def key(method: str) -> tuple[float, float]:
        acc = _accuracy(by[method])
        return (float(acc["ac_at_1"]), float(acc["ac_at_3"]))

    return max((m for m in METHODS if m != "watchfloor"), key=key)


def _holds(by: Mapping[str, Sequence[int | None]]) -> bool:
    """The investigator's AC@1 and AC@3 are each at least the best baseline's there."""
    ours = _accuracy(by["watchfloor"])
    return all(ours[k] >= max(_accuracy(by[m])[k] for m in METHODS if m != "watchfloor")
               for k in ("ac_at_1", "ac_at_3"))


def run_datasets(root: str) -> dict[str, Any]:
    from pathlib import Path

    from console.recording import RecordingError
    from benchmarks.rca_families import family
    from console.recording_adapters import dataset_cases, open_recording

    started = time.perf_counter()
    cases = dataset_cases(Path(root))
    if not cases:
        raise SystemExit(f"{root}: no recorded incidents found")
    positions: dict[str, dict[str, list[int | None]]] = {}
    families: dict[str, dict[str, list[int | None]]] = {}
    empty: dict[str, int] = {}  # per family: cases the investigator named no service for
    unreadable: list[str] = []
    rows = []
    for case in cases:
        try:
            recording = open_recording(case)
        except RecordingError as exc:
            unreadable.append(str(exc))
            continue
        if recording.truth is None:
            continue
        truth = set(recording.truth.services)
        ranked, gaps = rank_recording(recording)
        scenario = "/".join(recording.name.split("/")[:2])
        kind = family(case, recording.name)
        empty[kind] = empty.get(kind, 0) + (not ranked["watchfloor"])
        row: dict[str, Any] = {"case": recording.name, "family": kind, "truth": sorted(truth),
                               "investigation_gaps": gaps}
        for method in METHODS:
            pos = next((i for i, s in enumerate(ranked[method], 1) if s in truth), None)
            positions.setdefault(scenario, {}).setdefault(method, []).append(pos)
            positions.setdefault("all", {}).setdefault(method, []).append(pos)
            families.setdefault(kind, {}).setdefault(method, []).append(pos)
            row[method] = {"rank": pos, "top3": ranked[method][:3]}
        rows.append(row)
    per = {name: {method: _accuracy(by[method]) for method in METHODS}
           for name, by in sorted(positions.items()) if name != "all"}
    per_family = {name: {**{method: _accuracy(by[method]) for method in METHODS},
                         "best_baseline": _best_baseline(by),
                         "at_least_best_baseline": _holds(by),
                         "without_candidates": empty.get(name, 0)}
                  for name, by in sorted(families.items())}
    return {"dataset": str(root),
            "overall": {m: _accuracy(positions.get("all", {}).get(m, [])) for m in METHODS},
            "per_family": per_family, "per_scenario": per, "cases": rows,
            "without_candidates": sum(empty.values()),
            "with_gaps": sum(1 for r in rows if r["investigation_gaps"]),
            "unreadable": unreadable,
            "wall_seconds": round(time.perf_counter() - started, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from agents.investigator import InvestigatorSettings

    if getattr(args, "dataset", None):
        return run_datasets(args.dataset)

    count = int(getattr(args, "seeds", 3) or 3)
    names = [*fault_scenarios(), "quiet-day"]
    if getattr(args, "fit", False):
        wide = InvestigatorSettings(max_hypotheses=1000, min_confidence=0.0)
        runs = [r for name in names for seed in FIT_SEEDS for r in play(name, seed,
                                                                         settings=wide)]
        return {"fit_seeds": list(FIT_SEEDS), **fit(runs)}
    started = time.perf_counter()
    runs = [r for name in names for seed in seeds_for(name, count) for r in play(name, seed)]
    out = summarise(runs)
    out["seeds_per_scenario"] = count
    out["wall_seconds"] = round(time.perf_counter() - started, 1)
    return out


def _main() -> None:
    import json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_rca")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--dataset", default=None, metavar="DIR")
    print(json.dumps(run(parser.parse_args()), indent=1))


if __name__ == "__main__":
    _main()

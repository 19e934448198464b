"""`watchfloor eval`: the agent team replayed against the built-in scenarios, and scored.

Each (scenario, seed) is one headless run (console/runtime.py `run_headless`, by default
at autonomy 3 with a person on call approving every recommendation). Its summary's
`faults` are the ground truth; they are used here to score, never shown to the agents.

An incident is *about* a fault when the fault had begun by the time it opened (a
certificate's warning comes before the certificate expires, so that one always has),
the fault was not fixed more than 15 minutes before, and one of the incident's services
lies within two hops of the faulty service or calls such a service (as
console/evaluation.py attributes alerts); a partition of every service is matched by its
fault class alone. Incidents about no fault (quiet-day's lunchtime bump) are not scored.

Scores (over every run):

- accuracy: top-1 (top-3) - the root cause (or one of the first three hypotheses) names
  the service and fault class of a fault the incident is about;
- calibration: expected calibration error of the top-1 confidence (10 equal-width bins)
  and the reliability table (per bin: count, mean confidence, accuracy);
- playbook selection: the incident's first action runs a runbook that fixes the fault
  (FIXES, from the README's fault table);
- would-be actions: every execution of each run, with its outcome (quiet-day: none);
- auto-resolution rate: faults fixed by an execution that ran without anyone's approval
  / faults; rollback rate: executions rolled back / executions;
- mean time to detect, diagnose and resolve, counted from the start of the fault the
  incident is about (negative for a warning that came before its fault).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.storage.db import data_dir
from console.storage.models import EvalRunRow

if TYPE_CHECKING:
    from datetime import datetime

    from console.service import WatchfloorService

EVAL_SCHEMA = "watchfloor.eval/1"
EVAL_ACTOR, EVAL_ACTION = "system:eval", "eval.run"
EXCLUDED_BY_DEFAULT = ("storm",)  # thousands of alerts for two hours: benchmarks only
QUIET_DAY = "quiet-day"
AFTERMATH_S = 900.0
BINS = 10
RECORDINGS_DIR = "recordings"  # under the user data directory: the operator's saved ones
SEED_STRIDE = 7919  # seeds after the scenario's own (as benchmarks/bench_rca.py derives them)

# fault kind -> the runbooks that fix it (the README's fault table, "fixed by")
FIXES: dict[str, frozenset[str]] = {
    "bad_deploy": frozenset({"rollback-deploy"}),
    "config_error": frozenset({"rollback-deploy"}),
    "memory_leak": frozenset({"rollback-deploy"}),
    "cpu_saturation": frozenset({"toggle-feature-flag"}),
    "cache_stampede": frozenset({"toggle-feature-flag"}),
    "slow_dependency": frozenset({"failover"}),
    "network_partition": frozenset({"failover"}),
    "connection_pool_exhaustion": frozenset({"restart-service"}),
    "queue_backlog": frozenset({"restart-service"}),
    "disk_filling": frozenset({"free-disk"}),
    "certificate_expiry": frozenset({"rotate-certificate"}),
    "traffic_surge": frozenset({"scale-out"}),
}
# the estate actions those runbooks perform (a fault's `fixed_by` names one of these)
FIXING_ACTIONS = frozenset({"rollback", "toggle_feature_flag", "failover", "restart",
                            "free_disk", "rotate_certificate", "scale_out"})


class EvalError(ValueError):
    """A bad scope (an unknown scenario, fewer than one seed): exit 2."""


# --- scope ---------------------------------------------------------------------------------

def default_scenarios() -> list[str]:
    """Every built-in scenario but the storm; quiet-day included (for its would-be
    actions)."""
    from console.estate import builtin_scenarios

    names = [n for n in builtin_scenarios() if n not in EXCLUDED_BY_DEFAULT]
    return [*[n for n in names if n != QUIET_DAY], *[n for n in names if n == QUIET_DAY]]


def check_scope(scenarios: Sequence[str] | None, seeds: int,
                autonomy: int | None = 3) -> list[str]:
    """The scenarios to replay (defaults filled in); EvalError on a bad scope."""
    from console.estate import ScenarioError, builtin_scenarios, load_scenario

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise EvalError(f"--seeds must be at least 1, got {seeds!r}")
    if autonomy is not None and autonomy not in range(6):
        raise EvalError(f"--autonomy must be 0-5, got {autonomy!r}")
    if not scenarios:
        return default_scenarios()
    known = builtin_scenarios()
    out: list[str] = []
    for name in scenarios:
        if name.endswith((".yaml", ".yml")):
            try:
                load_scenario(name)
            except (ScenarioError, OSError) as exc:
                raise EvalError(f"scenario {name}: {exc}") from None
        elif name not in known:
            raise EvalError(f"unknown scenario {name!r} (built-in: {', '.join(known)})")
        if name not in out:
            out.append(name)
    return out


def seeds_for(scenario: str, count: int) -> list[int]:
    """The scenario's own seed, then others derived from it."""
    from console.estate import load_scenario

    own = load_scenario(scenario).seed
    return [own + SEED_STRIDE * i for i in range(count)]


def topology_of(scenario: str) -> dict[str, list[str]]:
    """The dependency graph of the estate the scenario runs on (what a CMDB would give)."""
    from console.estate import load_estate_spec, load_scenario

    spec = load_estate_spec(load_scenario(scenario).estate)
    return {name: list(svc.depends_on) for name, svc in spec.services.items()}


# --- scoring one run -------------------------------------------------------------------------

def _reach(topology: Mapping[str, Iterable[str]], service: str) -> set[str]:
    from console.evaluation import reach

    return reach(topology, service)


def _key(hypothesis: Mapping[str, Any] | None) -> str | None:
    if not hypothesis:
        return None
    return f"{hypothesis['service']}/{hypothesis['fault_class']}"


def faults_of(incident: Mapping[str, Any], faults: Sequence[Mapping[str, Any]],
              reach: Sequence[set[str]]) -> list[int]:
    """Indexes of the faults an incident is about (see the module docstring)."""
    opened = float(incident["opened_at_s"])
    services = set(incident["services"])
    out = []
    for index, fault in enumerate(faults):
        begun = fault["at_s"] <= opened or fault["kind"] == "certificate_expiry"
        fixed = fault.get("fixed_at_s")
        over = fixed is not None and opened > fixed + AFTERMATH_S \
            and fault["kind"] != "certificate_expiry"
        if not begun or over:
            continue
        if fault.get("params", {}).get("all_services") or services & reach[index]:
            out.append(index)
    return out


def _right(key: str | None, about: Sequence[Mapping[str, Any]]) -> bool:
    if key is None:
        return False
    service, _, kind = key.partition("/")
    return any(f["kind"] == kind and (f["service"] == service
                                      or f.get("params", {}).get("all_services"))
               for f in about)


@dataclass
class RunScore:
    """One replayed run: its incidents as cases, and its row of the per-scenario table."""

    scenario: str
    seed: int
    cases: list[dict[str, Any]] = field(default_factory=list)
    faults: int = 0
    auto_resolved: int = 0
    fixed_by_action: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: int = 0
    chain_ok: bool = True
    wall_seconds: float = 0.0


def score_run(summary: Mapping[str, Any], topology: Mapping[str, Iterable[str]]) -> RunScore:
    """Score one headless run summary (schema watchfloor.run/1) against its faults."""
    faults = list(summary["faults"])
    reach = [_reach(topology, f["service"]) for f in faults]
    out = RunScore(summary["scenario"]["name"], int(summary["scenario"]["seed"]),
                   faults=len(faults), chain_ok=bool(summary["audit"]["chain_ok"]),
                   wall_seconds=float(summary.get("wall_seconds") or 0.0))
    for inc in summary["incidents"]:
        about_idx = faults_of(inc, faults, reach)
        about = [faults[i] for i in about_idx]
        ranked = [inc["root_cause"], *inc["alternatives"]] if inc["root_cause"] else []
        top = _key(inc["root_cause"])
        right1 = _right(top, about)
        right3 = any(_right(_key(h), about) for h in ranked[:3])
        # the fault its times count from: the one it named rightly, else the latest begun
        named = [f for f in about if _right(top, [f])]
        begun = [f for f in about if f["at_s"] <= inc["opened_at_s"]]
        origin = (named or begun[-1:] or about[:1] or [None])[0]
        first = inc["actions"][0] if inc["actions"] else None
        fixes = set().union(*(FIXES.get(f["kind"], frozenset()) for f in about))

        def since(at: float | None, fault: Mapping[str, Any] | None = origin) -> float | None:
            return None if at is None or fault is None else round(at - fault["at_s"], 3)

        out.cases.append({
            "scenario": out.scenario, "seed": out.seed, "incident": inc["id"],
            "services": list(inc["services"]),
            "faults": [f"{f['service']}/{f['kind']}" for f in about],
            "top1": top,
            "confidence": float(inc["root_cause"]["confidence"]) if inc["root_cause"] else 0.0,
            "top3": [_key(h) for h in ranked[:3]],
            "correct_top1": right1 if about else None,
            "correct_top3": right3 if about else None,
            "first_runbook": first["runbook"] if first else None,
            "playbook_ok": (first["runbook"] in fixes) if about and first else None,
            "time_to_detect_s": since(inc["opened_at_s"]),
            "time_to_diagnose_s": since(inc["diagnosed_at_s"]),
            "time_to_resolve_s": since(inc["resolved_at_s"]),
        })
    executions = list(summary["actions"])
    out.actions = [{"runbook": a["runbook"], "target": a["target"], "state": a["state"],
                    "autonomous": a["autonomous"], "at_s": a["at_s"]} for a in executions]
    out.rollbacks = sum(1 for a in executions if a["state"] in ("rolled_back",
                                                                "rollback_failed"))
    for fault in faults:
        fixed_at = fault.get("fixed_at_s")
        if fixed_at is None or fault.get("fixed_by") not in FIXING_ACTIONS:
            continue
        fixers = [a for a in executions if a["target"] == fault["service"]
                  and a["runbook"] in FIXES.get(fault["kind"], frozenset())
                  and a["at_s"] <= fixed_at and a["state"] not in ("failed",)]
        if fixers:  # the latest such execution before the fix is the one that fixed it
            out.fixed_by_action += 1
            out.auto_resolved += bool(fixers[-1]["autonomous"])
    return out


# --- scores over runs ------------------------------------------------------------------------

def reliability(pairs: Sequence[tuple[float, bool]], bins: int = BINS
                ) -> tuple[float | None, list[dict[str, Any]]]:
    """Expected calibration error of (confidence, correct) pairs over equal-width bins,
    and the reliability table (None with no pairs)."""
    table = []
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs
                  if low <= c < high or (b == bins - 1 and c >= 1.0)]
        conf = statistics.fmean(c for c, _ in inside) if inside else None
        acc = statistics.fmean(1.0 if ok else 0.0 for _, ok in inside) if inside else None
        if conf is not None and acc is not None:
            total += len(inside) / len(pairs) * abs(acc - conf)
        table.append({"low": round(low, 2), "high": round(high, 2), "count": len(inside),
                      "mean_confidence": None if conf is None else round(conf, 4),
                      "accuracy": None if acc is None else round(acc, 4)})
    return (round(total, 4) if pairs else None), table


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 1) if present else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _row(run: RunScore) -> dict[str, Any]:
    scored = [c for c in run.cases if c["faults"]]
    picked = [c for c in scored if c["playbook_ok"] is not None]
    return {"scenario": run.scenario, "seed": run.seed, "faults": run.faults,
            "incidents": len(run.cases), "scored_incidents": len(scored),
            "top1": _rate(sum(bool(c["correct_top1"]) for c in scored), len(scored)),
            "top3": _rate(sum(bool(c["correct_top3"]) for c in scored), len(scored)),
            "playbook": _rate(sum(bool(c["playbook_ok"]) for c in picked), len(picked)),
            # which run the aggregate's unresolved incidents come from
            "unresolved": [c["incident"] for c in scored if c["time_to_resolve_s"] is None],
            "auto_resolved": run.auto_resolved, "rollbacks": run.rollbacks,
            "actions": run.actions, "chain_ok": run.chain_ok,
            "wall_seconds": round(run.wall_seconds, 3)}


def aggregate(runs: Sequence[RunScore]) -> dict[str, Any]:
    """The scores of an eval (the `scores` of the JSON and of the stored row)."""
    cases = [c for r in runs for c in r.cases]
    scored = [c for c in cases if c["faults"]]
    top1 = [bool(c["correct_top1"]) for c in scored]
    top3 = [bool(c["correct_top3"]) for c in scored]
    ece, table = reliability([(c["confidence"], ok) for c, ok in zip(scored, top1,
                                                                      strict=True)])
    picked = [c for c in scored if c["playbook_ok"] is not None]
    actions = [a for r in runs for a in r.actions]
    faults = sum(r.faults for r in runs)
    quiet = [r for r in runs if r.scenario == QUIET_DAY]
    return {
        "runs": len(runs), "faults": faults, "incidents": len(cases),
        "scored_incidents": len(scored), "unattributed_incidents": len(cases) - len(scored),
        "accuracy": {"top1": _rate(sum(top1), len(top1)), "top3": _rate(sum(top3), len(top3))},
        "calibration": {"ece": ece, "bins": BINS, "reliability": table},
        "playbook_selection": {"accuracy": _rate(sum(bool(c["playbook_ok"]) for c in picked),
                                                 len(picked)),
                               "incidents_with_action": len(picked),
                               "incidents_without_action": len(scored) - len(picked)},
        "auto_resolution": {"rate": _rate(sum(r.auto_resolved for r in runs), faults),
                            "auto_resolved": sum(r.auto_resolved for r in runs),
                            "fixed_by_action": sum(r.fixed_by_action for r in runs)},
        "rollback": {"rate": _rate(sum(r.rollbacks for r in runs), len(actions)),
                     "rollbacks": sum(r.rollbacks for r in runs), "actions": len(actions)},
        "mean_time_to_detect_s": _mean(c["time_to_detect_s"] for c in scored),
        "mean_time_to_diagnose_s": _mean(c["time_to_diagnose_s"] for c in scored),
        "mean_time_to_resolve_s": _mean(c["time_to_resolve_s"] for c in scored),
        "unresolved_incidents": sum(1 for c in scored if c["time_to_resolve_s"] is None
                                    and c.get("kind") != "recording"),
        "recordings": sum(1 for r in runs if r.scenario.startswith("recording:")),
        "quiet_day_actions": sum(len(r.actions) for r in quiet) if quiet else None,
        "audit_ok": all(r.chain_ok for r in runs),
        "per_scenario": [_row(r) for r in runs],
    }


# --- replaying -------------------------------------------------------------------------------

def replay(scenarios: Sequence[str], *, seeds: int = 1, autonomy: int | None = 3,
           approve: str = "all",
           progress: Callable[[str, int], None] | None = None,
           on_summary: Callable[[str, Mapping[str, Any]], None] | None = None
           ) -> tuple[dict[str, Any], list[RunScore]]:
    """Run every (scenario, seed) headless and score it; returns the scope and the runs.
    `on_summary` sees each run's summary too (the per-fault scores need it whole)."""
    from console.runtime import run_headless

    names = check_scope(scenarios, seeds, autonomy)
    scope: dict[str, Any] = {"scenarios": names, "seeds": {}, "autonomy": autonomy,
                             "approve": approve}
    runs = []
    for name in names:
        topology = topology_of(name)
        scope["seeds"][name] = seeds_for(name, seeds)
        for seed in scope["seeds"][name]:
            if progress is not None:
                progress(name, seed)
            summary = run_headless(name, seed=seed, autonomy=autonomy, approve=approve)
            runs.append(score_run(summary, topology))
            if on_summary is not None:
                on_summary(name, summary)
    return scope, runs


def score_recording(folder: Path, investigator_class: Any, settings_class: Any) -> RunScore:
    """Investigate one saved recording (or a PetShop / Nezha case) and score the ranking
    against its `truth`: a case like an incident's, without actions or times (a recording
    is telemetry after the fact). RecordingError when it cannot be read."""
    from console.investigate_cli import investigate
    from console.recording_adapters import open_recording

    recording = open_recording(folder)
    incident, found = investigate(recording, investigator_class, settings_class,
                                  max_hypotheses=50)
    truth = recording.truth
    if truth is not None and truth.fault_class is None:
        found = [h for i, h in enumerate(found)  # only the service is known: rank services
                 if all(g.service != h.service for g in found[:i])]
    ranked = [f"{h.service}/{h.fault_class}" for h in found]

    def right(key: str | None) -> bool:
        if key is None or truth is None:
            return False
        service, _, fault = key.partition("/")
        return service in truth.services and (truth.fault_class in (None, fault))

    out = RunScore(f"recording:{recording.name}", 0, faults=1 if truth else 0)
    top = ranked[0] if ranked else None
    faults = [f"{s}/{truth.fault_class or '*'}" for s in truth.services] if truth else []
    out.cases.append({
        "scenario": out.scenario, "seed": 0, "incident": None, "kind": "recording",
        "services": list(incident.services), "faults": faults, "top1": top,
        "confidence": float(found[0].confidence) if found else 0.0, "top3": ranked[:3],
        "correct_top1": right(top) if truth else None,
        "correct_top3": any(right(k) for k in ranked[:3]) if truth else None,
        "first_runbook": None, "playbook_ok": None, "time_to_detect_s": None,
        "time_to_diagnose_s": None, "time_to_resolve_s": None})
    return out


def saved_recordings() -> list[Path]:
    """Recordings the operator keeps in `<user data dir>/recordings/` (each a folder)."""
    from console.recording_adapters import dataset_cases

    root = data_dir() / RECORDINGS_DIR
    return dataset_cases(root) if root.is_dir() else []


# --- storage ---------------------------------------------------------------------------------

class EvalRepo:
    """The eval_runs table."""

    def add(self, session: Session, *, at: datetime, scope: Mapping[str, Any],
            scores: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> int:
        row = EvalRunRow(at=at, scope=dict(scope), scores=dict(scores),
                         cases=[dict(c) for c in cases])
        session.add(row)
        session.flush()
        return row.id

    def get(self, session: Session, eval_id: int) -> dict[str, Any] | None:
        row = session.get(EvalRunRow, eval_id)
        return None if row is None else self._plain(row)

    def recent(self, session: Session, limit: int = 20) -> list[dict[str, Any]]:
        rows = session.scalars(select(EvalRunRow).order_by(EvalRunRow.id.desc()).limit(limit))
        return [self._plain(r) for r in rows]

    @staticmethod
    def _plain(row: EvalRunRow) -> dict[str, Any]:
        return {"id": row.id, "at": row.at.isoformat(), "scope": dict(row.scope),
                "scores": dict(row.scores), "cases": list(row.cases)}


def headline(scores: Mapping[str, Any]) -> dict[str, Any]:
    """The figures the audit record carries."""
    return {"top1": scores["accuracy"]["top1"], "top3": scores["accuracy"]["top3"],
            "ece": scores["calibration"]["ece"],
            "playbook": scores["playbook_selection"]["accuracy"],
            "auto_resolution": scores["auto_resolution"]["rate"],
            "rollback": scores["rollback"]["rate"],
            "quiet_day_actions": scores["quiet_day_actions"], "audit_ok": scores["audit_ok"],
            "per_fault_top1": scores.get("per_fault", {}).get("accuracy", {}).get("top1")}


def store(service: WatchfloorService, scope: Mapping[str, Any],
          runs: Sequence[RunScore], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Score the runs, keep the eval in eval_runs and audit it; returns the report
    (`schema`, `id`, `at`, `scope`, `scores`, `cases`). `extra` scores (the per-fault
    ones) are kept beside the others."""
    scores = {**aggregate(runs), **(extra or {})}
    cases = [c for r in runs for c in r.cases]
    at = service.clock.now()
    with service.db.sessions() as session:
        eval_id = EvalRepo().add(session, at=at, scope=scope, scores=scores, cases=cases)
        session.commit()
    service.record(actor=EVAL_ACTOR, action=EVAL_ACTION, target=f"eval:{eval_id}",
                   reason=f"{len(runs)} run(s) of {len(scope['scenarios'])} scenario(s)",
                   inputs=dict(scope), outputs=headline(scores))
    return {"schema": EVAL_SCHEMA, "id": eval_id, "at": at.isoformat(), "scope": dict(scope),
            "scores": scores, "cases": cases}


def evaluate(service: WatchfloorService, scenarios: Sequence[str] | None = None, *,
             seeds: int = 1, autonomy: int | None = 3, approve: str = "all",
             progress: Callable[[str, int], None] | None = None,
             recordings: Sequence[Path] = (), investigator: tuple[Any, Any] | None = None,
             replay_scenarios: bool = True) -> dict[str, Any]:
    """Replay, score, store and audit (EvalError on a bad scope, before anything runs).
    `recordings` are investigated with `investigator` (its class and settings class, as
    the composition root gives them) and scored beside the scenarios."""
    names = check_scope(scenarios, seeds, autonomy)
    if recordings and investigator is None:
        raise EvalError("recordings need the investigator to replay them")
    from console.recording import RecordingError

    scored: list[RunScore] = []
    for folder in recordings:  # all read before any scenario runs: a bad one stops it all
        try:
            scored.append(score_recording(folder, *investigator))  # type: ignore[misc]
        except RecordingError as exc:
            raise EvalError(str(exc)) from None
    from console.fault_scoring import FaultTally

    per_fault = FaultTally()
    if replay_scenarios:
        scope, runs = replay(names, seeds=seeds, autonomy=autonomy, approve=approve,
                             progress=progress, on_summary=per_fault)
    else:
        scope, runs = {"scenarios": [], "seeds": {}, "autonomy": autonomy,
                       "approve": approve}, []
    scope["recordings"] = [str(p) for p in recordings]
    faults = per_fault.scores()
    return store(service, scope, [*runs, *scored],
                 extra=None if faults is None else {"per_fault": faults})

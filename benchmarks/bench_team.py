"""The whole agent team over every built-in fault scenario and several seeds.

Each (scenario, seed) is a headless run as `watchfloor eval` replays it (autonomy 3, a
person on call approving every recommendation) and is scored the same way
(console/evaluate.py): RCA AC@1 / AC@3 and ECE of the incidents' root causes against the
injected faults, mean time to detect / diagnose / resolve (simulated seconds from the
start of the fault), auto-resolution and rollback rates.

Latency: from the IncidentsUpdated event that opened an incident to the first
`recommendation.create` audit record for that incident (its preview computed), both
observed on the run's bus by subscriptions added when the team starts, timed with
time.perf_counter at each event (wall clock, this process, no LLM unless
$WATCHFLOOR_LLM_URL is set). Incidents that never got a recommendation are counted apart.

The runs go through `run_headless` in this process with the garbage collector's
thresholds that the `watchfloor run --headless` and `eval` commands set
(console/collector.py), restored afterwards.

Targets (issue 5): AC@1 >= 0.95, ECE <= 0.05, latency p95 <= 100 ms without an LLM.

With `--generated N [--seed S]` the team also plays N generated scenarios
(console/scenario_gen.py; S defaults to the first report seed) and the figures per
injected fault (console/fault_scoring.py: AC@1, AC@3, ECE, wrong and ineffective actions,
escalations, times, by family) are printed under `generated`, with the same latency.
Targets (issue 19), on report seeds: AC@1 >= 0.95, AC@3 >= 0.99, ECE <= 0.05, no action
on a healthy service, none that made things worse, every fault with no safe fix escalated
within 10 simulated minutes of its diagnosis after at most one ineffective action.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def fault_scenarios() -> list[str]:
    from console.estate import load_scenario
    from console.estate.spec import FaultEntry, builtin_scenarios

    return [name for name in builtin_scenarios()
            if any(isinstance(e, FaultEntry) for e in load_scenario(name).timeline)]


class Stopwatch:
    """Watches one run's bus: when each incident opened, when it was first recommended."""

    def __init__(self) -> None:
        self.opened: dict[int, float] = {}
        self.recommended: dict[int, float] = {}
        self.runtime: Any = None

    def attach(self, runtime: Any) -> None:
        from console.events import AuditAppended, IncidentsUpdated

        self.runtime = runtime
        runtime.bus.subscribe(IncidentsUpdated, self._on_incidents)
        runtime.bus.subscribe(AuditAppended, self._on_audit)

    def _on_incidents(self, event: Any) -> None:
        now = time.perf_counter()
        for incident in event.incidents:
            if incident.state == "open":
                self.opened.setdefault(incident.id, now)

    def _on_audit(self, event: Any) -> None:
        now = time.perf_counter()
        entry = event.entry
        kind, _, ident = entry.target.partition(":")
        if entry.action != "recommendation.create" or kind != "recommendation" \
                or not ident.isdigit():
            return
        rec = self.runtime.service.engine.recommendation(int(ident))  # after the timestamp
        if rec is not None and rec.incident_id is not None:
            self.recommended.setdefault(rec.incident_id, now)

    def latencies_ms(self) -> tuple[list[float], int]:
        done = [(self.recommended[i] - t) * 1000.0 for i, t in self.opened.items()
                if i in self.recommended]
        return done, len(self.opened) - len(done)


@contextmanager
def watching(watches: list[Stopwatch]) -> Iterator[None]:
    """Every runtime that starts its team from now gets a stopwatch on its bus first (so
    the opening is timed before the coordinator plans)."""
    from console.runtime import Runtime

    original = Runtime.start_agents

    def start_agents(self: Runtime, *args: Any, **kwargs: Any) -> Any:
        watch = Stopwatch()
        watch.attach(self)
        watches.append(watch)
        return original(self, *args, **kwargs)

    Runtime.start_agents = start_agents  # type: ignore[method-assign]
    try:
        yield
    finally:
        Runtime.start_agents = original  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gc

    from console import collector

    before = collector.tune()  # as the headless commands run (console/cli.py main)
    try:
        return _run(args)
    finally:
        gc.set_threshold(*before)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from console.evaluate import aggregate, percentile, score_run, seeds_for, topology_of
    from console.runtime import run_headless

    count = int(getattr(args, "seeds", 2) or 2)
    names = fault_scenarios()
    latencies: list[float] = []
    never = 0
    runs = []
    started = time.perf_counter()
    for name in names:
        topology = topology_of(name)
        for seed in seeds_for(name, count):
            watches: list[Stopwatch] = []
            with watching(watches):
                summary = run_headless(name, seed=seed, autonomy=3, approve="all")
            runs.append(score_run(summary, topology))
            for watch in watches:
                done, missing = watch.latencies_ms()
                latencies += done
                never += missing
    scores = aggregate(runs)
    out: dict[str, Any] = {
        "scenarios": len(names), "seeds_per_scenario": count, "runs": len(runs),
        "faults": scores["faults"], "incidents": scores["incidents"],
        "scored_incidents": scores["scored_incidents"],
        "ac_at_1": scores["accuracy"]["top1"], "ac_at_3": scores["accuracy"]["top3"],
        "ece": scores["calibration"]["ece"],
        "playbook_selection": scores["playbook_selection"]["accuracy"],
        "mean_time_to_detect_s": scores["mean_time_to_detect_s"],
        "mean_time_to_diagnose_s": scores["mean_time_to_diagnose_s"],
        "mean_time_to_resolve_s": scores["mean_time_to_resolve_s"],
        "unresolved_incidents": scores["unresolved_incidents"],
        "auto_resolution_rate": scores["auto_resolution"]["rate"],
        "rollback_rate": scores["rollback"]["rate"],
        "actions": scores["rollback"]["actions"],
        "recommend_ms_p50": _ms(percentile(latencies, 0.50)),
        "recommend_ms_p95": _ms(percentile(latencies, 0.95)),
        "recommend_ms_max": _ms(max(latencies, default=None)),
        "recommended_incidents": len(latencies), "incidents_never_recommended": never,
        "llm": bool(os.environ.get("WATCHFLOOR_LLM_URL")),
        "audit_ok": scores["audit_ok"],
        "per_scenario": {f"{r['scenario']}@{r['seed']}": {
            "top1": r["top1"], "top3": r["top3"], "playbook": r["playbook"],
            "unresolved_incidents": r["unresolved"],
            "actions": [f"{a['runbook']}@{a['target']} {a['state']}" for a in r["actions"]]}
            for r in scores["per_scenario"]},
        "targets": {"ac_at_1": ">= 0.95", "ece": "<= 0.05", "recommend_ms_p95": "<= 100"},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    generated = getattr(args, "generated", None)
    if generated:
        out["generated"] = _generated(generated, getattr(args, "seed", None))
    return out


def _generated(count: int, seed: int | None) -> dict[str, Any]:
    """The team over `count` generated scenarios, scored per injected fault."""
    import tempfile
    from pathlib import Path

    from console.fault_scoring import EstateFacts, aggregate_faults, score_faults
    from console.runtime import run_headless
    from console.scenario_gen import DEFAULT_REPORT_SEED, family_of, split_of, write

    seed = DEFAULT_REPORT_SEED if seed is None else seed
    started = time.perf_counter()
    latencies: list[float] = []
    never = 0
    fault_runs = []
    with tempfile.TemporaryDirectory(prefix="watchfloor-bench-") as tmp:
        for path in write(count, seed, Path(tmp)):
            watches: list[Stopwatch] = []
            with watching(watches):
                summary = run_headless(str(path), autonomy=3, approve="all")
            family = family_of(summary["scenario"].get("description") or "")
            fault_runs.append(score_faults(summary, EstateFacts.of(str(path)), family))
            for watch in watches:
                done, missing = watch.latencies_ms()
                latencies += done
                never += missing
    from console.evaluate import percentile

    pf = aggregate_faults(fault_runs)
    for block in (pf, *pf["by_family"].values()):
        block["calibration"].pop("reliability", None)
    esc = pf["escalations"]
    return {
        "count": count, "seed": seed, "split": split_of(seed),
        "faults": pf["faults"], "ac_at_1": pf["accuracy"]["top1"],
        "ac_at_3": pf["accuracy"]["top3"], "ece": pf["calibration"]["ece"],
        "actions_on_healthy_services": pf["actions"]["on_healthy_services"],
        "actions_made_worse": pf["actions"]["made_worse"],
        "ineffective_actions": pf["actions"]["ineffective"],
        "no_safe_fix_faults": esc["no_safe_fix_faults"],
        "no_safe_fix_escalated_in_time": esc["no_safe_fix_escalated_in_time"],
        "no_safe_fix_over_one_ineffective": esc["no_safe_fix_over_one_ineffective"],
        "wrong_escalations": esc["wrong"],
        "recommend_ms_p50": _ms(percentile(latencies, 0.50)),
        "recommend_ms_p95": _ms(percentile(latencies, 0.95)),
        "incidents_never_recommended": never,
        "per_fault": pf,
        "targets": {"ac_at_1": ">= 0.95", "ac_at_3": ">= 0.99", "ece": "<= 0.05",
                    "actions_on_healthy_services": "0", "actions_made_worse": "0",
                    "no_safe_fix_escalated_in_time": "= no_safe_fix_faults",
                    "no_safe_fix_over_one_ineffective": "0"},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _main() -> None:
    import json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_team")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--generated", type=int, default=None, metavar="N")
    parser.add_argument("--seed", type=int, default=None, metavar="S")
    print(json.dumps(run(parser.parse_args()), indent=1))


if __name__ == "__main__":
    _main()

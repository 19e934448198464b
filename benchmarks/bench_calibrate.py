"""Fit the investigator's weights and calibration on fit seeds, report them on seeds
never used for it.

The fixed split (console/scenario_gen.py, README): generator seeds 1000-1999 fit,
seeds from 2000 report. The fit set is `--fit-count` generated scenarios from
`--fit-seed` plus every built-in scenario at seeds 1000.. (`--builtin-fit-seeds` of
them); the report set is `--report-count` generated scenarios from `--report-seed` plus
every built-in scenario at seeds 2000.. (`--builtin-report-seeds`). Each scenario is
played and investigated as bench_rca does (every 30 s for ten minutes after an
incident opens); the evidence weights, the temperature and the "none of these" score
are fitted together by maximum likelihood of the right answer of each cause
(benchmarks/fit_weights.py). The report set is then scored twice, with the shipped
constants and with the fitted ones: AC@1, AC@3 and ECE of the top-1 confidence three
minutes in, overall and per family. `--write` stores the fitted constants with how they
were fitted in resources/calibration/investigator.json (what the investigator loads).

    python -m benchmarks.bench_calibrate --fit-count 40 --report-count 40 [--write]

With `--report-count 0 --builtin-report-seeds 0` it only fits (and writes); the team's
figures on report seeds come from `watchfloor eval --generated N --seed 2000`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "resources" / "calibration" / "investigator.json"


def _generated(count: int, seed: int, folder: Path) -> list[str]:
    from console.scenario_gen import write

    return [str(p) for p in write(count, seed, folder)] if count > 0 else []


def _family(scenario: str) -> str:
    from console.estate import load_scenario
    from console.scenario_gen import family_of

    return family_of(load_scenario(scenario).description) or f"builtin:{scenario}"


def _play(plays: Sequence[tuple[str, int | None]], settings: Any,
          investigator_class: Any = None, check_for_s: float | None = None) -> list[Any]:
    from benchmarks.bench_rca import CHECK_FOR_S, play

    return [r for name, seed in plays
            for r in play(name, seed, settings=settings, investigator_class=investigator_class,
                          check_for_s=check_for_s or CHECK_FOR_S)]


# The fit investigates each incident for this long after it opens: a fault that joins an
# open incident later (several causes at once) is in the fit too, not only the first.
FIT_CHECK_FOR_S = 1800.0


MAX_MEMBERS = 12  # a cause's best candidates that the fit reads (the rest weigh nothing)


def _keeping() -> Any:
    """An investigator that keeps each investigation's causes with their candidates'
    features (what the weights are fitted on)."""
    from agents import investigator as module
    from benchmarks.fit_weights import member

    class Keeping(module.Investigator):
        seen: list[list[Any]] | None = None

        def _causes(self, ranked: Any, views: Any) -> Any:
            groups = super()._causes(ranked, views)
            self.seen = [[member(f"{c.service}/{c.fault_class}", c.features, c.keep)
                          for c in g.members[:MAX_MEMBERS]] for g in groups]
            return groups

    return Keeping


def _with_weights(weights: dict[str, float]) -> Any:
    """The investigator's module-level weights set to `weights` while a report runs."""
    import contextlib

    from agents import investigator, investigator_scoring

    names = {"metric": "W_METRIC", "change": "W_CHANGE", "log": "W_LOG", "alert": "W_ALERT",
             "trend": "W_TREND", "deeper": "W_DEEPER"}

    @contextlib.contextmanager
    def patched() -> Any:
        saved = {n: getattr(investigator, n) for n in names.values()}
        try:
            for kind, name in names.items():
                setattr(investigator, name, weights[kind])
                setattr(investigator_scoring, name, weights[kind])
            yield
        finally:
            for name, value in saved.items():
                setattr(investigator, name, value)
                setattr(investigator_scoring, name, value)

    return patched()


def _score(runs: Sequence[Any]) -> dict[str, Any]:
    from benchmarks.bench_rca import SCORE_AT_S, ece, summarise

    whole = summarise(runs)
    families: dict[str, list[tuple[float, bool, bool]]] = {}
    for r in runs:
        if not (r.truth or r.estate_wide):
            continue
        c = r.at(SCORE_AT_S)
        ok1 = bool(c and c.keys and r.right(c.keys[0]))
        ok3 = bool(c and any(r.right(k) for k in c.keys[:3]))
        conf = c.confidences[0] if c and c.confidences else 0.0
        families.setdefault(_family(r.scenario), []).append((conf, ok1, ok3))
    per = {name: {"incidents": len(rows),
                  "ac_at_1": round(statistics.fmean(ok for _, ok, _ in rows), 4),
                  "ac_at_3": round(statistics.fmean(ok for _, _, ok in rows), 4),
                  "ece": round(ece([(c, ok) for c, ok, _ in rows]), 4),
                  "mean_confidence": round(statistics.fmean(c for c, _, _ in rows), 4)}
           for name, rows in sorted(families.items())}
    return {"incidents": whole["incidents"], "ac_at_1": whole["ac_at_1"],
            "ac_at_3": whole["ac_at_3"], "ece": whole["ece"],
            "ece_all_checkpoints": whole["ece_all_checkpoints"],
            "mean_top1_confidence": whole["mean_top1_confidence"],
            "no_fault_incidents": len(whole["no_fault_incidents"]), "per_family": per}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from agents.calibration import load
    from agents.investigator import InvestigatorSettings
    from agents.investigator_scoring import WEIGHTS
    from benchmarks.bench_rca import fault_scenarios
    from benchmarks.fit_weights import cases_of, fit
    from console.scenario_gen import split_of

    fit_seed, report_seed = int(args.fit_seed), int(args.report_seed)
    if split_of(fit_seed) != "fit":
        raise SystemExit(f"--fit-seed {fit_seed} is not a fit seed (1000-1999)")
    if split_of(report_seed) != "report":
        raise SystemExit(f"--report-seed {report_seed} is not a report seed (2000 and up)")
    started = time.perf_counter()
    builtins = [*fault_scenarios(), "quiet-day"]
    shipped = load()
    with tempfile.TemporaryDirectory() as tmp:
        fit_plays = [(p, None) for p in _generated(args.fit_count, fit_seed,
                                                   Path(tmp, "fit"))]
        fit_plays += [(name, 1000 + i) for name in builtins
                      for i in range(args.builtin_fit_seeds)]
        settings = InvestigatorSettings(max_hypotheses=1000, min_confidence=0.0,
                                        temperature=shipped.temperature,
                                        null_score=shipped.null_score)
        fit_runs = _play(fit_plays, settings, _keeping(), FIT_CHECK_FOR_S)
        fitted = fit(cases_of(fit_runs), dict(WEIGHTS), shipped.temperature,
                     shipped.null_score)
        report_plays = [(p, None) for p in _generated(args.report_count, report_seed,
                                                      Path(tmp, "report"))]
        report_plays += [(name, 2000 + i) for name in builtins
                         for i in range(args.builtin_report_seeds)]
        before = after = None  # no report asked for (--report-count 0 and no built-ins)
        if report_plays:
            before = _score(_play(report_plays, InvestigatorSettings(
                temperature=shipped.temperature, null_score=shipped.null_score)))
            with _with_weights(fitted["weights"]):
                after = _score(_play(report_plays, InvestigatorSettings(
                    temperature=fitted["temperature"], null_score=fitted["null_score"])))
    fit_info = {"generated": {"seed": fit_seed, "count": args.fit_count},
                "builtin_seeds": [1000 + i for i in range(args.builtin_fit_seeds)],
                "incidents": len(fit_runs), "causes": fitted["cases"],
                "mean_nll": fitted["mean_nll"],
                "started_from": {"weights": dict(WEIGHTS), "temperature": shipped.temperature,
                                 "null_score": shipped.null_score},
                "date": datetime.now(UTC).date().isoformat(),
                "method": "maximum likelihood of the right answer of each cause of each "
                          "investigation (none of these when no candidate of it is right), "
                          "each incident weighing one, weights, temperature and none score "
                          "together (convex in weight/temperature), the metric weight "
                          "fixing the scale, a small ridge towards the starting weights"}
    out = {"shipped": {"weights": dict(WEIGHTS), "temperature": shipped.temperature,
                       "null_score": shipped.null_score},
           "fitted": {"weights": fitted["weights"], "temperature": fitted["temperature"],
                      "null_score": fitted["null_score"], **fit_info},
           "report": {"generated": {"seed": report_seed, "count": args.report_count},
                      "builtin_seeds": [2000 + i for i in range(args.builtin_report_seeds)],
                      "before": before, "after": after},
           "wall_seconds": round(time.perf_counter() - started, 1)}
    if args.write:
        OUT.write_text(json.dumps({
            "temperature": fitted["temperature"], "null_score": fitted["null_score"],
            "weights": fitted["weights"],
            "fitted_by": "python -m benchmarks.bench_calibrate --write",
            "fit": fit_info,
            "report": None if before is None or after is None else {
                "generated": out["report"]["generated"],
                "builtin_seeds": out["report"]["builtin_seeds"],
                "ece_before": before["ece"], "ece_after": after["ece"],
                "ac_at_1": after["ac_at_1"]}}, indent=2) + "\n", encoding="utf-8")
        out["written"] = str(OUT)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_calibrate")
    p.add_argument("--fit-seed", type=int, default=1000)
    p.add_argument("--fit-count", type=int, default=40)
    p.add_argument("--builtin-fit-seeds", type=int, default=2)
    p.add_argument("--report-seed", type=int, default=2000)
    p.add_argument("--report-count", type=int, default=40)
    p.add_argument("--builtin-report-seeds", type=int, default=1)
    p.add_argument("--write", action="store_true",
                   help="store the fitted constants in resources/calibration/")
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")
    return p


def _main() -> None:
    print(json.dumps(run(parser().parse_args()), indent=1))


if __name__ == "__main__":
    _main()

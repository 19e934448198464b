"""`watchfloor eval --generated N --seed S`: the agent team on N generated scenarios
(console/scenario_gen.py), scored per incident as `eval` does and per injected fault
(console/fault_scoring.py), stored and audited like any eval.

The report says which side of the fixed seed split its seed is on, so a figure measured
on the seeds the weights were fitted on is never read as a held-out one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def evaluate_generated(service: Any, count: int, seed: int, *, seeds: int = 1,
                       autonomy: int | None = 3, approve: str = "all",
                       out: Path | None = None, progress: Any = None) -> dict[str, Any]:
    """Generate, replay, score (per incident and per fault), store and audit. Raises
    GeneratorError on a bad count or folder, before anything runs."""
    from console.evaluate import replay, store
    from console.fault_scoring import FaultTally
    from console.scenario_gen import generate, split_of, write

    generate(count, seed)  # a bad count fails here, before a folder is made
    tally = FaultTally()
    with tempfile.TemporaryDirectory(prefix="watchfloor-generated-") as tmp:
        folder = out if out is not None else Path(tmp)
        paths = [str(p) for p in write(count, seed, folder)]
        scope, runs = replay(paths, seeds=seeds, autonomy=autonomy, approve=approve,
                             progress=progress, on_summary=tally)
    names = {p: Path(p).stem for p in paths}  # the folder may be gone: keep the names
    scope["scenarios"] = [names[p] for p in scope["scenarios"]]
    scope["seeds"] = {names[p]: s for p, s in scope["seeds"].items()}
    scope["generated"] = {"count": count, "seed": seed, "split": split_of(seed),
                          "folder": None if out is None else str(out)}
    return store(service, scope, runs, extra={"per_fault": tally.scores()})


def run_generated(args: argparse.Namespace, runtime: Any) -> int:
    """The CLI side: check the options, run, print."""
    from console.evaluate import EvalError, check_scope
    from console.scenario_gen import DEFAULT_REPORT_SEED, GeneratorError

    if args.generated is None:
        sys.stderr.write("watchfloor: --seed and --out go with --generated N\n")
        return EXIT_BAD_INPUT
    if args.scenarios or args.recordings:
        sys.stderr.write("watchfloor: --generated replaces --scenario and --recording; "
                         "give one or the other\n")
        return EXIT_BAD_INPUT
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        sys.stderr.write(f"watchfloor: --out {args.out}: not a folder\n")
        return EXIT_BAD_INPUT
    try:
        check_scope(["quiet-day"], args.seeds, args.autonomy)
    except EvalError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT

    def progress(name: str, seed: int) -> None:
        sys.stderr.write(f"replaying {Path(name).stem} (seed {seed})\n")

    try:
        report = evaluate_generated(
            runtime.service, args.generated,
            DEFAULT_REPORT_SEED if args.seed is None else args.seed, seeds=args.seeds,
            autonomy=args.autonomy, approve=args.approve, out=args.out,
            progress=None if args.json or not sys.stderr.isatty() else progress)
    except (GeneratorError, EvalError) as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        from console.eval_cli import render

        sys.stdout.write(render(report) + "\n\n" + render_faults(report) + "\n")
    return EXIT_OK if report["scores"]["audit_ok"] else EXIT_FAILED


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _line(name: str, b: Mapping[str, Any]) -> str:
    a, e = b["actions"], b["escalations"]
    ece = b["calibration"]["ece"]
    return (f"{name:12} {b['runs']:>4} {b['faults']:>6} {_pct(b['accuracy']['top1']):>5} "
            f"{_pct(b['accuracy']['top3']):>5} {'-' if ece is None else f'{ece:.3f}':>6} "
            f"{a['total']:>4} {a['wrong']:>5} {a['ineffective']:>5} "
            f"{e['right']:>3}/{e['wrong']:<3}")


def render_faults(report: Mapping[str, Any]) -> str:
    """The per-fault totals and the table by family."""
    pf = report["scores"]["per_fault"]
    gen = report["scope"].get("generated")
    t = pf["time_to_detect_s"], pf["time_to_diagnose_s"], pf["time_to_resolve_s"]
    e = pf["escalations"]
    lines = [f"per fault: {gen['count']} generated scenario(s), seed {gen['seed']} "
             f"({gen['split']} split)" if gen else f"per fault: {pf['faults']} fault(s)", "",
             f"{'family':12} {'runs':>4} {'faults':>6} {'top1':>5} {'top3':>5} {'ECE':>6} "
             f"{'acts':>4} {'wrong':>5} {'ineff':>5} esc(ok/wrong)",
             *(_line(name, block) for name, block in pf["by_family"].items()),
             _line("all", pf), "",
             f"actions: {pf['actions']['on_healthy_services']} on healthy services, "
             f"{pf['actions']['made_worse']} made things worse, "
             f"{pf['actions']['ineffective']} ineffective, {pf['actions']['fixed']} fixed, "
             f"{pf['actions']['mitigated']} mitigated",
             f"no safe fix: {e['no_safe_fix_faults']} fault(s), {e['no_safe_fix_escalated']} "
             f"escalated ({e['no_safe_fix_escalated_in_time']} within 10 min of diagnosis), "
             f"{e['no_safe_fix_over_one_ineffective']} with more than one ineffective action",
             "median time to detect {} s, diagnose {} s, resolve {} s".format(
                 *(x["p50"] if x["p50"] is not None else "-" for x in t))]
    return "\n".join(lines)

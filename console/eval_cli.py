"""`watchfloor eval`: replay the built-in scenarios with the agent team and score it
(console/evaluate.py). The eval is kept in the database given by `--db` and audited
there; each replayed run uses its own private database."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from console.cli_args import bounded_int

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMANDS = ("eval",)


_seeds = bounded_int("--seeds", 1)


def _level(text: str) -> int:
    if text not in {"0", "1", "2", "3", "4", "5"}:
        raise argparse.ArgumentTypeError(f"autonomy level must be 0-5, got {text!r}")
    return int(text)


def add_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    ev = sub.add_parser(
        "eval", parents=[db_parent], help="replay the scenarios with the agent team and score it",
        description="Replay built-in scenarios headless (default: all but storm, quiet-day "
                    "included) and score diagnosis, calibration, playbook selection, actions "
                    "and times against the injected faults. The eval is stored and audited.")
    ev.add_argument("--scenario", action="append", dest="scenarios", default=None,
                    metavar="NAME", help="a built-in scenario (or YAML file); repeatable")
    ev.add_argument("--seeds", type=_seeds, default=1,
                    help="seeds per scenario: its own, then derived ones (default 1)")
    ev.add_argument("--autonomy", type=_level, default=3,
                    help="the runs' autonomy, ceiling and every action class (default 3)")
    ev.add_argument("--approve", choices=["all", "none"], default="all",
                    help="all (default): a person on call approves every recommendation")
    ev.add_argument("--recording", action="append", dest="recordings", default=None,
                    type=Path, metavar="DIR",
                    help="also score the investigator on a recorded incident with its "
                         "truth (a recording, a PetShop or Nezha case, or a folder of them); "
                         "repeatable. Without --scenario, only the recordings are scored. "
                         "Recordings kept in <user data dir>/recordings are always included")
    from console.scenario_split import DEFAULT_REPORT_SEED, FIT_SEEDS
    from console.scenarios_cli import count_arg, seed_arg

    ev.add_argument("--generated", type=count_arg, default=None, metavar="N",
                    help="instead of the built-in scenarios, generate N (as `scenarios "
                         "generate` does) and score them per injected fault, with "
                         "breakdowns by family")
    ev.add_argument("--seed", type=seed_arg, default=None, metavar="S",
                    help=f"with --generated: the generator seed (default "
                         f"{DEFAULT_REPORT_SEED}; {FIT_SEEDS.start}-{FIT_SEEDS.stop - 1} are "
                         f"fit seeds, {FIT_SEEDS.stop} and above report seeds)")
    ev.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="with --generated: keep the generated files in DIR (default: a "
                         "temporary folder, removed afterwards)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    from console.cli_identity import add_actor_options

    add_actor_options(ev)


def dispatch(args: argparse.Namespace, runtime: Any) -> int:
    from console.evaluate import EvalError, check_scope, evaluate

    if args.generated is not None or args.seed is not None or args.out is not None:
        from console.eval_generated import run_generated

        return run_generated(args, runtime)
    try:
        check_scope(args.scenarios, args.seeds, args.autonomy)
    except EvalError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT

    def progress(name: str, seed: int) -> None:
        sys.stderr.write(f"replaying {name} (seed {seed})\n")

    from console.evaluate import saved_recordings
    from console.recording_adapters import dataset_cases

    folders: list[Path] = []
    for given in args.recordings or ():
        if not given.exists():
            sys.stderr.write(f"watchfloor: {given}: no such recording\n")
            return EXIT_BAD_INPUT
        folders += dataset_cases(given) or [given]
    folders += [p for p in saved_recordings() if p not in folders]
    try:
        report = evaluate(runtime.service, args.scenarios, seeds=args.seeds,
                          autonomy=args.autonomy, approve=args.approve,
                          progress=None if args.json or not sys.stderr.isatty() else progress,
                          recordings=folders, investigator=runtime.investigator_classes(),
                          replay_scenarios=not args.recordings or bool(args.scenarios))
    except EvalError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    elif "per_fault" in report["scores"]:
        from console.eval_generated import render_faults

        sys.stdout.write(render(report) + "\n\n" + render_faults(report) + "\n")
    else:
        sys.stdout.write(render(report) + "\n")
    return EXIT_OK if report["scores"]["audit_ok"] else EXIT_FAILED


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def render(report: dict[str, Any]) -> str:
    """The per-scenario table and the totals."""
    s = report["scores"]
    lines = [f"eval #{report['id']}: {s['runs']} run(s), {s['faults']} fault(s), "
             f"{s['incidents']} incident(s) ({s['scored_incidents']} about a fault)", "",
             f"{'scenario':22} {'seed':>6} {'inc':>4} {'top1':>5} {'top3':>5} {'book':>5} "
             f"{'auto':>4} {'rb':>3}  actions"]
    for row in s["per_scenario"]:
        acts = ", ".join(f"{a['runbook']}@{a['target']} {a['state']}"
                         f"{' (auto)' if a['autonomous'] else ''}" for a in row["actions"])
        chain = "" if row["chain_ok"] else "  AUDIT CHAIN BROKEN"
        lines.append(f"{row['scenario']:22} {row['seed']:>6} {row['incidents']:>4} "
                     f"{_pct(row['top1']):>5} {_pct(row['top3']):>5} {_pct(row['playbook']):>5} "
                     f"{row['auto_resolved']:>4} {row['rollbacks']:>3}  {acts or 'none'}{chain}")
    cal = s["calibration"]
    lines += ["",
              f"diagnosis accuracy: top-1 {_pct(s['accuracy']['top1'])}, "
              f"top-3 {_pct(s['accuracy']['top3'])}",
              f"calibration: ECE {_num(cal['ece'], '{:.4f}')} over {cal['bins']} bins",
              *(f"  {b['low']:.1f}-{b['high']:.1f}: {b['count']:>3} incident(s), "
                f"mean confidence {_num(b['mean_confidence'], '{:.3f}')}, "
                f"accuracy {_num(b['accuracy'], '{:.3f}')}"
                for b in cal["reliability"] if b["count"]),
              f"playbook selection: {_pct(s['playbook_selection']['accuracy'])} "
              f"({s['playbook_selection']['incidents_with_action']} incident(s) with an "
              f"action, {s['playbook_selection']['incidents_without_action']} without)",
              f"auto-resolution: {_pct(s['auto_resolution']['rate'])} "
              f"({s['auto_resolution']['auto_resolved']} of {s['faults']} fault(s))",
              f"rollbacks: {_pct(s['rollback']['rate'])} ({s['rollback']['rollbacks']} of "
              f"{s['rollback']['actions']} action(s))",
              f"mean time to detect {_num(s['mean_time_to_detect_s'])} s, diagnose "
              f"{_num(s['mean_time_to_diagnose_s'])} s, resolve "
              f"{_num(s['mean_time_to_resolve_s'])} s",
              "quiet-day actions: " + ("not replayed" if s["quiet_day_actions"] is None
                                       else str(s["quiet_day_actions"])),
              "audit: every run's chain verifies" if s["audit_ok"]
              else "audit: a run's chain does NOT verify"]
    return "\n".join(lines)

"""`watchfloor scenarios`: list the built-in scenarios, or `generate` new ones
(console/scenario_gen.py) to fit and evaluate the agent team on incidents it was not
written against."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from console.cli_args import bounded_int

EXIT_OK, EXIT_BAD_INPUT = 0, 2
COMMAND = "scenarios"


seed_arg = bounded_int("--seed", 0)


def count_arg(text: str) -> int:
    from console.scenario_split import MAX_COUNT

    return bounded_int("--count", 1, MAX_COUNT)(text)


def add_parser(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    from console.scenario_split import DEFAULT_REPORT_SEED, FAMILIES, FIT_SEEDS

    sc = sub.add_parser(COMMAND, parents=[db_parent],
                        help="list the built-in scenarios, or generate new ones",
                        description="Without an action: list the built-in scenarios.")
    actions = sc.add_subparsers(dest="scenarios_action", metavar="ACTION")
    actions.add_parser("list", help="list the built-in scenarios (the default)")
    gen = actions.add_parser(
        "generate", help="write generated scenario files",
        description="Write N scenario files composed at random from every service and fault "
                    "kind of the estate (the same files for the same seed), in the families "
                    f"{', '.join(FAMILIES)}; each file's description starts with its "
                    f"family in brackets. Seeds {FIT_SEEDS.start}-{FIT_SEEDS.stop - 1} are "
                    f"for fitting, {FIT_SEEDS.stop} and above for reporting.")
    gen.add_argument("--count", type=count_arg, required=True, metavar="N",
                     help="how many files (1-10000)")
    gen.add_argument("--seed", type=seed_arg, default=DEFAULT_REPORT_SEED, metavar="S",
                     help=f"generator seed (default {DEFAULT_REPORT_SEED}, a report seed)")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="folder to write into (created if missing)")
    gen.add_argument("--estate", default="default", help="estate the scenarios run on")


def dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "scenarios_action", None) == "generate":
        from console.scenario_gen import GeneratorError, split_of, write

        try:
            paths = write(args.count, args.seed, args.out, args.estate)
        except GeneratorError as exc:
            sys.stderr.write(f"watchfloor: {exc}\n")
            return EXIT_BAD_INPUT
        for path in paths:
            print(path)
        sys.stderr.write(f"{len(paths)} scenario(s) from seed {args.seed} "
                         f"({split_of(args.seed)} split) in {args.out}\n")
        return EXIT_OK
    from console.estate import builtin_scenarios, load_scenario

    for name in builtin_scenarios():
        print(f"{name:20} {load_scenario(name).description}")
    return EXIT_OK

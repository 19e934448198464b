"""Run one benchmark (or `all`) and print its figures; `--json` prints one JSON object."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from typing import Any

from benchmarks import (
    bench_approval,
    bench_audit,
    bench_audit_bundle,
    bench_audit_verify,
    bench_correlation,
    bench_gui,
    bench_handoff,
    bench_maintenance,
    bench_mcp,
    bench_policy,
    bench_providers,
    bench_rca,
    bench_receiver,
    bench_simulation,
    bench_team,
    bench_team_metrics,
    bench_team_store,
    bench_team_sync,
)

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "audit": bench_audit.run,
    "audit-verify": bench_audit_verify.run,
    "audit-bundle": bench_audit_bundle.run,
    "simulation": bench_simulation.run,
    "correlation": bench_correlation.run,
    "policy": bench_policy.run,
    "approval": bench_approval.run,
    "team": bench_team.run,
    "team-store": bench_team_store.run,
    "team-sync": bench_team_sync.run,
    "team-metrics": bench_team_metrics.run,
    "rca": bench_rca.run,
    "receiver": bench_receiver.run,
    "gui": bench_gui.run,
    "providers": bench_providers.run,
    "mcp": bench_mcp.run,
    "handoff": bench_handoff.run,
    "maintenance": bench_maintenance.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--records", type=int, default=3000, help="audit records (audit, audit-verify; audit-bundle: N/10 and N)")
    parser.add_argument("--scenario", default="storm", help="scenario (simulation, handoff)")
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts (correlation)")
    parser.add_argument("--decisions", type=int, default=100_000, help="decisions (policy)")
    parser.add_argument("--approvals", type=int, default=200, help="approvals (approval)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per scenario (team, rca)")
    parser.add_argument("--generated", type=int, default=None, metavar="N",
                        help="also N generated scenarios, scored per fault (team)")
    parser.add_argument("--seed", type=int, default=None, metavar="S",
                        help="generator seed for --generated (default: the first report seed)")
    parser.add_argument("--dataset", default=None, metavar="DIR",
                        help="recorded incidents with known causes (rca): PetShop, Nezha or "
                             "Watchfloor recordings; scores the investigator beside baselines")
    parser.add_argument("--cpu-load", type=int, default=0, dest="cpu_load", metavar="N",
                        help="busy processes competing for the CPU meanwhile (receiver, audit-verify, "
                             "audit-bundle, team-metrics)")
    parser.add_argument("--part", default=None, choices=("lag", "first", "rss", "window"),
                        help="measure only this part (gui: lag, first, rss; --cpu-load "
                             "loads its starts; audit-bundle: window)")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    results = {name: BENCHMARKS[name](args) for name in names}
    report = {"python": platform.python_version(), "machine": platform.machine(),
              "results": results}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, figures in results.items():
            print(f"{name}:")
            for key, value in figures.items():
                print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Headless simulation speed: simulated seconds per wall second for a scenario (default:
the alert storm), the whole pipeline (estate, storage, bus) included."""

from __future__ import annotations

import argparse
import resource
from typing import Any


def run(args: argparse.Namespace) -> dict[str, Any]:
    from console.runtime import run_headless

    summary = run_headless(args.scenario, db_url="sqlite://")
    return {
        "scenario": args.scenario,
        "sim_seconds": summary["sim_seconds"],
        "wall_seconds": summary["wall_seconds"],
        "sim_seconds_per_wall_second": summary["speed"],
        "signals": summary["signals"]["total"],
        "signals_per_wall_second": round(summary["signals"]["total"]
                                         / max(summary["wall_seconds"], 1e-9), 1),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

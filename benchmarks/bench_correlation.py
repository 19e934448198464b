"""Alerts through dedup, correlation and persistence, against a bare SQLite insert.

The alerts are the storm scenario's own notifications (firing and resolved), taken
until `--alerts` of them. The pipeline is what a live run does per batch: store the
signals, then let the correlator agent group them and store incidents, timeline notes
and audit records. The floor inserts the same rows into a bare SQLite table with one
executemany per batch, in the same process, just before.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 500


def _storm_signals(count: int) -> tuple[list[Any], dict[str, list[str]], list[Any], Any]:
    from console.estate import ScenarioPlayer, load_scenario

    player = ScenarioPlayer(load_scenario("storm"))
    signals: list[Any] = []
    while len(signals) < count and not player.finished:
        signals.extend(player.advance(60.0).signals)
    return signals[:count], player.estate.topology(), player.ground_truth_faults(), player


def _floor(signals: list[Any], folder: Path) -> float:
    con = sqlite3.connect(folder / "floor.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE signals (id INTEGER PRIMARY KEY, source TEXT, kind TEXT, "
                "name TEXT, service TEXT, severity TEXT, status TEXT, fingerprint TEXT, "
                "at TEXT, labels TEXT, annotations TEXT)")
    start = time.perf_counter()
    for i in range(0, len(signals), BATCH):
        rows = [(s.source, s.kind.value, s.name, s.service, s.severity.value, s.status.value,
                 s.fingerprint, s.at.isoformat(), json.dumps(dict(s.labels)),
                 json.dumps(dict(s.annotations))) for s in signals[i:i + BATCH]]
        con.executemany("INSERT INTO signals (source, kind, name, service, severity, status, "
                        "fingerprint, at, labels, annotations) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        rows)
        con.commit()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    from agents.correlator_agent import CorrelatorAgent
    from console.evaluation import Placement, score
    from console.runtime import Runtime

    signals, topology, faults, player = _storm_signals(args.alerts)
    with tempfile.TemporaryDirectory() as folder:
        floor = _floor(signals, Path(folder))
        runtime = Runtime(f"sqlite:///{folder}/watchfloor.db")
        try:
            agent = CorrelatorAgent(runtime.service, topology)
            start = time.perf_counter()
            for i in range(0, len(signals), BATCH):
                batch = signals[i:i + BATCH]
                runtime.service.store(batch, ())
                agent.handle(batch, batch[-1].at)
            elapsed = time.perf_counter() - start
            incidents = len(runtime.service.incidents())
        finally:
            runtime.close()
    begin = player.start
    placements = [Placement(p.service, (p.at - begin).total_seconds(), p.key)
                  for p in agent.placements]
    figures = score(placements, faults, topology)
    return {
        "alerts": len(signals),
        "firing": sum(1 for s in signals if s.status.value == "firing"),
        "batch": BATCH,
        "pipeline_seconds": round(elapsed, 3),
        "alerts_per_second": round(len(signals) / elapsed, 1),
        "floor_seconds": round(floor, 3),
        "floor_alerts_per_second": round(len(signals) / floor, 1),
        "ratio_to_floor": round(floor / elapsed, 3),
        "incidents": incidents,
        "compression": figures["compression"],
        "purity": figures["purity"],
        "recall": figures["recall"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

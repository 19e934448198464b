"""The summary of a headless run (`watchfloor run --json`; schema in the README).

Ground truth (the faults the scenario injected) appears here for evaluation only; the
agents never see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.evaluation import Placement, score

if TYPE_CHECKING:
    from console.runtime import ScenarioDriver

SUMMARY_SCHEMA = "watchfloor.run/1"


def summarize(driver: ScenarioDriver, wall_seconds: float) -> dict[str, Any]:
    t = driver.tally
    start = driver.player.start
    verify = driver.runtime.service.verify_audit()
    faults = [dict(f) for f in driver.player.ground_truth_faults()]
    placements = [Placement(p.service, (p.at - start).total_seconds(), p.key)
                  for p in driver.correlator.placements]
    return {
        "schema": SUMMARY_SCHEMA,
        "scenario": {"name": driver.scenario.name, "description": driver.scenario.description,
                     "seed": driver.player.seed, "duration_s": driver.scenario.duration},
        "sim_seconds": round(driver.elapsed, 3),
        "wall_seconds": round(wall_seconds, 3),
        "speed": round(driver.elapsed / wall_seconds, 1) if wall_seconds > 0 else None,
        "signals": {"total": t.signals, "firing": t.firing, "resolved": t.resolved,
                    "by_severity": dict(t.by_severity), "by_service": dict(t.by_service),
                    "by_name": dict(t.by_name)},
        "logs": {"total": t.logs, "errors": t.error_logs},
        "changes": [{"id": c.id, "at_s": (c.at - start).total_seconds(),
                     "service": c.service, "kind": c.kind, "description": c.description,
                     "version_from": c.version_from, "version_to": c.version_to}
                    for c in t.changes],
        "faults": faults,
        "incidents": _incidents(driver),
        "correlation": score(placements, faults, driver.player.estate.topology()),
        "actions": [{"id": e.id, "runbook": e.runbook_id, "action_class": e.action_class,
                     "target": e.target, "state": e.state, "autonomous": e.autonomous,
                     "at_s": (e.started_at - start).total_seconds()}
                    for e in reversed(driver.runtime.service.engine.executions())],
        "audit": {"records": verify.records, "chain_ok": verify.ok},
    }


def _incidents(driver: ScenarioDriver) -> list[dict[str, Any]]:
    start = driver.player.start
    out = []
    for key, inc in sorted(driver.correlator.correlator.incidents.items()):
        out.append({
            "id": driver.correlator.ids.get(key), "title": inc.title,
            "severity": inc.severity.value, "state": inc.state,
            "services": sorted(inc.services, key=lambda s: (-inc.services[s], s)),
            "alerts": inc.alerts, "reopened": inc.reopened,
            "opened_at_s": (inc.opened_at - start).total_seconds(),
            "resolved_at_s": (None if inc.resolved_at is None
                              else (inc.resolved_at - start).total_seconds()),
            "root_cause": None, "actions": [],
            "time_to_detect_s": None, "time_to_diagnose_s": None,
            "time_to_resolve_s": None,
        })
    return out

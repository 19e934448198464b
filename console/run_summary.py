"""The summary of a headless run (`watchfloor run --json`; schema in the README).

Ground truth (the faults the scenario injected) appears here for evaluation only; the
agents never see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.evaluation import Placement, score

if TYPE_CHECKING:
    from datetime import datetime

    from console.runtime import ScenarioDriver
    from console.storage.repos_causes import Cause

SUMMARY_SCHEMA = "watchfloor.run/1"


def summarize(driver: ScenarioDriver, wall_seconds: float) -> dict[str, Any]:
    from console.escalations import annotate_run

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
        # per action its judged outcome, per incident whether it needs a person
        "incidents": annotate_run(_incidents(driver), driver.runtime.service.audit_entries(),
                                  start),
        "correlation": score(placements, faults, driver.player.estate.topology()),
        "actions": [{"id": e.id, "runbook": e.runbook_id, "action_class": e.action_class,
                     "target": e.target, "state": e.state, "autonomous": e.autonomous,
                     "at_s": (e.started_at - start).total_seconds()}
                    for e in reversed(driver.runtime.service.engine.executions())],
        "audit": {"records": verify.records, "chain_ok": verify.ok},
    }


def _incidents(driver: ScenarioDriver) -> list[dict[str, Any]]:
    """Per incident: when it was detected, what the team diagnosed (and the ranked
    alternatives), what ran and how it ended, when it resolved. The times to detect,
    diagnose and resolve count from the start of the injected fault it is about (ground
    truth, evaluation only); an incident opened before its fault began (an early
    warning) has a negative time to detect."""
    from console.storage.repos_agents import HypothesisRepo
    from console.storage.repos_causes import CauseRepo

    start = driver.player.start
    faults = sorted(driver.player.ground_truth_faults(), key=lambda f: f["at_s"])
    executions = driver.runtime.service.engine.executions()
    recs = {r.id: r for r in driver.runtime.service.engine.recommendations()}
    repo, cause_repo = HypothesisRepo(), CauseRepo()
    out = []
    for key, inc in sorted(driver.correlator.correlator.incidents.items()):
        incident_id = driver.correlator.ids.get(key)
        opened = (inc.opened_at - start).total_seconds()
        resolved = None if inc.resolved_at is None else (inc.resolved_at - start).total_seconds()
        with driver.runtime.db.sessions() as session:
            board = repo.current(session, incident_id) if incident_id else []
            history = repo.history(session, incident_id) if incident_id else []
            found = cause_repo.causes(session, incident_id) if incident_id else []
        usable = [h for h in board if h.usable]
        ranked = [{"service": h.service, "fault_class": h.hypothesis.fault_class,
                   "confidence": round(h.confidence, 4), "signals": h.hypothesis.signals,
                   "state": h.state} for h in usable]
        diagnosed = (min(h.created_at for h in history) - start).total_seconds() \
            if history else None
        mine = [e for e in reversed(executions) if e.recommendation_id in recs
                and recs[e.recommendation_id].incident_id == incident_id]
        actions = [{"id": e.id, "runbook": e.runbook_id, "target": e.target, "state": e.state,
                    "autonomous": e.autonomous,
                    "validation": (e.result.get("validation") or {}).get("detail"),
                    "rolled_back": e.state in ("rolled_back", "rollback_failed"),
                    "at_s": (e.started_at - start).total_seconds()} for e in mine]
        causes = [_cause(c, start) for c in found]
        # The first cause is the root cause (as before there were several); without any
        # stored cause, the board's best hypothesis.
        root = {k: causes[0][k] for k in ("service", "fault_class", "confidence", "signals",
                                          "state")} if causes else \
            (ranked[0] if ranked else None)
        root_key = None if root is None else (root["service"], root["fault_class"])
        others = [h for h in ranked if (h["service"], h["fault_class"]) != root_key]
        # The fault it is most likely about: the latest one begun before it opened, else
        # the first one to come (an early warning; its time to detect is negative).
        cause = next((f for f in reversed(faults) if f["at_s"] <= opened),
                     faults[0] if faults else None)
        origin = cause["at_s"] if cause is not None else None
        out.append({
            "id": incident_id, "title": inc.title,
            "severity": inc.severity.value, "state": inc.state,
            "services": sorted(inc.services, key=lambda s: (-inc.services[s], s)),
            "alerts": inc.alerts, "reopened": inc.reopened,
            "opened_at_s": opened, "resolved_at_s": resolved,
            "root_cause": root, "alternatives": others[:4], "causes": causes,
            "diagnosed_at_s": diagnosed, "actions": actions,
            "autonomous": bool(actions) and all(a["autonomous"] for a in actions),
            "rollbacks": sum(1 for e in mine if e.state in ("rolled_back", "rollback_failed")),
            "recommendations_waiting": sum(1 for r in recs.values()
                                           if r.incident_id == incident_id
                                           and r.state in ("pending", "queued")),
            "time_to_detect_s": None if origin is None else opened - origin,
            "time_to_diagnose_s": None if origin is None or diagnosed is None
            else diagnosed - origin,
            "time_to_resolve_s": None if origin is None or resolved is None
            else resolved - origin,
        })
    return out


def _cause(cause: Cause, start: datetime) -> dict[str, Any]:
    """One cause of an incident: its diagnosis, its state, its newest recommendation and
    the actions that ran for it."""
    rec = cause.recommendation
    return {
        "cause": cause.ordinal, "service": cause.service, "fault_class": cause.fault_class,
        "confidence": round(cause.confidence, 4), "signals": cause.signals,
        "state": cause.state, "note": cause.note,
        "opened_at_s": (cause.opened_at - start).total_seconds(),
        "recommendation": None if rec is None else {
            "id": rec.recommendation_id, "runbook": rec.runbook_id, "target": rec.target,
            "state": rec.recommendation_state, "confidence": rec.confidence,
            "autonomous": rec.autonomous},
        "actions": [{"id": a.execution_id, "recommendation": a.recommendation_id,
                     "runbook": a.runbook_id, "target": a.target, "state": a.execution_state,
                     "autonomous": a.autonomous,
                     "at_s": None if a.started_at is None
                     else (a.started_at - start).total_seconds()}
                    for a in cause.actions if a.execution_id is not None],
    }

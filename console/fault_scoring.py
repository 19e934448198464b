"""Scores per injected fault: did the team find each fault, act on it well, and know when
to stop?

`watchfloor eval` scores incidents; an incident can hold two faults, and a team that
names one of them is then scored right while the other is never fixed. Here each fault
of a run (its summary's ground truth, never shown to the agents) is one case:

- detected: an incident is about it: the incident was still open when the fault began
  (a fault that joins an open incident belongs to it too; `eval`'s per-incident rule,
  begun by the time the incident opened, would leave it out), it opened no later than 15
  minutes after the fault was fixed, and one of its services lies within the fault's
  reach (console/evaluation.py); time to detect counts from the fault's start to the
  first incident that opened after it, or the first cause that names it;
- AC@1: a diagnosed cause of such an incident names the fault's service and fault class
  (an incident with a `causes` list has one diagnosis per cause; otherwise its root cause
  is its only diagnosis); AC@3: the fault is among the first three of a cause's ranking
  (the cause, then its `hypotheses` or `alternatives`);
- ECE: every diagnosis of an incident about a fault is one prediction, its confidence
  against whether it names a fault that incident is about; diagnoses of incidents about
  no fault are false alarms, counted apart;
- actions: each execution is judged against the faults at its target when it ran, by
  what the estate says it did (`faults[].actions[].effect`): on a healthy service
  (wrong), worsened (wrong), fixed, mitigated, or ineffective (no effect, delayed,
  failed);
- escalations (`escalated` / `needs_person` on a cause or an incident, when the run
  reports them): right when the fault has no safe fix, wrong otherwise;
- times to detect, diagnose and resolve, from the fault's start.

A fault has no safe fix when no shipped runbook ends it: a connection leak a restart
only delays (`recurs`), or a slow application (failover moves a database or a cache to
its replica, nothing else).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.evaluate import AFTERMATH_S, FIXES, FIXING_ACTIONS, percentile, reliability

ESCALATE_WITHIN_S = 600.0
ACTION_WINDOW_S = 600.0  # an estate reaction counts for an execution begun at most this before
_BAD_STATES = frozenset({"failed", "rolled_back", "rollback_failed", "refused"})


@dataclass(frozen=True)
class EstateFacts:
    """What the scorer needs of the estate a run played on: the graph and service kinds."""

    topology: Mapping[str, Sequence[str]]
    kinds: Mapping[str, str]

    @classmethod
    def of(cls, scenario: str) -> EstateFacts:
        from console.estate import load_estate_spec, load_scenario

        spec = load_estate_spec(load_scenario(scenario).estate)
        return cls({n: list(s.depends_on) for n, s in spec.services.items()},
                   {n: s.kind for n, s in spec.services.items()})


def no_safe_fix(fault: Mapping[str, Any], kinds: Mapping[str, str]) -> bool:
    """No shipped runbook ends this fault (see the module docstring)."""
    params = fault.get("params") or {}
    if fault["kind"] == "connection_pool_exhaustion":
        return bool(params.get("recurs"))
    if fault["kind"] == "slow_dependency":
        return kinds.get(fault["service"]) not in ("database", "cache")
    return False


def _key(h: Mapping[str, Any]) -> tuple[str, str]:
    return str(h["service"]), str(h["fault_class"])


def _names(h: Mapping[str, Any], fault: Mapping[str, Any]) -> bool:
    service, kind = _key(h)
    return kind == fault["kind"] and (service == fault["service"]
                                      or bool((fault.get("params") or {}).get("all_services")))


_ESCALATED_STATES = frozenset({"needs_person", "escalated"})


def causes_of(incident: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The incident's diagnoses, each with its ranking (first three), confidence and what
    the run says of it (escalation, times). With a `causes` list, the incident's own
    ranking (root cause, then alternatives) is one more ranking of its first cause."""
    overall = [h for h in [incident.get("root_cause"), *(incident.get("alternatives") or [])]
               if h]
    listed = incident.get("causes")
    if not listed:
        listed = [{**overall[0], "alternatives": overall[1:],
                   "escalated_at_s": incident.get("escalated_at_s"),
                   "escalated": incident.get("escalated"),
                   "needs_person": incident.get("needs_person")}] if overall else []
        overall = []
    out = []
    for n, cause in enumerate(listed):
        ranked = list(cause.get("hypotheses") or [])
        if not ranked or _key(ranked[0]) != _key(cause):
            ranked = [cause, *(cause.get("alternatives") or [])]
        if n == 0:
            ranked = [*ranked[:3], *overall[:3]]
        out.append({"cause": cause, "ranked": ranked,
                    "confidence": float(cause.get("confidence") or 0.0),
                    "escalated": bool(cause.get("escalated") or cause.get("needs_person")
                                      or cause.get("state") in _ESCALATED_STATES),
                    "escalated_at_s": cause.get("escalated_at_s"),
                    "diagnosed_at_s": cause.get("diagnosed_at_s", cause.get(
                        "opened_at_s", incident.get("diagnosed_at_s"))),
                    "resolved_at_s": cause.get("resolved_at_s")})
    return out


def _begins(fault: Mapping[str, Any]) -> float:
    """A certificate warns from the start: its fault is there before it expires."""
    return float("-inf") if fault["kind"] == "certificate_expiry" else float(fault["at_s"])


def incident_faults(incident: Mapping[str, Any], faults: Sequence[Mapping[str, Any]],
                    reach: Sequence[set[str]]) -> list[int]:
    """Indexes of the faults an incident is about (see the module docstring)."""
    opened = float(incident["opened_at_s"])
    closed = incident.get("resolved_at_s")
    services = set(incident["services"])
    out = []
    for index, fault in enumerate(faults):
        fixed = fault.get("fixed_at_s")
        if closed is not None and float(closed) < _begins(fault):
            continue  # over before the fault began
        if fixed is not None and opened > float(fixed) + AFTERMATH_S \
                and fault["kind"] != "certificate_expiry":
            continue
        if (fault.get("params") or {}).get("all_services") or services & reach[index]:
            out.append(index)
    return out


def _active(fault: Mapping[str, Any], at: float) -> bool:
    ends = fault.get("fixed_at_s")
    return _begins(fault) <= at and (ends is None or at < float(ends))


def _on(fault: Mapping[str, Any], service: str) -> bool:
    return fault["service"] == service or bool((fault.get("params") or {}).get("all_services"))


def judge_actions(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each execution of the run with its verdict: `healthy` (its target had no fault then),
    `worsened`, `fixed`, `mitigated`, `ineffective`, or `pending` (never reached the
    estate and not failed); `wrong` is healthy or worsened."""
    faults = list(summary["faults"])
    executions = sorted(summary["actions"], key=lambda a: (a["at_s"], a["id"]))
    reactions: dict[int, list[dict[str, Any]]] = {}
    for index, fault in enumerate(faults):
        for record in fault.get("actions") or ():
            mine = [a for a in executions if a["target"] == record["service"]
                    and a["at_s"] <= record["at_s"] <= a["at_s"] + ACTION_WINDOW_S]
            if mine:  # the latest execution on that service before the reaction
                reactions.setdefault(mine[-1]["id"], []).append(
                    {"fault": index, "effect": str(record["effect"])})
    for index, fault in enumerate(faults):  # ended by an action before it could react
        fixed_at = fault.get("fixed_at_s")  # (a certificate rotated before it expired)
        if fixed_at is None or fault.get("fixed_by") not in FIXING_ACTIONS \
                or any(r["fault"] == index for rs in reactions.values() for r in rs):
            continue
        fixers = [a for a in executions if a["target"] == fault["service"]
                  and a["runbook"] in FIXES.get(fault["kind"], frozenset())
                  and a["at_s"] <= fixed_at and a["state"] not in _BAD_STATES]
        if fixers:
            reactions.setdefault(fixers[-1]["id"], []).append(
                {"fault": index, "effect": f"fixed (by {fault['fixed_by']})"})
    out = []
    for a in executions:
        at = float(a["at_s"])
        seen = reactions.get(a["id"], [])
        faulty = [i for i, f in enumerate(faults) if _on(f, a["target"]) and _active(f, at)]
        faulty += [r["fault"] for r in seen if r["fault"] not in faulty]
        effects = [r["effect"] for r in seen if r["fault"] in faulty]
        if not faulty:
            verdict = "healthy"
        elif any(e.startswith("worsened") for e in effects):
            verdict = "worsened"
        elif any(e.startswith("fixed") for e in effects):
            verdict = "fixed"
        elif any(e.startswith("mitigated") for e in effects):
            verdict = "mitigated"
        elif effects or a["state"] in _BAD_STATES:
            verdict = "ineffective"
        else:
            verdict = "pending"
        out.append({"id": a["id"], "runbook": a["runbook"], "target": a["target"],
                    "at_s": at, "state": a["state"], "autonomous": bool(a["autonomous"]),
                    "faults": sorted(faulty), "effects": effects, "verdict": verdict,
                    "wrong": verdict in ("healthy", "worsened")})
    return out


@dataclass
class FaultRun:
    """One run scored per fault."""

    scenario: str
    seed: int
    family: str | None
    faults: list[dict[str, Any]] = field(default_factory=list)
    diagnoses: list[tuple[float, bool]] = field(default_factory=list)
    diagnosed_kinds: list[str] = field(default_factory=list)  # beside `diagnoses`
    false_alarms: list[float] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)


def escalations_of(incident: Mapping[str, Any], causes: Sequence[Mapping[str, Any]]
                   ) -> list[tuple[Mapping[str, Any] | None, float | None]]:
    """Each escalation of an incident: the cause it names (None: the incident as a whole)
    and when. The incident's `needs_person.causes` when the run lists them, else its
    causes marked escalated, else the incident's own `escalated` / `needs_person`."""
    person = incident.get("needs_person")
    if isinstance(person, Mapping) and person.get("causes"):
        return [(c if "service" in c and "fault_class" in c else None, c.get("at_s"))
                for c in person["causes"]]
    marked = [(c["cause"], c["escalated_at_s"]) for c in causes if c["escalated"]]
    if marked:
        return marked
    if incident.get("escalated") or person:
        return [(causes[0]["cause"] if causes else None, incident.get("escalated_at_s"))]
    return []


def score_faults(summary: Mapping[str, Any], facts: EstateFacts,
                 family: str | None = None) -> FaultRun:
    """Score one headless run summary (schema watchfloor.run/1) per injected fault; the
    family defaults to the one the scenario's description names."""
    from console.evaluation import reach as reach_of
    from console.scenario_gen import family_of

    faults = list(summary["faults"])
    reach = [reach_of(facts.topology, f["service"]) for f in faults]
    run = FaultRun(summary["scenario"]["name"], int(summary["scenario"]["seed"]),
                   family or family_of(summary["scenario"].get("description") or ""))
    about: list[list[tuple[Mapping[str, Any], list[dict[str, Any]]]]] = [[] for _ in faults]
    for inc in summary["incidents"]:
        idx = incident_faults(inc, faults, reach)
        causes = causes_of(inc)
        mine = [faults[i] for i in idx]
        if not idx:
            run.false_alarms += [c["confidence"] for c in causes]
        for c in causes:
            if idx:
                run.diagnoses.append((c["confidence"], any(_names(c["cause"], f) for f in mine)))
                run.diagnosed_kinds.append(str(c["cause"]["fault_class"]))
        for named_cause, at in escalations_of(inc, causes):
            # the faults it names; a misread one stands for its incident's only fault
            named = [i for i in idx if named_cause is not None
                     and _names(named_cause, faults[i])] \
                or (idx if named_cause is None or len(idx) == 1 else [])
            run.escalations.append({"faults": named, "at_s": at,
                                    "right": bool(named) and all(
                                        no_safe_fix(faults[i], facts.kinds) for i in named)})
        for i in idx:
            about[i].append((inc, causes))
    run.actions = judge_actions(summary)
    for i, fault in enumerate(faults):
        run.faults.append(_one(fault, i, about[i], run, facts))
    return run


def _one(fault: Mapping[str, Any], index: int,
         about: list[tuple[Mapping[str, Any], list[dict[str, Any]]]],
         run: FaultRun, facts: EstateFacts) -> dict[str, Any]:
    start = float(fault["at_s"])
    causes = [c for _, cs in about for c in cs]
    right = [c for c in causes if _names(c["cause"], fault)]
    top3 = any(_names(h, fault) for c in causes for h in c["ranked"])
    diagnosed = [float(c["diagnosed_at_s"]) for c in right if c["diagnosed_at_s"] is not None]
    opened = [float(inc["opened_at_s"]) for inc, _ in about
              if float(inc["opened_at_s"]) >= _begins(fault)] + diagnosed
    acts = [a for a in run.actions if index in a["faults"]]
    escalations = [e for e in run.escalations if index in e["faults"]]
    escalated_at = [float(e["at_s"]) for e in escalations if e["at_s"] is not None]
    remedyless = no_safe_fix(fault, facts.kinds)
    resolved = [float(c["resolved_at_s"]) for c in right if c["resolved_at_s"] is not None]
    fixed_by_team = fault.get("fixed_by") in FIXING_ACTIONS and fault.get("fixed_at_s") \
        is not None and any(a["verdict"] in ("fixed", "mitigated") for a in acts)
    if not resolved and fixed_by_team:
        resolved = [float(fault["fixed_at_s"])]
    first_diag = min(diagnosed) if diagnosed else None
    in_time: bool | None = None
    if remedyless:
        # from its diagnosis: the first that named it, else the first of its incidents'
        read = first_diag if first_diag is not None else min(
            (float(c["diagnosed_at_s"]) for c in causes if c["diagnosed_at_s"] is not None),
            default=None)
        in_time = bool(escalated_at) and read is not None \
            and min(escalated_at) - read <= ESCALATE_WITHIN_S
        if escalations and not escalated_at:
            in_time = None  # escalated, but the run does not say when
    return {
        "scenario": run.scenario, "seed": run.seed, "family": run.family,
        "fault": f"{fault['service']}/{fault['kind']}", "kind": fault["kind"],
        "service": fault["service"], "at_s": start, "no_safe_fix": remedyless,
        "detected": bool(about), "incidents": sorted({inc["id"] for inc, _ in about
                                                      if inc.get("id") is not None}),
        "correct_top1": bool(right), "correct_top3": top3,
        "confidence": max((c["confidence"] for c in right), default=None),
        "diagnosed_as": [f"{c['cause']['service']}/{c['cause']['fault_class']}"
                         for c in causes],
        "actions": [a["id"] for a in acts],
        "wrong_actions": sum(a["wrong"] for a in acts),
        "ineffective_actions": sum(a["verdict"] == "ineffective" for a in acts),
        "fixed_by_team": fixed_by_team,
        "escalated": bool(escalations), "escalated_in_time": in_time,
        "time_to_detect_s": round(min(opened) - start, 3) if opened else None,
        "time_to_diagnose_s": round(first_diag - start, 3) if first_diag is not None else None,
        "time_to_resolve_s": round(min(resolved) - start, 3) if resolved else None,
    }


# --- over runs -----------------------------------------------------------------------------

def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _times(values: Iterable[float | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    return {"count": len(present),
            "mean": round(statistics.fmean(present), 1) if present else None,
            "p50": percentile(present, 0.5), "p95": percentile(present, 0.95)}


def _block(runs: Sequence[FaultRun]) -> dict[str, Any]:
    faults = [f for r in runs for f in r.faults]
    diagnoses = [d for r in runs for d in r.diagnoses]
    actions = [a for r in runs for a in r.actions]
    escalations = [e for r in runs for e in r.escalations]
    alarms = [c for r in runs for c in r.false_alarms]
    remedyless = [f for f in faults if f["no_safe_fix"]]
    ece, table = reliability(diagnoses)
    verdicts = {v: sum(a["verdict"] == v for a in actions)
                for v in ("healthy", "worsened", "fixed", "mitigated", "ineffective", "pending")}
    return {
        "runs": len(runs), "faults": len(faults),
        "detected": sum(f["detected"] for f in faults),
        "accuracy": {"top1": _rate(sum(f["correct_top1"] for f in faults), len(faults)),
                     "top3": _rate(sum(f["correct_top3"] for f in faults), len(faults))},
        "calibration": {"ece": ece, "diagnoses": len(diagnoses), "reliability": table},
        "false_alarms": {"diagnoses": len(alarms),
                         "mean_confidence": round(statistics.fmean(alarms), 4)
                         if alarms else None},
        "actions": {"total": len(actions), "autonomous": sum(a["autonomous"] for a in actions),
                    "wrong": sum(a["wrong"] for a in actions),
                    "on_healthy_services": verdicts["healthy"],
                    "made_worse": verdicts["worsened"], "fixed": verdicts["fixed"],
                    "mitigated": verdicts["mitigated"], "ineffective": verdicts["ineffective"],
                    "pending": verdicts["pending"]},
        "escalations": {"total": len(escalations),
                        "right": sum(e["right"] for e in escalations),
                        "wrong": sum(not e["right"] for e in escalations),
                        "no_safe_fix_faults": len(remedyless),
                        "no_safe_fix_escalated": sum(f["escalated"] for f in remedyless),
                        "no_safe_fix_escalated_in_time": sum(bool(f["escalated_in_time"])
                                                             for f in remedyless),
                        "no_safe_fix_over_one_ineffective": sum(
                            f["ineffective_actions"] > 1 for f in remedyless)},
        "fixed_by_team": sum(f["fixed_by_team"] for f in faults),
        "time_to_detect_s": _times(f["time_to_detect_s"] for f in faults),
        "time_to_diagnose_s": _times(f["time_to_diagnose_s"] for f in faults),
        "time_to_resolve_s": _times(f["time_to_resolve_s"] for f in faults),
    }


def aggregate_faults(runs: Sequence[FaultRun]) -> dict[str, Any]:
    """The per-fault scores of an eval: the totals, and the same by family and by kind
    (accuracy by the fault's kind; calibration by the kind a diagnosis names, which is
    what its confidence vouches for)."""
    out = _block(runs)
    families = sorted({r.family or "other" for r in runs})
    out["by_family"] = {name: _block([r for r in runs if (r.family or "other") == name])
                        for name in families}
    faults = [f for r in runs for f in r.faults]
    named: dict[str, list[tuple[float, bool]]] = {}
    for r in runs:
        for kind, diagnosis in zip(r.diagnosed_kinds, r.diagnoses, strict=True):
            named.setdefault(kind, []).append(diagnosis)
    out["by_kind"] = {kind: {"faults": len(mine),
                             "top1": _rate(sum(f["correct_top1"] for f in mine), len(mine)),
                             "top3": _rate(sum(f["correct_top3"] for f in mine), len(mine)),
                             "diagnoses": len(named.get(kind, ())),
                             "ece": reliability(named[kind])[0] if named.get(kind) else None}
                      for kind in sorted({f["kind"] for f in faults} | set(named))
                      for mine in [[f for f in faults if f["kind"] == kind]]}
    return out


class FaultTally:
    """Per-fault scores of replayed runs, collected as they come (evaluate's `on_summary`);
    the estate facts are read once per scenario."""

    def __init__(self) -> None:
        self.runs: list[FaultRun] = []
        self._facts: dict[str, EstateFacts] = {}

    def __call__(self, scenario: str, summary: Mapping[str, Any]) -> None:
        if scenario not in self._facts:
            self._facts[scenario] = EstateFacts.of(scenario)
        self.runs.append(score_faults(summary, self._facts[scenario]))

    def scores(self) -> dict[str, Any] | None:
        """The `per_fault` scores with every case and judged action (None: no run)."""
        if not self.runs:
            return None
        out = aggregate_faults(self.runs)
        out["cases"] = [f for r in self.runs for f in r.faults]
        out["judged_actions"] = [{**a, "scenario": r.scenario, "seed": r.seed}
                                 for r in self.runs for a in r.actions]
        return out

"""What the console's own database says about how autonomous operations really are.

A self-assessment made of answers alone is a wish list; the same questions answered by
the record are harder to flatter. Every number here is derived, read-only, from the
tables the lifecycle already writes (executions, recommendations, approvals, rollbacks,
incidents, hypotheses, agent events, evals, the audit chain and the policy), so it
cannot drift from what happened, and computing it changes nothing.

Definitions (over a window, default the last 30 days):
- an execution is a *rule* run when a level-1 rule requested it, *autonomous* when it
  ran without anyone's approval, *approved* when a person approved it, and a *person*
  run when a person asked for it and ran it on their own authority;
- approval latency: from a recommendation to its first approval or rejection;
- rejection rate: rejected / decided recommendations; expired rate: recommendations
  that expired unanswered / (decided + expired);
- override rate: rule or autonomous runs that a person rolled back / such runs;
- validation pass rate: runs whose validation passed / runs with a validation result;
- rollback rate: runs rolled back (or whose rollback failed) / finished runs;
- MTTR change: mean time to resolve of the later half of resolved incidents against
  the earlier half (-0.3 is 30% faster); repeat rate change is the same for repeats;
- a repeat incident: one whose alert series or whose services and alert names match an
  incident resolved in the week before it opened;
- runbook coverage: incident classes (the top hypothesis' fault class) that some
  runbook of the library applies to / classes seen;
- policy coverage: action classes whose level someone set in the policy, rather than
  the default / action classes of the library and of past runs;
- a stale runbook: one used in the window whose runs failed or rolled back more than
  30% of the time.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.assessment_grants import HighRiskGrant, high_risk_grants
from console.audit import AuditLog
from console.policy import Policy
from console.storage.models import (
    AgentEventRow,
    ApprovalRow,
    AuditRow,
    EvalRunRow,
    ExecutionRow,
    HypothesisRow,
    IncidentRow,
    PlaybookDraftRow,
    RecommendationRow,
    RollbackRow,
)
from console.storage.repos_learning import LearningRepo

DEFAULT_WINDOW = timedelta(days=30)
REPEAT_WINDOW = timedelta(days=7)
FINISHED = ("succeeded", "failed", "rolled_back", "rollback_failed", "interrupted")
ROLLED_BACK = ("rolled_back", "rollback_failed")
FAILED = ("failed", "rolled_back", "rollback_failed")
KINDS = ("rule", "approved", "autonomous", "person")
STALE_FAILURE_SHARE = 0.3

Value = float | bool | None

# Every metric the model's gates and traps may name, with what it means.
METRICS: dict[str, str] = {
    "executions_total": "actions run in the window",
    "rule_runs": "runs of level-1 rules (tickets, checks and runbooks)",
    "approved_runs": "actions run after a person's approval",
    "autonomous_runs": "actions run without anyone's approval",
    "person_runs": "actions a person asked for and ran on their own authority",
    "share_rule": "share of actions run by rules",
    "share_approved": "share of actions run after approval",
    "share_autonomous": "share of actions run on their own",
    "approval_latency_p50_s": "median wait for a person's decision (s)",
    "approval_latency_p90_s": "90th percentile wait for a person's decision (s)",
    "rejection_rate": "rejected / decided recommendations",
    "expired_rate": "recommendations that expired unanswered",
    "override_rate": "rule or autonomous runs a person rolled back",
    "validation_pass_rate": "runs whose validation passed",
    "validation_pass_rate_rule": "rule runs whose validation passed",
    "validation_pass_rate_autonomous": "autonomous runs whose validation passed",
    "rollback_rate": "finished runs that were rolled back",
    "rollback_rate_autonomous": "finished autonomous runs that were rolled back",
    "autonomous_reversible_share": "autonomous runs that had a rollback path",
    "incidents": "incidents opened in the window",
    "resolved_incidents": "incidents resolved in the window",
    "mttr_s": "mean time to resolve (s)",
    "mttr_change": "MTTR of the later half against the earlier half (negative: faster)",
    "repeat_incident_rate": "incidents that repeat one resolved in the week before",
    "repeat_rate_change": "repeat rate of the later half minus the earlier half",
    "incident_classes": "distinct incident classes seen",
    "runbook_coverage": "incident classes a runbook applies to",
    "runbooks_in_library": "runbooks in the library",
    "stale_runbook_share": "runbooks used whose runs failed more than 30% of the time",
    "audit_chain_ok": "the audit chain verifies",
    "audit_records": "records in the audit chain",
    "policy_explicit_share": "action classes whose level was set, not defaulted",
    "autonomous_classes": "action classes policy lets run on their own",
    "eval_runs": "evaluations of the agents stored",
    "eval_playbook_accuracy": "playbook selection accuracy of the latest evaluation",
    "eval_age_days": "days since the latest evaluation",
    "signed_off_playbooks": "drafted playbooks a person signed off",
    "agents_per_incident": "distinct agents working an incident, on average",
    "learner_feedback": "outcomes the learner fed back (fixes that did not stick, warnings)",
}


@dataclass(frozen=True)
class ClassFigures:
    """One action class: how its runs split and how they went."""

    action_class: str
    runs: dict[str, int]  # kind -> count
    rolled_back: int
    failed: int
    reversible: bool
    policy_level: int
    risk: str = "high"  # the riskiest runbook of the class in the library
    risk_may_run_alone: bool = False  # policy lets that risk tier run on its own


@dataclass(frozen=True)
class AssessmentEvidence:
    since: datetime
    until: datetime
    metrics: dict[str, Value]
    classes: tuple[ClassFigures, ...] = ()
    mttr_series: tuple[tuple[str, float], ...] = ()  # (resolved at ISO, seconds)
    audit_problem: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # high-risk classes an admin let run on their own, and who (console/assessment_grants.py)
    grants: tuple[HighRiskGrant, ...] = ()

    def get(self, name: str) -> Value:
        return self.metrics.get(name)

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "metrics": dict(self.metrics),
                "classes": [{"action_class": c.action_class, "runs": dict(c.runs),
                             "rolled_back": c.rolled_back, "failed": c.failed,
                             "reversible": c.reversible, "policy_level": c.policy_level,
                             "risk": c.risk, "risk_may_run_alone": c.risk_may_run_alone}
                            for c in self.classes],
                "mttr_series": [list(p) for p in self.mttr_series],
                "audit_problem": self.audit_problem, "notes": list(self.notes),
                "high_risk_grants": [g.as_dict() for g in self.grants]}


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _halves_change(values: Sequence[float], *, relative: bool) -> float | None:
    """Later half against earlier half; None with fewer than four values."""
    if len(values) < 4:
        return None
    mid = len(values) // 2
    first, last = statistics.fmean(values[:mid]), statistics.fmean(values[mid:])
    if not relative:
        return last - first
    return (last - first) / first if first else None


def kind_of(requester: str, autonomous: bool, approved: bool) -> str:
    if requester.startswith("rule:"):
        return "rule"
    if autonomous:
        return "autonomous"
    return "approved" if approved else "person"


def compute_evidence(session: Session, *, now: datetime, policy: Policy,
                     library: Mapping[str, Any], window: timedelta = DEFAULT_WINDOW
                     ) -> AssessmentEvidence:
    """Read everything the placement needs in one session; writes nothing."""
    since = now - window
    m: dict[str, Value] = {}
    classes = _executions(session, since, policy, library, m)
    _recommendations(session, since, m)
    series = _incidents(session, since, library, m)
    verdict = AuditLog().verify(session)
    m["audit_chain_ok"] = verdict.ok
    m["audit_records"] = float(verdict.records)
    _policy(policy, library, {c.action_class for c in classes}, m)
    _agents(session, since, now, m)
    m["runbooks_in_library"] = float(len(library))
    notes = []
    if not m["executions_total"]:
        notes.append("no action has run in the window")
    if not m["incidents"]:
        notes.append("no incident was opened in the window")
    return AssessmentEvidence(since, now, m, tuple(classes), series,
                              "" if verdict.ok else verdict.describe(), tuple(notes),
                              tuple(high_risk_grants(session, policy)))


def _executions(session: Session, since: datetime, policy: Policy,
                library: Mapping[str, Any], m: dict[str, Value]) -> list[ClassFigures]:
    rows = session.execute(
        select(ExecutionRow, RecommendationRow.requester)
        .outerjoin(RecommendationRow, RecommendationRow.id == ExecutionRow.recommendation_id)
        .where(ExecutionRow.started_at >= since).order_by(ExecutionRow.id)).all()
    rec_ids = [e.recommendation_id for e, _ in rows if e.recommendation_id is not None]
    approved = set(session.scalars(select(ApprovalRow.recommendation_id)
                                   .where(ApprovalRow.decision == "approved",
                                          ApprovalRow.recommendation_id.in_(rec_ids))))
    by_person = set(session.scalars(select(RollbackRow.execution_id)
                                    .where(RollbackRow.user.like("user:%"))))
    counts: dict[str, int] = defaultdict(int)
    validated: dict[str, list[bool]] = defaultdict(list)
    finished: dict[str, int] = defaultdict(int)
    rolled: dict[str, int] = defaultdict(int)
    per_class: dict[str, dict[str, Any]] = {}
    per_book: dict[str, list[bool]] = defaultdict(list)
    reversible_auto = overridden = 0
    for ex, requester in rows:
        kind = kind_of(requester or ex.initiator, ex.autonomous,
                       ex.recommendation_id in approved)
        counts[kind] += 1
        validation = (ex.result or {}).get("validation")
        if isinstance(validation, Mapping) and "passed" in validation:
            validated[kind].append(bool(validation["passed"]))
        reversible = bool((ex.plan or {}).get("rollback"))
        entry = per_class.setdefault(ex.action, {"runs": defaultdict(int), "rolled_back": 0,
                                                 "failed": 0, "reversible": reversible})
        entry["runs"][kind] += 1
        if ex.state in FINISHED:
            finished[kind] += 1
            per_book[ex.runbook_id].append(ex.state not in FAILED)
        if ex.state in ROLLED_BACK:
            rolled[kind] += 1
            entry["rolled_back"] += 1
        if ex.state in FAILED:
            entry["failed"] += 1
        if kind == "autonomous" and reversible:
            reversible_auto += 1
        if kind in ("rule", "autonomous") and ex.id in by_person:
            overridden += 1
    total = len(rows)
    m["executions_total"] = float(total)
    for kind in KINDS:
        m[f"{kind}_runs"] = float(counts[kind])
    # level-1 rules also open tickets and run checks that are no execution of their own
    rule_records = session.scalar(select(func.count()).select_from(AuditRow)
                                  .where(AuditRow.action == "rule.run",
                                         AuditRow.decision == "allow",
                                         AuditRow.at >= since)) or 0
    m["rule_runs"] = float(max(counts["rule"], rule_records))
    for kind in ("rule", "approved", "autonomous"):
        m[f"share_{kind}"] = _rate(counts[kind], total)
    every = [v for vs in validated.values() for v in vs]
    m["validation_pass_rate"] = _rate(sum(every), len(every))
    m["validation_pass_rate_rule"] = _rate(sum(validated["rule"]), len(validated["rule"]))
    auto_checks = validated["autonomous"]
    m["validation_pass_rate_autonomous"] = _rate(sum(auto_checks), len(auto_checks))
    m["rollback_rate"] = _rate(sum(rolled.values()), sum(finished.values()))
    m["rollback_rate_autonomous"] = _rate(rolled["autonomous"], finished["autonomous"])
    m["autonomous_reversible_share"] = _rate(reversible_auto, counts["autonomous"])
    m["override_rate"] = _rate(overridden, counts["rule"] + counts["autonomous"])
    used = [oks for oks in per_book.values() if oks]
    stale = sum(1 for oks in used if 1 - sum(oks) / len(oks) > STALE_FAILURE_SHARE)
    m["stale_runbook_share"] = _rate(stale, len(used))
    order = ("low", "medium", "high")
    risks: dict[str, str] = {}
    for book in library.values():
        name, risk = str(getattr(book, "action_class", "")), str(getattr(book, "risk", "high"))
        if order.index(risk) >= order.index(risks.get(name, "low")):
            risks[name] = risk
    return [ClassFigures(name, dict(v["runs"]), v["rolled_back"], v["failed"],
                         v["reversible"], policy.level(name, "*"), risks.get(name, "high"),
                         risks.get(name, "high") in policy.autonomous_risk)
            for name, v in sorted(per_class.items())]


def _recommendations(session: Session, since: datetime, m: dict[str, Value]) -> None:
    recs = session.execute(select(RecommendationRow.id, RecommendationRow.created_at,
                                  RecommendationRow.state)
                           .where(RecommendationRow.created_at >= since)).all()
    ids = [r.id for r in recs]
    first: dict[int, tuple[datetime, str]] = {}
    for rec_id, at, decision in session.execute(
            select(ApprovalRow.recommendation_id, ApprovalRow.at, ApprovalRow.decision)
            .where(ApprovalRow.recommendation_id.in_(ids)).order_by(ApprovalRow.id)):
        first.setdefault(rec_id, (at, decision))
    waits = [(first[r.id][0] - r.created_at).total_seconds() for r in recs if r.id in first]
    m["approval_latency_p50_s"] = _percentile(waits, 0.5)
    m["approval_latency_p90_s"] = _percentile(waits, 0.9)
    decided = len(first)
    rejected = sum(1 for _, d in first.values() if d == "rejected")
    expired = sum(1 for r in recs if r.state == "expired")
    m["rejection_rate"] = _rate(rejected, decided)
    m["expired_rate"] = _rate(expired, decided + expired)


def _incidents(session: Session, since: datetime, library: Mapping[str, Any],
               m: dict[str, Value]) -> tuple[tuple[str, float], ...]:
    rows = session.execute(select(IncidentRow.id, IncidentRow.opened_at,
                                  IncidentRow.resolved_at)
                           .where(IncidentRow.opened_at >= since)
                           .order_by(IncidentRow.opened_at)).all()
    m["incidents"] = float(len(rows))
    resolved = sorted((r.resolved_at, (r.resolved_at - r.opened_at).total_seconds())
                      for r in rows if r.resolved_at is not None)
    m["resolved_incidents"] = float(len(resolved))
    durations = [d for _, d in resolved]
    m["mttr_s"] = statistics.fmean(durations) if durations else None
    m["mttr_change"] = _halves_change(durations, relative=True)
    repeats = _repeats(session, since)
    m["repeat_incident_rate"] = _rate(sum(repeats), len(repeats))
    m["repeat_rate_change"] = _halves_change([float(r) for r in repeats], relative=False)
    classes = _incident_classes(session, [r.id for r in rows])
    covered = {fault for book in library.values()
               for fault in getattr(getattr(book, "applies_to", None), "faults", ())}
    m["incident_classes"] = float(len(classes))
    m["runbook_coverage"] = _rate(len(classes & covered), len(classes))
    return tuple((at.isoformat(), d) for at, d in resolved)


def _repeats(session: Session, since: datetime) -> list[bool]:
    """Per incident opened since `since`, oldest first: is it a repeat?"""
    profiles = LearningRepo().incidents(session, since - REPEAT_WINDOW)
    out: list[bool] = []
    for index, inc in enumerate(profiles):
        if inc.opened_at < since:
            continue
        fps = set(inc.fingerprints)
        out.append(any(
            prior.resolved_at is not None and prior.resolved_at <= inc.opened_at
            and inc.opened_at - prior.resolved_at <= REPEAT_WINDOW
            and (fps & set(prior.fingerprints) or prior.fingerprint == inc.fingerprint)
            for prior in profiles[:index]))
    return out


def _incident_classes(session: Session, incident_ids: Iterable[int]) -> set[str]:
    ids = list(incident_ids)
    if not ids:
        return set()
    best: dict[int, tuple[int, str]] = {}
    for inc, rank, fault, state in session.execute(
            select(HypothesisRow.incident_id, HypothesisRow.rank, HypothesisRow.fault_class,
                   HypothesisRow.state)
            .where(HypothesisRow.incident_id.in_(ids), HypothesisRow.state != "excluded")
            .order_by(HypothesisRow.id)):
        key = (0 if state == "pinned" else rank, fault)
        if inc not in best or key[0] <= best[inc][0]:
            best[inc] = key
    return {fault for _, fault in best.values()}


def _policy(policy: Policy, library: Mapping[str, Any], seen: set[str],
            m: dict[str, Value]) -> None:
    classes = {str(getattr(b, "action_class", "")) for b in library.values()} | seen
    classes.discard("")
    explicit = {c for c in classes if c in policy.levels
                or any(c in per for per in policy.service_levels.values())}
    m["policy_explicit_share"] = _rate(len(explicit), len(classes))
    risks = {str(getattr(b, "action_class", "")): str(getattr(b, "risk", "high"))
             for b in library.values()}
    auto = {c for c in classes if policy.level(c, "*") >= 3
            and risks.get(c, "high") in policy.autonomous_risk}
    m["autonomous_classes"] = float(len(auto))


def _agents(session: Session, since: datetime, now: datetime, m: dict[str, Value]) -> None:
    evals = session.scalars(select(EvalRunRow).order_by(EvalRunRow.id.desc())).all()
    m["eval_runs"] = float(len(evals))
    if evals:
        latest = evals[0]
        selection = (latest.scores or {}).get("playbook_selection") or {}
        accuracy = selection.get("accuracy") if isinstance(selection, Mapping) else None
        m["eval_playbook_accuracy"] = float(accuracy) if accuracy is not None else None
        m["eval_age_days"] = (now - latest.at).total_seconds() / 86400
    else:
        m["eval_playbook_accuracy"] = m["eval_age_days"] = None
    m["signed_off_playbooks"] = float(session.scalar(
        select(func.count()).select_from(PlaybookDraftRow)
        .where(PlaybookDraftRow.state == "signed_off")) or 0)
    per_incident = session.execute(
        select(AgentEventRow.incident_id, func.count(func.distinct(AgentEventRow.agent)))
        .where(AgentEventRow.incident_id.is_not(None), AgentEventRow.at >= since)
        .group_by(AgentEventRow.incident_id)).all()
    m["agents_per_incident"] = (statistics.fmean(n for _, n in per_incident)
                                if per_incident else None)
    m["learner_feedback"] = float(session.scalar(
        select(func.count()).select_from(AuditRow)
        .where(AuditRow.actor == "agent:learner", AuditRow.at >= since)) or 0)


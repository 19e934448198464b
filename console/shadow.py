"""Shadow mode: what a proposed policy would have done with the recommendations already made.

Raising an action class to level 3 is a bet that it is safe to run unattended. Shadow
mode settles that bet with the console's own past before anything changes: every
recommendation an agent or a rule made in the window is put again to the policy engine
(`console.policy.decide`), as it stood then (same action class, target, risk, blast
radius, confidence and run history), but under the proposed policy and with nobody's
approval. The answer is what would have run on its own, what would have been blocked
and why, and what would still wait for a person; for what would have run, the
predicted outcome comes from the past: the run itself where one happened, otherwise
the runbook's success statistics (a Beta(1, 1) prior over every finished run of it).

It only reads. Nothing is proposed, approved, executed or stored here; storing the
result with an assessment is the caller's operation.

Simplifications, said plainly: the kill switch is taken as off (the question is the
policy, not tonight's state), runs the proposed policy would have added are not fed
back into later rate limits, and an agent's recommendation counts as autonomous only
where its diagnosis (the recommender's audit note) meets the proposed autonomy
threshold and corroboration, as the recommender itself checks before offering it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.policy import History, Outcome, Policy, Request, decide
from console.storage.models import ExecutionRow, RecommendationRow
from console.storage.repos_learning import FAILED_STATES, LearningRepo

DEFAULT_WINDOW = timedelta(days=30)
GOOD, BAD, UNKNOWN = "fixed", "made worse", "unknown"


@dataclass(frozen=True)
class ShadowCase:
    recommendation_id: int
    incident_id: int | None
    action_class: str
    runbook_id: str
    target: str
    risk: str
    requester: str
    created_at: str
    what_happened: str  # the recommendation's state then (executed, rejected, expired...)
    current: Outcome  # what the policy in force says today, without approval
    proposed: Outcome  # what the proposed policy says, without approval
    reasons: tuple[str, ...]
    predicted: str  # fixed | made worse | unknown (only for what would have run)
    success_probability: float | None
    basis: str  # the past run | runbook statistics (n runs) | no history

    @property
    def newly_autonomous(self) -> bool:
        return self.proposed == "allow" and self.current != "allow"


@dataclass(frozen=True)
class ShadowReport:
    since: str
    until: str
    ceiling: int
    cases: tuple[ShadowCase, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    action_classes: tuple[str, ...] = ()  # the replay's scope; empty: every class

    def _of(self, outcome: Outcome) -> list[ShadowCase]:
        return [c for c in self.cases if c.proposed == outcome]

    @property
    def would_run(self) -> list[ShadowCase]:
        return self._of("allow")

    @property
    def blocked(self) -> list[ShadowCase]:
        return self._of("deny")

    @property
    def needs_approval(self) -> list[ShadowCase]:
        return self._of("needs_approval")

    def summary(self) -> dict[str, Any]:
        run = self.would_run
        predicted = Counter(c.predicted for c in run)
        expected = sum(c.success_probability or 0.0 for c in run
                       if c.success_probability is not None)
        incidents = {c.incident_id for c in run if c.incident_id is not None}
        per_class: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for case in self.cases:
            row = per_class[case.action_class]
            row[case.proposed] += 1
            if case.proposed == "allow":
                row[case.predicted] += 1
        why_not = Counter(c.reasons[-1] for c in self.cases
                          if c.proposed != "allow" and c.reasons)
        return {"recommendations": len(self.cases), "would_run": len(run),
                "newly_autonomous": sum(1 for c in self.cases if c.newly_autonomous),
                "blocked": len(self.blocked), "needs_approval": len(self.needs_approval),
                "fixed": predicted[GOOD], "made_worse": predicted[BAD],
                "unknown": predicted[UNKNOWN],
                "expected_successes": round(expected, 2),
                "rejected_by_a_person": sum(1 for c in run if c.what_happened == "rejected"),
                "incidents_touched": len(incidents),
                "per_class": {k: dict(v) for k, v in sorted(per_class.items())},
                "why_not": [[reason, n] for reason, n in why_not.most_common(3)]}

    def headline(self) -> str:
        s = self.summary()
        scope = f" of {', '.join(self.action_classes)}" if self.action_classes else ""
        if not s["recommendations"]:
            return f"No past recommendation{scope} to replay in this window."
        text = (f"Of {s['recommendations']} past recommendation(s){scope}, {s['would_run']} would "
                f"have run without approval ({s['newly_autonomous']} more than today): "
                f"{s['fixed']} fixed the problem, {s['made_worse']} made it worse, "
                f"{s['unknown']} unknown; {s['blocked']} blocked, {s['needs_approval']} "
                "still for a person.")
        if s["why_not"] and not s["would_run"]:
            text += f" Mostly because: {s['why_not'][0][0]}."
        if s["rejected_by_a_person"]:
            text += (f" {s['rejected_by_a_person']} of those that would run had been "
                     "rejected by a person.")
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "ceiling": self.ceiling,
                "action_classes": list(self.action_classes),
                "summary": self.summary(), "headline": self.headline(),
                "notes": list(self.notes),
                "cases": [asdict(c) | {"newly_autonomous": c.newly_autonomous}
                          for c in self.cases]}


def _runbook_stats(session: Session) -> dict[str, tuple[int, int]]:
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in LearningRepo().outcomes(session):
        stats[outcome.runbook_id][0 if outcome.state not in FAILED_STATES else 1] += 1
    return {k: (v[0], v[1]) for k, v in stats.items()}


def _history(runs: list[tuple[datetime, str]], before: datetime,
             span: float) -> History:
    since = before - timedelta(seconds=span)
    recent = [(at, state) for at, state in runs if since <= at < before]
    return History(tuple(at for at, _ in recent),
                   tuple(at for at, state in recent if state in FAILED_STATES))


def replay(session: Session, proposed: Policy, *, current: Policy, ceiling: int,
           now: datetime, window: timedelta = DEFAULT_WINDOW,
           action_classes: tuple[str, ...] = ()) -> ShadowReport:
    """Put every agent's and rule's recommendation of the window to `proposed` again."""
    since = now - window
    query = (select(RecommendationRow).where(RecommendationRow.created_at >= since,
                                             RecommendationRow.requester.not_like("user:%"))
             .order_by(RecommendationRow.id))
    if action_classes:
        query = query.where(RecommendationRow.action_class.in_(action_classes))
    recs = list(session.scalars(query))
    executions: dict[int, str] = {}
    runs: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for ex in session.scalars(select(ExecutionRow).order_by(ExecutionRow.id)):
        if ex.recommendation_id is not None:
            executions[ex.recommendation_id] = ex.state
        runs[(ex.action, ex.target)].append((ex.started_at, ex.state))
    diagnoses = LearningRepo().diagnoses(session, [r.id for r in recs])
    stats = _runbook_stats(session)
    cases = []
    for rec in recs:
        diagnosis = diagnoses.get(rec.id)
        verdicts = {}
        reasons: tuple[str, ...] = ()
        for name, policy in (("current", current), ("proposed", proposed)):
            gap = _autonomy_gap(rec, policy, diagnosis)
            span = max([lim.per for lim in policy.rate_limits.values()]
                       + [policy.breaker.window])
            request = Request(actor=rec.requester, role=None, action_class=rec.action_class,
                              service=rec.target, risk=rec.risk,  # type: ignore[arg-type]
                              blast_radius=int(rec.preview.get("blast_radius", 1)),
                              confidence=rec.confidence)
            decision = decide(policy, request, ceiling=ceiling, kill_switch=False,
                              now=rec.created_at,
                              history=_history(runs[(rec.action_class, rec.target)],
                                               rec.created_at, span))
            outcome: Outcome = decision.outcome
            why = decision.reasons
            if gap and outcome == "allow" and not rec.requester.startswith("rule:"):
                outcome, why = "needs_approval", (*why, gap)
            verdicts[name] = outcome
            if name == "proposed":
                reasons = why
        predicted, probability, basis = _predict(rec, executions.get(rec.id), stats)
        cases.append(ShadowCase(
            rec.id, rec.incident_id, rec.action_class, rec.runbook_id or "", rec.target,
            rec.risk, rec.requester, rec.created_at.isoformat(), rec.state,
            verdicts["current"], verdicts["proposed"], reasons,
            predicted if verdicts["proposed"] == "allow" else UNKNOWN,
            probability, basis))
    notes = []
    top = max([*proposed.levels.values(), proposed.default_level,
               *(v for per in proposed.service_levels.values() for v in per.values())])
    if ceiling < top:
        notes.append(f"the autonomy ceiling {ceiling} caps the proposed level {top}")
    return ShadowReport(since.isoformat(), now.isoformat(), ceiling, tuple(cases),
                        tuple(notes), tuple(action_classes))


def _autonomy_gap(rec: RecommendationRow, policy: Policy, diagnosis: Any) -> str:
    """What keeps an agent's recommendation from being offered to run on its own."""
    confidence = diagnosis.confidence if diagnosis is not None else rec.confidence
    gaps = []
    if confidence < policy.autonomy_threshold:
        gaps.append(f"confidence {confidence:.2f} is under the autonomy threshold "
                    f"{policy.autonomy_threshold:.2f}")
    if diagnosis is not None and diagnosis.signals < policy.corroboration:
        gaps.append(f"only {diagnosis.signals} corroborating signal(s), policy needs "
                    f"{policy.corroboration}")
    return ("waits for a person: " + " and ".join(gaps)) if gaps else ""


def _predict(rec: RecommendationRow, execution_state: str | None,
             stats: Mapping[str, tuple[int, int]]) -> tuple[str, float | None, str]:
    if execution_state in ("succeeded",):
        return GOOD, 1.0, "the past run"
    if execution_state in FAILED_STATES:
        return BAD, 0.0, "the past run"
    good, bad = stats.get(rec.runbook_id or "", (0, 0))
    if good + bad == 0:
        return UNKNOWN, None, "no history"
    probability = (1 + good) / (2 + good + bad)
    return (GOOD if probability >= 0.5 else BAD), probability, \
        f"runbook statistics ({good + bad} run(s))"

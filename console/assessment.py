"""Placement on the maturity model: what the answers claim, checked against the record.

A team is placed at the highest level whose prerequisites both its answers and the
console's own evidence meet, every level below included: autonomy is earned one level
at a time, so a gap at level 2 caps the placement at 1 however good level 3 looks.
Where the answers reach higher than the evidence (a team that says it runs bounded
autonomous remediation while no autonomous run had a way back), the evidence wins and
the result says which facts decided it. The trap of the level is shown only where the
data (or an answer) shows it, and the next steps name what would lift the placement.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from console.assessment_evidence import AssessmentEvidence, Value
from console.assessment_model import Answers, Condition, Gate, Level, MaturityModel

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class GateResult:
    metric: str
    op: str
    threshold: float | bool
    actual: Value
    met: bool
    says: str


@dataclass(frozen=True)
class UnmetQuestion:
    id: str
    text: str
    answer: str  # yes | no | partly | unanswered


@dataclass(frozen=True)
class LevelCheck:
    level: int
    name: str
    answers_met: bool | None  # None: nobody answered
    unmet_questions: tuple[UnmetQuestion, ...]
    gates: tuple[GateResult, ...]

    @property
    def evidence_met(self) -> bool:
        return all(g.met for g in self.gates)

    @property
    def met(self) -> bool:
        return self.evidence_met and self.answers_met is not False


@dataclass(frozen=True)
class TrapShown:
    level: int
    title: str
    description: str
    because: str


@dataclass(frozen=True)
class Placement:
    level: int
    name: str
    answers_level: int | None
    evidence_level: int
    claimed_level: int | None
    reasons: tuple[str, ...]
    contradictions: tuple[str, ...]
    traps: tuple[TrapShown, ...]
    next_steps: tuple[str, ...]
    move_up: str
    checks: tuple[LevelCheck, ...]
    shadow_candidates: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for check, raw in zip(self.checks, out["checks"], strict=True):
            raw["evidence_met"] = check.evidence_met
            raw["met"] = check.met
        return out


def fmt_metric(name: str, value: Value) -> str:
    """A metric as an operator reads it: rates in %, waits in minutes, flags as yes/no."""
    if value is None:
        return "no data"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith("_s"):
        return _duration(float(value))
    if name.endswith("_change"):
        return f"{value:+.0%}"
    if name.endswith(("_rate", "_share", "_coverage", "_accuracy")) or \
            name.startswith(("share_", "validation_pass_rate", "rollback_rate")):
        return f"{value:.0%}"
    if name.endswith("_days"):
        return f"{value:.1f} days"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _compare(op: str, actual: Value, threshold: float | bool) -> bool:
    if actual is None:
        return False
    return bool(_OPS[op](actual, threshold))


def check_gate(gate: Gate, evidence: AssessmentEvidence) -> GateResult:
    actual = evidence.get(gate.metric)
    return GateResult(gate.metric, gate.op, gate.value, actual,
                      _compare(gate.op, actual, gate.value), gate.says)


def check_level(model: MaturityModel, level: Level, answers: Answers,
                evidence: AssessmentEvidence) -> LevelCheck:
    unmet: list[UnmetQuestion] = []
    for q in model.questions_of(level.level):
        if q.kind != "prerequisite":
            continue
        given = answers.values.get(q.id)
        if given != q.meets:
            unmet.append(UnmetQuestion(q.id, q.text, given or "unanswered"))
    answers_met = (not unmet) if answers.given else None
    gates = tuple(check_gate(g, evidence) for g in level.gates)
    return LevelCheck(level.level, level.name, answers_met, tuple(unmet), gates)


def _highest(checks: tuple[LevelCheck, ...], ok: Callable[[LevelCheck], bool]) -> int:
    """The top of the unbroken run of met levels; level 0 is the floor."""
    reached = 0
    for check in checks[1:]:
        if not ok(check):
            break
        reached = check.level
    return reached


def _failed_gates(check: LevelCheck) -> list[str]:
    """Why the evidence does not meet a level. Gates that have nothing to judge yet (no
    autonomous run, no rollback rate) are folded into one line when another gate
    already failed on real data: one cause, said once."""
    judged = [g for g in check.gates if not g.met and g.actual is not None]
    unjudged = [g for g in check.gates if not g.met and g.actual is None]
    lines = [f"{g.says} ({g.metric} is {fmt_metric(g.metric, g.actual)}, needs {g.op} "
             f"{fmt_metric(g.metric, g.threshold)})" for g in judged]
    if unjudged and (judged or len(unjudged) > 1):
        lines.append("nothing to judge yet for " + ", ".join(g.metric for g in unjudged))
    elif unjudged:
        lines.append(f"{unjudged[0].says} (no data yet for {unjudged[0].metric})")
    return lines


def _condition_holds(cond: Condition, answers: Answers, evidence: AssessmentEvidence,
                     model: MaturityModel | None = None) -> str | None:
    """Why the condition holds, or None; a question is named by its text (the model's),
    never by its id."""
    if cond.all:
        parts = [_condition_holds(c, answers, evidence, model) for c in cond.all]
        return " and ".join(p for p in parts if p) if all(parts) else None
    if cond.answer is not None:
        given = answers.values.get(cond.answer)
        if given != cond.is_:
            return None
        question = model.question(cond.answer) if model is not None else None
        asked = f"\u2018{question.text}\u2019" if question is not None else cond.answer
        return f"you answered {given} to {asked}"
    if cond.metric is None or cond.op is None or cond.value is None:
        return None  # the model's validation rules this out
    actual = evidence.get(cond.metric)
    if _compare(cond.op, actual, cond.value):
        return (f"{cond.metric} is {fmt_metric(cond.metric, actual)} "
                f"({cond.op} {fmt_metric(cond.metric, cond.value)})")
    return None


def traps_shown(level: Level, answers: Answers, evidence: AssessmentEvidence,
                model: MaturityModel | None = None) -> TrapShown | None:
    for cond in level.trap.shows_when:
        why = _condition_holds(cond, answers, evidence, model)
        if why:
            return TrapShown(level.level, level.trap.title, level.trap.description, why)
    return None


def shadow_candidates(evidence: AssessmentEvidence) -> tuple[str, ...]:
    """Action classes worth replaying in shadow mode before they run on their own: run
    after approval and below level 3 today; first those whose risk tier policy lets run
    alone, then the best record (expected success with a Beta(1, 1) prior), then the
    most approvals."""
    def rank(c: Any) -> tuple[bool, float, int, str]:
        runs = sum(c.runs.values())
        bad = min(runs, c.failed)
        return (not c.risk_may_run_alone, -(1 + runs - bad) / (2 + runs),
                -c.runs.get("approved", 0), c.action_class)

    ranked = sorted((c for c in evidence.classes
                     if c.runs.get("approved", 0) and c.policy_level < 3), key=rank)
    return tuple(c.action_class for c in ranked)


def place(model: MaturityModel, answers: Answers,
          evidence: AssessmentEvidence) -> Placement:
    checks = tuple(check_level(model, lv, answers, evidence) for lv in model.levels)
    evidence_level = _highest(checks, lambda c: c.evidence_met)
    answers_level = _highest(checks, lambda c: c.answers_met is not False) \
        if answers.given else None
    level = _highest(checks, lambda c: c.met)
    # What the team believes: its stated level, else (not sure) what its answers reach.
    # Only a stated level is a claim; the placement never says "you claimed" otherwise.
    claimed = answers.claimed_level if answers.claimed_level is not None else answers_level
    believes = f"You claim level {claimed}" if answers.claimed_level is not None else \
        f"Your answers reach level {claimed}"
    chosen = model.level(level)
    reasons: list[str] = []
    if not answers.given:
        reasons.append("No answers were given: the placement rests on the evidence alone.")
    reasons.append(f"Level {level} ({chosen.name}): "
                   + ("answers and evidence meet every level up to it."
                      if level else "the floor of the model."))
    # where the team claims more, the evidence's objections are the contradictions;
    # otherwise they are simply why the next level is not reached
    contradictions: list[str] = []
    if claimed is not None and claimed > level:
        for check in checks[level + 1:claimed + 1]:
            contradictions += [f"Level {check.level}: {why}." for why in _failed_gates(check)]
    if level < 5:
        above = checks[level + 1]
        for q in above.unmet_questions if answers.given else ():
            said = "not answered" if q.answer == "unanswered" else f"answered {q.answer}"
            reasons.append(f"Level {above.level} needs a yes to '{q.text}' ({said}).")
        if not contradictions:
            reasons += [f"Level {above.level} not met: {why}." for why in _failed_gates(above)]
    if contradictions:
        reasons.append(f"{believes}; the evidence wins and caps the placement "
                       f"at level {level} (see below).")
    traps: list[TrapShown] = []
    # where the team is, where it is heading next, and where it believes it is
    for lv in sorted({level, min(level + 1, 5), claimed if claimed is not None else level}):
        shown = traps_shown(model.level(lv), answers, evidence, model)
        if shown is not None:
            traps.append(shown)
    candidates = shadow_candidates(evidence) if level >= 2 else ()
    return Placement(level, chosen.name, answers_level, evidence_level, answers.claimed_level,
                     tuple(reasons), tuple(contradictions),
                     tuple(sorted(traps, key=lambda t: t.level)),
                     _next_steps(model, checks, level, answers, candidates),
                     chosen.move_up, checks, candidates)


def _next_steps(model: MaturityModel, checks: tuple[LevelCheck, ...], level: int,
                answers: Answers, candidates: tuple[str, ...]) -> tuple[str, ...]:
    if level >= 5:
        return model.level(5).next_steps
    above = checks[level + 1]
    steps: list[str] = []
    if level == 2 and candidates:
        steps.append(f"Replay '{candidates[0]}' in shadow mode under a policy that lets it "
                     "run on its own at level 3, before raising it")
    judged = [g for g in above.gates if not g.met and g.actual is not None]
    for gate in judged or [g for g in above.gates if not g.met]:
        steps.append(f"Fix: {gate.says}")
    for q in above.unmet_questions if answers.given else ():
        question = model.question(q.id)
        category = question.category if question is not None else "Prerequisite"
        steps.append(f"{category}: get to a yes on '{q.text}'")
    steps.extend(model.level(level).next_steps)
    return tuple(dict.fromkeys(steps))  # in order, each once


def answers_summary(model: MaturityModel, answers: Answers) -> Mapping[int, tuple[int, int]]:
    """Per level: prerequisites met by the answers, of how many."""
    out: dict[int, tuple[int, int]] = {}
    for lv in model.levels:
        prereq = [q for q in model.questions_of(lv.level) if q.kind == "prerequisite"]
        met = sum(1 for q in prereq if answers.values.get(q.id) == q.meets)
        out[lv.level] = (met, len(prereq))
    return out

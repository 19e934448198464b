"""What the decision card says, as plain text: the words are the same on the card, in its
tooltips, in a snapshot and in a test.

A person deciding at night needs five answers and one number: what is wrong, how sure
the team is (one confidence: the recommendation's, which is the diagnosis times the
fix's expected success; the `Basis:` line says what it rests on, so the diagnosis' own
number is never shown beside it as a second, contradicting one), what the fix will
change, whether it can be undone, how success is checked, and who must approve.
Nothing here decides anything; it spells out what the core said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.domain import ROLLBACK_FROM, Recommendation
from console.incident_state import cause_state as live_state
from console.storage.repos_causes import Cause
from widgets.recommendation_model import Standing, preview_summary

# Confidence in words, highest first: (at least, words).
CONFIDENCE_WORDS = ((0.9, "near certain"), (0.7, "likely"), (0.45, "as likely as not"),
                    (0.2, "unlikely"), (0.0, "very unlikely"))


def confidence_words(confidence: float) -> str:
    return next(words for floor, words in CONFIDENCE_WORDS if confidence >= floor)


def fault_words(fault_class: str) -> str:
    return fault_class.replace("_", " ")


def cause_name(cause: Cause) -> str:
    """Where and what: `cart: bad deploy`; a zone-wide cause is named as its zone."""
    zone = cause_zone(cause)
    if zone:
        return f"zone {zone}: {fault_words(cause.fault_class)}"
    return f"{cause.service}: {fault_words(cause.fault_class)}"


def cause_zone(cause: Cause) -> str:
    """The zone a cause stands for, when the diagnosis found a zone's partition ("" for
    one service's cause)."""
    return cause.zone


def cause_state(cause: Cause, *, incident_open: bool = True) -> str:
    """Its one live state in words (console/incident_state.py), as every pane says it."""
    return live_state(cause, incident_open=incident_open).label


def cause_of(rec: Recommendation, causes: Sequence[Cause]) -> Cause | None:
    """The cause `rec` was made for, as the incident's stored causes say."""
    return next((c for c in causes
                 if any(a.recommendation_id == rec.id for a in c.actions)), None)


def run_to_roll_back(rec: Recommendation, causes: Sequence[Cause]) -> int | None:
    """The run of `rec` that Roll back would undo now: it ran, it is in a state a
    rollback starts from, and its preview has a rollback path."""
    cause = cause_of(rec, causes)
    action = next((a for a in cause.actions if a.recommendation_id == rec.id),
                  None) if cause is not None else None
    if action is None or action.execution_id is None \
            or action.execution_state not in ROLLBACK_FROM or not rollback_words(rec.preview)[1]:
        return None
    return action.execution_id


def cause_tab(cause: Cause) -> str:
    rec = cause.recommendation
    fix = f" \u00b7 #{rec.recommendation_id}" if rec is not None else " \u00b7 no fix yet"
    return f"{cause.ordinal}. {cause_name(cause)}{fix} \u00b7 {cause_state(cause)}"


def cause_line(cause: Cause, *, incident_open: bool = True) -> str:
    """A cause in one line for a tooltip: name, state, its recommendation."""
    rec = cause.recommendation
    fix = (f"recommendation #{rec.recommendation_id} ({rec.runbook_id} on {rec.target}, "
           f"{rec.recommendation_state})" if rec is not None else "no recommendation yet")
    state = cause_state(cause, incident_open=incident_open)
    return f"Cause {cause.ordinal}: {cause_name(cause)} \u2014 {state}; {fix}"


@dataclass(frozen=True, slots=True)
class CardFields:
    """The card's answers, each a short text (its tooltip holds the rest)."""

    wrong: str
    confidence: str
    basis: str
    change: str
    undo: str
    undoable: bool
    check: str
    approval: str
    four_eyes: bool


def card_fields(rec: Recommendation, standing: Standing | None, cause: Cause | None,
                user: str) -> CardFields:
    preview = rec.preview
    if cause is not None:
        wrong = cause_name(cause)
        if cause_zone(cause):
            wrong += f" (seen on {cause.service} and others in that zone)"
    else:
        wrong = _diagnosis(rec) or f"{rec.target} (no stored cause)"
    basis = rec.basis or "the recommender did not say"
    targets = ", ".join(map(str, preview.get("targets", []))) or rec.target
    zone = cause_zone(cause) if cause is not None else ""
    # What it touches first (the summary is also the details' heading): a fix on one
    # service of a zone-wide cause says that it is only that.
    scope = f"{targets} only, not the rest of zone {zone}" if zone else targets
    change = (f"{scope} (blast radius {preview.get('blast_radius', '?')}, "
              f"{preview.get('action_class', '')}): {preview_summary(rec)}")
    undo, undoable = rollback_words(preview)
    return CardFields(
        wrong=wrong,
        confidence=f"{confidence_words(rec.confidence)} ({rec.confidence:.2f})",
        basis=basis, change=change, undo=undo, undoable=undoable,
        check=validation_words(preview), approval=approval_words(rec, standing, user),
        four_eyes=standing is not None and standing.four_eyes)


def _diagnosis(rec: Recommendation) -> str:
    for line in rec.explanation.splitlines():
        if line.startswith("Diagnosis: "):
            key = line.removeprefix("Diagnosis: ").split(" ", 1)[0]
            service, _, fault = key.partition("/")
            return f"{service}: {fault_words(fault)}" if fault else key
    return ""


def rollback_words(preview: Mapping[str, Any]) -> tuple[str, bool]:
    rollback = preview.get("rollback")
    if not rollback or rollback == "none" or not isinstance(rollback, list):
        return "no \u2014 this action cannot be undone from the console", False
    steps = "; ".join(f"{s.get('action')} ({_args(s.get('args', {}))})" for s in rollback
                      if isinstance(s, dict))
    return f"yes \u2014 {steps}", True


def validation_words(preview: Mapping[str, Any]) -> str:
    validation = dict(preview.get("validation") or {})
    probe = dict(validation.get("probe") or {})
    deadline = validation.get("deadline_s")
    if probe.get("kind") == "check":
        what = (f"{probe.get('metric')} of {probe.get('service')} {probe.get('op')} "
                f"{probe.get('threshold')}")
    else:
        what = ", ".join(f"{k}={v}" for k, v in probe.items()) or "no check"
    return what + (f" within {_duration(float(deadline))}" if deadline else "")


def approval_words(rec: Recommendation, standing: Standing | None, user: str) -> str:
    if rec.state != "pending":
        done = {"executed": "approved and run", "queued": "approved, queued",
                "executing": "approved, running"}.get(rec.state, rec.state)
        by = ", ".join(u for u, _ in rec.approvals)
        return done + (f" (by {by})" if by else "")
    if standing is None:
        return "asking the policy engine\u2026"
    text = f"{standing.outcome.replace('_', ' ')} \u2014 {standing.who}"
    if standing.four_eyes:
        mine = standing.approver_not == f"user:{user}"
        text += " \u00b7 four eyes" + (" (you asked: someone else approves)" if mine else "")
    if standing.preview_current is False:
        text += " \u00b7 STALE preview: approving is refused"
    return text


def _args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items()) or "no arguments"


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"

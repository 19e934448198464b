"""Whether the evidence under a diagnosis is solid enough for its fix to run on its own.

Policy's levels say which action classes may run without a person; this says when the
evidence behind one diagnosis may. A fix runs on its own only when

- the symptom has lasted `policy.min_persistence` (a blip that clears by itself is no
  reason to change production: two evaluation intervals by default), dated from the
  fault class's own metric on the service, else from the incident's first alert;
- at least `policy.corroboration` independent signals support it. Not independent: a
  learner forecast (a projection of a metric the diagnosis already reads), the graph
  (it spreads a symptom, it does not witness one), and, for a cause that is load itself
  (a surge), the alerts and overload errors that the same load raises: a load pulse
  lights up its request rate, saturation alerts and "rejecting request" logs at once,
  and that is one fact, not three. A cause read as a level (a certificate's hours
  left) has no blip to wait out.

A learner forecast alone never justifies a rollback: a projection says a metric will
cross a line, not that a change broke anything, so a rollback on that ground is not
even proposed. Every "no" is said in words; the recommendation then waits for a person
(level 2), as any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.investigator_metrics import analyse
from agents.investigator_scoring import PRIMARY, onset_of
from console.domain import Evidence, Hypothesis
from console.sources.metrics import Point

# Evidence kinds that never count as an independent witness, and what they are.
NOT_WITNESSES: dict[str, str] = {
    "trend": "a learner forecast",
    "topology": "the dependency graph",
    "recovery": "a recovery",
}
# Causes that are load: their symptoms are what more traffic does to any service.
LOAD_CLASSES = frozenset({"traffic_surge"})
_LOAD_EVIDENCE = frozenset({"metric", "alert", "log"})  # overload errors are load too
# Causes read as a level, not a move (hours left on a certificate): no blip to wait out.
LEVEL_CLASSES = frozenset({"certificate_expiry"})
# Action classes that undo a change: a forecast alone is never their reason.
ROLLBACK_CLASSES = frozenset({"deploy_rollback"})
# The incident's baseline, as the investigator reads it.
_BASELINE = timedelta(hours=1)
_BASELINE_GAP = timedelta(minutes=2)

Series = Callable[[str, str, datetime, datetime], Sequence[Point]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gate says about running a diagnosis' fix without a person."""

    autonomous: bool
    independent: int  # independent signals counted
    witnesses: tuple[str, ...]  # the kinds counted, for the words
    reasons: tuple[str, ...] = ()  # why not, in words (empty when autonomous)
    propose: bool = True  # False: not even worth a person's time (a forecast-only rollback)
    lasted_s: float | None = None


def witnesses(h: Hypothesis) -> tuple[list[str], list[str]]:
    """The independent kinds of evidence behind `h`, and the ones left out (with why).

    With no evidence to read (a hypothesis built by hand), its own count stands."""
    positive = [e for e in h.evidence if e.weight > 0]
    if not h.evidence:
        return [f"signal {i + 1}" for i in range(h.signals)], []
    counted: list[str] = []
    left_out: list[str] = []
    for kind in sorted({e.kind for e in positive}):
        if kind in NOT_WITNESSES:
            left_out.append(f"{NOT_WITNESSES[kind]} ({kind}) is not an independent signal")
        elif h.fault_class in LOAD_CLASSES and kind in _LOAD_EVIDENCE:
            if "load" not in counted:
                counted.append("load")
            else:
                left_out.append(f"its {kind} evidence is the same load again")
        else:
            counted.append(kind)
    return counted, left_out


def forecast_only(evidence: Sequence[Evidence]) -> bool:
    """The only current support is a learner forecast: no metric, log or alert of it."""
    kinds = {e.kind for e in evidence if e.weight > 0}
    return "trend" in kinds and not kinds & {"metric", "log", "alert"}


def symptom_onset(h: Hypothesis, series: Series | None, opened_at: datetime,
                  now: datetime) -> tuple[datetime, str]:
    """When the diagnosis' symptom began: the onset of the class's own metric on the
    service against the hour before the incident, else the incident's first alert."""
    if h.fault_class in LEVEL_CLASSES:
        return opened_at - timedelta(days=365), f"the level of {PRIMARY[h.fault_class]}"
    metric = PRIMARY.get(h.fault_class)
    if series is not None and metric is not None:
        start, end = opened_at - _BASELINE, opened_at - _BASELINE_GAP
        stat = analyse(h.service, metric, list(series(h.service, metric, start, now)), end,
                       start)
        if stat is not None:
            onset = onset_of(stat, h.fault_class)
            if onset is not None:
                return datetime.fromtimestamp(onset, now.tzinfo), f"{metric} of {h.service}"
            if stat.z_high >= 3.0 or stat.z_low <= -3.0:  # it moved before the data began
                return start, f"{metric} of {h.service} (already moving an hour before)"
    return opened_at, "the incident's first alert"


def assess(h: Hypothesis, action_class: str, *, now: datetime, onset: datetime,
           onset_from: str, min_persistence: float, corroboration: int) -> Verdict:
    """The gate: may this diagnosis' fix run on its own, as far as the evidence goes?"""
    counted, left_out = witnesses(h)
    reasons: list[str] = []
    if action_class in ROLLBACK_CLASSES and forecast_only(h.evidence):
        return Verdict(False, len(counted), tuple(counted),
                       ("a learner forecast alone never justifies a rollback",),
                       propose=False)
    if len(counted) < corroboration:
        why = f"only {len(counted)} independent signal(s) corroborate it (policy needs " \
              f"{corroboration})"
        if left_out:
            why += ": " + "; ".join(left_out)
        reasons.append(why)
    lasted = (now - onset).total_seconds()
    if lasted < min_persistence:
        reasons.append(f"the symptom has lasted {max(lasted, 0.0):.0f} s (from {onset_from}); "
                       f"policy wants {min_persistence:g} s before acting alone")
    return Verdict(not reasons, len(counted), tuple(counted), tuple(reasons),
                   lasted_s=lasted)


def gate(h: Hypothesis, action_class: str, *, corroboration: int, min_persistence: float,
         opened_at: datetime, now: datetime, series: Series | None) -> Verdict:
    """`assess` with the symptom dated from the metrics (what the recommender calls)."""
    onset, onset_from = symptom_onset(h, series, opened_at, now)
    return assess(h, action_class, now=now, onset=onset, onset_from=onset_from,
                  min_persistence=min_persistence, corroboration=corroboration)

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

Nothing is done about a symptom that has already gone: when the fault class's own metric
on the service is back within its normal now (it cleared by itself, or another fix
ended it), nothing is proposed, and the reason says so.

Load is not a fault until it stays. More traffic than usual (the service's request rate
`LOAD_RISE` times its normal or more) raises saturation, latency, queue depth and pool
usage on the service and on what it calls; read alone, that looks like a CPU-hungry
code path, a slow database, a stuck consumer or a leak. While such a symptom comes with
a load rise and no change on the service explains it, nothing is proposed for it: it is
load, not that fault (a consumer that is really stuck takes in less, not more). A
diagnosis that is load itself (a surge) is proposed at once when the load is turned
away (the service's errors `LOAD_ERRORS` over normal: requests are being lost), else
only once the rise has lasted `policy.load_persistence`: a pulse that only slows things
passes by itself, and scaling out for one changes production for nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.investigator_metrics import Z_ANOMALOUS, analyse
from agents.investigator_scoring import PRIMARY, onset_of
from agents.outcome_symptoms import rises, still_wrong
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
# Causes whose symptoms more traffic also makes (on the service and what it calls).
LOAD_FED = frozenset({"cpu_saturation", "slow_dependency", "queue_backlog",
                      "connection_pool_exhaustion"})
LOAD_RISE = 1.3  # request rate this many times its normal is a load rise
LOAD_ERRORS = 0.02  # error rate this much over its normal: load is being turned away
_LOAD_NOW = timedelta(seconds=90)  # "now": the samples of the last evaluation or two
# Action classes that undo a change: a forecast alone is never their reason.
ROLLBACK_CLASSES = frozenset({"deploy_rollback"})
# The incident's baseline, as the investigator reads it.
_BASELINE = timedelta(hours=1)
_BASELINE_GAP = timedelta(minutes=2)

Series = Callable[[str, str, datetime, datetime], Sequence[Point]]


@dataclass(frozen=True, slots=True)
class LoadRise:
    """The service's request rate against its normal, and since when it is up."""

    service: str
    ratio: float
    since: datetime
    errors: float = 0.0  # error rate over its normal now

    def lasted(self, now: datetime) -> float:
        return (now - self.since).total_seconds()


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


def load_rise(service: str, series: Series, opened_at: datetime,
              now: datetime) -> LoadRise | None:
    """The service's load rise now, when there is one: its request rate over the last
    evaluation against its median in the hour before the incident, and the start of the
    unbroken stretch of samples at `LOAD_RISE` times normal or more."""
    start, end = opened_at - _BASELINE, opened_at - _BASELINE_GAP
    points = list(series(service, "request_rate", start, now))
    base = [v for at, v in points if at <= end]
    recent = [v for at, v in points if at >= now - _LOAD_NOW]
    if len(base) < 3 or not recent:
        return None
    normal = statistics.median(base)
    ratio = statistics.median(recent) / normal if normal > 0 else 0.0
    if ratio < LOAD_RISE:
        return None
    since = now
    for at, value in reversed(points):
        if value < LOAD_RISE * normal:
            break
        since = at
    errors = list(series(service, "error_rate", start, now))
    before = [v for at, v in errors if at <= end]
    latest = [v for at, v in errors if at >= now - _LOAD_NOW]
    over = statistics.median(latest) - statistics.median(before) if before and latest else 0.0
    return LoadRise(service, ratio, since, over)


def symptom_gone(h: Hypothesis, series: Series, opened_at: datetime,
                 now: datetime) -> str | None:
    """The class's own metric on the service moved during the incident and is back
    within its normal now, in words (None: it still is wrong, it never showed there, or
    there is nothing to read it by)."""
    metric = PRIMARY.get(h.fault_class)
    if metric is None or h.fault_class in LEVEL_CLASSES:
        return None
    start, end = opened_at - _BASELINE, opened_at - _BASELINE_GAP
    stat = analyse(h.service, metric, list(series(h.service, metric, start, now)), end, start)
    if stat is None:
        return None
    rising = rises(h.fault_class, metric)
    was_there = stat.z_high >= Z_ANOMALOUS if rising else -stat.z_low >= Z_ANOMALOUS
    if not was_there or still_wrong(stat, rising):
        return None  # it never showed in this metric, or it still does
    return (f"its symptom is gone: {metric} of {h.service} is back to {stat.current:.4g} "
            f"(normal {stat.reference:.4g}), so there is nothing to act on now")


def _changed(h: Hypothesis) -> bool:
    """A change on the service is part of the evidence (a flag, a deploy): the symptom
    has a cause of its own beside any load."""
    return any(e.kind == "change" and e.weight > 0 for e in h.evidence)


def load_reason(h: Hypothesis, rise: LoadRise | None, now: datetime,
                load_persistence: float) -> str | None:
    """Why nothing is proposed for `h` while `rise` explains it (None: load does not)."""
    if rise is None:
        return None
    if h.fault_class in LOAD_CLASSES:
        lasted = rise.lasted(now)
        if lasted >= load_persistence or rise.errors >= LOAD_ERRORS:
            return None
        return (f"the load rise on {rise.service} (request rate x{rise.ratio:.1f} its normal) "
                f"has lasted {lasted:.0f} s and turns no requests away; a load pulse passes "
                f"by itself, so nothing is proposed before it has lasted "
                f"{load_persistence:g} s")
    if h.fault_class in LOAD_FED and not _changed(h):
        return (f"its symptoms come with a load rise on {rise.service} (request rate "
                f"x{rise.ratio:.1f} its normal since {rise.since:%H:%M:%S}) and no change on "
                f"it: that is load, not {h.fault_class}, and nothing is proposed for it "
                "while the load explains it")
    return None


def assess(h: Hypothesis, action_class: str, *, now: datetime, onset: datetime,
           onset_from: str, min_persistence: float, corroboration: int,
           load: LoadRise | None = None, load_persistence: float = 600.0) -> Verdict:
    """The gate: may this diagnosis' fix run on its own, as far as the evidence goes?"""
    counted, left_out = witnesses(h)
    reasons: list[str] = []
    if action_class in ROLLBACK_CLASSES and forecast_only(h.evidence):
        return Verdict(False, len(counted), tuple(counted),
                       ("a learner forecast alone never justifies a rollback",),
                       propose=False)
    pulse = load_reason(h, load, now, load_persistence)
    if pulse is not None:
        return Verdict(False, len(counted), tuple(counted), (pulse,), propose=False)
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
         opened_at: datetime, now: datetime, series: Series | None,
         load_persistence: float = 600.0,
         callees: Sequence[str] = ()) -> Verdict:
    """`assess` with the symptom dated and the load read from the metrics (what the
    recommender calls). A symptom load feeds may come with load on the service or on
    what it calls (`callees`: a service waits on a loaded dependency)."""
    gone = symptom_gone(h, series, opened_at, now) if series is not None else None
    if gone is not None:
        return Verdict(False, len(witnesses(h)[0]), tuple(witnesses(h)[0]), (gone,),
                       propose=False)
    onset, onset_from = symptom_onset(h, series, opened_at, now)
    load = load_rise(h.service, series, opened_at, now) if series is not None else None
    if load is None and series is not None and h.fault_class in LOAD_FED:
        load = next((rise for rise in (load_rise(c, series, opened_at, now)
                                       for c in callees) if rise is not None), None)
    return assess(h, action_class, now=now, onset=onset, onset_from=onset_from,
                  min_persistence=min_persistence, corroboration=corroboration, load=load,
                  load_persistence=load_persistence)

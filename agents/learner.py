"""The learner (level 5): outcomes feed back so that repeats fall.

Three memories, all derived from what the console already records (executions, the
recommendations they ran, incidents, signals and the audit log; see
console/storage/repos_learning.py), so they survive restarts and agree across consoles:

- success statistics per (runbook, fault class): an execution that validated counts as
  a success, one that failed or was rolled back as a failure, and a "success" whose
  problem came back counts as a failure too, so a restart on a memory leak stops
  looking like a fix;
- repeat incidents, per fingerprint (the same services and alert names) coming back
  within a day of being resolved; a fix that preceded a repeat, or after which the
  incident's own alerts fired again, is flagged as not sticking (audited once);
- trends: a least-squares line through the last 45 minutes of disk, memory and
  certificate lifetime, and an early-warning signal when it crosses its threshold
  within the horizon, before any alert rule fires. It warns once per (service,
  metric) and resolves when the projection no longer crosses.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from console.domain import AlertStatus, Hypothesis, Severity, Signal, SignalKind
from console.service import WatchfloorService
from console.sources.metrics import MetricsReader, Point
from console.storage.repos_learning import (
    DIAGNOSIS_ACTION,
    FAILED_STATES,
    NOT_STICKING_ACTION,
    IncidentProfile,
    LearningRepo,
    Outcome,
)

ACTOR = "agent:learner"
SOURCE = "learner"


@dataclass(frozen=True, slots=True)
class TrendRule:
    """Warn when `metric` is projected to go past `threshold` (`op`) within the horizon."""

    metric: str
    op: str  # ">" rising towards the threshold, "<" falling towards it
    threshold: float
    alert: str
    what: str


TREND_RULES = (
    TrendRule("disk", ">", 90.0, "DiskWillFill", "disk usage"),
    TrendRule("memory", ">", 95.0, "MemoryWillExhaust", "memory usage"),
    TrendRule("cert_expiry_hours", "<", 168.0, "CertificateWillExpire",
              "certificate lifetime (hours)"),
)


@dataclass(frozen=True)
class LearnerSettings:
    repeat_window: timedelta = timedelta(hours=24)  # a repeat comes back within this
    trend_window: timedelta = timedelta(minutes=45)  # the samples a trend is fitted on
    min_span: timedelta = timedelta(minutes=10)  # no trend from less history than this
    min_points: int = 6
    horizon: timedelta = timedelta(hours=2)  # warn when the crossing is this close
    recover_factor: float = 1.5  # resolve once the crossing is beyond horizon x this
    min_fit: float = 0.6  # R² under which the line explains too little to warn on
    rules: tuple[TrendRule, ...] = TREND_RULES


@dataclass(frozen=True, slots=True)
class Repeat:
    """An incident that is the same problem as an earlier one, soon after it resolved."""

    incident_id: int
    previous_id: int
    fingerprint: str
    gap: timedelta  # from the earlier one's resolution to this one's opening
    count: int  # how many times this problem has come back so far


@dataclass(frozen=True, slots=True)
class NotSticking:
    """An execution that "succeeded" although its problem came back."""

    execution_id: int
    runbook_id: str
    fault_class: str
    service: str
    incident_id: int
    at: datetime  # when the problem came back
    reason: str


def similar(a: IncidentProfile, b: IncidentProfile) -> bool:
    """The same problem: the same fingerprint, or services and alert names that overlap
    by half or more each (one extra caller does not hide a repeat)."""
    if a.fingerprint == b.fingerprint:
        return True
    return _jaccard(a.services, b.services) >= 0.5 and _jaccard(a.alerts, b.alerts) >= 0.5


def _jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def fit(points: Sequence[Point]) -> tuple[float, float]:
    """Least-squares slope (per second) and R² of a series."""
    t0 = points[0][0]
    xs = [(at - t0).total_seconds() for at, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0:
        return 0.0, 0.0
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return slope, r2


def success_mean(successes: int, failures: int,
                 prior: tuple[float, float] = (1.0, 1.0)) -> float:
    """The mean of Beta(prior + successes, prior + failures): the expected success of a
    runbook on a fault class (Beta(1, 1), the neutral prior, when it has no history)."""
    return (prior[0] + successes) / (prior[0] + prior[1] + successes + failures)


def note_diagnosis(service: WatchfloorService, recommendation_id: int,
                   hypothesis: Hypothesis, incident_id: int | None, *,
                   actor: str = "agent:recommender") -> None:
    """Audit which hypothesis a recommendation is for. The learner reads it to count
    outcomes per fault class, the recommender to tell whether a diagnosis changed."""
    service.record(actor=actor, action=DIAGNOSIS_ACTION,
                   target=f"recommendation:{recommendation_id}",
                   reason=f"for {hypothesis.key} at {hypothesis.confidence:.2f}",
                   inputs={"incident": incident_id, "service": hypothesis.service,
                           "fault_class": hypothesis.fault_class,
                           "confidence": round(hypothesis.confidence, 4),
                           "signals": hypothesis.signals,
                           "evidence": [e.ref for e in hypothesis.evidence][:50]})


class Learner:
    name = "learner"

    def __init__(self, service: WatchfloorService, metrics: MetricsReader | None = None,
                 settings: LearnerSettings | None = None) -> None:
        self.service = service
        self.metrics = metrics  # the composition root sets it once a source has metrics
        self.settings = settings or LearnerSettings()
        self._repo = LearningRepo()
        self._warned: dict[tuple[str, str], Signal] = {}  # (service, metric) -> warning
        self._lock = threading.Lock()

    def note_diagnosis(self, recommendation_id: int, hypothesis: Hypothesis,
                       incident_id: int | None) -> None:
        note_diagnosis(self.service, recommendation_id, hypothesis, incident_id)

    # --- success statistics -------------------------------------------------------------

    def statistics(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(runbook, fault class) -> (successes, failures) over every finished execution."""
        with self.service.db.sessions() as session:
            outcomes = self._repo.outcomes(session)
            if not outcomes:  # nothing has run yet: no record, and no verdict to look up
                return {}
            diagnoses = self._repo.diagnoses(
                session, [o.recommendation_id for o in outcomes if o.recommendation_id])
            flagged = self._repo.flagged(session)  # older verdicts, kept in the audit log
        lapsed = flagged | {n.execution_id for n in self.not_sticking()}
        stats: dict[tuple[str, str], tuple[int, int]] = {}
        for outcome in outcomes:
            diagnosis = diagnoses.get(outcome.recommendation_id or -1)
            if diagnosis is None or not diagnosis.fault_class:
                continue
            key = (outcome.runbook_id, diagnosis.fault_class)
            wins, losses = stats.get(key, (0, 0))
            if outcome.state in FAILED_STATES or outcome.execution_id in lapsed:
                losses += 1
            else:
                wins += 1
            stats[key] = (wins, losses)
        return stats

    def success_rate(self, runbook_id: str, fault_class: str) -> tuple[int, int]:
        """(successes, failures) of a runbook on incidents of one fault class."""
        return self.statistics().get((runbook_id, fault_class), (0, 0))

    # --- repeats and fixes that do not stick -----------------------------------------------

    def repeats(self, now: datetime | None = None,
                lookback: timedelta = timedelta(days=7)) -> list[Repeat]:
        """Incidents that are an earlier incident coming back within the repeat window."""
        now = now or self.service.clock.now()
        with self.service.db.sessions() as session:
            profiles = self._repo.incidents(session, now - lookback)
        out: list[Repeat] = []
        counts: dict[int, int] = {}  # incident -> how many times its problem came back
        for later in profiles:
            earlier = self._previous(later, profiles)
            if earlier is None or earlier.resolved_at is None:
                continue
            counts[later.id] = counts.get(earlier.id, 0) + 1
            out.append(Repeat(later.id, earlier.id, later.fingerprint,
                              later.opened_at - earlier.resolved_at, counts[later.id]))
        return out

    def _previous(self, later: IncidentProfile,
                  profiles: Sequence[IncidentProfile]) -> IncidentProfile | None:
        window = self.settings.repeat_window
        found = [p for p in profiles if p.id != later.id and p.resolved_at is not None
                 and p.resolved_at <= later.opened_at <= p.resolved_at + window
                 and similar(p, later)]
        return max(found, key=lambda p: (p.resolved_at or p.opened_at, p.id), default=None)

    def not_sticking(self, now: datetime | None = None) -> list[NotSticking]:
        """Succeeded executions whose problem came back: the incident's own alerts fired
        again, or an incident like it opened, within the repeat window after the fix."""
        now = now or self.service.clock.now()
        window = self.settings.repeat_window
        out: list[NotSticking] = []
        with self.service.db.sessions() as session:
            outcomes = [o for o in self._repo.outcomes(session, now - timedelta(days=7))
                        if o.state == "succeeded" and o.incident_id is not None
                        and o.finished_at is not None]
            if not outcomes:
                return []
            diagnoses = self._repo.diagnoses(
                session, [o.recommendation_id for o in outcomes if o.recommendation_id])
            profiles = {p.id: p for p in self._repo.incidents(session,
                                                              now - timedelta(days=8))}
            for o in outcomes:
                profile = profiles.get(o.incident_id or -1) or \
                    self._repo.incident(session, o.incident_id or -1)
                diagnosis = diagnoses.get(o.recommendation_id or -1)
                if profile is None or diagnosis is None or o.finished_at is None:
                    continue
                verdict = self._came_back(session, o, o.finished_at, profile,
                                          list(profiles.values()),
                                          min(now, o.finished_at + window))
                if verdict is not None:
                    at, why = verdict
                    out.append(NotSticking(o.execution_id, o.runbook_id, diagnosis.fault_class,
                                           o.target, profile.id, at, why))
        return out

    def _came_back(self, session: Session, outcome: Outcome, fixed_at: datetime,
                   profile: IncidentProfile, profiles: Sequence[IncidentProfile],
                   until: datetime) -> tuple[datetime, str] | None:
        signals = self._repo.firings(session, profile.fingerprints, fixed_at, until)
        # The fixed service's own alerts say most; callers' alerts only when it had none.
        own = [s for s in signals if s.service == outcome.target] \
            if outcome.target in profile.services else signals
        candidates: list[tuple[datetime, str]] = []
        if own:
            first = own[0]
            candidates.append((first.at, f"{first.name} on {first.service} fired again "
                               f"{_minutes(first.at - fixed_at)} after {outcome.runbook_id} "
                               f"succeeded (incident {profile.id})"))
        for later in profiles:
            if later.id == profile.id or not (fixed_at < later.opened_at <= until):
                continue
            if profile.resolved_at is not None and later.opened_at < profile.resolved_at:
                continue
            if similar(profile, later):
                candidates.append((later.opened_at, f"incident {later.id} repeats incident "
                                   f"{profile.id} (same services and alerts) "
                                   f"{_minutes(later.opened_at - fixed_at)} after "
                                   f"{outcome.runbook_id} succeeded"))
        return min(candidates, default=None)

    def review(self, now: datetime | None = None) -> list[NotSticking]:
        """Flag the fixes that did not stick, once each (audited); returns the new ones."""
        found = self.not_sticking(now)
        with self.service.db.sessions() as session:
            flagged = self._repo.flagged(session)
        new = [n for n in found if n.execution_id not in flagged]
        for n in new:
            self.service.record(actor=ACTOR, action=NOT_STICKING_ACTION,
                                target=f"execution:{n.execution_id}", reason=n.reason,
                                inputs={"runbook": n.runbook_id, "fault_class": n.fault_class,
                                        "service": n.service, "incident": n.incident_id},
                                outputs={"came_back_at": n.at.isoformat()})
        return new

    # --- trends ---------------------------------------------------------------------------

    def trends(self, now: datetime) -> list[Signal]:
        """Early warnings (firing) and their all-clears (resolved) as signals."""
        if self.metrics is None:
            return []
        out: list[Signal] = []
        with self._lock:
            for svc in self.metrics.services():
                for rule in self.settings.rules:
                    signal = self._trend(svc, rule, now)
                    if signal is not None:
                        out.append(signal)
        for signal in out:
            if signal.status is AlertStatus.FIRING:
                self.service.record(actor=ACTOR, action="learner.early_warning",
                                    target=f"service:{signal.service}",
                                    reason=signal.annotations.get("summary", ""),
                                    outputs={"alert": signal.name,
                                             **dict(signal.annotations)})
        return out

    def _trend(self, svc: str, rule: TrendRule, now: datetime) -> Signal | None:
        assert self.metrics is not None
        s = self.settings
        points = self.metrics.series(svc, rule.metric, now - s.trend_window, now)
        key = (svc, rule.metric)
        warned = self._warned.get(key)
        if len(points) < s.min_points or points[-1][0] - points[0][0] < s.min_span:
            return None
        slope, r2 = fit(points)
        latest = points[-1][1]
        toward = slope if rule.op == ">" else -slope  # > 0: moving towards the threshold
        gap = rule.threshold - latest if rule.op == ">" else latest - rule.threshold
        eta = gap / toward if toward > 0 and gap > 0 else None
        if warned is not None:
            if gap <= 0:
                return None  # it crossed: the alert rules have it now
            if eta is None or eta > s.horizon.total_seconds() * s.recover_factor:
                del self._warned[key]
                return _resolved(warned, now)
            return None
        if eta is None or eta > s.horizon.total_seconds() or r2 < s.min_fit:
            return None
        at = now + timedelta(seconds=eta)
        per_hour = slope * 3600.0
        summary = (f"{svc} {rule.what} is {latest:.1f} and moving {per_hour:+.1f}/h; "
                   f"projected to pass {rule.threshold:g} at {at:%H:%M} UTC "
                   f"(in {_minutes(at - now)})")
        signal = Signal(SOURCE, SignalKind.ALERT, rule.alert, svc, Severity.WARNING,
                        AlertStatus.FIRING, now,
                        {"alertname": rule.alert, "service": svc, "metric": rule.metric,
                         "severity": "warning"},
                        {"summary": summary, "projected_at": at.isoformat(),
                         "value": f"{latest:.4g}", "threshold": f"{rule.threshold:g}",
                         "slope_per_hour": f"{per_hour:.4g}", "fit_r2": f"{r2:.3f}",
                         "metric": rule.metric,
                         "window_s": f"{s.trend_window.total_seconds():g}"})
        self._warned[key] = signal
        return signal


def _resolved(fired: Signal, now: datetime) -> Signal:
    return Signal(SOURCE, SignalKind.ALERT, fired.name, fired.service, fired.severity,
                  AlertStatus.RESOLVED, now, fired.labels,
                  {**dict(fired.annotations), "summary": f"{fired.service} "
                   f"{fired.labels.get('metric')} is no longer projected to cross "
                   f"{fired.annotations.get('threshold')} within the horizon"},
                  fired.fingerprint)


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"

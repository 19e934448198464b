"""Outcome KPIs derived from the database: how fast, how often by itself, how noisy.

Nothing here is stored: every number is recomputed from the incidents, their timeline,
the hypotheses, recommendations, approvals and executions, so it cannot drift from the
record it summarizes (the learner follows the same rule, see storage/repos_learning).
The ground truth of a fault is not in the database (only the evaluation knows it), so
the operational definitions are:

- time to detect: from the first firing signal on any of the incident's services (within
  `detect_lookback` before it opened) to the incident being opened;
- time to diagnose: from the incident opening to the investigator's first hypothesis;
- MTTR: from the incident opening to its resolution (resolved incidents only);
- auto-resolution rate: resolved incidents fixed by at least one succeeded execution
  where every execution for it ran autonomously, over resolved incidents;
- rollback rate: finished executions that were rolled back, over finished executions;
- noise: alerts the correlator grouped into incidents, per incident (and the share of
  alerts that did not become an incident of their own);
- repeat-incident rate: incidents that are an earlier resolved incident coming back
  within `repeat_window` (same alert series, or services and alert names overlapping by
  half or more, as the learner judges), over incidents;
- approvals: recommendations waiting for a person now and their age, and over time the
  wait from a recommendation to its first approval or rejection.

Incident figures are bucketed by the time the incident opened, executions by their
start, approval waits by the recommendation's creation.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.storage.models import (
    ApprovalRow,
    ExecutionRow,
    HypothesisRow,
    IncidentRow,
    RecommendationRow,
    SignalRow,
    TimelineEventRow,
)

if TYPE_CHECKING:
    from console.service import WatchfloorService

BUCKETS = {"hour": 3600, "day": 86400}
PLACED = ("open", "join", "reopen", "flapping")  # correlator decisions that place an alert
FINISHED = ("succeeded", "failed", "rolled_back", "rollback_failed")
ROLLED_BACK = ("rolled_back", "rollback_failed")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class KpiValues:
    """The KPIs over one stretch of time; a rate or a mean is None when nothing counted."""

    incidents: int = 0
    resolved: int = 0
    mttr_s: float | None = None
    time_to_detect_s: float | None = None
    time_to_diagnose_s: float | None = None
    auto_resolved: int = 0
    auto_resolution_rate: float | None = None
    executions: int = 0
    rollbacks: int = 0
    rollback_rate: float | None = None
    alerts: int = 0
    signals_per_incident: float | None = None
    noise_reduction: float | None = None
    repeats: int = 0
    repeat_rate: float | None = None
    approval_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    values: KpiValues


@dataclass(frozen=True, slots=True)
class Waiting:
    """A recommendation waiting for a person to approve or reject it."""

    recommendation_id: int
    runbook_id: str
    target: str
    risk: str
    incident_id: int | None
    age_s: float


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """The headline of the latest `watchfloor eval`."""

    id: int
    at: str
    scenarios: tuple[str, ...]
    scores: Mapping[str, Any]

    def figure(self, *path: str) -> Any:
        value: Any = self.scores
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value


@dataclass(frozen=True, slots=True)
class KpiReport:
    now: datetime
    since: datetime
    bucket_s: int
    totals: KpiValues
    buckets: tuple[Bucket, ...]
    waiting: tuple[Waiting, ...] = ()
    eval: EvalSummary | None = None

    @property
    def approvals_waiting(self) -> int:
        return len(self.waiting)

    @property
    def oldest_wait_s(self) -> float | None:
        return max((w.age_s for w in self.waiting), default=None)

    def series(self, name: str) -> tuple[list[float], list[float | None]]:
        """Bucket start times (POSIX seconds) and one KpiValues field, for plotting."""
        return ([b.start.timestamp() for b in self.buckets],
                [getattr(b.values, name) for b in self.buckets])


# --- facts gathered from the database ------------------------------------------------


@dataclass(slots=True)
class _Incident:
    id: int
    opened_at: datetime
    resolved_at: datetime | None
    services: tuple[str, ...]
    alerts: int = 0
    fingerprints: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    detect_s: float | None = None
    diagnose_s: float | None = None
    auto_resolved: bool = False
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class _Execution:
    started_at: datetime
    state: str


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def _jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _similar(a: _Incident, b: _Incident) -> bool:
    """The learner's notion of the same problem (agents/learner.similar), on these facts."""
    if a.fingerprints and a.fingerprints == b.fingerprints:
        return True
    return _jaccard(a.services, b.services) >= 0.5 and _jaccard(a.names, b.names) >= 0.5


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 1) if present else None


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _floor(at: datetime, bucket_s: int) -> datetime:
    ts = at.astimezone(UTC).timestamp()
    return datetime.fromtimestamp(ts - ts % bucket_s, UTC)


def _values(incidents: Sequence[_Incident], executions: Sequence[_Execution],
            waits: Sequence[float]) -> KpiValues:
    resolved = [i for i in incidents if i.resolved_at is not None]
    finished = [e for e in executions if e.state in FINISHED]
    rollbacks = sum(1 for e in finished if e.state in ROLLED_BACK)
    alerts = sum(i.alerts for i in incidents)
    auto = sum(1 for i in resolved if i.auto_resolved)
    repeats = sum(1 for i in incidents if i.repeat)
    return KpiValues(
        incidents=len(incidents), resolved=len(resolved),
        mttr_s=_mean((i.resolved_at - i.opened_at).total_seconds()
                     for i in resolved if i.resolved_at is not None),
        time_to_detect_s=_mean(i.detect_s for i in incidents),
        time_to_diagnose_s=_mean(i.diagnose_s for i in incidents),
        auto_resolved=auto, auto_resolution_rate=_rate(auto, len(resolved)),
        executions=len(finished), rollbacks=rollbacks,
        rollback_rate=_rate(rollbacks, len(finished)),
        alerts=alerts,
        signals_per_incident=round(alerts / len(incidents), 2) if incidents else None,
        noise_reduction=round(1 - len(incidents) / alerts, 4) if alerts else None,
        repeats=repeats, repeat_rate=_rate(repeats, len(incidents)),
        approval_wait_s=_mean(waits))


class Kpis:
    """Computes KPI reports over the service's database (safe in a worker thread: every
    call opens its own session and only reads)."""

    def __init__(self, service: WatchfloorService, *,
                 repeat_window: timedelta = timedelta(hours=24),
                 detect_lookback: timedelta = timedelta(minutes=30)) -> None:
        self._service = service
        self.repeat_window = repeat_window
        self.detect_lookback = detect_lookback

    def report(self, window: timedelta = timedelta(hours=24), bucket: str | int = "hour",
               now: datetime | None = None) -> KpiReport:
        """KPIs over the last `window` up to `now` (the service clock's now by default),
        in buckets of an hour, a day, or a number of seconds."""
        bucket_s = BUCKETS[bucket] if isinstance(bucket, str) else int(bucket)
        if bucket_s <= 0:
            raise ValueError(f"bucket must be positive, got {bucket!r}")
        if bucket_s > 0 and window.total_seconds() / bucket_s > 2000:
            raise ValueError("too many buckets: choose a longer bucket or a shorter window")
        now = (now or self._service.clock.now()).astimezone(UTC)
        since = now - window
        with self._service.db.sessions() as session:
            incidents = self._incidents(session, since, now)
            executions = self._executions(session, since, now)
            waits = self._waits(session, since, now)
            waiting = self._waiting(session, now)
            latest = self._latest_eval(session)
        in_range = [i for i in incidents if i.opened_at >= since]
        totals = _values(in_range, executions, [w for _, w in waits])
        buckets = self._bucket(in_range, executions, waits, since, now, bucket_s)
        return KpiReport(now=now, since=since, bucket_s=bucket_s, totals=totals,
                         buckets=buckets, waiting=waiting, eval=latest)

    @staticmethod
    def _bucket(incidents: Sequence[_Incident], executions: Sequence[_Execution],
                waits: Sequence[tuple[datetime, float]], since: datetime, now: datetime,
                bucket_s: int) -> tuple[Bucket, ...]:
        by_inc: dict[datetime, list[_Incident]] = defaultdict(list)
        by_exec: dict[datetime, list[_Execution]] = defaultdict(list)
        by_wait: dict[datetime, list[float]] = defaultdict(list)
        for inc in incidents:
            by_inc[_floor(inc.opened_at, bucket_s)].append(inc)
        for ex in executions:
            by_exec[_floor(ex.started_at, bucket_s)].append(ex)
        for at, wait in waits:
            by_wait[_floor(at, bucket_s)].append(wait)
        out = []
        start, last = _floor(since, bucket_s), _floor(now, bucket_s)
        step = timedelta(seconds=bucket_s)
        while start <= last:
            out.append(Bucket(start, _values(by_inc[start], by_exec[start], by_wait[start])))
            start += step
        return tuple(out)

    # --- queries ----------------------------------------------------------------------

    def _incidents(self, session: Session, since: datetime, now: datetime) -> list[_Incident]:
        # Earlier incidents are read too: a repeat in range may repeat one from before it.
        rows = session.execute(select(IncidentRow.id, IncidentRow.opened_at,
                                      IncidentRow.resolved_at, IncidentRow.services)
                               .where(IncidentRow.opened_at >= since - self.repeat_window,
                                      IncidentRow.opened_at <= now)
                               .order_by(IncidentRow.opened_at, IncidentRow.id)).all()
        incidents = {r.id: _Incident(r.id, r.opened_at, r.resolved_at,
                                     tuple(r.services or ())) for r in rows}
        ids = list(incidents)
        for chunk in _chunks(ids):
            for inc_id, ref, data in session.execute(
                    select(TimelineEventRow.incident_id, TimelineEventRow.ref,
                           TimelineEventRow.data)
                    .where(TimelineEventRow.incident_id.in_(chunk),
                           TimelineEventRow.kind == "agent")):
                if isinstance(data, Mapping) and data.get("decision") in PLACED:
                    incidents[inc_id].alerts += 1
                    if ref:
                        incidents[inc_id].fingerprints.add(ref)
            for inc_id, first in session.execute(
                    select(HypothesisRow.incident_id, func.min(HypothesisRow.created_at))
                    .where(HypothesisRow.incident_id.in_(chunk))
                    .group_by(HypothesisRow.incident_id)):
                inc = incidents[inc_id]
                first = first if first.tzinfo else first.replace(tzinfo=UTC)
                inc.diagnose_s = max(0.0, (first - inc.opened_at).total_seconds())
        self._names(session, incidents.values())
        self._executions_of(session, incidents)
        for inc in incidents.values():
            if inc.opened_at >= since:
                inc.detect_s = self._detect(session, inc)
        ordered = list(incidents.values())
        for later in ordered:
            later.repeat = any(
                e.id != later.id and e.resolved_at is not None
                and e.resolved_at <= later.opened_at <= e.resolved_at + self.repeat_window
                and _similar(e, later) for e in ordered)
        return ordered

    @staticmethod
    def _names(session: Session, incidents: Iterable[_Incident]) -> None:
        incidents = list(incidents)
        fps = sorted({fp for inc in incidents for fp in inc.fingerprints})
        names: dict[str, str] = {}
        for chunk in _chunks(fps):
            for fp, name in session.execute(select(SignalRow.fingerprint, SignalRow.name)
                                            .where(SignalRow.fingerprint.in_(chunk))
                                            .distinct()):
                names[fp] = name
        for inc in incidents:
            inc.names = {names[fp] for fp in inc.fingerprints if fp in names}

    @staticmethod
    def _executions_of(session: Session, incidents: dict[int, _Incident]) -> None:
        per: dict[int, list[tuple[str, bool]]] = defaultdict(list)
        for chunk in _chunks(list(incidents)):
            for inc_id, state, autonomous in session.execute(
                    select(RecommendationRow.incident_id, ExecutionRow.state,
                           ExecutionRow.autonomous)
                    .join(RecommendationRow,
                          ExecutionRow.recommendation_id == RecommendationRow.id)
                    .where(RecommendationRow.incident_id.in_(chunk))):
                if inc_id is not None:
                    per[inc_id].append((state, bool(autonomous)))
        for inc_id, runs in per.items():
            inc = incidents[inc_id]
            inc.auto_resolved = (inc.resolved_at is not None
                                 and any(s == "succeeded" for s, _ in runs)
                                 and all(auto for _, auto in runs))

    def _detect(self, session: Session, inc: _Incident) -> float | None:
        if not inc.services:
            return None
        first = session.scalar(select(func.min(SignalRow.at))
                               .where(SignalRow.service.in_(inc.services),
                                      SignalRow.status == "firing",
                                      SignalRow.at >= inc.opened_at - self.detect_lookback,
                                      SignalRow.at <= inc.opened_at))
        if first is None:
            return 0.0  # nothing fired before it: the incident opened on its first signal
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        return max(0.0, (inc.opened_at - first).total_seconds())

    @staticmethod
    def _executions(session: Session, since: datetime, now: datetime) -> list[_Execution]:
        return [_Execution(at, state) for at, state in session.execute(
            select(ExecutionRow.started_at, ExecutionRow.state)
            .where(ExecutionRow.started_at >= since, ExecutionRow.started_at <= now))]

    @staticmethod
    def _waits(session: Session, since: datetime, now: datetime) -> list[tuple[datetime, float]]:
        rows = session.execute(
            select(RecommendationRow.created_at, func.min(ApprovalRow.at))
            .join(ApprovalRow, ApprovalRow.recommendation_id == RecommendationRow.id)
            .where(RecommendationRow.created_at >= since, RecommendationRow.created_at <= now,
                   RecommendationRow.autonomous.is_(False))
            .group_by(RecommendationRow.id, RecommendationRow.created_at))
        out = []
        for created, first in rows:
            first = first if first.tzinfo else first.replace(tzinfo=UTC)
            out.append((created, max(0.0, (first - created).total_seconds())))
        return out

    @staticmethod
    def _waiting(session: Session, now: datetime) -> tuple[Waiting, ...]:
        rows = session.scalars(select(RecommendationRow)
                               .where(RecommendationRow.state == "pending")
                               .order_by(RecommendationRow.created_at))
        return tuple(Waiting(r.id, r.runbook_id or "", r.target, r.risk, r.incident_id,
                             max(0.0, (now - r.created_at).total_seconds()))
                     for r in rows if r.expires_at is None or r.expires_at > now)

    @staticmethod
    def _latest_eval(session: Session) -> EvalSummary | None:
        from console.evaluate import EvalRepo

        recent = EvalRepo().recent(session, 1)
        if not recent:
            return None
        run = recent[0]
        return EvalSummary(run["id"], run["at"], tuple(run["scope"].get("scenarios", ())),
                           run["scores"])

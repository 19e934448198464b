"""The investigator's reasoning: each fault class's signature on a service, how the
dependency graph and the timeline weigh it, and the calibration of the raw scores.

For a candidate (service, fault class) the raw score adds four kinds of evidence:

    score = W_METRIC * signature * (1/2 + cover/2)     the metric signature, scaled by the
                                                       share of the incident's symptoms it
                                                       explains (the service and its callers)
          + W_CHANGE * change * gate * (1 - deeper)    a fitting change shortly before onset
          + W_LOG    * log    * gate'                  new log templates that name the fault
          + W_ALERT  * alert  * gate'                  firing alerts on the signature metric
          - W_DEEPER * deeper                          its own dependencies are more anomalous

`gate` ties a change to an anomaly of the same service (a change on a healthy service is
never blamed, nor one on a service whose own dependency went the more wrong); `gate'`
lets logs and alerts count a little without metrics (a source may have none) and fully
with them. The weights (and the learner's forecasts' `W_TREND`) are fitted together with
the two calibration constants, on fit seeds only, and shipped as data
(resources/calibration/investigator.json; `python -m benchmarks.bench_calibrate`).
Confidence is a softmax over the candidates with positive evidence and one "none of
these" candidate (score `NULL_SCORE`), at temperature `TEMPERATURE`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agents.calibration import load as load_calibration
from agents.investigator_lexicon import ALERT_CLASSES, CHANGE_AFFINITY, LogPattern, alert_metric
from agents.investigator_metrics import MetricStat
from console.domain import ChangeEvent, Signal
from console.storage.repos_evidence import TemplateStat

# Fitted (`python -m benchmarks.bench_calibrate --write`) by maximum likelihood of the
# right answer on incidents of fit seeds only, and shipped as data with how they were
# fitted: resources/calibration/investigator.json (agents/calibration.py). The numbers
# here are where a fit starts, and what a file without weights means.
DEFAULT_WEIGHTS = {"metric": 3.0, "change": 2.0, "log": 1.2, "alert": 0.8, "trend": 2.0,
                   "deeper": 2.0}
CALIBRATION = load_calibration()
WEIGHTS = {**DEFAULT_WEIGHTS, **CALIBRATION.weights}
W_METRIC = WEIGHTS["metric"]
W_CHANGE = WEIGHTS["change"]
W_LOG = WEIGHTS["log"]
W_ALERT = WEIGHTS["alert"]
W_TREND = WEIGHTS["trend"]
W_DEEPER = WEIGHTS["deeper"]
TEMPERATURE = CALIBRATION.temperature
NULL_SCORE = CALIBRATION.null_score
LATER_CAUSES = CALIBRATION.later  # the causes after an incident's first (agents/causes.py)

CHANGE_LEAD_S = 10 * 60.0  # a change this long before onset is still "shortly before"
CHANGE_FADE_S = 10 * 60.0  # ...and counts less and less for this long after that
# A change recorded this long after onset may still be its cause (clock skew, one
# sample): no longer, since a version rolls out instance by instance and the readings are
# a trailing mean, which puts an onset later than it was, never earlier.
CHANGE_LAG_S = 20.0

# The metric whose onset dates each class's anomaly (for the change timing).
PRIMARY = {
    "bad_deploy": "error_rate", "config_error": "error_rate", "memory_leak": "memory",
    "cpu_saturation": "cpu", "slow_dependency": "latency_p99_ms",
    "connection_pool_exhaustion": "pool_usage", "disk_filling": "disk",
    "queue_backlog": "request_rate", "certificate_expiry": "cert_expiry_hours",
    "cache_stampede": "cache_hit_ratio", "network_partition": "instances_ready",
    "traffic_surge": "request_rate",
}
KNOWN_CLASSES = frozenset(PRIMARY)
_FALLING = {"cache_stampede", "network_partition"}  # signatures that are a fall


@dataclass
class ServiceView:
    """Everything the investigator gathered about one service for one incident."""

    name: str
    callers: tuple[str, ...]
    callees: tuple[str, ...]
    latest: Mapping[str, float]
    stats: dict[str, MetricStat] = field(default_factory=dict)
    alerts: list[Signal] = field(default_factory=list)
    own_logs: list[tuple[LogPattern | None, TemplateStat]] = field(default_factory=list)
    reported: list[tuple[LogPattern, str, TemplateStat]] = field(default_factory=list)
    changes: list[ChangeEvent] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)  # metrics the screen found worth reading
    sampled: dict[str, datetime] = field(default_factory=dict)  # newest sample per metric
    siblings: tuple[str, ...] = ()  # the other dependencies of its callers
    points: dict[str, Sequence[tuple[datetime, float]]] = field(default_factory=dict)
    # For a service nobody calls: the other callers of its dependencies, outside its own
    # reach (a consumer's work arrives through its queue from them)
    feeders: tuple[str, ...] = ()
    # Stats of services outside the suspects that could carry its load (a caller's
    # request rate, a sibling cache's hit ratio): context, never candidates
    # (agents/investigator_context.py)
    around: dict[tuple[str, str], MetricStat] = field(default_factory=dict)

    def rise(self, metric: str) -> float:
        stat = self.stats.get(metric)
        return stat.rise() if stat is not None else 0.0

    def fall(self, metric: str) -> float:
        stat = self.stats.get(metric)
        return stat.fall() if stat is not None else 0.0

    @property
    def symptom(self) -> float:
        """What its callers feel: errors, latency, or its traffic collapsing."""
        return max(self.rise("error_rate"), self.rise("latency_p99_ms"),
                   0.7 * self.fall("request_rate"))

    @property
    def overload(self) -> float:
        """How far past its capacity it runs (saturation is a share of capacity)."""
        stat = self.stats.get("saturation")
        level = stat.high if stat is not None else self.latest.get("saturation", 0.0)
        return min(1.0, max(0.0, (level - 0.85) / 0.25))

    def instances_lost(self) -> float:
        stat = self.stats.get("instances_ready")
        if stat is None or stat.ceiling <= 0 or stat.z_low > -3.0:
            return 0.0
        return min(1.0, (stat.ceiling - stat.low) / stat.ceiling / 0.25)

    def certificate(self) -> float:
        hours = self.latest.get("cert_expiry_hours")
        if hours is None or not math.isfinite(hours):
            return 0.0
        if hours <= 0:
            return 1.0
        if hours < 72:
            return 0.6 + 0.3 * (1.0 - hours / 72.0)
        return 0.2 if hours < 168 else 0.0


@dataclass(frozen=True, slots=True)
class Part:
    """One scored piece of evidence before it becomes an `Evidence` (kind, summary, ref)."""

    kind: str
    summary: str
    ref: str
    weight: float


@dataclass
class Candidate:
    service: str
    fault_class: str
    signature: float
    score: float = 0.0
    parts: list[Part] = field(default_factory=list)
    zone: str = ""  # the zone it stands for, when it speaks for a zone's partition
    # The evidence before its weight, per kind, and the share of the score kept (a cause
    # that is over keeps less): the score is keep * sum(weight[kind] * features[kind]),
    # which is what benchmarks/bench_calibrate.py fits the weights on.
    features: dict[str, float] = field(default_factory=dict)
    keep: float = 1.0
    changed_at: float | None = None  # the change its evidence blames (epoch seconds)

    def add(self, kind: str, weight: float, value: float) -> None:
        """Add `weight * value` to the score and `value` to the kind's feature."""
        self.features[kind] = self.features.get(kind, 0.0) + value
        self.score += weight * value

    @property
    def kinds(self) -> int:
        return len({p.kind for p in self.parts if p.weight > 0 and p.kind != "topology"})


def signature(view: ServiceView, fault: str, views: Mapping[str, ServiceView]) -> float:
    """How strongly the service's own metrics show the class's signature, in [0, 1]."""
    if fault in ("bad_deploy", "config_error"):
        explained = max(view.instances_lost(), view.rise("pool_usage") * (1 - view.overload),
                        view.rise("disk"), view.rise("memory"), view.overload,
                        view.certificate() if view.certificate() >= 1.0 else 0.0)
        own = max(view.rise("error_rate"), 0.5 * view.rise("latency_p99_ms"))
        return own * (1.0 - 0.8 * explained)
    if fault == "memory_leak":
        return view.rise("memory")
    if fault == "cpu_saturation":
        return max(view.rise("cpu"), view.rise("saturation")) * (1 - view.rise("request_rate"))
    if fault == "slow_dependency":
        callers = max((views[c].symptom for c in view.callers if c in views), default=0.0)
        # slowness its own dependencies do not show is its own (a leaf has none to show it)
        below = max((views[c].rise("latency_p99_ms") for c in view.callees if c in views),
                    default=0.0)
        leaf = 1.0 - 0.65 * below
        return (view.rise("latency_p99_ms") * (1 - view.overload) * leaf
                * (0.5 + 0.5 * callers))
    if fault == "connection_pool_exhaustion":
        return view.rise("pool_usage") * (1 - view.overload)
    if fault == "disk_filling":
        return view.rise("disk")
    if fault == "queue_backlog":
        backed_up = max((views[q].rise("queue_depth") for q in view.callees if q in views),
                        default=0.0)
        return max(backed_up * view.fall("request_rate"), 0.3 * view.rise("queue_depth"))
    if fault == "certificate_expiry":
        return view.certificate()
    if fault == "cache_stampede":
        return view.fall("cache_hit_ratio")
    if fault == "network_partition":
        return view.instances_lost()
    if fault == "traffic_surge":
        return surge_entry(view, views)
    return 0.0


def surge_entry(view: ServiceView, views: Mapping[str, ServiceView]) -> float:
    """How clearly more traffic enters the estate at this service.

    Extra traffic flows down the graph: the service it arrives at carries it to
    everything it calls, so its dependencies' request rates rise too while its callers'
    do not. A rise that a caller's own rise carries is that caller's surge, not this
    one's; an edge service (no callers) has nothing to carry it there, unless it is a
    consumer whose work arrives through a queue from the queue's other callers (its
    feeders). Two other things raise a request rate with no new traffic: the misses of
    a cache beside it (its callers' other dependency) landing on a datastore, and a
    consumer catching up with the queue it drains. More traffic that runs nothing out of capacity is a busy
    hour, not a fault: the signature counts in full only when the service or something
    it calls runs past capacity."""
    own = view.rise("request_rate")
    if own <= 0:
        return 0.0
    carried = max([0.0, *(_beside(view, views, c, "request_rate", rising=True)
                          for c in (*view.callers, *view.feeders)),
                   *(_beside(view, views, s, "cache_hit_ratio", rising=False)
                     for s in view.siblings),
                   *(_catching_up(view, views[q]) for q in view.callees if q in views)])
    strained = max([view.overload, *(views[d].overload for d in view.callees if d in views)])
    return own * (1.0 - carried) * (0.5 + 0.5 * strained)


def _beside(view: ServiceView, views: Mapping[str, ServiceView], service: str, metric: str,
            *, rising: bool) -> float:
    """How far a neighbour's metric moved: from its own view when it is a suspect, else
    from the context read for this view."""
    other = views.get(service)
    stat = other.stats.get(metric) if other is not None else view.around.get((service, metric))
    if stat is None:
        return 0.0
    return stat.rise() if rising else stat.fall()


def _catching_up(view: ServiceView, queue: ServiceView) -> float:
    """How much of a consumer's rising request rate is its queue's backlog draining: the
    queue had backed up well before the consumer's rate rose (a producer's rise is what
    fills its queue, so both begin together)."""
    depth, rate = queue.stats.get("queue_depth"), view.stats.get("request_rate")
    if depth is None or rate is None or depth.onset_high is None or rate.onset_high is None:
        return 0.0
    lead = (rate.onset_high - depth.onset_high).total_seconds()
    return depth.rise() if lead > QUEUE_LEAD_S else 0.0


QUEUE_LEAD_S = 120.0


def primary_stat(view: ServiceView, fault: str,
                 views: Mapping[str, ServiceView]) -> MetricStat | None:
    """The metric that shows the class's signature best (what the evidence links to)."""
    if fault == "queue_backlog":
        queues = [views[q].stats["queue_depth"] for q in view.callees
                  if q in views and "queue_depth" in views[q].stats]
        if view.fall("request_rate") > 0 or not queues:
            return view.stats.get("request_rate") or view.stats.get("queue_depth")
        return max(queues, key=lambda s: s.z_high)
    if fault == "cpu_saturation" and view.rise("saturation") > view.rise("cpu"):
        return view.stats.get("saturation")
    if fault in ("bad_deploy", "config_error") and view.rise("error_rate") == 0:
        return view.stats.get("latency_p99_ms")
    return view.stats.get(PRIMARY.get(fault, ""))


def onset_of(stat: MetricStat | None, fault: str) -> float | None:
    if stat is None:
        return None
    falling = fault in _FALLING or (fault == "queue_backlog" and stat.metric == "request_rate")
    moment = stat.onset_low if falling else stat.onset_high
    return moment.timestamp() if moment is not None else None


def step_at(view: ServiceView, fault: str, at: datetime,
            views: Mapping[str, ServiceView]) -> bool:
    """Whether the class's metric on the service stepped up (down, for a falling class)
    just after `at`: the service shows the change's signature after the change, even
    when it was already unwell before it (another fault's errors reaching it). Not when
    one of its dependencies went wrong in the same minutes: the step may be theirs."""
    for callee in view.callees:
        other = views.get(callee)
        for stat in (other.stats.values() if other is not None else ()):
            began = stat.onset_high if stat.metric in _GOLDEN else None
            if began is not None and at - STEP_BEFORE <= began <= at + STEP_WINDOW:
                return False
    metric = PRIMARY.get(fault, "")
    stat = view.stats.get(metric)
    points = view.points.get(metric, ())
    if stat is None or not points:
        return False
    before = [v for t, v in points if at - STEP_BEFORE <= t <= at]
    after = [v for t, v in points if at + STEP_SETTLE <= t <= at + STEP_WINDOW]
    if len(before) < 3 or len(after) < 3:
        return False
    moved = (statistics.fmean(after) - statistics.fmean(before)) / stat.scale
    return (-moved if fault in _FALLING else moved) >= STEP_Z


# The level just before a change (not a longer mean, which would take in a move that
# was already under way) against the level after it.
STEP_BEFORE = timedelta(seconds=60)
STEP_WINDOW = timedelta(minutes=3)
STEP_SETTLE = timedelta(seconds=30)  # a rollout's first instances take this long
STEP_Z = 5.0  # how far (in the metric's noise) the level must move at the change
_GOLDEN = frozenset({"error_rate", "latency_p99_ms"})


def change_support(view: ServiceView, fault: str, onset: float | None,
                   first_alert: float,
                   views: Mapping[str, ServiceView] | None = None
                   ) -> tuple[float, ChangeEvent | None]:
    """The best change on the service for this class: affinity times timing. The timing
    fits when the class's anomaly began shortly after the change, or when the class's
    metric stepped at the change (`step_at`)."""
    best, which = 0.0, None
    for change in view.changes:
        affinity = CHANGE_AFFINITY.get(change.kind, {}).get(fault, 0.0)
        if affinity <= 0:
            continue
        at = change.at.timestamp()
        if step_at(view, fault, change.at, views or {}):
            timing = 1.0
        elif onset is None:
            # the move was never seen beginning: nothing says the service went wrong
            # after the change rather than before it, so the timing cannot fit
            timing = 0.0
        else:
            lead = onset - at
            if lead < -CHANGE_LAG_S:
                timing = 0.0
            elif lead <= CHANGE_LEAD_S:
                timing = 1.0
            else:
                timing = max(0.0, 1.0 - (lead - CHANGE_LEAD_S) / CHANGE_FADE_S)
        if affinity * timing > best:
            best, which = affinity * timing, change
    return best, which


def log_support(view: ServiceView, fault: str) -> tuple[float, list[TemplateStat]]:
    """New templates of this class on the service itself, or on callers naming it."""
    best, found = 0.0, []
    for pattern, stat in view.own_logs:
        if pattern is not None and pattern.fault_class == fault:
            best = max(best, pattern.strength)
            found.append(stat)
    for pattern, _caller, stat in view.reported:
        if pattern.fault_class == fault:
            best = max(best, pattern.strength)
            found.append(stat)
    if fault in ("bad_deploy", "config_error") and best == 0.0:
        generic = [stat for pattern, stat in view.own_logs
                   if pattern is None and stat.level == "ERROR"]
        if generic:
            best, found = 0.3, generic
    return best, found


def alert_support(view: ServiceView, fault: str,
                  views: Mapping[str, ServiceView]) -> tuple[float, list[Signal]]:
    found = [a for a in view.alerts if fault in ALERT_CLASSES.get(alert_metric(a), ())]
    if fault == "queue_backlog":
        found += [a for q in view.callees if q in views for a in views[q].alerts
                  if alert_metric(a) == "queue_depth"]
    if not found:
        return 0.0, []
    resource = any(alert_metric(a) not in ("error_rate", "latency_p99_ms", "latency_p50_ms")
                   for a in found)
    return (1.0 if resource else 0.5), found


def explained_set(view: ServiceView, fault: str, views: Mapping[str, ServiceView],
                  ancestors: Mapping[str, frozenset[str]],
                  descendants: Mapping[str, frozenset[str]]) -> set[str]:
    """The services whose symptoms this cause would explain."""
    out = {view.name} | ancestors.get(view.name, frozenset())
    if fault == "traffic_surge":
        out |= descendants.get(view.name, frozenset())
    elif fault == "cache_stampede":  # misses land on the datastores beside the cache
        for caller in view.callers:
            for sibling in views[caller].callees if caller in views else ():
                out |= {sibling} | ancestors.get(sibling, frozenset())
    elif fault == "queue_backlog":
        for queue in view.callees:
            out |= {queue} | ancestors.get(queue, frozenset())
    return out


# What a fault on one service does to the services it reaches: errors, latency and a
# traffic that falls travel up to its callers, so a class read from those (a deploy's
# errors, slowness, a consumer that stopped) may be some dependency's doing.
TRAVELS = frozenset({"bad_deploy", "config_error", "slow_dependency", "queue_backlog"})
# A class read from a service's load (CPU and saturation, a connection pool filling with
# busy requests, a request rate rising) may be the doing of a fault that adds load where
# it reaches: more traffic, or a cache's misses landing on the datastores beside it.
LOAD_BORNE = frozenset({"cpu_saturation", "connection_pool_exhaustion", "traffic_surge"})
ADDS_LOAD = frozenset({"traffic_surge", "cache_stampede"})
# Every other class (memory, disk, a certificate, instances, a cache's hit ratio) is read
# from the service's own state, which nothing elsewhere moves.


def deeper(view: ServiceView, fault: str, views: Mapping[str, ServiceView],
           signatures: Mapping[str, float]) -> tuple[float, str | None]:
    """How anomalous its most anomalous dependency is (a cause's symptoms travel up):
    only for a class read from the symptoms that travel; a dependency's trouble does
    not fill this service's memory, disk or connection pool."""
    if fault not in TRAVELS:
        return 0.0, None
    worst, name = 0.0, None
    for callee in view.callees:
        other = views.get(callee)
        if other is None or (fault == "queue_backlog" and "queue_depth" in other.stats):
            continue
        level = max(other.symptom, signatures.get(callee, 0.0))
        if level > worst:
            worst, name = level, callee
    return worst, name


def calibrate(scores: Sequence[float], temperature: float = TEMPERATURE,
              null_score: float = NULL_SCORE) -> list[float]:
    """Softmax over the candidates and "none of these" (score `null_score`)."""
    if not scores:
        return []
    top = max(max(scores), null_score)
    weights = [math.exp((s - top) / temperature) for s in scores]
    total = sum(weights) + math.exp((null_score - top) / temperature)
    return [w / total for w in weights]

"""The investigator: ranked, evidenced, calibrated root-cause hypotheses for an incident.

It reads what an operator would: metrics through a `MetricsReader`, the dependency graph
(caller -> callees, from a CMDB or service mesh), and the stored alerts, changes and log
templates (console/storage/repos_evidence.py). Never the estate's faults.

One investigation:
1. candidates: the incident's services, everything they call (a cause travels up the
   graph) and everything that calls them (a surge travels down; a queue's consumers
   call the queue);
2. a cheap screen over every candidate (newest sample, firing alerts, new log templates)
   picks the suspects, so that history is read only where something moved: a range
   read costs a Prometheus query, and a frontend-wide incident has twenty services;
3. each suspect's metrics against its own baseline (agents/investigator_metrics.py);
4. each (suspect, fault class) scored on its signature, the graph, changes, logs and
   alerts, and the scores turned into probabilities (agents/investigator_scoring.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from agents.causes import CauseGroup, by_service_zone, group_causes, posteriors
from agents.external_evidence import ExternalEvidence, with_quotes
from agents.investigator_context import read_around
from agents.investigator_gaps import Gap, gaps, unranked
from agents.investigator_lexicon import LogPattern, alert_metric, classify_log, mentions
from agents.investigator_logs import read_log_findings, with_logs
from agents.investigator_metrics import Z_ANOMALOUS, Z_NORMAL, MetricStat, analyse
from agents.investigator_scoring import (
    KNOWN_CLASSES,
    LATER_CAUSES,
    NULL_SCORE,
    PRIMARY,
    TEMPERATURE,
    W_ALERT,
    W_CHANGE,
    W_DEEPER,
    W_LOG,
    W_METRIC,
    W_TREND,
    Candidate,
    Part,
    ServiceView,
    alert_support,
    change_support,
    deeper,
    explained_set,
    log_support,
    onset_of,
    primary_stat,
    signature,
    step_at,
)
from agents.investigator_text import describe_change, describe_metric, hhmmss
from agents.investigator_trace_errors import error_findings
from agents.investigator_traces import trace_findings, with_traces
from agents.learner import SOURCE as FORECAST_SOURCE
from agents.own_actions import OwnActions, Wake
from console.domain import ChangeEvent, Evidence, Hypothesis, IncidentInfo, Signal
from console.sources.metrics import MetricsReader
from console.storage.repos_evidence import TemplateStat


class EvidenceSource(Protocol):
    """What the investigator reads from the store (console.storage.repos_evidence)."""

    def fired(self, start: datetime, end: datetime, services: Iterable[str] | None = None,
              *, limit: int = ...) -> list[Signal]: ...

    def firing(self, at: datetime, services: Iterable[str] | None = None, *,
               since: datetime | None = None, limit: int = ...) -> list[Signal]: ...

    def changes(self, start: datetime, end: datetime,
                services: Iterable[str] | None = None) -> list[ChangeEvent]: ...

    def log_templates(self, start: datetime, end: datetime,
                      services: Iterable[str] | None = None, *,
                      history_from: datetime | None = None) -> list[TemplateStat]: ...


@dataclass(frozen=True, slots=True)
class InvestigatorSettings:
    baseline: timedelta = timedelta(hours=1)  # the service's normal: this long before...
    baseline_gap: timedelta = timedelta(minutes=2)  # ...the first alert, less this
    new_logs: timedelta = timedelta(minutes=30)  # a template first seen since then is new
    log_history: timedelta = timedelta(hours=3)  # ...unless it was seen in this much before
    change_history: timedelta = timedelta(hours=2)
    alert_history: timedelta = timedelta(days=7)  # how far back a still-firing alert began
    max_suspects: int = 8
    # False: every candidate is a suspect and every metric it reports is read. For a
    # source whose range reads cost nothing (a recording in memory), where the newest
    # sample's fixed lines say little about a system with its own normal.
    screen: bool = True
    max_hypotheses: int = 5  # of the first cause
    per_other_cause: int = 3  # of each further cause (agents/causes.py)
    # A low confidence is no reason to drop a hypothesis: a second, concurrent cause (two
    # faults at once) keeps its rank even when the single-cause softmax gives it little.
    min_confidence: float = 0.0
    # True: every candidate is listed, those no signature scored after the rest at
    # confidence 0 (agents/investigator_gaps.py) - for a recording, where an empty list
    # would leave the reader with nothing to check.
    rank_all: bool = False
    temperature: float = TEMPERATURE
    null_score: float = NULL_SCORE
    # (temperature, null score) of the causes after the first (agents/causes.py)
    later_causes: tuple[float, float] | None = LATER_CAUSES
    # An incident that opened as the source's data begin (a warning at start-up) is read
    # against its first quiet samples; False where the symptom's time is given and what
    # follows it is no normal (a recording).
    early_baseline: bool = True
    # Logs (agents/investigator_logs.py): a template is normal when seen before the
    # symptom in the baseline (ending here, when given: a recording's own fault-free
    # window lies before its start), or in these last minutes before the symptom.
    log_quiet_until: datetime | None = None
    log_recent: timedelta = timedelta(minutes=3)


# The newest-sample screen: a metric past its line here is worth reading the history of.
_SCREEN: dict[str, tuple[str, float]] = {
    "error_rate": (">", 0.01), "saturation": (">", 0.85), "cpu": (">", 80.0),
    "memory": (">", 80.0), "disk": (">", 80.0), "pool_usage": (">", 0.8),
    "queue_depth": (">", 1000.0), "cache_hit_ratio": ("<", 0.8),
}
_RESOURCE = frozenset({"cpu", "memory", "disk", "pool_usage", "queue_depth",
                       "cache_hit_ratio", "instances_ready", "cert_expiry_hours"})
_CLASS_METRIC = {"memory_leak": "memory", "disk_filling": "disk",
                 "connection_pool_exhaustion": "pool_usage", "network_partition":
                 "instances_ready", "cpu_saturation": "cpu", "queue_backlog": "queue_depth",
                 "slow_dependency": "latency_p99_ms", "cache_stampede": "cache_hit_ratio"}
_ALERT_READS = {"up": "instances_ready", "latency_p50_ms": "latency_p99_ms"}


class Investigator:
    """Ranks likely causes of an incident; see the module docstring for the method."""

    name = "investigator"

    def __init__(self, metrics: MetricsReader, topology: Mapping[str, Iterable[str]],
                 fault_classes: Iterable[str], evidence: EvidenceSource,
                 settings: InvestigatorSettings | None = None,
                 own_actions: OwnActions | None = None,
                 external: ExternalEvidence | None = None) -> None:
        self.metrics = metrics
        self.evidence = evidence
        # Other tools' MCP servers (console/mcp/client.py): quoted context for each
        # hypothesis's service, weightless, so it never moves a score or a confidence.
        self.external = external
        self.settings = settings or InvestigatorSettings()
        # What the team's own recent actions explain is left out of the reading
        # (agents/own_actions.py), and the evidence says so.
        self.own_actions = own_actions
        self.fault_classes = tuple(sorted({f for f in fault_classes if f in KNOWN_CLASSES}))
        self.callees: dict[str, tuple[str, ...]] = {}
        callers: dict[str, set[str]] = {}
        for service, deps in topology.items():
            self.callees[service] = tuple(sorted(set(deps) - {service}))
            callers.setdefault(service, set())
            for dep in self.callees[service]:
                callers.setdefault(dep, set()).add(service)
                self.callees.setdefault(dep, ())
        self.callers = {s: tuple(sorted(c)) for s, c in callers.items()}
        self.ancestors = {s: _reach(s, self.callers) for s in self.callees}
        self.descendants = {s: _reach(s, self.callees) for s in self.callees}
        self.last_duration_ms = 0.0
        self.last_gaps: list[Gap] = []  # what the last investigation could not check

    # --- one investigation ------------------------------------------------------------

    def investigate(self, incident: IncidentInfo, now: datetime) -> list[Hypothesis]:
        """Hypotheses for the incident as of `now`, best first; [] when nothing stands out."""
        started = time.perf_counter()
        self.last_gaps = []
        try:
            wake = Wake() if self.own_actions is None else self.own_actions.wake(
                now, min(incident.opened_at, now) - self.settings.baseline,
                callers=lambda s: self.ancestors.get(s, ()))
            found = wake.annotate(self._investigate(incident, now, wake))
            return found if self.external is None else with_quotes(self.external, incident,
                                                                   found)
        finally:
            self.last_duration_ms = (time.perf_counter() - started) * 1000.0

    def _investigate(self, incident: IncidentInfo, now: datetime,
                     wake: Wake) -> list[Hypothesis]:
        cfg = self.settings
        first_alert = min(incident.opened_at, now)
        baseline_end = first_alert - cfg.baseline_gap
        baseline_start = first_alert - cfg.baseline
        candidates = self._candidates(incident.services)
        if not candidates or not self.fault_classes:
            return []
        alerts = {s: [a for a in sigs if not wake.discount(s, _alert_reads(a), a.at)]
                  for s, sigs in self._alerts(candidates, first_alert, now).items()}
        logs = [t for t in self.evidence.log_templates(
                    first_alert - cfg.new_logs, now, candidates,
                    history_from=first_alert - cfg.log_history)
                if t.level in ("WARN", "ERROR") and t.first_seen >= first_alert - cfg.new_logs]
        latest = {s: {m: v for m, v in self.metrics.latest(s).items()
                      if wake.explaining(s, m, now) is None} for s in candidates}
        changes = self.evidence.changes(first_alert - cfg.change_history, now, candidates)
        views = self._views(candidates, latest, alerts, logs,
                            changed={c.service for c in changes})
        for view in views.values():
            for metric in self._reads(view, views):
                points = wake.series(view.name, metric,
                                     self.metrics.series(view.name, metric, baseline_start,
                                                         now))
                if points:
                    view.sampled[metric] = points[-1][0]
                    view.points[metric] = points
                stat = analyse(view.name, metric, points, baseline_end, baseline_start,
                               early=cfg.early_baseline)
                if stat is not None:
                    view.stats[metric] = stat
        read_around(views, lambda s, m: analyse(  # agents/investigator_context.py
            s, m, wake.series(s, m, self.metrics.series(s, m, baseline_start, now)),
            baseline_end, baseline_start, early=cfg.early_baseline))
        for change in changes:
            if change.service in views:  # a source may answer more than was asked
                views[change.service].changes.append(change)
        ranked = self._score(views, first_alert.timestamp())
        ranked = with_traces(ranked, views, trace_findings(  # agents/investigator_traces.py
            latest, lambda s, m: self.metrics.series(s, m, baseline_start, now),
            baseline_end), self.fault_classes, W_METRIC)
        ranked = with_traces(ranked, views, error_findings(  # agents/investigator_trace_errors.py
            latest, lambda s, m: self.metrics.series(s, m, baseline_start, now),
            baseline_end, self.callees), self.fault_classes, W_METRIC)
        told, log_gaps = read_log_findings(  # agents/investigator_logs.py
            self.evidence, sorted(views), (baseline_start, cfg.log_quiet_until or baseline_end),
            baseline_end, now, cfg.log_recent, self.descendants)
        ranked = with_logs(ranked, views, told, self.fault_classes, W_METRIC)
        groups = self._causes(ranked, views)
        out: list[Hypothesis] = []
        for cause, pairs in enumerate(posteriors(groups, cfg.temperature, cfg.null_score,
                                                 cfg.later_causes),
                                      start=1):
            pairs = _zone_wide(pairs, views, self.ancestors)
            room = cfg.max_hypotheses if cause == 1 else min(cfg.max_hypotheses,
                                                             cfg.per_other_cause)
            for cand, p in pairs[:room]:
                if p <= cfg.min_confidence:
                    break
                out.append(Hypothesis(cand.service, cand.fault_class, float(f"{p:.4g}"),
                                      tuple(Evidence(x.kind, x.summary, x.ref,
                                                     round(x.weight, 3)) for x in cand.parts),
                                      round(cand.score, 4), cand.kinds, cause,
                                      cand.zone))
        # best first, whichever cause it is of (the first cause first on a tie)
        out.sort(key=lambda h: -h.confidence)
        self.last_gaps = gaps(views, candidates, lambda v: self._reads(v, views),
                              lambda s, m: self.metrics.series(s, m, baseline_start, now),
                              baseline_start, baseline_end) + log_gaps
        if cfg.rank_all:
            out += unranked(views, candidates, incident.services, out, self.fault_classes)
        return out

    def _causes(self, ranked: list[Candidate],
                views: Mapping[str, ServiceView]) -> list[CauseGroup]:
        """The candidates split by the cause they would be (agents/causes.py)."""
        covers: dict[tuple[str, str], set[str]] = {}

        def explains(cand: Candidate, service: str) -> bool:
            key = (cand.service, cand.fault_class)
            if key not in covers:
                covers[key] = explained_set(views[cand.service], cand.fault_class, views,
                                            self.ancestors, self.descendants)
            return service in covers[key]

        def onset(cand: Candidate) -> float | None:
            view = views[cand.service]
            began = onset_of(primary_stat(view, cand.fault_class, views), cand.fault_class)
            return began if began is not None else _golden_onset(view)

        def loads(cand: Candidate, service: str) -> bool:
            """Where the candidate's fault puts extra load: a surge on its own service
            and everything it calls, a stampede's misses on the datastores beside it."""
            if cand.fault_class == "traffic_surge":
                return service == cand.service or \
                    service in self.descendants.get(cand.service, frozenset())
            if cand.fault_class == "cache_stampede":
                return service in self._siblings(cand.service)
            return False

        zones = {s: frozenset(str(a.labels["zone"]) for a in v.alerts
                              if alert_metric(a) == "up" and a.labels.get("zone"))
                 for s, v in views.items()}
        return group_causes(ranked, explains=explains, onset=onset,
                            same_zone=by_service_zone(zones),
                            null_score=self.settings.null_score, loads=loads)

    def _candidates(self, services: Sequence[str]) -> list[str]:
        known = set(self.callees) | set(self.metrics.services())
        seeds = [s for s in services if s in known]
        if not seeds:
            return sorted(set(services))  # nothing to read about them, but logs may be
        out = set(seeds)
        for s in seeds:  # causes below it, surges and consumers above it
            out |= self.descendants.get(s, frozenset()) | self.ancestors.get(s, frozenset())
        return sorted(out)

    def _alerts(self, services: list[str], first_alert: datetime,
                now: datetime) -> dict[str, list[Signal]]:
        """Alerts firing now, or fired since shortly before the incident (one per series)."""
        seen: dict[str, Signal] = {}
        for sig in self.evidence.firing(now, services, since=now - self.settings.alert_history):
            seen[sig.fingerprint] = sig
        for sig in self.evidence.fired(first_alert - timedelta(minutes=10), now, services):
            seen.setdefault(sig.fingerprint, sig)
        out: dict[str, list[Signal]] = {}
        for sig in seen.values():
            out.setdefault(sig.service, []).append(sig)
        return out

    def _views(self, candidates: list[str], latest: Mapping[str, Mapping[str, float]],
               alerts: Mapping[str, list[Signal]], logs: list[TemplateStat],
               changed: frozenset[str] | set[str] = frozenset()) -> dict[str, ServiceView]:
        """The suspects: candidates whose newest samples, alerts or logs stand out."""
        flags: dict[str, set[str]] = {s: set() for s in candidates}
        for s in candidates:
            for metric, (op, line) in _SCREEN.items():
                value = latest[s].get(metric)
                if value is not None and (value > line if op == ">" else 0 < value < line):
                    flags[s].add(metric)
            if latest[s].get("cert_expiry_hours", 1e9) < 168:
                flags[s].add("cert_expiry_hours")
            for sig in alerts.get(s, ()):
                metric = alert_metric(sig) or "error_rate"
                flags[s].add(_ALERT_READS.get(metric, metric))
        own: dict[str, list[tuple[LogPattern | None, TemplateStat]]] = {}
        reported: dict[str, list[tuple[LogPattern, str, TemplateStat]]] = {}
        for stat in logs:
            if stat.service not in flags:
                continue
            pattern = classify_log(" ".join((stat.template, *stat.examples)))
            if pattern is not None and pattern.locus == "callee":
                named = mentions((stat.template, *stat.examples),
                                 self.callees.get(stat.service, ()))
                for target in named & set(flags):
                    reported.setdefault(target, []).append((pattern, stat.service, stat))
                    flags[target].add("error_rate")
                continue
            own.setdefault(stat.service, []).append((pattern, stat))
            fault = pattern.fault_class if pattern is not None else None
            flags[stat.service].add(_CLASS_METRIC.get(fault or "", "error_rate"))
        for s in candidates:  # a backed-up queue's consumers are suspects too
            if "queue_depth" in flags[s]:
                for caller in self.callers.get(s, ()):
                    if caller in flags:
                        flags[caller].add("request_rate")
        if not self.settings.screen:
            for s in candidates:
                flags[s] |= set(latest[s])
        suspects = [s for s in candidates if flags[s]]
        if self.settings.screen and len(suspects) > self.settings.max_suspects:
            suspects = self._rank_suspects(suspects, flags, changed)
        return {s: ServiceView(s, self.callers.get(s, ()), self.callees.get(s, ()), latest[s],
                               alerts=list(alerts.get(s, ())), own_logs=own.get(s, []),
                               reported=reported.get(s, []), flags=flags[s],
                               siblings=self._siblings(s), feeders=self._feeders(s))
                for s in suspects}

    def _feeders(self, service: str) -> tuple[str, ...]:
        if self.callers.get(service):
            return ()
        reach = self.descendants.get(service, frozenset()) | {service}
        return tuple(sorted({c for d in self.callees.get(service, ())
                             for c in self.callers.get(d, ())} - reach))

    def _siblings(self, service: str) -> tuple[str, ...]:
        return tuple(sorted({d for c in self.callers.get(service, ())
                             for d in self.callees.get(c, ())} - {service}))

    def _rank_suspects(self, suspects: list[str], flags: Mapping[str, set[str]],
                       changed: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """The most telling suspects: resource trouble, depth in the graph, the edge, a
        change on a service that shows trouble (a deploy on a service already caught in
        another fault's symptoms is read, not crowded out by them)."""
        chosen = set(suspects)

        def rank(s: str) -> tuple[float, str]:
            resource = len(flags[s] & _RESOURCE)
            symptom = len(flags[s] - _RESOURCE)
            deepest = not any(c in chosen for c in self.callees.get(s, ()))
            edge = not self.callers.get(s) and bool(flags[s] & {"saturation", "cpu"})
            return (-(2.0 * resource + min(symptom, 2) + 1.5 * deepest + 1.5 * edge
                      + 1.5 * (s in changed)), s)

        return sorted(suspects, key=rank)[:self.settings.max_suspects]

    @staticmethod
    def _reads(view: ServiceView, views: Mapping[str, ServiceView]) -> list[str]:
        flags = view.flags
        reads = {"error_rate", "latency_p99_ms"} | flags
        # a surge travels down: a service whose dependency runs hot may be where it enters
        if (not view.callers or flags & {"cpu", "saturation", "cert_expiry_hours"}
                or any(views[q].flags & {"queue_depth", "saturation", "cpu"}
                       for q in view.callees if q in views)):
            reads |= {"request_rate", "saturation"}
        if flags & {"pool_usage", "latency_p99_ms", "cpu"}:
            reads.add("saturation")
        return sorted(reads)

    # --- scoring -------------------------------------------------------------------------

    def _score(self, views: Mapping[str, ServiceView], first_alert: float) -> list[Candidate]:
        signatures = {(s, f): signature(v, f, views) for s, v in views.items()
                      for f in self.fault_classes}
        strongest = {s: max((signatures[(s, f)] for f in self.fault_classes), default=0.0)
                     for s in views}
        symptoms = {s: v.symptom for s, v in views.items() if v.symptom >= 0.3}
        total = sum(symptoms.values())
        active = {s for s, v in views.items() if _active_now(v)}
        out = []
        for s, view in views.items():
            for fault in self.fault_classes:
                cand = self._candidate(view, fault, signatures[(s, fault)], views, strongest,
                                       symptoms, total, first_alert)
                self._recovered(cand, view, views, active)
                if cand.score > 0.05:
                    out.append(cand)
        out.sort(key=lambda c: (-c.score, c.service, c.fault_class))
        return out

    def _candidate(self, view: ServiceView, fault: str, sig: float,
                   views: Mapping[str, ServiceView], strongest: Mapping[str, float],
                   symptoms: Mapping[str, float], total: float,
                   first_alert: float) -> Candidate:
        cand = Candidate(view.name, fault, sig)
        gate = min(1.0, sig / 0.3)
        soft_gate = 0.3 + 0.7 * gate
        stat = primary_stat(view, fault, views)
        if sig > 0:
            covered = explained_set(view, fault, views, self.ancestors, self.descendants)
            cover = sum(v for s, v in symptoms.items() if s in covered) / total \
                if total > 0 else 1.0
            # the signature with its own symptoms, then those of the others it explains
            # (the parts' weights add up to the score)
            own = symptoms.get(view.name, 0.0) / total if total > 0 else 1.0
            cand.parts.append(Part("metric", _metric_summary(view, fault, stat),
                                   _metric_ref(view, fault, stat),
                                   W_METRIC * sig * (0.5 + 0.5 * own)))
            explained = sorted(s for s in symptoms if s in covered and s != view.name)
            if explained:
                worst = max(explained, key=lambda s: symptoms[s])
                cand.parts.append(Part(
                    "topology", f"explains the symptoms of {_names(explained)} "
                                f"({cover:.0%} of the incident's)", _symptom_ref(views[worst]),
                    W_METRIC * sig * 0.5 * (cover - own)))
            cand.add("metric", W_METRIC, sig * (0.5 + 0.5 * cover))
        onset = onset_of(stat, fault)
        if onset is None:
            onset = _golden_onset(view)
        penalty, worse = deeper(view, fault, views, strongest)
        support, change = change_support(view, fault, onset, first_alert, views)
        # A change counts only on a service that went wrong after it, and not when one of
        # its own dependencies went at least as wrong (that is where its symptoms came
        # from), unless its signature stepped right at the change: no dependency times
        # its trouble to this service's deploy (nor, then, does the dependency's trouble
        # count against it below).
        stepped = change is not None and step_at(view, fault, change.at, views)
        value = support * gate * (1.0 if stepped else 1.0 - penalty)
        if change is not None and value > 0:
            cand.parts.append(Part("change", describe_change(change, onset), f"change:{change.id}",
                                   W_CHANGE * value))
            cand.add("change", W_CHANGE, value)
            cand.changed_at = change.at.timestamp()
        support, templates = log_support(view, fault)
        if templates:
            weight = W_LOG * support * soft_gate
            for i, t in enumerate(sorted(templates, key=lambda t: -t.lines)[:3]):
                where = "" if t.service == view.name else f" (written by {t.service})"
                cand.parts.append(Part(
                    "log", f"new {t.level} log template on {t.service} since "
                           f"{hhmmss(t.first_seen)}: '{t.template[:120]}' ({t.lines} lines)"
                           f"{where}", f"log:{t.service}/{t.template_id}",
                    weight if i == 0 else 0.0))
            cand.add("log", W_LOG, support * soft_gate)
        support, fired = alert_support(view, fault, views)
        if fired:
            weight = W_ALERT * support * soft_gate
            names: set[str] = set()
            for sig_ in sorted(fired, key=lambda a: a.at):
                if sig_.name in names or len(names) >= 3:
                    continue
                names.add(sig_.name)
                cand.parts.append(Part("alert", f"{sig_.name} firing on {sig_.service} since "
                                                f"{hhmmss(sig_.at)}", f"signal:{sig_.fingerprint}",
                                       weight if len(names) == 1 else 0.0))
            cand.add("alert", W_ALERT, support * soft_gate)
        for warning in _forecasts(view, fault)[:1]:
            # The learner's projection that this service's metric will cross its line
            # soon is a fit over the last 45 minutes, not a momentary blip: it supports
            # the class whose signature that metric is, as a change shortly before would.
            weight = W_TREND * soft_gate
            cand.parts.append(Part("trend", f"{warning.name} on {warning.service}: "
                                   f"{warning.annotations.get('summary', '')}"[:300],
                                   f"signal:{warning.fingerprint}", weight))
            cand.add("trend", W_TREND, soft_gate)
        if worse is not None and penalty > 0.05 and not stepped:
            cand.parts.append(Part("topology", f"its dependency {worse} is as anomalous or more",
                                   _symptom_ref(views[worse]), -W_DEEPER * penalty))
            cand.add("deeper", W_DEEPER, -penalty)
        return cand


    def _recovered(self, cand: Candidate, view: ServiceView,
                   views: Mapping[str, ServiceView], active: set[str]) -> None:
        """A cause that is over cannot explain what is still going on elsewhere.

        When the candidate's own signature has gone back to normal (its fix worked, or
        it passed) while a service it would not explain (one that is not its caller,
        direct or not) is still anomalous now, the incident has another cause; the
        candidate keeps RECOVERED_KEEP of its score, and the reason is in its evidence.
        While nothing else is still wrong, it keeps its score: the callers it explains
        recover a little after it does, and that lag is no new cause."""
        if cand.score <= 0:
            return
        stat = primary_stat(view, cand.fault_class, views)
        if stat is None or not _recovered_stat(stat, _rises(cand.fault_class, stat)):
            return
        elsewhere = sorted(active - self.ancestors.get(view.name, frozenset()) - {view.name})
        if not elsewhere:
            return
        drop = cand.score * (1.0 - RECOVERED_KEEP)
        sampled = view.sampled.get(stat.metric, stat.high_at)
        cand.parts.append(Part(
            "recovery", f"{stat.metric} of {view.name} is back to normal (now "
                        f"{stat.current:.4g}, normal {stat.reference:.4g}) while "
                        f"{_names(elsewhere)} still show trouble it does not explain",
            f"metric:{view.name}/{stat.metric}@{sampled.isoformat()}",
            -drop))
        cand.score -= drop
        cand.keep *= RECOVERED_KEEP


RECOVERED_KEEP = 0.3


def _alert_reads(alert: Signal) -> str:
    """The metric an alert is about, as the investigator reads it."""
    metric = alert_metric(alert) or "error_rate"
    return _ALERT_READS.get(metric, metric)


def _forecasts(view: ServiceView, fault: str) -> list[Signal]:
    """The learner's early warnings on this service about the class's primary metric."""
    metric = PRIMARY.get(fault)
    return [a for a in view.alerts if a.source == FORECAST_SOURCE and metric is not None
            and str(a.labels.get("metric", "")) == metric]


def _now_z(stat: MetricStat, rises: bool) -> float:
    """How far the newest samples (not the worst ones) sit outside the normal band."""
    return ((stat.current - stat.floor) if rises else (stat.ceiling - stat.current)) / stat.scale


def _recovered_stat(stat: MetricStat, rises: bool) -> bool:
    moved = stat.z_high if rises else -stat.z_low
    return moved >= Z_ANOMALOUS and _now_z(stat, rises) < Z_NORMAL


def _active_now(view: ServiceView) -> bool:
    """Still anomalous in its newest samples: a golden signal up, or instances down."""
    for metric, rises in (("error_rate", True), ("latency_p99_ms", True),
                          ("instances_ready", False)):
        stat = view.stats.get(metric)
        if stat is not None and _now_z(stat, rises) >= Z_ANOMALOUS:
            return True
    return False


def _zone_wide(pairs: list[tuple[Candidate, float]], views: Mapping[str, ServiceView],
               ancestors: Mapping[str, frozenset[str]]) -> list[tuple[Candidate, float]]:
    """One partition of a zone is one cause: when three or more services lost instances
    in the same zone, their partition hypotheses become one (the best placed of them,
    with the others as evidence) and their probabilities add up."""
    zones: dict[str, list[int]] = {}
    for i, (cand, _) in enumerate(pairs):
        if cand.fault_class != "network_partition":
            continue
        for zone in {str(a.labels.get("zone")) for a in views[cand.service].alerts
                     if alert_metric(a) == "up" and a.labels.get("zone")}:
            zones.setdefault(zone, []).append(i)
    merged: set[int] = set()
    for zone, members in sorted(zones.items(), key=lambda kv: -len(kv[1])):
        members = [i for i in members if i not in merged]
        if len(members) < 3:
            continue
        keep = max(members, key=lambda i: (pairs[i][0].score,
                                           len(ancestors.get(pairs[i][0].service, ()))))
        cand, p = pairs[keep]
        others = sorted(pairs[i][0].service for i in members if i != keep)
        down = next(a for i in members if i != keep for a in views[pairs[i][0].service].alerts
                    if alert_metric(a) == "up" and a.labels.get("zone") == zone)
        cand.parts.append(Part("alert", f"zone {zone}: {len(members)} services lost instances "
                                        f"there at once ({_names(others)} and {cand.service})",
                               f"signal:{down.fingerprint}", 0.0))
        cand.zone = zone  # the cause is the zone's, named as the zone
        pairs[keep] = (cand, p + sum(pairs[i][1] for i in members if i != keep))
        merged |= set(members) - {keep}
    kept = [pair for i, pair in enumerate(pairs) if i not in merged]
    kept.sort(key=lambda pair: (-pair[1], -pair[0].score, pair[0].service, pair[0].fault_class))
    return kept


def _rises(fault: str, stat: MetricStat) -> bool:
    if fault in ("cache_stampede", "network_partition"):
        return False
    if fault == "queue_backlog":
        return stat.metric == "queue_depth"
    return True


def _metric_summary(view: ServiceView, fault: str, stat: MetricStat | None) -> str:
    if fault == "certificate_expiry":
        hours = view.latest.get("cert_expiry_hours", 0.0)
        return (f"the TLS certificate of {view.name} expired {-hours:.1f} h ago" if hours <= 0
                else f"the TLS certificate of {view.name} expires in {hours:.1f} h")
    if stat is None:
        return f"{view.name}: {fault.replace('_', ' ')} signature"
    return describe_metric(stat, _rises(fault, stat))


def _metric_ref(view: ServiceView, fault: str, stat: MetricStat | None) -> str:
    if stat is not None and fault != "certificate_expiry":
        return stat.ref(_rises(fault, stat))
    metric = PRIMARY.get(fault, "error_rate")
    at = view.sampled.get(metric) or max(view.sampled.values(), default=None)
    return f"metric:{view.name}/{metric}@{at.isoformat() if at is not None else 'latest'}"


def _golden_onset(view: ServiceView) -> float | None:
    moments = [s.onset_high for m in ("error_rate", "latency_p99_ms")
               if (s := view.stats.get(m)) is not None and s.onset_high is not None]
    return min(moments).timestamp() if moments else None


def _symptom_ref(view: ServiceView) -> str:
    """A link to the service's worst move: its loudest golden signal, else anything read."""
    golden = [s for m in ("error_rate", "latency_p99_ms")
              if (s := view.stats.get(m)) is not None]
    if golden:
        return max(golden, key=lambda s: s.z_high).ref(True)
    falls = [s for s in view.stats.values() if s.z_low < 0]
    if falls:
        return min(falls, key=lambda s: s.z_low / max(1.0, abs(s.z_high))).ref(False)
    return _metric_ref(view, "certificate_expiry", None)


def _names(services: Sequence[str]) -> str:
    return ", ".join(services[:4]) + (f" and {len(services) - 4} more"
                                      if len(services) > 4 else "")


def _reach(start: str, edges: Mapping[str, Iterable[str]]) -> frozenset[str]:
    seen: set[str] = set()
    todo = deque(edges.get(start, ()))
    while todo:
        node = todo.popleft()
        if node not in seen and node != start:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return frozenset(seen)

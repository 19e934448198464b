"""The correlator: turns a stream of alert notifications into a few incidents.

It deduplicates by fingerprint, holds flapping alerts instead of resolving and
reopening on every flap, and groups an alert with an open incident when it is close
to it in the service graph, in time, or by its labels (the same zone). Every decision
carries the reason it was taken, so an operator can see why two alerts were folded
together. The topology comes from a source (a mapping service -> what it calls), never
from the estate's internals.

An alert is scored only against the incidents it could join: those holding a service
within `max_hops` of its own, or its zone. The rest could score at most the time
closeness (0.5), below `join_score`, so one delivery of 10,000 unrelated alerts costs
10,000 look-ups instead of 50 million comparisons.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import networkx as nx

from console.domain import AlertStatus, Severity, Signal

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
TIME_SCORE = 0.5  # the most time closeness alone adds to a score
_HOP_SCORE = {0: 3.0, 1: 2.0, 2: 1.0}  # by hops from a service of the incident
_NO_TIME = timedelta(0)
_NONE: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class CorrelatorSettings:
    group_window: timedelta = timedelta(minutes=10)
    reopen_window: timedelta = timedelta(minutes=15)
    max_hops: int = 2
    flap_transitions: int = 4
    flap_window: timedelta = timedelta(minutes=30)
    flap_hold: timedelta = timedelta(minutes=10)
    join_score: float = 1.5


@dataclass
class Incident:
    id: int
    opened_at: datetime
    last_activity: datetime
    severity: Severity
    services: dict[str, int] = field(default_factory=dict)  # service -> firing count
    members: set[str] = field(default_factory=set)  # fingerprints ever grouped here
    active: set[str] = field(default_factory=set)  # fingerprints firing now
    zones: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    state: str = "open"
    resolved_at: datetime | None = None
    reopened: int = 0

    @property
    def title(self) -> str:
        top = sorted(self.services.items(), key=lambda kv: (-kv[1], kv[0]))
        names = ", ".join(name for name, _ in top[:3])
        more = f" and {len(top) - 3} more" if len(top) > 3 else ""
        return f"{self.alerts} alert(s) on {names}{more}"


@dataclass(frozen=True, slots=True)
class Decision:
    """One correlator decision. kind: open | join | duplicate | flapping | clear | hold |
    resolve | reopen | orphan."""

    kind: str
    incident_id: int | None
    fingerprint: str
    service: str
    at: datetime
    reason: str


class Correlator:
    def __init__(self, topology: Mapping[str, Iterable[str]],
                 settings: CorrelatorSettings | None = None) -> None:
        self.settings = settings or CorrelatorSettings()
        graph = nx.Graph()
        for service, deps in topology.items():
            graph.add_node(service)
            graph.add_edges_from((service, dep) for dep in deps)
        self._distance: dict[str, dict[str, int]] = dict(
            nx.all_pairs_shortest_path_length(graph, cutoff=self.settings.max_hops))
        self.incidents: dict[int, Incident] = {}
        self._owner: dict[str, int] = {}  # fingerprint -> incident id
        self._firing: set[str] = set()
        self._flips: dict[str, deque[datetime]] = {}
        self._held: dict[str, datetime] = {}  # flapping fingerprint -> clear after
        self._next_id = 1
        self.alerts_seen = 0
        # An alert's candidates: the incidents that ever held a service within reach of
        # its own (kept per service as they gain services: the graph is undirected, so
        # a service in reach of the alert's has the alert's in reach), or its zone.
        self._in_reach: dict[str, set[int]] = {}
        self._by_zone: dict[str, set[int]] = {}
        self._window_s = self.settings.group_window.total_seconds()

    # --- input ----------------------------------------------------------------------

    def observe(self, signals: Iterable[Signal]) -> list[Decision]:
        out: list[Decision] = []
        for sig in signals:
            fp = sig.fingerprint
            if fp in self._held and sig.at >= self._held[fp]:  # the hold ran out unnoticed
                until = self._held.pop(fp)
                out.extend(self._clear(fp, sig.service, until, "quiet for the flap hold time"))
            if sig.status is AlertStatus.FIRING:
                out.append(self._on_firing(sig))
            else:
                out.extend(self._on_resolved(sig))
        return out

    def tick(self, now: datetime) -> list[Decision]:
        """Release flapping alerts that stayed quiet for the hold time."""
        out: list[Decision] = []
        for fp, until in list(self._held.items()):
            if now >= until:
                del self._held[fp]
                out.extend(self._clear(fp, "", now, "quiet for the flap hold time"))
        return out

    # --- firing ---------------------------------------------------------------------

    def _flapping(self, fp: str, at: datetime) -> bool:
        flips = self._flips.setdefault(fp, deque())
        flips.append(at)
        while flips and at - flips[0] > self.settings.flap_window:
            flips.popleft()
        return len(flips) >= self.settings.flap_transitions

    def _on_firing(self, sig: Signal) -> Decision:
        fp = sig.fingerprint
        if fp in self._firing:
            return Decision("duplicate", self._owner.get(fp), fp, sig.service, sig.at,
                            "the same series is already firing")
        self.alerts_seen += 1
        self._firing.add(fp)
        flapping = self._flapping(fp, sig.at)
        owner = self.incidents.get(self._owner.get(fp, -1))
        if fp in self._held and owner is not None:
            del self._held[fp]
            self._touch(owner, sig)
            return Decision("flapping", owner.id, fp, sig.service, sig.at,
                            "flapping: fired again within the hold time; kept in the incident")
        if owner is not None and owner.state == "open" and self._recent(owner, sig.at):
            self._add(owner, sig)
            return Decision("join", owner.id, fp, sig.service, sig.at,
                            "the same series fired again while its incident is open")
        if owner is not None and owner.state == "resolved" and owner.resolved_at is not None \
                and sig.at - owner.resolved_at <= self.settings.reopen_window:
            return self._reopen(owner, sig, "the same series came back "
                                f"{_ago(sig.at - owner.resolved_at)} after it resolved")
        best, score, why = self._best_match(sig)
        if best is not None and score >= self.settings.join_score:
            if best.state == "resolved":
                return self._reopen(best, sig, why)
            self._add(best, sig)
            return Decision("join", best.id, fp, sig.service, sig.at, why)
        incident = Incident(self._next_id, sig.at, sig.at, sig.severity)
        self._next_id += 1
        self.incidents[incident.id] = incident
        self._add(incident, sig)
        reason = "no open incident is near it in the graph, in time or by labels"
        if flapping:
            reason += " (series is flapping)"
        return Decision("open", incident.id, fp, sig.service, sig.at, reason)

    def _recent(self, incident: Incident, at: datetime) -> bool:
        return at - incident.last_activity <= self.settings.group_window

    def _best_match(self, sig: Signal) -> tuple[Incident | None, float, str]:
        best: Incident | None = None
        best_score, best_idle = 0.0, _NO_TIME
        zone = sig.labels.get("zone", "")
        for incident in self._candidates(sig.service, zone):
            if incident.state == "open":
                if not self._recent(incident, sig.at):
                    continue
                idle = sig.at - incident.last_activity
            elif incident.resolved_at is not None and \
                    sig.at - incident.resolved_at <= self.settings.reopen_window:
                idle = sig.at - incident.resolved_at
            else:
                continue
            # An alert older than the incident's last activity (a late or re-sent one) is
            # as close in time as one at that moment: time alone never joins it anywhere.
            idle = max(idle, _NO_TIME)
            score = self._score(incident, sig.service, zone, idle)
            if score > best_score or (score == best_score and best is not None
                                      and incident.id > best.id):
                best, best_score, best_idle = incident, score, idle
        if best is None:
            return None, best_score, ""
        # Put in words only for the incident chosen (a storm's alert weighs a few).
        return best, best_score, self._reasons(best, sig.service, zone, best_idle)

    def _candidates(self, service: str, zone: str) -> Iterable[Incident]:
        """The incidents that could reach `join_score`: a service within `max_hops`, or
        the zone. With a threshold time closeness alone reaches, every incident is one.
        The best match does not depend on the order (ties go to the highest id)."""
        if self.settings.join_score <= TIME_SCORE:
            return self.incidents.values()
        ids = self._in_reach.get(service, _NONE)
        if zone and zone in self._by_zone:
            ids = ids | self._by_zone[zone]
        return [self.incidents[i] for i in ids]

    def _hops(self, incident: Incident, service: str) -> int | None:
        """The fewest hops from `service` to one of the incident's, within `max_hops`."""
        if service in incident.services and service in self._distance:
            return 0  # most of a storm's alerts: no walk over the incident's services
        near = self._distance.get(service, {})
        return min((near[s] for s in incident.services if s in near), default=None)

    @staticmethod
    def _zone_share(incident: Incident, zone: str) -> float:
        """The share of the incident's instance alerts in `zone` (0 without zones)."""
        if not zone or not incident.zones:
            return 0.0
        return incident.zones.get(zone, 0) / sum(incident.zones.values())

    def _score(self, incident: Incident, service: str, zone: str, idle: timedelta) -> float:
        score = 0.0
        hops = self._hops(incident, service)
        if hops is not None:
            score += _HOP_SCORE.get(hops, 0.0)
        share = self._zone_share(incident, zone)
        if share >= 0.5:
            score += 1.0 + share
        score += TIME_SCORE * max(0.0, 1.0 - idle.total_seconds() / self._window_s)
        return score

    def _reasons(self, incident: Incident, service: str, zone: str, idle: timedelta) -> str:
        """What `_score` counted, in words."""
        reasons: list[str] = []
        hops = self._hops(incident, service)
        if hops == 0:
            reasons.append(f"{service} is already in incident {incident.id}")
        elif hops is not None:
            near = self._distance.get(service, {})
            closest = min((s for s in incident.services if s in near),
                          key=lambda s: (near[s], s))
            reasons.append(f"{service} is {hops} hop(s) from {closest} "
                           f"in incident {incident.id}")
        share = self._zone_share(incident, zone)
        if share >= 0.5:
            reasons.append(f"zone {zone} like {share:.0%} of its instance alerts")
        reasons.append(f"{_ago(idle)} after its last activity")
        return "; ".join(reasons)

    def _add(self, incident: Incident, sig: Signal) -> None:
        self._owner[sig.fingerprint] = incident.id
        incident.members.add(sig.fingerprint)
        self._touch(incident, sig)

    def _touch(self, incident: Incident, sig: Signal) -> None:
        incident.active.add(sig.fingerprint)
        incident.alerts += 1
        if sig.service not in incident.services:
            for near in self._distance.get(sig.service, ()):
                self._in_reach.setdefault(near, set()).add(incident.id)
        incident.services[sig.service] = incident.services.get(sig.service, 0) + 1
        zone = sig.labels.get("zone")
        if zone:
            incident.zones[zone] = incident.zones.get(zone, 0) + 1
            self._by_zone.setdefault(zone, set()).add(incident.id)
        incident.last_activity = max(incident.last_activity, sig.at)
        if _RANK[sig.severity] > _RANK[incident.severity]:
            incident.severity = sig.severity

    def _reopen(self, incident: Incident, sig: Signal, why: str) -> Decision:
        incident.state = "open"
        incident.resolved_at = None
        incident.reopened += 1
        self._add(incident, sig)
        return Decision("reopen", incident.id, sig.fingerprint, sig.service, sig.at,
                        f"reopened: {why}")

    # --- resolving ------------------------------------------------------------------

    def _on_resolved(self, sig: Signal) -> list[Decision]:
        fp = sig.fingerprint
        if fp not in self._firing:
            return [Decision("orphan", self._owner.get(fp), fp, sig.service, sig.at,
                             "resolved without a firing we saw")]
        self._firing.discard(fp)
        if self._flapping(fp, sig.at):
            self._held[fp] = sig.at + self.settings.flap_hold
            return [Decision("hold", self._owner.get(fp), fp, sig.service, sig.at,
                             "flapping: held as active for the hold time")]
        return self._clear(fp, sig.service, sig.at, "the alert resolved")

    def _clear(self, fp: str, service: str, at: datetime, why: str) -> list[Decision]:
        incident = self.incidents.get(self._owner.get(fp, -1))
        if incident is None:
            return []
        incident.active.discard(fp)
        incident.last_activity = max(incident.last_activity, at)
        out = [Decision("clear", incident.id, fp, service, at, why)]
        if not incident.active and incident.state == "open":
            incident.state = "resolved"
            incident.resolved_at = at
            out.append(Decision("resolve", incident.id, fp, service, at,
                                "every alert of the incident is clear"))
        return out


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

"""The correlator puts only the chosen incident's score in words, and skips the walk over
an incident's services when the alert's own service is in it: its decisions and
reasons are exactly those of scoring and wording every candidate in one pass."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings

from agents.correlator import Correlator, Incident, _ago
from console.domain import Signal
from tests.test_correlator import T0, TOPOLOGY, alert
from tests.test_correlator_index import events


class WordsEveryCandidate(Correlator):
    """The scoring before: every candidate scored and put in words as it is weighed."""

    def _best_match(self, sig: Signal) -> tuple[Incident | None, float, str]:
        best: Incident | None = None
        best_score, best_why = 0.0, ""
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
            score, why = self._scored(incident, sig.service, zone, max(idle, timedelta(0)))
            if score > best_score or (score == best_score and best is not None
                                      and incident.id > best.id):
                best, best_score, best_why = incident, score, why
        return best, best_score, best_why

    def _scored(self, incident: Incident, service: str, zone: str,
                idle: timedelta) -> tuple[float, str]:
        reasons: list[str] = []
        near = self._distance.get(service, {})
        hops = min((near[s] for s in incident.services if s in near), default=None)
        score = 0.0
        if hops is not None:
            score += {0: 3.0, 1: 2.0, 2: 1.0}.get(hops, 0.0)
            if hops == 0:
                reasons.append(f"{service} is already in incident {incident.id}")
            else:
                closest = min((s for s in incident.services if s in near),
                              key=lambda s: (near[s], s))
                reasons.append(f"{service} is {hops} hop(s) from {closest} "
                               f"in incident {incident.id}")
        if zone and incident.zones:
            share = incident.zones.get(zone, 0) / sum(incident.zones.values())
            if share >= 0.5:
                score += 1.0 + share
                reasons.append(f"zone {zone} like {share:.0%} of its instance alerts")
        window = self.settings.group_window.total_seconds()
        score += 0.5 * max(0.0, 1.0 - idle.total_seconds() / window)
        reasons.append(f"{_ago(idle)} after its last activity")
        return score, "; ".join(reasons)


@settings(max_examples=300, deadline=None)
@given(events=events)
def test_decisions_and_reasons_are_those_of_wording_every_candidate(
        events: list[tuple[str, str, str, float, str]]) -> None:
    now, before = Correlator(TOPOLOGY), WordsEveryCandidate(TOPOLOGY)
    minute = 0.0
    for service, name, zone, step, status in events:
        minute += step
        sig = alert(name, service, minute, status=status, zone=zone,
                    instance=f"{service}-{zone}" if zone else "")
        assert now.observe([sig]) == before.observe([sig])
    assert now.tick(T0 + timedelta(hours=2)) == before.tick(T0 + timedelta(hours=2))

"""The correlator scores an alert only against the incidents it could join (by service
within reach in the topology, or by zone), and decides exactly as it did comparing it
with every incident; an alert older than an incident's last activity is as close in
time as one at that moment, so time alone never joins it anywhere."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.correlator import Correlator, Incident
from tests.test_correlator import T0, TOPOLOGY, alert


class EveryIncident(Correlator):
    """The correlator before the index: every incident is a candidate."""

    def _candidates(self, service: str, zone: str) -> Iterable[Incident]:
        return list(self.incidents.values())


class Counting(Correlator):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.scored = 0

    def _score(self, *args: Any) -> tuple[float, str]:
        self.scored += 1
        return super()._score(*args)


SERVICES = [*TOPOLOGY, "ledger", "mailer"]  # two the topology does not know
events = st.lists(st.tuples(st.sampled_from(SERVICES), st.sampled_from(["A", "B", "C"]),
                            st.sampled_from(["", "eu-1", "eu-2"]),
                            st.floats(min_value=-40, max_value=40),
                            st.sampled_from(["firing", "firing", "resolved"])),
                  max_size=60)


@settings(max_examples=300, deadline=None)
@given(events=events)
def test_the_index_decides_as_comparing_with_every_incident(
        events: list[tuple[str, str, str, float, str]]) -> None:
    indexed, everything = Correlator(TOPOLOGY), EveryIncident(TOPOLOGY)
    minute = 0.0
    for service, name, zone, step, status in events:
        minute += step  # out of order too: deliveries are
        sig = alert(name, service, minute, status=status, zone=zone,
                    instance=f"{service}-{zone}" if zone else "")
        assert indexed.observe([sig]) == everything.observe([sig])
    assert indexed.tick(T0 + timedelta(hours=2)) == everything.tick(T0 + timedelta(hours=2))


def test_unrelated_alerts_are_not_each_compared_with_every_incident() -> None:
    c = Counting({})
    c.observe([alert("A", f"svc-{n}", 0, instance=f"i{n}") for n in range(1000)])
    assert len(c.incidents) == 1000
    assert c.scored == 0  # before: 499,500 comparisons (each with all before it)


def test_related_alerts_are_compared_only_with_incidents_in_reach() -> None:
    c = Counting(TOPOLOGY)
    c.observe([alert("A", "reports", 0), alert("B", "payments", 1), alert("C", "checkout", 2)])
    assert len(c.incidents) == 2  # reports; payments with checkout
    assert c.scored == 1  # checkout with payments' incident only (reports is out of reach)


def test_an_old_alert_does_not_join_an_unrelated_incident_by_time_alone() -> None:
    """Alertmanager sends a firing alert again with its first startsAt: an hour-old one
    on an unrelated service scored 0.5 x (1 + 60/10) = 3.5 on time alone, and joined."""
    c = Correlator(TOPOLOGY)
    c.observe([alert("A", "payments", 60)])
    (late,) = c.observe([alert("B", "warehouse", 0)])
    assert late.kind == "open"
    assert len(c.incidents) == 2

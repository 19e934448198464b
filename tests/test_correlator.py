"""The correlator folds alerts into incidents by topology, time and labels, and says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.correlator import Correlator
from agents.correlator_agent import CorrelatorAgent
from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.runtime import Runtime, run_headless

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
TOPOLOGY = {"frontend": ["checkout", "search"], "checkout": ["payments"],
            "payments": ["payments-db"], "search": ["search-index"], "payments-db": [],
            "search-index": [], "reports": ["warehouse"], "warehouse": []}


def alert(name: str, service: str, minute: float, *, status: str = "firing",
          zone: str = "", instance: str = "") -> Signal:
    labels = {"alertname": name, "service": service}
    if instance:
        labels |= {"instance": instance, "zone": zone}
    return Signal("test", SignalKind.ALERT, name, service, Severity.CRITICAL,
                  AlertStatus(status), T0 + timedelta(minutes=minute), labels)


def test_related_alerts_fold_into_one_incident_with_reasons() -> None:
    c = Correlator(TOPOLOGY)
    decisions = c.observe([alert("HighErrorRate", "payments", 0),
                           alert("HighErrorRate", "checkout", 1),
                           alert("HighErrorRate", "frontend", 2)])
    assert [d.kind for d in decisions] == ["open", "join", "join"]
    assert len(c.incidents) == 1
    assert "1 hop(s) from payments" in decisions[1].reason
    assert all(d.reason for d in decisions)


def test_unrelated_alerts_open_separate_incidents() -> None:
    c = Correlator(TOPOLOGY)
    c.observe([alert("HighErrorRate", "payments", 0), alert("DiskFull", "warehouse", 1)])
    assert len(c.incidents) == 2


def test_a_late_alert_on_a_neighbour_opens_a_new_incident() -> None:
    c = Correlator(TOPOLOGY)
    c.observe([alert("HighErrorRate", "payments", 0), alert("HighErrorRate", "checkout", 45)])
    assert len(c.incidents) == 2


def test_duplicates_are_dropped() -> None:
    c = Correlator(TOPOLOGY)
    kinds = [d.kind for d in c.observe([alert("A", "payments", 0), alert("A", "payments", 1)])]
    assert kinds == ["open", "duplicate"]
    assert c.alerts_seen == 1


def test_resolve_when_all_clear_and_reopen_within_the_window() -> None:
    c = Correlator(TOPOLOGY)
    c.observe([alert("A", "payments", 0), alert("B", "checkout", 1)])
    c.observe([alert("A", "payments", 5, status="resolved")])
    (inc,) = c.incidents.values()
    assert inc.state == "open"
    kinds = [d.kind for d in c.observe([alert("B", "checkout", 6, status="resolved")])]
    assert kinds == ["clear", "resolve"]
    assert inc.state == "resolved"
    (reopen,) = c.observe([alert("A", "payments", 12)])
    assert reopen.kind == "reopen"
    assert inc.state == "open"
    assert inc.reopened == 1
    c.observe([alert("A", "payments", 13, status="resolved")])
    *cleared, late = c.observe([alert("A", "payments", 60)])
    assert [d.kind for d in cleared] == ["clear", "resolve"]  # the flap hold ran out
    assert late.kind == "open"  # beyond the reopen window: a new incident
    assert len(c.incidents) == 2


def test_flapping_alert_is_held_instead_of_resolving_and_reopening() -> None:
    c = Correlator(TOPOLOGY)
    kinds = []
    for cycle in range(6):
        kinds += [d.kind for d in c.observe([alert("Down", "search", cycle * 4)])]
        kinds += [d.kind for d in c.observe([alert("Down", "search", cycle * 4 + 2,
                                                   status="resolved")])]
    assert "hold" in kinds
    assert "flapping" in kinds
    (inc,) = c.incidents.values()
    assert inc.state == "open"  # held, not resolved on every flap
    assert [d.kind for d in c.tick(T0 + timedelta(minutes=40))] == ["clear", "resolve"]
    assert inc.state == "resolved"


def test_instance_alerts_in_one_zone_group_by_label() -> None:
    c = Correlator(TOPOLOGY)
    c.observe([alert("Down", "payments", 0, zone="b", instance="payments-1"),
               alert("Down", "search-index", 0.5, zone="b", instance="search-index-1")])
    assert len(c.incidents) == 1  # far apart in the graph, but the same zone at once
    c.observe([alert("Down", "warehouse", 0.6, zone="a", instance="warehouse-0")])
    assert len(c.incidents) == 2


def test_agent_stores_incidents_timeline_and_audit(db_url: str) -> None:
    with Runtime(db_url) as rt:
        agent = CorrelatorAgent(rt.service, TOPOLOGY)
        agent.handle([alert("A", "payments", 0), alert("B", "checkout", 1)], T0)
        agent.handle([alert("A", "payments", 3, status="resolved"),
                      alert("B", "checkout", 3, status="resolved")], T0)
        (stored,) = rt.service.incidents()
        assert stored.state == "resolved"
        assert set(stored.services) == {"payments", "checkout"}
        notes = rt.service.incident_timeline(stored.id)
        assert [n.data["decision"] for n in notes] == ["open", "join", "resolve"]
        assert all(n.data["reason"] for n in notes)
        actions = [e.action for e in rt.service.audit_entries()]
        assert actions == ["incident.open", "incident.resolve"]
        assert rt.service.verify_audit().ok


def test_storm_becomes_as_many_incidents_as_it_has_faults() -> None:
    summary = run_headless("storm")
    corr = summary["correlation"]
    assert corr["alerts"] > 5000
    assert corr["incidents"] == len(summary["faults"])
    assert corr["compression"] > 0.99
    assert corr["purity"] == 1.0


def test_single_fault_scenarios_are_pure_and_fully_recalled() -> None:
    for name in ("bad-deploy", "cascading-failure", "cache-stampede", "zone-partition"):
        corr = run_headless(name)["correlation"]
        assert corr["faults_without_incident"] == 0, name
        assert corr["purity"] >= 0.9, (name, corr)
        assert corr["recall"] >= 0.9, (name, corr)

"""The investigator follows the physics of each fault on estates it was not tuned on:
where extra traffic enters, what a stampede's misses do to a datastore, which symptoms
travel to other services (and so may be another cause's doing) and which belong to
their own service alone, a baseline when the source holds little history, and when a
deploy's timing fits its service's symptoms.

Small synthetic estates (series built here, no scenario played), so each rule is seen
on its own."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from agents.causes import group_causes, transmits
from agents.investigator import Investigator
from agents.investigator_metrics import analyse
from agents.investigator_scoring import Candidate, ServiceView, change_support
from console.domain import AlertStatus, ChangeEvent, Hypothesis, Severity, Signal, SignalKind
from tests.test_investigator import (
    FAULT_CLASSES,
    T0,
    FakeEvidence,
    FakeMetrics,
    _healthy,
    _incident,
    _series,
)

NOW = T0 + timedelta(minutes=5)


def _alert(service: str, metric: str, name: str) -> Signal:
    return Signal("test", SignalKind.ALERT, name, service, Severity.CRITICAL,
                  AlertStatus.FIRING, T0, {"service": service}, {"metric": metric})


def _investigate(metrics: Mapping[str, Mapping[str, list]],
                 topology: Mapping[str, list[str]], *services: str,
                 alerts: list[Signal] | None = None) -> list[Hypothesis]:
    inv = Investigator(FakeMetrics(metrics), topology, FAULT_CLASSES,
                       FakeEvidence(alerts or []))
    return inv.investigate(_incident(*services), NOW)


def _causes(found: list[Hypothesis]) -> dict[str, float]:
    """The leader of each cause (the best of its hypotheses), with its confidence."""
    leaders: dict[int, Hypothesis] = {}
    for h in found:
        leaders.setdefault(h.cause, h)
    return {h.key: h.confidence for h in leaders.values()}


# --- where a surge enters ------------------------------------------------------------------

# web -> api -> db, and web -> other: the surge enters at api (something calls it)
TOPOLOGY = {"web": ["api", "other"], "api": ["db"], "other": [], "db": []}


def test_a_surge_entering_below_the_edge_is_found_where_it_enters() -> None:
    metrics = {
        "web": _healthy(),
        "other": _healthy(),
        "api": _healthy(request_rate=_series(100, 300, noise=2),
                        saturation=_series(0.3, 0.9), cpu=_series(25, 75)),
        # the database takes the diluted share of it and runs past its capacity
        "db": _healthy(request_rate=_series(400, 1040, noise=5),
                       saturation=_series(0.5, 1.3), cpu=_series(35, 90),
                       error_rate=_series(0.001, 0.25, noise=0.0002),
                       latency_p99_ms=_series(30, 900, noise=2)),
    }
    alerts = [_alert("db", "saturation", "HighSaturation"),
              _alert("db", "error_rate", "HighErrorRate")]
    found = _investigate(metrics, TOPOLOGY, "db", "api", alerts=alerts)
    assert found[0].key == "api/traffic_surge"
    assert list(_causes(found)) == ["api/traffic_surge"]  # the db's rise is the api's traffic


def test_a_stampede_s_misses_on_a_datastore_are_no_surge() -> None:
    # app -> cache, app -> db: the cache stops hitting, the misses land on the database
    topology = {"app": ["cache", "db"], "cache": [], "db": []}
    metrics = {
        "app": _healthy(latency_p99_ms=_series(80, 400, noise=3)),
        "cache": _healthy(cache_hit_ratio=_series(0.95, 0.2, noise=0.002)),
        "db": _healthy(request_rate=_series(300, 1500, noise=5),
                       saturation=_series(0.5, 1.2), cpu=_series(35, 90),
                       latency_p99_ms=_series(30, 700, noise=2)),
    }
    alerts = [_alert("cache", "cache_hit_ratio", "CacheHitRatioLow"),
              _alert("db", "saturation", "HighSaturation")]
    found = _investigate(metrics, topology, "app", "db", "cache", alerts=alerts)
    assert list(_causes(found)) == ["cache/cache_stampede"]
    surge = [h.confidence for h in found if h.key == "db/traffic_surge"]
    assert not surge or surge[0] < 0.01


def test_a_consumer_whose_producers_got_busier_is_no_surge() -> None:
    # web -> producer -> queue <- worker: nobody calls the worker; its work comes
    # through the queue from the producer
    topology = {"web": ["producer"], "producer": ["queue"], "worker": ["queue"], "queue": []}
    busy = {"request_rate": _series(100, 300, noise=2), "saturation": _series(0.4, 1.2),
            "cpu": _series(30, 90)}
    metrics = {"web": _healthy(**busy), "producer": _healthy(**busy),
               "worker": _healthy(**busy), "queue": _healthy()}
    alerts = [_alert(s, "saturation", "HighSaturation") for s in ("web", "producer", "worker")]
    found = _investigate(metrics, topology, "web", "producer", "worker", alerts=alerts)
    assert list(_causes(found)) == ["web/traffic_surge"]
    surge = [h.confidence for h in found if h.key == "worker/traffic_surge"]
    assert not surge or surge[0] < 0.01


# --- what travels to other services, and what belongs to its own ----------------------------

def test_what_a_cause_can_do_elsewhere() -> None:
    assert transmits("slow_dependency", "bad_deploy")  # errors and slowness travel up
    assert not transmits("slow_dependency", "memory_leak")  # a leak is its service's own
    assert not transmits("certificate_expiry", "traffic_surge")
    assert transmits("traffic_surge", "cpu_saturation", loaded=True)  # where load lands
    assert not transmits("traffic_surge", "cpu_saturation", loaded=False)
    assert not transmits("bad_deploy", "connection_pool_exhaustion")


def _cand(service: str, fault: str, score: float) -> Candidate:
    return Candidate(service, fault, 0.9, score)


def test_a_leak_beside_a_slow_database_is_a_cause_of_its_own() -> None:
    # frontend calls payments-db (through payments): the database's slowness reaches
    # the frontend, its memory does not
    callers = {"payments-db": {"payments", "frontend"}, "frontend": set(), "payments": set()}

    def explains(c: Candidate, service: str) -> bool:
        return service == c.service or service in callers[c.service]

    groups = group_causes([_cand("payments-db", "slow_dependency", 6.0),
                           _cand("frontend", "bad_deploy", 3.0),
                           _cand("frontend", "memory_leak", 4.0)],
                          explains=explains, onset=lambda c: None,
                          same_zone=lambda a, b: False, null_score=2.0)
    keys = [[f"{c.service}/{c.fault_class}" for c in g.members] for g in groups]
    assert keys == [["payments-db/slow_dependency", "frontend/bad_deploy"],
                    ["frontend/memory_leak"]]


def test_a_busy_dependency_does_not_explain_a_connection_pool_filling() -> None:
    metrics = {
        "api": _healthy(pool_usage=_series(0.3, 1.0)),
        "db": _healthy(error_rate=_series(0.001, 0.3, noise=0.0002),
                       latency_p99_ms=_series(30, 900, noise=2)),
    }
    inv = Investigator(FakeMetrics(metrics), {"api": ["db"], "db": []}, FAULT_CLASSES,
                       FakeEvidence())
    ranking = inv.investigate(_incident("api", "db"), NOW)
    pool = next(h for h in ranking if h.key == "api/connection_pool_exhaustion")
    assert all(e.weight >= 0 for e in pool.evidence)  # no "its dependency is worse"


# --- a baseline from the first samples ---------------------------------------------------------

def test_an_incident_opened_as_the_data_begin_reads_its_first_samples_as_normal() -> None:
    points = [(T0 + timedelta(seconds=15 * i), 100.0 if i < 20 else 300.0) for i in range(60)]
    stat = analyse("web", "request_rate", points, T0 - timedelta(minutes=2),
                   T0 - timedelta(hours=1), early=True)
    assert stat is not None
    assert stat.reference == 100.0 and stat.z_high > 10
    assert stat.onset_high == T0 + timedelta(seconds=15 * 20)
    # a move already under way in the first samples is no normal
    moving = [(at, 100.0 + 40 * i) for i, (at, _) in enumerate(points)]
    assert analyse("web", "request_rate", moving, T0 - timedelta(minutes=2),
                   T0 - timedelta(hours=1), early=True) is None


# --- a deploy's timing ---------------------------------------------------------------------------

def _deploy(at: timedelta) -> ChangeEvent:
    return ChangeEvent("api", "deploy", "deploy api v1 -> v2", T0 + at,
                       version_from="v1", version_to="v2")


def test_a_deploy_after_its_service_went_wrong_is_not_blamed() -> None:
    onset = T0.timestamp()
    view = ServiceView("api", (), (), {}, changes=[_deploy(timedelta(seconds=40))])
    support, change = change_support(view, "bad_deploy", onset, onset)
    assert (support, change) == (0.0, None)
    view = ServiceView("api", (), (), {}, changes=[_deploy(-timedelta(minutes=2))])
    support, change = change_support(view, "bad_deploy", onset, onset)
    assert support == 1.0 and change is not None


def test_a_deploy_is_not_blamed_when_its_service_s_symptoms_were_never_seen_beginning() -> None:
    view = ServiceView("api", (), (), {}, changes=[_deploy(-timedelta(minutes=5))])
    support, change = change_support(view, "bad_deploy", None, T0.timestamp())
    assert (support, change) == (0.0, None)


def test_a_deploy_on_an_already_unwell_service_is_blamed_when_its_errors_step_at_it() -> None:
    # the api's errors are the database's first (its timeouts), then the api's own
    # deploy adds its own: the step at the deploy is the deploy's signature
    deploy = _deploy(timedelta(minutes=3))
    steps = [(T0 - timedelta(minutes=30) + timedelta(seconds=5 * i),
              0.002 if i < 360 else 0.1 if i < 396 else 0.35) for i in range(480)]
    metrics = {
        "web": _healthy(),
        "other": _healthy(),
        "api": _healthy(error_rate=steps),
        "db": _healthy(latency_p99_ms=_series(30, 4000, noise=2)),
    }
    slow = [_alert("db", "latency_p99_ms", "HighLatency")]
    inv = Investigator(FakeMetrics(metrics), TOPOLOGY, FAULT_CLASSES,
                       FakeEvidence(slow, [deploy]))
    found = inv.investigate(_incident("api", "db"), T0 + timedelta(minutes=8))
    causes = _causes(found)
    assert "api/bad_deploy" in causes and "db/slow_dependency" in causes
    blamed = next(h for h in found if h.key == "api/bad_deploy")
    assert any(e.ref == f"change:{deploy.id}" for e in blamed.evidence)


def test_a_harmless_deploy_on_an_unwell_service_is_not_blamed() -> None:
    deploy = _deploy(timedelta(minutes=3))
    metrics = {
        "web": _healthy(),
        "other": _healthy(),
        "api": _healthy(error_rate=_series(0.002, 0.1, noise=0.0003)),
        "db": _healthy(latency_p99_ms=_series(30, 4000, noise=2)),
    }
    slow = [_alert("db", "latency_p99_ms", "HighLatency")]
    inv = Investigator(FakeMetrics(metrics), TOPOLOGY, FAULT_CLASSES,
                       FakeEvidence(slow, [deploy]))
    found = inv.investigate(_incident("api", "db"), T0 + timedelta(minutes=8))
    assert all(e.ref != f"change:{deploy.id}" for h in found for e in h.evidence)
    assert list(_causes(found)) == ["db/slow_dependency"]


def test_an_application_slow_on_its_own_is_slow_not_a_bad_deploy() -> None:
    # nothing it calls is slow, it makes no errors and nothing was deployed
    metrics = {"web": _healthy(), "other": _healthy(),
               "api": _healthy(latency_p99_ms=_series(80, 3000, noise=3)), "db": _healthy()}
    found = _investigate(metrics, TOPOLOGY, "api",
                         alerts=[_alert("api", "latency_p99_ms", "HighLatency")])
    assert found[0].key == "api/slow_dependency"


def test_symptoms_older_than_a_cause_are_not_its_doing() -> None:
    # checkout's deploy broke it at 1000 s; payments-db slowed at 1600 s: the database
    # explains checkout's symptoms from then on, not the ones it had before
    callers = {"payments-db": {"checkout"}, "checkout": set()}

    def explains(c: Candidate, service: str) -> bool:
        return service == c.service or service in callers[c.service]

    onsets = {"checkout": 1000.0, "payments-db": 1600.0}
    groups = group_causes([_cand("payments-db", "slow_dependency", 6.0),
                           _cand("checkout", "bad_deploy", 5.0)],
                          explains=explains, onset=lambda c: onsets[c.service],
                          same_zone=lambda a, b: False, null_score=2.0)
    assert [[c.service for c in g.members] for g in groups] == [["payments-db"], ["checkout"]]

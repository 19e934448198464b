"""The investigator and the impact tracer on every built-in fault scenario: the top
hypothesis names the injected fault (service and class), overlapping faults both rank in
the top three, benign changes are never blamed, every evidence link resolves to a stored
record or a real metric sample, and bad inputs (no metrics, an unknown service, constant
series, an empty window) give an empty or low-confidence answer, never a crash.

Scenarios are played only until every fault's incident has been open for three minutes,
on a temporary SQLite database each; ground truth (the scenario's timeline) is read here,
never by the agents. The driver's agent team is kept out (its lanes call this same
investigator and have their own tests): it would only slow the plays down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from agents.impact import STATES, ImpactTracer
from agents.investigator import Investigator, InvestigatorSettings
from agents.investigator_metrics import analyse
from agents.investigator_scoring import calibrate
from console.actions.runbooks import load_library
from console.domain import (
    AlertStatus,
    ChangeEvent,
    Hypothesis,
    IncidentInfo,
    Severity,
    Signal,
    SignalKind,
)
from console.estate import load_scenario
from console.estate.spec import ChangeEntry, FaultEntry, builtin_scenarios
from console.runtime import Runtime, ScenarioDriver
from console.sources.metrics import Point
from console.storage.repos_evidence import EvidenceRepo, TemplateStat

AGE_S = 180.0  # investigate once the incident has been open this long
STEP_S = 15.0
FAULT_SCENARIOS = [n for n in builtin_scenarios()
                   if any(isinstance(e, FaultEntry) for e in load_scenario(n).timeline)]
SINGLE_FAULT = [n for n in FAULT_SCENARIOS if n != "overlapping"]
FAULT_CLASSES = sorted({f for book in load_library().values() for f in book.applies_to.faults})


@dataclass
class Played:
    name: str
    runtime: Runtime
    driver: ScenarioDriver
    investigator: Investigator
    evidence: EvidenceRepo
    faults: list[FaultEntry]
    incidents: list[IncidentInfo] = field(default_factory=list)
    hypotheses: dict[int, list[Hypothesis]] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.driver.player.estate.now

    def truth(self, incident: IncidentInfo) -> set[str]:
        topology = self.driver.player.estate.topology()
        return {f"{f.service}/{f.kind}" for f in self.faults
                if set(incident.services) & _reach(topology, f.service)}


def _reach(topology: Mapping[str, Iterable[str]], service: str) -> set[str]:
    """Where a fault's alerts land (as console/evaluation.py attributes them)."""
    graph = nx.DiGraph([(c, d) for c, deps in topology.items() for d in deps])
    near = set(nx.single_source_shortest_path_length(graph.to_undirected(), service, cutoff=2))
    return near | set().union(*(nx.ancestors(graph, s) for s in near))


def _play(name: str, folder: Path, url: str) -> Played:
    """Play until every fault has an incident opened for it that is AGE_S old (a scenario
    without faults: until its first incident is)."""
    runtime = Runtime(url)
    with pytest.MonkeyPatch.context() as mp:
        if hasattr(Runtime, "start_agents"):
            mp.setattr(Runtime, "start_agents", lambda self, *a, **k: None)
        driver = ScenarioDriver(runtime, name)
    evidence = EvidenceRepo(runtime.db)
    topology = driver.player.estate.topology()
    investigator = Investigator(driver.metrics, topology, FAULT_CLASSES, evidence)
    faults = [e for e in driver.scenario.timeline if isinstance(e, FaultEntry)]
    start = driver.player.start
    played = Played(name, runtime, driver, investigator, evidence, faults)

    def ready() -> bool:
        incidents = runtime.service.incidents()
        if not faults:  # nothing broken: until its first incident (if any) is old enough
            return any((played.now - i.opened_at).total_seconds() >= AGE_S
                       for i in incidents)
        for fault in faults:
            opened = [i for i in incidents
                      if (i.opened_at - start).total_seconds() >= fault.at - 60
                      and set(i.services) & _reach(topology, fault.service)]
            if not any((played.now - i.opened_at).total_seconds() >= AGE_S for i in opened):
                return False
        return True

    while not driver.finished and not ready():
        driver.step(STEP_S)
    played.incidents = sorted(runtime.service.incidents(), key=lambda i: i.id)
    for incident in played.incidents:
        played.hypotheses[incident.id] = investigator.investigate(incident, played.now)
    return played


@pytest.fixture(scope="module")
def plays(tmp_path_factory: pytest.TempPathFactory,
          make_db_url_session: Any) -> Iterator[dict[str, Played]]:
    """Each scenario played once for the whole module, on demand."""
    cache: dict[str, Played] = {}
    base = tmp_path_factory.mktemp("rca")
    with pytest.MonkeyPatch.context() as mp:  # never the real user's folders
        mp.setenv("WATCHFLOOR_DATA_DIR", str(base / "data"))
        mp.setenv("WATCHFLOOR_CONFIG_DIR", str(base / "config"))
        mp.setenv("WATCHFLOOR_USER", "alice")
        mp.delenv("WATCHFLOOR_DB", raising=False)
        mp.delenv("WATCHFLOOR_LLM_URL", raising=False)

        class Lazy(dict[str, Played]):
            def __missing__(self, name: str) -> Played:
                folder = base / name
                folder.mkdir()
                self[name] = _play(name, folder, make_db_url_session(folder))
                return self[name]

        cache = Lazy()
        yield cache
    for played in cache.values():
        played.runtime.close()


# --- the diagnosis ---------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SINGLE_FAULT)
def test_the_top_hypothesis_names_the_injected_fault(plays: dict[str, Played],
                                                     scenario: str) -> None:
    played = plays[scenario]
    (fault,) = played.faults
    checked = 0
    for incident in played.incidents:
        if not played.truth(incident):
            continue
        ranking = played.hypotheses[incident.id]
        assert ranking, f"{scenario}: no hypothesis for incident {incident.title}"
        top = ranking[0]
        if fault.params.get("all_services"):  # an estate-wide partition: any service
            assert top.fault_class == fault.kind, [h.key for h in ranking]
            zone = fault.params.get("zone", "b")
            assert any(f"zone {zone}" in e.summary for e in top.evidence)
        else:
            assert top.key == f"{fault.service}/{fault.kind}", [h.key for h in ranking]
        assert top.confidence >= 0.5
        assert top.signals >= 2  # never one kind of evidence alone
        checked += 1
    assert checked >= 1


def test_overlapping_faults_both_rank_in_the_top_three(plays: dict[str, Played]) -> None:
    played = plays["overlapping"]
    top3 = {h.key for ranking in played.hypotheses.values() for h in ranking[:3]}
    assert {"cart/bad_deploy", "payments-db/slow_dependency"} <= top3


def test_a_deploy_is_blamed_with_its_change_and_its_new_errors(plays: dict[str, Played]) -> None:
    played = plays["bad-deploy"]
    top = played.hypotheses[played.incidents[0].id][0]
    kinds = {e.kind for e in top.evidence if e.weight > 0}
    # the estate's traces show payments' own spans failing too (trace errors)
    assert {"metric", "change", "log", "alert", "trace"} <= kinds
    assert top.signals == 5
    change = next(e for e in top.evidence if e.kind == "change")
    assert "v41 -> v42" in change.summary
    assert any(e.kind == "topology" and "checkout" in e.summary for e in top.evidence)
    # checkout and frontend fail louder, but their own dependency is worse
    others = {h.service: h for h in played.hypotheses[played.incidents[0].id]}
    assert "frontend" not in others or others["frontend"].confidence < 0.05


@pytest.mark.parametrize("scenario", ["quiet-day", "bad-deploy", "cache-stampede",
                                      "cascading-failure"])
def test_benign_changes_are_never_blamed(plays: dict[str, Played], scenario: str) -> None:
    played = plays[scenario]
    start = played.driver.player.start
    benign = [e for e in played.driver.scenario.timeline if isinstance(e, ChangeEntry)]
    stored = played.evidence.changes(start, played.now)
    benign_ids = {c.id for c in stored for e in benign
                  if c.service == e.service and c.kind == e.kind
                  and abs((c.at - start).total_seconds() - e.at) <= 2 * STEP_S}
    assert benign_ids, "the scenario's benign changes were stored"
    for ranking in played.hypotheses.values():
        for h in ranking:
            blamed = {e.ref.removeprefix("change:") for e in h.evidence if e.kind == "change"}
            assert not blamed & benign_ids, (h.key, blamed)
    if scenario == "quiet-day":  # nothing is broken: nothing is sure
        for ranking in played.hypotheses.values():
            assert not ranking or ranking[0].confidence < 0.5


@pytest.mark.parametrize("scenario", FAULT_SCENARIOS)
def test_every_evidence_link_resolves(plays: dict[str, Played], scenario: str) -> None:
    played = plays[scenario]
    seen = 0
    for ranking in played.hypotheses.values():
        for h in ranking:
            assert h.fault_class in FAULT_CLASSES
            assert 0 < h.confidence <= 1
            assert math.isfinite(h.score)
            assert 1 <= h.signals <= 6  # metric, change, log, alert, trace, trend
            for e in h.evidence:
                kind, _, rest = e.ref.partition(":")
                assert kind in ("metric", "signal", "change", "log"), e.ref
                if kind == "metric":
                    target, _, at = rest.rpartition("@")
                    service, metric = target.split("/", 1)
                    moment = datetime.fromisoformat(at)
                    samples = played.driver.metrics.series(service, metric, moment, moment)
                    assert samples, f"no sample behind {e.ref}"
                else:
                    assert played.evidence.exists(e.ref), e.ref
                seen += 1
        confidences = [h.confidence for h in ranking]
        assert confidences == sorted(confidences, reverse=True)
        # Each cause's probabilities add up to at most one (agents/causes.py); two causes
        # at once are each sure on their own. Each is rounded to 4 significant digits.
        for cause in {h.cause for h in ranking}:
            assert sum(h.confidence for h in ranking if h.cause == cause) <= 1.0 + 1e-3
    assert seen > 0


# --- the impact tracer -----------------------------------------------------------------

def test_impact_walks_from_the_cause_to_the_storefront(plays: dict[str, Played]) -> None:
    played = plays["bad-deploy"]
    incident = played.incidents[0]
    top = played.hypotheses[incident.id][0]
    tracer = ImpactTracer(played.driver.metrics, played.driver.player.estate.topology())
    impact = tracer.trace(incident, top, played.now)
    assert impact.cause == "payments"
    assert impact.fault_class == "bad_deploy"
    assert "frontend" in impact.entry_points
    path = next(p for p in impact.paths if p.services == ("frontend", "checkout", "payments"))
    assert path.state in ("critical", "down")
    states = {s.service: s.state for s in impact.services}
    assert states["payments"] in ("critical", "down")
    assert states["checkout"] != "none"
    assert states["frontend"] != "none"
    assert impact.services[0].service == "payments"
    assert impact.state == max(states.values(), key=STATES.index)
    assert "payments" in impact.summary
    assert "frontend" in impact.summary
    for s in impact.services:
        if s.ref:
            target, _, at = s.ref.removeprefix("metric:").rpartition("@")
            service, metric = target.split("/", 1)
            moment = datetime.fromisoformat(at)
            assert played.driver.metrics.series(service, metric, moment, moment)


def test_impact_of_a_healthy_or_unknown_service_is_none(plays: dict[str, Played]) -> None:
    played = plays["bad-deploy"]
    tracer = ImpactTracer(played.driver.metrics, played.driver.player.estate.topology())
    incident = played.incidents[0]
    healthy = tracer.trace(incident, "users-db", played.now)
    assert healthy.state == "none" or "users-db" not in healthy.affected
    unknown = tracer.trace(incident, "no-such-service", played.now)
    assert unknown.state == "none"
    assert unknown.paths[0].services == ("no-such-service",)
    assert "no service" in unknown.summary


# --- robustness ------------------------------------------------------------------------

class FakeMetrics:
    """A MetricsReader over given series (service -> metric -> points)."""

    def __init__(self, data: Mapping[str, Mapping[str, list[Point]]]) -> None:
        self.data = data

    def services(self) -> Sequence[str]:
        return sorted(self.data)

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[Point]:
        return [(at, v) for at, v in self.data.get(service, {}).get(metric, [])
                if start <= at <= end]

    def latest(self, service: str) -> Mapping[str, float]:
        return {m: pts[-1][1] for m, pts in self.data.get(service, {}).items() if pts}


class FakeEvidence:
    def __init__(self, signals: Sequence[Signal] = (), changes: Sequence[ChangeEvent] = (),
                 logs: Sequence[TemplateStat] = ()) -> None:
        self._signals, self._changes, self._logs = list(signals), list(changes), list(logs)

    def fired(self, start: datetime, end: datetime, services: Iterable[str] | None = None,
              *, limit: int = 1000) -> list[Signal]:
        return [s for s in self._signals
                if start <= s.at <= end and s.status is AlertStatus.FIRING]

    def firing(self, at: datetime, services: Iterable[str] | None = None, *,
               since: datetime | None = None, limit: int = 1000) -> list[Signal]:
        return [s for s in self._signals if s.at <= at and s.status is AlertStatus.FIRING]

    def changes(self, start: datetime, end: datetime,
                services: Iterable[str] | None = None) -> list[ChangeEvent]:
        return [c for c in self._changes if start <= c.at <= end]

    def log_templates(self, start: datetime, end: datetime,
                      services: Iterable[str] | None = None, *,
                      history_from: datetime | None = None) -> list[TemplateStat]:
        return [t for t in self._logs if start <= t.last_at and t.first_at <= end]


T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
CHAIN = {"web": ["api"], "api": ["db"], "db": []}


def _incident(*services: str, opened: datetime = T0) -> IncidentInfo:
    return IncidentInfo(1, "test", Severity.CRITICAL, "open", services, opened)


def _series(normal: float, after: float | None = None, *, minutes: int = 40,
            at: int = 30, noise: float = 0.0) -> list[Point]:
    """One sample every 5 s from T0-30min; `after` from T0-30min+`at` minutes on."""
    out = []
    for i in range(minutes * 12):
        moment = T0 - timedelta(minutes=30) + timedelta(seconds=5 * i)
        jitter = noise * math.sin(i * 1.7)
        out.append((moment, (after if after is not None and i >= at * 12 else normal)
                    + jitter))
    return out


def _healthy(**overrides: list[Point]) -> dict[str, list[Point]]:
    base = {"error_rate": _series(0.002, noise=0.0003), "latency_p99_ms": _series(80, noise=3),
            "request_rate": _series(100, noise=2), "saturation": _series(0.4),
            "cpu": _series(30), "memory": _series(50), "cert_expiry_hours": _series(2000)}
    base.update(overrides)
    return base


def test_a_deep_failing_service_with_a_fresh_deploy_is_the_cause() -> None:
    metrics = FakeMetrics({
        "web": _healthy(error_rate=_series(0.002, 0.3, noise=0.0003)),
        "api": _healthy(error_rate=_series(0.002, 0.35, noise=0.0003)),
        "db": _healthy(error_rate=_series(0.001, 0.4, noise=0.0002)),
    })
    deploy = ChangeEvent("db", "deploy", "deploy db v1 -> v2", T0 - timedelta(seconds=20),
                         version_from="v1", version_to="v2")
    noise = ChangeEvent("web", "config", "raise a TTL", T0 - timedelta(minutes=20))
    alert = Signal("test", SignalKind.ALERT, "HighErrorRate", "web", Severity.CRITICAL,
                   AlertStatus.FIRING, T0, {"service": "web"}, {"metric": "error_rate"})
    inv = Investigator(metrics, CHAIN, FAULT_CLASSES, FakeEvidence([alert], [deploy, noise]))
    ranking = inv.investigate(_incident("web"), T0 + timedelta(minutes=5))
    assert ranking[0].key == "db/bad_deploy"
    assert any(e.ref == f"change:{deploy.id}" for e in ranking[0].evidence)
    assert all(e.ref != f"change:{noise.id}" for h in ranking for e in h.evidence)
    assert ranking[0].confidence > ranking[1].confidence


def test_no_metrics_no_evidence_is_an_empty_answer() -> None:
    inv = Investigator(FakeMetrics({}), CHAIN, FAULT_CLASSES, FakeEvidence())
    assert inv.investigate(_incident("web"), T0 + timedelta(minutes=3)) == []
    assert inv.investigate(_incident(), T0) == []


def test_an_unknown_service_is_not_an_error(plays: dict[str, Played]) -> None:
    played = plays["bad-deploy"]
    ranking = played.investigator.investigate(_incident("no-such-service",
                                                        opened=played.now), played.now)
    assert ranking == []
    inv = Investigator(played.driver.metrics, {}, FAULT_CLASSES, played.evidence)
    for h in inv.investigate(_incident("no-such-service", opened=played.now), played.now):
        assert h.confidence < 0.5


def test_constant_series_give_nothing_to_blame() -> None:
    flat = {m: _series(v) for m, v in {"error_rate": 0.0, "latency_p99_ms": 50.0,
                                         "request_rate": 0.0, "cpu": 0.0, "memory": 40.0,
                                         "disk": 40.0, "saturation": 0.0,
                                         "cert_expiry_hours": 5000.0}.items()}
    metrics = FakeMetrics({"web": flat, "api": flat, "db": flat})
    inv = Investigator(metrics, CHAIN, FAULT_CLASSES, FakeEvidence())
    assert inv.investigate(_incident("web", "api"), T0 + timedelta(minutes=5)) == []
    stat = analyse("web", "memory", flat["memory"], T0 - timedelta(minutes=2),
                   T0 - timedelta(hours=1))
    assert stat is not None
    assert stat.z_high == 0
    assert stat.onset_high is None


def test_an_empty_window_and_bad_values_do_not_crash() -> None:
    nan = [(at, math.nan) for at, _ in _series(0.0)]
    metrics = FakeMetrics({"web": {"error_rate": nan, "latency_p99_ms": []},
                           "api": _healthy(cpu=_series(30, math.inf)), "db": {}})
    inv = Investigator(metrics, CHAIN, FAULT_CLASSES, FakeEvidence())
    before = T0 - timedelta(hours=3)  # an incident before any data
    assert inv.investigate(_incident("web", opened=before), before) == []
    for h in inv.investigate(_incident("web"), T0 + timedelta(minutes=5)):
        assert 0 < h.confidence <= 1
    assert analyse("web", "error_rate", [], T0, T0 - timedelta(hours=1)) is None


def test_only_the_vocabulary_is_named() -> None:
    metrics = FakeMetrics({"web": _healthy(), "api": _healthy(),
                           "db": _healthy(error_rate=_series(0.001, 0.4))})
    inv = Investigator(metrics, CHAIN, ["slow_dependency", "made_up_class"], FakeEvidence())
    assert inv.fault_classes == ("slow_dependency",)
    for h in inv.investigate(_incident("web"), T0 + timedelta(minutes=5)):
        assert h.fault_class == "slow_dependency"


def test_calibration_is_a_distribution_with_room_for_none() -> None:
    probabilities = calibrate([5.0, 3.0, 1.0])
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) < 1
    assert calibrate([]) == []
    weak, strong = calibrate([0.5])[0], calibrate([6.0])[0]
    assert weak < 0.5 < strong


def test_settings_bound_the_answer(plays: dict[str, Played]) -> None:
    played = plays["bad-deploy"]
    inv = Investigator(played.driver.metrics, played.driver.player.estate.topology(),
                       FAULT_CLASSES, played.evidence, InvestigatorSettings(max_hypotheses=1))
    ranking = inv.investigate(played.incidents[0], played.now)
    assert len(ranking) == 1
    assert ranking[0].key == "payments/bad_deploy"
    assert inv.last_duration_ms < 2000


def _segments(normal: float, *moves: tuple[int, float], noise: float = 0.0,
              minutes: int = 45) -> list[Point]:
    """Like `_series`, with a level change at each (minute, value) of `moves`."""
    out = []
    for i in range(minutes * 12):
        level = normal
        for at, value in moves:
            if i >= at * 12:
                level = value
        moment = T0 - timedelta(minutes=30) + timedelta(seconds=5 * i)
        out.append((moment, level + noise * math.sin(i * 1.7)))
    return out


FORK = {"web": ["api", "cache"], "api": ["db"], "cache": [], "db": []}


def _two_causes(cache_latency: float) -> Investigator:
    """db broke at T0 (a deploy) and was fixed at T0+5 min; from T0+8 min the cache is
    slow (when `cache_latency` is high): one incident, two causes, one of them over."""
    bad = ((30, 0.3), (35, 0.002))  # minutes from T0-30min: T0 and T0+5min
    web_latency = _segments(80, (38, 80 + cache_latency), noise=3)
    metrics = FakeMetrics({
        "web": _healthy(error_rate=_segments(0.002, *bad, noise=0.0003),
                        latency_p99_ms=web_latency),
        "api": _healthy(error_rate=_segments(0.002, *bad, noise=0.0003)),
        "db": _healthy(error_rate=_segments(0.001, *bad, noise=0.0002)),
        "cache": _healthy(latency_p99_ms=_segments(5, (38, 5 + cache_latency), noise=0.3)),
    })
    deploy = ChangeEvent("db", "deploy", "deploy db v1 -> v2", T0 - timedelta(seconds=20),
                         version_from="v1", version_to="v2")
    alerts = [Signal("test", SignalKind.ALERT, "HighErrorRate", service, Severity.CRITICAL,
                     AlertStatus.FIRING, T0 + timedelta(seconds=30), {"service": service},
                     {"metric": "error_rate"}) for service in ("web", "db")]
    if cache_latency:
        alerts.append(Signal("test", SignalKind.ALERT, "HighLatency", "cache",
                             Severity.WARNING, AlertStatus.FIRING, T0 + timedelta(minutes=9),
                             {"service": "cache"}, {"metric": "latency_p99_ms"}))
    return Investigator(metrics, FORK, FAULT_CLASSES, FakeEvidence(alerts, [deploy]))


def test_a_cause_that_is_over_yields_to_the_one_still_going_on() -> None:
    inv = _two_causes(cache_latency=900)
    ranking = inv.investigate(_incident("web"), T0 + timedelta(minutes=13))
    assert ranking[0].key == "cache/slow_dependency", [h.key for h in ranking]
    db = next(h for h in ranking if h.key == "db/bad_deploy")
    recovery = [e for e in db.evidence if e.kind == "recovery"]
    assert recovery
    assert recovery[0].weight < 0
    assert "back to normal" in recovery[0].summary
    assert "cache" in recovery[0].summary
    assert recovery[0].ref.startswith("metric:db/error_rate@")


def test_a_fixed_cause_keeps_its_rank_while_only_its_callers_lag() -> None:
    # Nothing else is wrong: the fixed db is still the best account of the incident.
    inv = _two_causes(cache_latency=0)
    ranking = inv.investigate(_incident("web"), T0 + timedelta(minutes=13))
    assert ranking[0].key == "db/bad_deploy", [h.key for h in ranking]
    assert all(e.kind != "recovery" for e in ranking[0].evidence)

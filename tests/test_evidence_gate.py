"""No autonomy on thin evidence (issue 19, point 4): a symptom must last, independent
signals must corroborate it (a load pulse, a forecast or the graph are not witnesses),
and a learner forecast alone never justifies a rollback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.evidence_gate import assess, gate, witnesses
from console.domain import Evidence, Hypothesis
from console.runtime import run_headless
from tests.test_recommender import World, make_world

NOW = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)


def _h(fault: str, *kinds: str, service: str = "search") -> Hypothesis:
    evidence = tuple(Evidence(k, f"{k} evidence", f"{k}:1", 1.0) for k in kinds)
    return Hypothesis(service, fault, 0.95, evidence, signals=len(set(kinds)))


def test_a_symptom_younger_than_the_policy_minimum_does_not_run_alone() -> None:
    h = _h("disk_filling", "metric", "alert", "log")
    young = assess(h, "disk_hygiene", now=NOW, onset=NOW - timedelta(seconds=40),
                   onset_from="disk of search", min_persistence=120.0, corroboration=2)
    assert not young.autonomous
    assert young.reasons == ("the symptom has lasted 40 s (from disk of search); policy "
                             "wants 120 s before acting alone",)
    lasting = assess(h, "disk_hygiene", now=NOW, onset=NOW - timedelta(seconds=150),
                     onset_from="disk of search", min_persistence=120.0, corroboration=2)
    assert lasting.autonomous and lasting.reasons == ()
    assert lasting.independent == 3


def test_persistence_is_dated_from_the_class_metric_not_the_first_alert() -> None:
    """The alert came 10 s ago, but the disk has been climbing for ten minutes."""
    start = NOW - timedelta(hours=1)

    def series(service: str, metric: str, a: datetime, b: datetime) -> list:
        points = []
        for i in range(0, 3600, 15):
            at = start + timedelta(seconds=i)
            climbing = max(0, i - 3000)
            points.append((at, 40.0 + 0.05 * (i % 2) + climbing * 0.1))
        return [(at, v) for at, v in points if a <= at <= b]

    h = _h("disk_filling", "metric", "alert")
    verdict = gate(h, "disk_hygiene", corroboration=2, min_persistence=120.0,
                   opened_at=NOW - timedelta(seconds=10), now=NOW, series=series)
    assert verdict.autonomous, verdict.reasons
    fresh = gate(h, "disk_hygiene", corroboration=2, min_persistence=120.0,
                 opened_at=NOW - timedelta(seconds=10), now=NOW, series=None)
    assert not fresh.autonomous
    assert "the symptom has lasted 10 s (from the incident's first alert)" in fresh.reasons[0]


def test_load_forecasts_and_the_graph_are_not_independent_witnesses() -> None:
    counted, left_out = witnesses(_h("traffic_surge", "metric", "alert", "log", "topology",
                                     service="frontend"))
    assert counted == ["load"]
    assert "the dependency graph (topology) is not an independent signal" in left_out
    counted, _ = witnesses(_h("memory_leak", "metric", "trend"))
    assert counted == ["metric"]
    # a hand-made hypothesis without evidence keeps its own count
    assert len(witnesses(Hypothesis("a", "disk_filling", 0.9, signals=3))[0]) == 3


def test_a_forecast_alone_is_never_a_reason_to_roll_back() -> None:
    h = _h("memory_leak", "change", "trend", service="recommendations")
    verdict = assess(h, "deploy_rollback", now=NOW, onset=NOW - timedelta(hours=1),
                     onset_from="x", min_persistence=120.0, corroboration=1)
    assert (verdict.autonomous, verdict.propose) == (False, False)
    assert verdict.reasons == ("a learner forecast alone never justifies a rollback",)
    backed = _h("memory_leak", "change", "trend", "metric", service="recommendations")
    assert assess(backed, "deploy_rollback", now=NOW, onset=NOW - timedelta(hours=1),
                  onset_from="x", min_persistence=120.0, corroboration=2).autonomous


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url, "quiet-day")
    yield w
    w.runtime.close()


def test_the_recommender_proposes_no_rollback_on_a_forecast_alone(world: World) -> None:
    """A benign deploy of recommendations, then only the learner's memory forecast:
    nothing is proposed, and the reason says why."""
    world.runtime.service.set_autonomy_ceiling(3, as_user="alice")
    world.set_policy(levels={"deploy_rollback": 3}, autonomous_risk=("low", "high"))
    ref = world.change("recommendations", "deploy", "deploy recommendations v31 -> v32",
                       version_from="v31", version_to="v32")
    h = Hypothesis("recommendations", "memory_leak", 0.9999, (
        Evidence("change", "deploy recommendations v31 -> v32 40 s before", f"change:{ref}",
                 2.0),
        Evidence("trend", "MemoryWillFill on recommendations: memory reaches 95% in 40 min",
                 "signal:abc", 2.0)), signals=2)
    assert world.recommend(world.incident("recommendations"), h) == []
    assert world.recommender.last[0].skipped == \
        "a learner forecast alone never justifies a rollback"
    assert world.engine.executions() == []


PULSE = """\
name: load-pulse
description: a four-minute burst of traffic on a healthy storefront; nothing is broken.
estate: default
duration: 30m
seed: 5
timeline:
  - {at: 10m, type: load, service: frontend, factor: 3.0, ramp: 30s, until: 14m}
"""


def test_a_load_pulse_on_a_healthy_service_takes_no_autonomous_action(
        tmp_path: Path) -> None:
    path = tmp_path / "load-pulse.yaml"
    path.write_text(PULSE, encoding="utf-8")
    summary = run_headless(str(path), autonomy=3, approve="none")
    assert summary["faults"] == []
    assert [a for a in summary["actions"] if a["autonomous"]] == []
    assert summary["actions"] == []


BENIGN_DEPLOY = """\
name: benign-deploy
description: a harmless deploy of orders 40 s before its database slows down.
estate: default
duration: 30m
seed: 11
timeline:
  - {at: 9m20s, type: change, kind: deploy, service: orders, version: v88}
  - {at: 10m, type: fault, kind: slow_dependency, service: orders-db}
"""


def test_a_benign_deploy_before_a_fault_elsewhere_is_not_rolled_back(
        tmp_path: Path) -> None:
    path = tmp_path / "benign-deploy.yaml"
    path.write_text(BENIGN_DEPLOY, encoding="utf-8")
    summary = run_headless(str(path), autonomy=3, approve="all")
    assert not [a for a in summary["actions"] if a["runbook"] == "rollback-deploy"]
    assert [(a["runbook"], a["target"]) for a in summary["actions"]][:1] == \
        [("failover", "orders-db")]


# --- load is not a fault until it stays -------------------------------------------------------

def _loaded(rise_for: float, *, errors: float = 0.001, factor: float = 2.5):
    """A service at 100 requests/s for an hour, `factor` times that for the last
    `rise_for` seconds; its error rate `errors` meanwhile."""
    start = NOW - timedelta(hours=1)

    def series(service: str, metric: str, a: datetime, b: datetime) -> list:
        points = []
        for i in range(0, 3601, 15):
            at = start + timedelta(seconds=i)
            up = (NOW - at).total_seconds() <= rise_for
            if metric == "request_rate":
                value = 100.0 * (factor if up else 1.0) + (i % 3)
            else:
                value = errors if up else 0.001
            points.append((at, value))
        return [(at, v) for at, v in points if a <= at <= b]

    return series


def test_symptoms_that_come_with_a_load_rise_are_load_not_that_fault() -> None:
    series = _loaded(240)
    for fault, action in (("cpu_saturation", "scale"), ("slow_dependency", "failover"),
                          ("queue_backlog", "restart"),
                          ("connection_pool_exhaustion", "restart")):
        h = _h(fault, "metric", "alert", "log", service="orders-db")
        verdict = gate(h, action, corroboration=2, min_persistence=120.0,
                       opened_at=NOW - timedelta(seconds=200), now=NOW, series=series)
        assert (verdict.autonomous, verdict.propose) == (False, False), fault
        assert verdict.reasons[0].startswith("its symptoms come with a load rise on orders-db "
                                             "(request rate x2.5 its normal since 02:26:00)")
        assert f"that is load, not {fault}" in verdict.reasons[0]
    # a change on the service is a cause of its own beside the load
    flagged = _h("cpu_saturation", "metric", "change", service="orders-db")
    assert gate(flagged, "feature_flag", corroboration=2, min_persistence=120.0,
                opened_at=NOW - timedelta(seconds=200), now=NOW, series=series).propose
    # without a load rise, the same evidence is proposed (and may run on its own)
    steady = _loaded(0)
    h = _h("slow_dependency", "metric", "alert", service="orders-db")
    verdict = gate(h, "failover", corroboration=2, min_persistence=120.0,
                   opened_at=NOW - timedelta(seconds=200), now=NOW, series=steady)
    assert verdict.propose and verdict.reasons == ()


def test_a_surge_is_proposed_once_it_stays_or_turns_requests_away() -> None:
    surge = _h("traffic_surge", "metric", "alert", service="frontend")
    pulse = gate(surge, "scale", corroboration=1, min_persistence=120.0,
                 opened_at=NOW - timedelta(seconds=200), now=NOW, series=_loaded(240))
    assert (pulse.autonomous, pulse.propose) == (False, False)
    assert pulse.reasons == ("the load rise on frontend (request rate x2.5 its normal) has "
                             "lasted 240 s and turns no requests away; a load pulse passes by "
                             "itself, so nothing is proposed before it has lasted 600 s",)
    stays = gate(surge, "scale", corroboration=1, min_persistence=120.0,
                 opened_at=NOW - timedelta(seconds=200), now=NOW, series=_loaded(700))
    assert stays.propose and stays.autonomous
    refused = gate(surge, "scale", corroboration=1, min_persistence=120.0,
                   opened_at=NOW - timedelta(seconds=200), now=NOW,
                   series=_loaded(240, errors=0.4))
    assert refused.propose and refused.autonomous
    longer = gate(surge, "scale", corroboration=1, min_persistence=120.0,
                  opened_at=NOW - timedelta(seconds=200), now=NOW, series=_loaded(700),
                  load_persistence=900.0)
    assert not longer.propose


PULSE_TRAIN = """\
name: pulse-train
description: three bursts of traffic on orders; what orders calls slows while they last,
  and nothing is broken.
estate: default
duration: 40m
seed: 21
timeline:
  - {at: 8m, type: load, service: orders, factor: 2.4, ramp: 1m, until: 11m30s}
  - {at: 15m, type: load, service: orders, factor: 2.4, ramp: 1m, until: 19m}
  - {at: 24m, type: load, service: orders, factor: 2.3, ramp: 1m, until: 27m30s}
"""


GENTLE_PULSE = PULSE.replace("factor: 3.0", "factor: 1.8")  # busy, never out of capacity


@pytest.mark.parametrize("text", [GENTLE_PULSE, PULSE_TRAIN], ids=["pulse", "pulse-train"])
def test_a_load_pulse_takes_no_action_even_with_every_proposal_approved(
        tmp_path: Path, text: str) -> None:
    path = tmp_path / "pulse.yaml"
    path.write_text(text, encoding="utf-8")
    summary = run_headless(str(path), autonomy=3, approve="all")
    assert summary["faults"] == []
    assert summary["actions"] == []
    assert not any(inc["escalated"] for inc in summary["incidents"])


def _cpu(back_for: float):
    """cpu at 35 for an hour, 90 from 20 minutes ago, back at 35 for the last
    `back_for` seconds; the request rate steady."""
    start = NOW - timedelta(hours=1)

    def series(service: str, metric: str, a: datetime, b: datetime) -> list:
        points = []
        for i in range(0, 3601, 15):
            at = start + timedelta(seconds=i)
            ago = (NOW - at).total_seconds()
            if metric == "cpu":
                value = 90.0 if back_for < ago <= 1200 else 35.0 + (i % 3) * 0.3
            else:
                value = 100.0 + (i % 3)
            points.append((at, value))
        return [(at, v) for at, v in points if a <= at <= b]

    return series


def test_nothing_is_proposed_for_a_symptom_that_has_gone() -> None:
    h = _h("cpu_saturation", "metric", "alert", service="catalog")
    opened = NOW - timedelta(minutes=15)
    gone = gate(h, "scale", corroboration=2, min_persistence=120.0, opened_at=opened,
                now=NOW, series=_cpu(300))
    assert (gone.autonomous, gone.propose) == (False, False)
    assert gone.reasons[0].startswith("its symptom is gone: cpu of catalog is back to 35")
    there = gate(h, "scale", corroboration=2, min_persistence=120.0, opened_at=opened,
                 now=NOW, series=_cpu(0))
    assert there.propose and there.autonomous


def test_a_service_waiting_on_a_loaded_dependency_is_load_too() -> None:
    loaded = _loaded(240)
    steady = _loaded(0)

    def series(service: str, metric: str, a: datetime, b: datetime) -> list:
        return (loaded if service == "cart" else steady)(service, metric, a, b)

    h = _h("slow_dependency", "metric", "alert", service="frontend")
    verdict = gate(h, "failover", corroboration=2, min_persistence=120.0,
                   opened_at=NOW - timedelta(seconds=200), now=NOW, series=series,
                   callees=["cart"])
    assert (verdict.autonomous, verdict.propose) == (False, False)
    assert verdict.reasons[0].startswith("its symptoms come with a load rise on cart")
    # a load cause is named where the load is: a surge on frontend is not read off cart
    surge = _h("traffic_surge", "metric", "alert", service="frontend")
    assert gate(surge, "scale", corroboration=1, min_persistence=120.0,
                opened_at=NOW - timedelta(seconds=200), now=NOW, series=series,
                callees=["cart"]).propose

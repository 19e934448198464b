"""The embedded estate behaves like a real one: symptoms travel up the dependency graph,
remediations have their real consequences, and runs are reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from console.domain import AlertStatus
from console.estate import (
    ACTIONS,
    FAULT_KINDS,
    ActionRefused,
    ScenarioPlayer,
    load_estate_spec,
    load_scenario,
)
from tests.helpers import readme_yaml

METRIC_KEYS = {"request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms", "cpu",
               "memory", "disk", "queue_depth", "saturation", "instances_ready"}


def make_player(tmp_path: Path, timeline: list[dict], *, duration: str = "40m",
                seed: int = 1, baselines: dict | None = None) -> ScenarioPlayer:
    doc = {"name": "t", "estate": "default", "duration": duration, "seed": seed,
           "timeline": timeline, "baselines": baselines or {}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return ScenarioPlayer(load_scenario(path))


def run_until(player: ScenarioPlayer, minutes: float) -> list:
    signals = []
    while player.estate.elapsed < minutes * 60 and not player.finished:
        signals.extend(player.advance(player.scenario.tick).signals)
    return signals


def err(player: ScenarioPlayer, service: str) -> float:
    return player.estate.metrics(service)["error_rate"]


def firing_by_service(signals: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in signals:
        if s.status is AlertStatus.FIRING:
            counts[s.service] = counts.get(s.service, 0) + 1
    return counts


# --- the estate -------------------------------------------------------------------------

def test_default_estate_has_a_real_shape() -> None:
    spec = load_estate_spec()
    assert len(spec.services) >= 12
    kinds = {s.kind for s in spec.services.values()}
    assert {"web", "api", "worker", "database", "cache", "queue"} <= kinds
    edges = [(n, d) for n, s in spec.services.items() for d in s.depends_on]
    assert any(spec.services[d].kind == "database" for _, d in edges)
    assert any(spec.services[d].kind == "cache" for _, d in edges)
    assert any(s.consumes for s in spec.services.values())


def test_every_service_reports_every_metric(tmp_path: Path) -> None:
    player = make_player(tmp_path, [])
    run_until(player, 1)
    for name in player.estate.services:
        assert set(player.estate.metrics(name)) >= METRIC_KEYS
        assert player.estate.history(name, "cpu")


def test_catalog_has_at_least_ten_fault_kinds_and_the_listed_actions() -> None:
    assert len(FAULT_KINDS) >= 10
    assert {"restart", "scale_out", "scale_in", "rollback", "clear_queue", "flush_cache",
            "failover", "toggle_feature_flag", "free_disk"} <= set(ACTIONS)


FAULT_TARGETS = {
    "bad_deploy": ("payments", {}), "config_error": ("checkout", {}),
    "memory_leak": ("recommendations", {"rate_pct_per_min": 4}),
    "cpu_saturation": ("payments", {}), "slow_dependency": ("orders-db", {}),
    "connection_pool_exhaustion": ("inventory", {"rate_per_min": 0.3}),
    "disk_filling": ("search", {"rate_pct_per_hour": 200}),
    "queue_backlog": ("fulfilment-worker", {}), "certificate_expiry": ("auth", {}),
    "cache_stampede": ("product-cache", {}), "network_partition": ("cart", {}),
    "traffic_surge": ("frontend", {}),
}


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
def test_each_fault_kind_raises_alerts_a_clean_run_does_not(tmp_path: Path, kind: str) -> None:
    service, params = FAULT_TARGETS[kind]
    clean = run_until(make_player(tmp_path, [], duration="30m"), 30)
    faulty = run_until(make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": kind,
                                               "service": service, "params": params}],
                                   duration="30m"), 30)
    clean_names = {s.name for s in clean}
    new = {(s.name, s.service) for s in faulty
           if s.status is AlertStatus.FIRING and s.name not in clean_names}
    assert new, f"{kind} produced no alert a clean run does not have"


# --- propagation ------------------------------------------------------------------------

def test_bad_deploy_errors_show_at_the_callers(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "2m", "type": "fault", "kind": "bad_deploy",
                                     "service": "payments", "params": {"error": 0.4}}])
    run_until(player, 1)
    before = {s: err(player, s) for s in ("payments", "checkout", "frontend", "catalog")}
    run_until(player, 8)
    assert err(player, "payments") > 0.3
    assert err(player, "checkout") > before["checkout"] + 0.2
    assert err(player, "frontend") > before["frontend"] + 0.1
    assert err(player, "catalog") < 0.01  # not on the path: untouched


def test_slow_database_is_quiet_while_its_callers_are_loud(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "2m", "type": "fault", "kind": "slow_dependency",
                                     "service": "orders-db", "params": {"latency_ms": 2600}}])
    signals = run_until(player, 20)
    loud = firing_by_service(signals)
    assert loud.get("orders-db", 0) < sum(loud.get(s, 0) for s in ("orders", "checkout",
                                                                     "frontend"))
    assert player.estate.metrics("checkout")["latency_p99_ms"] > 3000


def test_cache_stampede_overloads_the_database_behind_it(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "cache_stampede",
                                     "service": "product-cache"}])
    run_until(player, 0.5)
    db_before = player.estate.metrics("catalog-db")["request_rate"]
    run_until(player, 6)
    assert player.estate.metrics("catalog-db")["request_rate"] > 2.5 * db_before
    assert player.estate.metrics("catalog-db")["saturation"] > 0.9


def test_expired_certificate_fails_callers_and_starves_the_service(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "2m", "type": "fault", "kind": "certificate_expiry",
                                     "service": "auth"}])
    signals = run_until(player, 1)
    assert any(s.name == "CertificateExpiringSoon" and s.service == "auth" for s in signals)
    rate_before = player.estate.metrics("auth")["request_rate"]
    out = []
    while player.estate.elapsed < 8 * 60:
        out.append(player.advance(5.0))
    assert player.estate.metrics("auth")["request_rate"] < rate_before * 0.1
    assert err(player, "frontend") > 0.5
    assert any("certificate" in rec.message for o in out for rec in o.logs
               if rec.service == "frontend")


# --- remediation and its consequences ----------------------------------------------------

def bad_deploy(tmp_path: Path) -> ScenarioPlayer:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "bad_deploy",
                                     "service": "payments", "params": {"version": "v42"}}])
    run_until(player, 5)
    return player


def bad_instances(player: ScenarioPlayer) -> int:
    return sum(1 for i in player.estate.services["payments"].instances if i.version == "v42")


def test_rollback_fixes_a_bad_deploy(tmp_path: Path) -> None:
    player = bad_deploy(tmp_path)
    assert err(player, "payments") > 0.2
    result = player.apply_action("rollback", "payments")
    assert "v41" in result.message
    run_until(player, 10)
    assert bad_instances(player) == 0
    assert err(player, "payments") < 0.02
    (truth,) = player.ground_truth_faults()
    assert truth["fixed_by"] == "rollback"
    assert truth["fixed_at_s"] is not None


def test_restart_does_not_fix_a_bad_deploy(tmp_path: Path) -> None:
    player = bad_deploy(tmp_path)
    result = player.apply_action("restart", "payments")
    assert "no effect" in result.outcomes[0]["effect"]
    run_until(player, 10)
    assert err(player, "payments") > 0.2
    assert player.ground_truth_faults()[0]["fixed_at_s"] is None


def test_scaling_out_a_bad_deploy_spreads_it(tmp_path: Path) -> None:
    player = bad_deploy(tmp_path)
    before = bad_instances(player)
    result = player.apply_action("scale_out", "payments", {"count": 3})
    assert result.outcomes[0]["effect"].startswith("worsened")
    run_until(player, 8)
    assert bad_instances(player) == before + 3
    assert err(player, "payments") > 0.2


def test_restart_only_delays_a_memory_leak(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "memory_leak",
                                     "service": "recommendations",
                                     "params": {"rate_pct_per_min": 2.5}}], duration="60m")
    run_until(player, 15)
    high = player.estate.metrics("recommendations")["memory"]
    player.apply_action("restart", "recommendations")
    run_until(player, 17)
    assert player.estate.metrics("recommendations")["memory"] < high - 20
    run_until(player, 30)
    assert player.estate.metrics("recommendations")["memory"] > high - 5
    assert player.ground_truth_faults()[0]["fixed_at_s"] is None


@pytest.mark.parametrize(("kind", "service", "params", "action", "target", "action_params"), [
    ("disk_filling", "search", {"rate_pct_per_hour": 300}, "free_disk", "search", {}),
    ("cpu_saturation", "payments", {"flag": "dynamic-pricing"}, "toggle_feature_flag",
     "payments", {"flag": "dynamic-pricing", "enabled": False}),
    ("slow_dependency", "orders-db", {}, "failover", "orders-db", {}),
    ("certificate_expiry", "auth", {}, "rotate_certificate", "auth", {}),
    ("queue_backlog", "fulfilment-worker", {}, "restart", "fulfilment-worker", {}),
    ("config_error", "checkout", {}, "rollback", "checkout", {}),
    ("connection_pool_exhaustion", "inventory", {"rate_per_min": 0.3}, "restart",
     "inventory", {}),
    ("cache_stampede", "product-cache", {}, "toggle_feature_flag", "product-cache",
     {"flag": "request-coalescing", "enabled": True}),
])
def test_the_right_action_fixes_the_fault(tmp_path: Path, kind: str, service: str,
                                          params: dict, action: str, target: str,
                                          action_params: dict) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": kind,
                                     "service": service, "params": params}])
    run_until(player, 10)
    player.apply_action(action, target, action_params)
    run_until(player, 11)
    (truth,) = player.ground_truth_faults()
    assert truth["fixed_at_s"] is not None, truth
    assert truth["actions"][-1]["action"] == action


def test_wrong_actions_leave_the_fault_in_place(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "slow_dependency",
                                     "service": "orders-db"}])
    run_until(player, 6)
    player.apply_action("restart", "checkout")
    player.apply_action("scale_out", "orders")
    player.apply_action("flush_cache", "product-cache")
    run_until(player, 12)
    assert player.ground_truth_faults()[0]["fixed_at_s"] is None
    assert player.estate.metrics("checkout")["latency_p99_ms"] > 3000


def test_flushing_a_stampeding_cache_makes_it_worse(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "cache_stampede",
                                     "service": "product-cache", "params": {"hit_ratio": 0.5}}])
    run_until(player, 5)
    db_load = player.estate.metrics("catalog-db")["request_rate"]
    result = player.apply_action("flush_cache", "product-cache")
    assert result.outcomes[0]["effect"].startswith("worsened")
    run_until(player, 5.5)
    assert player.estate.metrics("catalog-db")["request_rate"] > db_load * 1.3


def test_clearing_a_queue_drops_messages_but_the_backlog_returns(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "queue_backlog",
                                     "service": "fulfilment-worker"}])
    run_until(player, 15)
    depth = player.estate.metrics("order-queue")["queue_depth"]
    assert depth > 5000
    result = player.apply_action("clear_queue", "order-queue")
    assert f"purged {int(depth)}" in result.message or "purged" in result.message
    run_until(player, 25)
    assert player.estate.metrics("order-queue")["queue_depth"] > 5000
    assert player.ground_truth_faults()[0]["fixed_at_s"] is None


def test_refused_actions_change_nothing(tmp_path: Path) -> None:
    player = make_player(tmp_path, [])
    run_until(player, 1)
    before = len(player.estate.services["cart"].instances)
    cases = [("clear_queue", "cart", {}), ("scale_out", "cart", {"count": 0}),
             ("scale_in", "cart", {"count": 99}), ("rollback", "cart", {}),
             ("toggle_feature_flag", "cart", {"flag": "x"}), ("reboot", "cart", {}),
             ("restart", "no-such-service", {}), ("restart", "cart", {"instance": "cart-99"})]
    for action, service, params in cases:
        with pytest.raises(ActionRefused):
            player.apply_action(action, service, params)
    assert len(player.estate.services["cart"].instances) == before
    assert player.action_log == []


def test_scale_in_and_out_change_capacity(tmp_path: Path) -> None:
    player = make_player(tmp_path, [])
    run_until(player, 1)
    player.apply_action("scale_out", "search", {"count": 3})
    out = player.advance(90.0)
    assert any(c.kind == "scale" for c in out.changes)
    assert player.estate.metrics("search")["instances_ready"] == 6
    sat6 = player.estate.metrics("search")["saturation"]
    player.apply_action("scale_in", "search", {"count": 4})
    player.advance(10.0)
    assert player.estate.metrics("search")["saturation"] > sat6 * 2


# --- reproducibility and alert semantics --------------------------------------------------

def test_same_seed_gives_the_same_run_whatever_the_step_sizes() -> None:
    a = ScenarioPlayer(load_scenario("bad-deploy"), seed=9)
    b = ScenarioPlayer(load_scenario("bad-deploy"), seed=9)
    sa, sb = [], []
    while not a.finished:
        sa.extend(s.fingerprint + s.status for s in a.advance(15.0).signals)
    while not b.finished:
        sb.extend(s.fingerprint + s.status for s in b.advance(2.5).signals)
    assert sa == sb
    assert a.estate.metrics("frontend") == b.estate.metrics("frontend")


def test_alerts_wait_for_their_for_duration_and_resolve(tmp_path: Path) -> None:
    player = make_player(tmp_path, [{"at": "1m", "type": "fault", "kind": "network_partition",
                                     "service": "cart",
                                     "params": {"zone": "a", "duration": "4m"}}])
    down: dict[str, list] = {}
    while player.estate.elapsed < 10 * 60:
        for s in player.advance(5.0).signals:
            if s.name == "InstanceDown":
                down.setdefault(s.status.value, []).append(player.estate.elapsed)
    assert down["firing"]
    assert min(down["firing"]) >= 60 + 60  # fault at 1m, for: 1m
    assert down["resolved"]
    assert min(down["resolved"]) >= 5 * 60
    assert len(down["firing"]) == len(down["resolved"])


def test_storm_scenario_is_a_storm() -> None:
    player = ScenarioPlayer(load_scenario("storm"))
    firing = 0
    while not player.finished:
        firing += sum(1 for s in player.advance(60.0).signals
                      if s.status is AlertStatus.FIRING)
    assert firing > 5000
    assert len(player.ground_truth_faults()) == 1


def test_the_readme_scenario_example_is_valid(tmp_path: Path) -> None:
    block = readme_yaml("name: bad-deploy")
    path = tmp_path / "example.yaml"
    path.write_text(block)
    scenario = load_scenario(path)
    assert [e.type for e in scenario.timeline] == ["change", "fault", "load", "action"]
    player = ScenarioPlayer(scenario)
    while not player.finished:
        player.advance(60.0)
    (truth,) = player.ground_truth_faults()
    assert truth["fixed_by"] == "rollback"


@pytest.mark.parametrize(("body", "line", "field"), [
    ("name: x\nduration: 10m\ntimeline:\n  - {at: 1m, type: fault, kind: bad_deploy,\n"
     "     service: paymentz}\n", 5, "timeline.0.service"),
    ("name: x\nduration: 10m\ntimeline:\n  - at: 2m\n    type: fault\n    kind: bad_deploy\n"
     "    service: payments\n    params: {error: 3}\n", 4, "params.error"),
    ("name: x\nduration: ten minutes\n", 2, "duration"),
    ("name: x\nduration: 10m\nbaselines:\n  cart: {instances: 0}\n", 4,
     "baselines.cart.instances"),
    ("name: x\nduration: 10m\ncolour: red\n", 3, "colour"),
    ("name: x\nduration: 10m\ntimeline:\n  - {at: 20m, type: load, service: cart, factor: 2}\n",
     3, "after the end"),
    ("name: x\nduration: 10m\ntimeline:\n  - {at: 1m, type: action, kind: reboot, "
     "service: cart}\n", 4, "timeline.0.kind"),
    ("name: x\nduration: 10m\ntimeline: [\n", 4, "not valid YAML"),
    ("name: x\nduration: 10m\ntimeline:\n  - {at: 1m, type: action, kind: scale_out, "
     "service: cart, params: {count: 500}}\n", 4, "params.count"),
])
def test_bad_scenario_files_name_file_line_and_field(tmp_path: Path, body: str, line: int,
                                                     field: str) -> None:
    from console.estate import ScenarioError

    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert field in message

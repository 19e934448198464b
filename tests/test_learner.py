"""The learner: outcomes become success statistics per (runbook, fault class) that move
the next recommendation's confidence, repeats are tracked and fixes that do not stick
are flagged, and trends warn before any alert rule fires."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.learner import Learner, fit, note_diagnosis
from console.domain import AlertStatus, Signal, SignalKind
from tests.test_recommender import World, hyp, make_world


def _first(signals: list[Signal], name: str) -> Signal:
    return next(s for s in signals if s.name == name and s.status is AlertStatus.FIRING)


def _play(w: World, minutes: float, *, step: float = 60.0) -> list[Signal]:
    """Step the estate and collect the learner's trend signals as they come."""
    out: list[Signal] = []
    end = w.driver.elapsed + minutes * 60
    while w.driver.elapsed < end and not w.driver.finished:
        w.driver.step(step)
        out += w.learner.trends(w.now)
    return out


def test_a_straight_line_fits_exactly() -> None:
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    slope, r2 = fit([(t0 + timedelta(minutes=m), 50 + 0.5 * m) for m in range(20)])
    assert slope == pytest.approx(0.5 / 60)
    assert r2 == pytest.approx(1.0)
    assert fit([(t0, 1.0), (t0, 2.0)]) == (0.0, 0.0)


# --- trends ------------------------------------------------------------------------------

def test_a_filling_disk_is_warned_about_before_its_alert_fires(db_url: str) -> None:
    w = make_world(db_url, "disk-filling", warmup=0)
    try:
        warnings = _play(w, 45)
        warning = _first(warnings, "DiskWillFill")
        alert = _first(w.runtime.service.recent_signals(5000), "DiskSpaceLow")
        assert warning.at + timedelta(minutes=15) < alert.at
        assert (warning.source, warning.kind, warning.severity.value, warning.service) == \
            ("learner", SignalKind.ALERT, "warning", "search")
        assert dict(warning.labels) == {"alertname": "DiskWillFill", "service": "search",
                                        "metric": "disk", "severity": "warning"}
        projected = datetime.fromisoformat(warning.annotations["projected_at"])
        assert warning.at < projected <= warning.at + timedelta(hours=2)
        assert "projected to pass 90" in warning.annotations["summary"]
        # once per (service, metric) until it recovers
        assert [s.name for s in warnings if s.status is AlertStatus.FIRING] == ["DiskWillFill"]
        assert "learner.early_warning" in [e.action for e in w.runtime.service.audit_entries()]
    finally:
        w.runtime.close()


def test_an_early_warning_becomes_an_incident_and_clears_after_the_fix(db_url: str) -> None:
    w = make_world(db_url, "disk-filling", warmup=0)
    try:
        warnings = _play(w, 20)
        assert [s.name for s in warnings] == ["DiskWillFill"]
        # the composition root stores and announces it like any signal
        w.runtime.service.store(warnings, [])
        w.runtime.receive(warnings, [])
        [incident] = w.runtime.service.incidents()
        assert incident.services == ("search",)
        assert not any(s.name == "DiskSpaceLow" for s in w.runtime.service.recent_signals())
        [rec_id] = w.recommender.recommend(incident.id, [hyp("search", "disk_filling", 0.8)])
        rec = w.rec(rec_id)
        w.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
        after = _play(w, 30)
        cleared = [s for s in after if s.name == "DiskWillFill"]
        assert [s.status for s in cleared] == [AlertStatus.RESOLVED]
        assert cleared[0].fingerprint == warnings[0].fingerprint
    finally:
        w.runtime.close()


def test_a_leak_is_warned_about_before_high_memory_fires(db_url: str) -> None:
    w = make_world(db_url, "memory-leak", warmup=0)
    try:
        warnings = _play(w, 30)
        warning = _first(warnings, "MemoryWillExhaust")
        alert = _first(w.runtime.service.recent_signals(5000), "HighMemory")
        assert warning.service == alert.service == "recommendations"
        assert warning.at < alert.at
    finally:
        w.runtime.close()


def test_a_quiet_day_gives_no_early_warning(db_url: str) -> None:
    w = make_world(db_url, "quiet-day", warmup=0)
    try:
        assert _play(w, 120) == []
        assert w.driver.finished
    finally:
        w.runtime.close()


def test_no_metrics_no_trends(world: World) -> None:
    assert Learner(world.runtime.service).trends(world.now) == []


# --- success statistics ---------------------------------------------------------------------

@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url, "quiet-day")
    yield w
    w.runtime.close()


def test_a_success_raises_the_next_confidence(db_url: str) -> None:
    w = make_world(db_url, "disk-filling", warmup=20 * 60.0)
    try:
        w.set_policy(levels={"disk_hygiene": 3})
        w.runtime.service.set_autonomy_ceiling(3, as_user="alice")
        h = hyp("search", "disk_filling", 0.9, 3)
        [first] = w.recommender.recommend(w.incident("search"), [h])
        assert w.rec(first).confidence == pytest.approx(0.45)
        w.driver.step(15)
        assert [e.state for e in w.engine.executions()] == ["succeeded"]
        assert w.learner.success_rate("free-disk", "disk_filling") == (1, 0)
        assert w.learner.success_rate("free-disk", "memory_leak") == (0, 0)
        [second] = w.recommender.recommend(w.incident("search"), [h])
        assert w.rec(second).confidence == pytest.approx(0.9 * 2 / 3, abs=1e-3)
        assert "Beta(2, 1): 1 succeeded, 0 failed before" in w.rec(second).explanation
    finally:
        w.runtime.close()


def test_a_failed_run_lowers_the_next_confidence(world: World) -> None:
    h = hyp("payments", "bad_deploy", 0.8, 2)
    [rec_id] = world.recommender.recommend(world.incident("payments"), [h])
    rec = world.rec(rec_id)
    out = world.engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
    execution = world.engine.execution(out["execution"])
    assert execution is not None
    assert execution.state == "failed"  # payments has no earlier version to go back to
    assert world.learner.success_rate("rollback-deploy", "bad_deploy") == (0, 1)
    [again] = world.recommender.recommend(world.incident("payments"), [h])
    assert world.rec(again).confidence == pytest.approx(0.8 / 3, abs=1e-3)


# --- repeats and fixes that do not stick --------------------------------------------------------

def test_a_restart_on_a_memory_leak_is_flagged_as_not_sticking(db_url: str) -> None:
    w = make_world(db_url, "restart-only-delays", warmup=0)
    try:
        while not w.runtime.service.incidents():
            w.driver.step(30)
        [incident] = w.runtime.service.incidents()
        leak = hyp("recommendations", "memory_leak", 0.7, 2)
        # someone chose the restart (the recommender itself prefers the rollback)
        rec_id = w.engine.propose("restart-service", {"service": "recommendations"},
                                  requester="agent:recommender", confidence=0.35,
                                  incident_id=incident.id)
        note_diagnosis(w.runtime.service, rec_id, leak, incident.id)
        rec = w.rec(rec_id)
        w.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
        w.driver.step(30)
        [restart] = w.engine.executions()
        assert restart.state == "succeeded"
        assert w.learner.success_rate("restart-service", "memory_leak") == (1, 0)
        assert w.learner.not_sticking() == []
        while len(w.runtime.service.incidents()) < 2:  # the leak comes back
            w.driver.step(30)
        [flag] = w.learner.not_sticking()
        assert (flag.execution_id, flag.runbook_id, flag.fault_class, flag.incident_id) == \
            (restart.id, "restart-service", "memory_leak", incident.id)
        assert "after restart-service succeeded" in flag.reason  # its alerts, or a repeat
        assert w.learner.success_rate("restart-service", "memory_leak") == (0, 1)
        assert [n.execution_id for n in w.learner.review()] == [restart.id]
        assert w.learner.review() == []  # flagged once
        audit = [e for e in w.runtime.service.audit_entries()
                 if e.action == "learner.fix_not_sticking"]
        assert [e.target for e in audit] == [f"execution:{restart.id}"]
        [repeat] = w.learner.repeats()
        assert repeat.previous_id == incident.id
        assert repeat.incident_id != incident.id
        assert timedelta(0) < repeat.gap <= timedelta(hours=24)
        assert repeat.count == 1
        # the next memory-leak recommendation says why not the restart, with its record
        [again] = w.recommender.recommend(repeat.incident_id, [leak])
        explanation = w.rec(again).explanation
        assert w.rec(again).runbook_id == "rollback-deploy"
        assert "Not restart-service: a restart only delays a leak" in explanation
        assert "failed or did not stick 1 time(s)" in explanation
    finally:
        w.runtime.close()

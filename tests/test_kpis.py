"""Outcome KPIs from a real temporary database: a known history gives known numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from console.bus import EventBus
from console.clock import SimClock
from console.kpis import Kpis
from console.service import WatchfloorService
from console.storage.db import Database
from console.storage.models import (
    ApprovalRow,
    EvalRunRow,
    ExecutionRow,
    HypothesisRow,
    IncidentRow,
    RecommendationRow,
    SignalRow,
    TimelineEventRow,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


H = 3600


@pytest.fixture
def service(db_url: str) -> Iterator[WatchfloorService]:
    db = Database(db_url)
    yield WatchfloorService(db, EventBus(), SimClock(NOW))
    db.dispose()


def incident(session, inc_id, opened, resolved, services, fingerprints, alerts):  # type: ignore[no-untyped-def]
    session.add(IncidentRow(id=inc_id, title=f"incident {inc_id}", severity="critical",
                            state="resolved" if resolved else "open", services=services,
                            opened_at=opened, resolved_at=resolved))
    session.flush()
    for n in range(alerts):
        decision = "open" if n == 0 else "join"
        session.add(TimelineEventRow(incident_id=inc_id, at=opened, kind="agent",
                                     summary=f"{decision}: {services[0]}",
                                     ref=fingerprints[n % len(fingerprints)],
                                     data={"agent": "correlator", "decision": decision}))
    # a note that places no alert does not count as noise
    session.add(TimelineEventRow(incident_id=inc_id, at=opened, kind="agent",
                                 summary="resolve", ref=None, data={"decision": "resolve"}))


def signal(session, service_name, name, fingerprint, when):  # type: ignore[no-untyped-def]
    session.add(SignalRow(source="test", kind="alert", name=name, service=service_name,
                          severity="critical", status="firing", fingerprint=fingerprint,
                          at=when, labels={}, annotations={}))


def hypothesis(session, inc_id, when):  # type: ignore[no-untyped-def]
    session.add(HypothesisRow(incident_id=inc_id, agent="investigator", service="payments",
                              fault_class="bad_deploy", confidence=0.8, rank=1,
                              state="live", created_at=when, updated_at=when))


def recommendation(session, rec_id, inc_id, created, *, state="executed",  # type: ignore[no-untyped-def]
                   autonomous=False, expires=None):
    session.add(RecommendationRow(id=rec_id, incident_id=inc_id, runbook_id="rollback-deploy",
                                  action="deploy_rollback", target="payments", params={},
                                  preview={}, preview_hash="h", confidence=0.8,
                                  explanation="", state=state, created_at=created,
                                  expires_at=expires, requester="agent:recommender",
                                  action_class="deploy_rollback", risk="high",
                                  autonomous=autonomous))


def execution(session, exec_id, rec_id, started, state, autonomous):  # type: ignore[no-untyped-def]
    session.add(ExecutionRow(id=exec_id, recommendation_id=rec_id, idempotency_key=f"k{exec_id}",
                             action="deploy_rollback", target="payments", params={},
                             initiator="agent:x", autonomous=autonomous, state=state,
                             result={}, started_at=started, finished_at=started, plan={}))


@pytest.fixture
def history(service: WatchfloorService) -> WatchfloorService:
    with service.db.sessions() as s:
        # long before the window: read only to judge repeats, never counted
        incident(s, 1, NOW - timedelta(hours=26), NOW - timedelta(hours=25), ["db"],
                 ["fpDB"], 2)
        # 01:00 payments + checkout, 4 alerts, detected 120 s after the first alert,
        # diagnosed in 60 s, fixed autonomously in 30 min
        incident(s, 2, at(1 * H), at(1 * H + 1800), ["payments", "checkout"],
                 ["fpA", "fpB"], 4)
        signal(s, "payments", "HighErrorRate", "fpA", at(1 * H - 120))
        signal(s, "checkout", "HighLatency", "fpB", at(1 * H - 60))
        signal(s, "payments", "HighErrorRate", "fpA", at(1 * H - 3 * H))  # too old to count
        hypothesis(s, 2, at(1 * H + 60))
        hypothesis(s, 2, at(1 * H + 500))  # a later re-ranking: the first one counts
        recommendation(s, 10, 2, at(1 * H + 100), autonomous=True)
        s.flush()
        execution(s, 100, 10, at(1 * H + 600), "succeeded", True)
        # 03:00 the same problem again, 90 min after it resolved: a repeat; 2 alerts,
        # detected on its first alert, diagnosed in 120 s, a person's fix and an
        # autonomous one rolled back: not auto-resolved
        incident(s, 3, at(3 * H), at(3 * H + 600), ["payments", "checkout"],
                 ["fpA", "fpB"], 2)
        signal(s, "payments", "HighErrorRate", "fpA", at(3 * H))
        hypothesis(s, 3, at(3 * H + 120))
        recommendation(s, 11, 3, at(3 * H + 60))
        recommendation(s, 12, 3, at(3 * H + 70), autonomous=True)
        s.flush()
        s.add(ApprovalRow(recommendation_id=11, user="carol", decision="approved",
                          preview_hash="h", at=at(3 * H + 360), role="approver"))
        s.add(ApprovalRow(recommendation_id=11, user="dave", decision="approved",
                          preview_hash="h", at=at(3 * H + 900), role="approver"))
        execution(s, 101, 11, at(3 * H + 400), "succeeded", False)
        execution(s, 102, 12, at(3 * H + 500), "rolled_back", True)
        # 03:30 search, still open, 6 alerts, first alert 5 min before it opened
        incident(s, 4, at(3 * H + 1800), None, ["search"], ["fpS"], 6)
        signal(s, "search", "DiskFilling", "fpS", at(3 * H + 1500))
        # waiting on a person: one for 15 minutes, one expired (not waiting any more)
        recommendation(s, 13, 4, NOW - timedelta(minutes=15), state="pending",
                       expires=NOW + timedelta(minutes=45))
        recommendation(s, 14, 4, NOW - timedelta(hours=2), state="pending",
                       expires=NOW - timedelta(hours=1))
        s.add(EvalRunRow(at=NOW - timedelta(hours=1),
                         scope={"scenarios": ["bad-deploy", "disk-fill"], "seeds": {}},
                         scores={"accuracy": {"top1": 0.9, "top3": 1.0},
                                 "auto_resolution": {"rate": 0.5},
                                 "rollback": {"rate": 0.1}}, cases=[]))
        s.commit()
    return service


def test_totals_over_the_window(history: WatchfloorService) -> None:
    report = Kpis(history).report(timedelta(hours=24), "hour")
    t = report.totals
    assert report.now == NOW
    assert report.since == NOW - timedelta(hours=24)
    assert (t.incidents, t.resolved) == (3, 2)
    assert t.mttr_s == (1800 + 600) / 2
    assert t.time_to_detect_s == (120 + 0 + 300) / 3
    assert t.time_to_diagnose_s == (60 + 120) / 2
    assert (t.auto_resolved, t.auto_resolution_rate) == (1, 0.5)
    assert (t.executions, t.rollbacks, t.rollback_rate) == (3, 1, 0.3333)
    assert (t.alerts, t.signals_per_incident, t.noise_reduction) == (12, 4.0, 0.75)
    assert (t.repeats, t.repeat_rate) == (1, 0.3333)
    assert t.approval_wait_s == 300  # the first decision counts, not the second
    assert report.approvals_waiting == 1
    assert report.waiting[0].recommendation_id == 13
    assert report.oldest_wait_s == 15 * 60
    assert report.eval is not None
    assert report.eval.scenarios == ("bad-deploy", "disk-fill")
    assert report.eval.figure("accuracy", "top1") == 0.9
    assert report.eval.figure("nothing", "here") is None


def test_hourly_buckets(history: WatchfloorService) -> None:
    report = Kpis(history).report(timedelta(hours=24), "hour")
    assert len(report.buckets) == 25  # from the hour of `since` to the hour of now
    assert report.buckets[0].start == datetime(2024, 4, 30, 10, tzinfo=UTC)
    by_hour = {b.start: b.values for b in report.buckets}
    one, three = by_hour[at(1 * H)], by_hour[at(3 * H)]
    assert (one.incidents, one.mttr_s, one.auto_resolution_rate) == (1, 1800, 1.0)
    assert (one.executions, one.rollback_rate, one.repeat_rate) == (1, 0.0, 0.0)
    assert (three.incidents, three.resolved, three.mttr_s) == (2, 1, 600)
    assert (three.repeats, three.repeat_rate, three.signals_per_incident) == (1, 0.5, 4.0)
    assert (three.rollbacks, three.rollback_rate, three.approval_wait_s) == (1, 0.5, 300)
    quiet = by_hour[at(5 * H)]
    assert quiet.incidents == 0
    assert quiet.mttr_s is None
    assert quiet.rollback_rate is None
    times, values = report.series("incidents")
    assert times[0] == report.buckets[0].start.timestamp()
    assert sum(v or 0 for v in values) == 3


def test_daily_buckets_and_a_short_window(history: WatchfloorService) -> None:
    daily = Kpis(history).report(timedelta(days=2), "day")
    assert [b.start for b in daily.buckets] == [T0 - timedelta(days=2), T0 - timedelta(days=1),
                                                T0]
    assert daily.buckets[-1].values.incidents == 3
    assert daily.buckets[1].values.incidents == 1  # the old one, now inside the window
    short = Kpis(history).report(timedelta(hours=2), 1800)
    assert short.totals.incidents == 0
    assert short.totals.mttr_s is None
    assert short.approvals_waiting == 1  # waiting now, whatever the window
    with pytest.raises(ValueError, match="too many buckets"):
        Kpis(history).report(timedelta(days=30), 60)


def test_an_empty_database_has_no_numbers(service: WatchfloorService) -> None:
    report = Kpis(service).report()
    assert report.totals.incidents == 0
    assert report.totals.mttr_s is None
    assert report.totals.auto_resolution_rate is None
    assert report.eval is None
    assert report.approvals_waiting == 0

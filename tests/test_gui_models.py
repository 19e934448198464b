"""The Qt models and the bus bridge: valid models, incremental updates, bounded growth."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.estate import load_estate_spec
from console.events import EstateSnapshot, ScenarioFinished, SignalsReceived
from widgets.bridge import BusBridge
from widgets.models import AuditTableModel, SignalTableModel
from widgets.service_model import FiringAlerts, Health, HealthThresholds, ServiceTableModel

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

BASE = {"request_rate": 120.0, "error_rate": 0.001, "latency_p50_ms": 20.0,
        "latency_p99_ms": 90.0, "cpu": 30.0, "memory": 50.0, "disk": 40.0,
        "queue_depth": 0.0, "saturation": 0.2, "instances_ready": 3.0}


def make_signal(runtime: Any, service: str = "payments", *, name: str = "HighErrorRate",
                severity: Severity = Severity.CRITICAL, status: AlertStatus = AlertStatus.FIRING,
                seconds: float = 0.0, instance: str = "i-1") -> Signal:
    return Signal(source="test", kind=SignalKind.ALERT, name=name, service=service,
                  severity=severity, status=status,
                  at=runtime.clock.now() + timedelta(seconds=seconds),
                  labels={"service": service, "instance": instance},
                  annotations={"summary": f"{name} on {service}"})


class Recorder:
    """Counts a model's structural signals."""

    def __init__(self, model: Any) -> None:
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.changed: list[tuple[int, int]] = []
        self.resets = 0
        model.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))
        model.dataChanged.connect(lambda tl, br, _r=(): self.changed.append((tl.row(), br.row())))
        model.modelReset.connect(self._reset)

    def _reset(self) -> None:
        self.resets += 1


def test_bridge_reemits_bus_events_and_unsubscribes_on_close(runtime: Any, qtbot: Any) -> None:
    bridge = BusBridge(runtime.bus)
    seen: list[object] = []
    bridge.signalsReceived.connect(seen.append)
    bridge.scenarioFinished.connect(seen.append)
    event = SignalsReceived((make_signal(runtime),))
    runtime.bus.publish(event)
    runtime.bus.publish(ScenarioFinished("bad-deploy", runtime.clock.now()))
    assert seen[0] is event
    assert isinstance(seen[1], ScenarioFinished)
    bridge.close()
    assert bridge.closed
    runtime.bus.publish(event)
    assert len(seen) == 2
    assert runtime.bus.failures == []


def test_signal_model_is_valid_and_grows_incrementally(runtime: Any, qtmodeltester: Any) -> None:
    runtime.service.ingest([make_signal(runtime, "cart", severity=Severity.WARNING)])
    bridge = BusBridge(runtime.bus)
    model = SignalTableModel(runtime.service.recent_signals(), bridge=bridge)
    qtmodeltester.check(model)
    rec = Recorder(model)
    batch = [make_signal(runtime, "payments", seconds=1),
             make_signal(runtime, "frontend", severity=Severity.INFO, seconds=2),
             make_signal(runtime, "cart", status=AlertStatus.RESOLVED, seconds=3)]
    runtime.service.ingest(batch)
    assert rec.inserted == [(0, 2)]
    assert rec.resets == 0
    assert model.rowCount() == 4
    # Newest on top: the last signal of the batch is row 0.
    assert model.index(0, SignalTableModel.SERVICE).data() == "cart"
    assert model.index(0, SignalTableModel.STATUS).data() == "resolved"
    assert model.index(2, SignalTableModel.SEVERITY).data() == "CRITICAL"
    assert model.index(2, SignalTableModel.SUMMARY).data() == "HighErrorRate on payments"
    assert model.index(2, 0).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert model.index(1, 0).data(Qt.ItemDataRole.BackgroundRole) is None
    bridge.close()


def test_signal_model_drops_the_oldest_rows_beyond_capacity(runtime: Any,
                                                            qtmodeltester: Any) -> None:
    model = SignalTableModel(capacity=5)
    qtmodeltester.check(model)
    rec = Recorder(model)
    model.add_signals([make_signal(runtime, f"svc-{i}", seconds=i) for i in range(4)])
    model.add_signals([make_signal(runtime, f"svc-{i}", seconds=i) for i in range(4, 7)])
    assert model.rowCount() == 5
    assert rec.removed == [(2, 3)]  # the two oldest, at the bottom
    assert rec.resets == 0
    services = [model.index(r, SignalTableModel.SERVICE).data() for r in range(5)]
    assert services == ["svc-6", "svc-5", "svc-4", "svc-3", "svc-2"]
    # A batch larger than the whole capacity keeps only its newest rows.
    model.add_signals([make_signal(runtime, f"big-{i}", seconds=10 + i) for i in range(9)])
    assert [model.index(r, SignalTableModel.SERVICE).data() for r in range(5)] == [
        "big-8", "big-7", "big-6", "big-5", "big-4"]


def test_service_model_updates_changed_rows_only(runtime: Any, qtmodeltester: Any) -> None:
    bridge = BusBridge(runtime.bus)
    model = ServiceTableModel(bridge=bridge)
    qtmodeltester.check(model)
    rec = Recorder(model)
    now = runtime.clock.now()
    runtime.bus.publish(EstateSnapshot(now, {"frontend": BASE, "payments": BASE,
                                             "orders-db": BASE}))
    assert rec.inserted == [(0, 2)]
    assert model.rowCount() == 3
    assert model.index(1, ServiceTableModel.HEALTH).data() == "\u25cf ok"
    slow = dict(BASE, error_rate=0.03, latency_p99_ms=1800.0)
    runtime.bus.publish(EstateSnapshot(now, {"frontend": BASE, "payments": slow,
                                             "orders-db": BASE}))
    assert rec.changed == [(1, 1)]  # only the row whose values changed
    assert rec.resets == 0
    assert model.health_of("payments") is Health.DEGRADED
    assert model.index(1, ServiceTableModel.ERRORS).data() == "3.00"
    assert model.index(1, ServiceTableModel.P99).data() == "1,800"
    assert model.index(1, ServiceTableModel.SAT).data() == "20"
    assert model.index(1, ServiceTableModel.READY).data() == "3"
    assert model.index(1, ServiceTableModel.HEALTH).data(Qt.ItemDataRole.ForegroundRole) \
        is not None
    down = dict(BASE, instances_ready=0.0)
    runtime.bus.publish(EstateSnapshot(now, {"orders-db": down, "search": BASE}))
    assert model.health_of("orders-db") is Health.DOWN
    assert rec.inserted[-1] == (3, 3)
    assert rec.changed[-1] == (2, 2)
    runtime.bus.publish(EstateSnapshot(now, {"orders-db": down, "search": BASE}))
    assert len(rec.changed) == 2  # nothing new to show
    # Several rows changed by one snapshot: one dataChanged over them, not one per row.
    runtime.bus.publish(EstateSnapshot(now, {"frontend": slow, "payments": BASE,
                                             "orders-db": down, "search": slow}))
    assert rec.changed[2:] == [(0, 3)]
    assert model.health_of("frontend") is Health.DEGRADED
    assert model.health_of("payments") is Health.OK
    bridge.close()


def test_service_health_agrees_with_the_alerts_firing_now(runtime: Any,
                                                          qtmodeltester: Any) -> None:
    """Metrics can look fine while an alert fires on something no column shows (a
    certificate, a queue, one instance): the row must not say ok then."""
    bridge = BusBridge(runtime.bus)
    earlier = make_signal(runtime, "search", name="DiskSpaceLow",
                          severity=Severity.WARNING, instance="search-0")
    model = ServiceTableModel([earlier], bridge=bridge)
    qtmodeltester.check(model)
    runtime.bus.publish(EstateSnapshot(runtime.clock.now(), {"payments": BASE, "search": BASE}))
    assert model.health_of("payments") is Health.OK
    assert model.health_of("search") is Health.DEGRADED  # from the signals it started with
    rec = Recorder(model)
    cert = make_signal(runtime, "payments", name="CertificateExpiringSoon",
                       severity=Severity.WARNING, seconds=1)
    runtime.service.ingest([cert])
    assert model.health_of("payments") is Health.DEGRADED
    assert rec.changed == [(0, 0)]
    assert "CertificateExpiringSoon" in model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    down = make_signal(runtime, "payments", name="InstanceDown", seconds=2)
    runtime.service.ingest([down])
    assert model.health_of("payments") is Health.CRITICAL
    assert model.index(0, ServiceTableModel.HEALTH).data() == "\u25cf critical"
    runtime.service.ingest([replace(down, status=AlertStatus.RESOLVED,
                                     at=down.at + timedelta(seconds=60)),
                            replace(cert, status=AlertStatus.RESOLVED,
                                    at=cert.at + timedelta(seconds=60))])
    assert model.health_of("payments") is Health.OK
    assert rec.resets == 0
    bridge.close()


def test_health_thresholds() -> None:
    t = HealthThresholds()
    assert t.health(BASE) is Health.OK
    assert t.health(dict(BASE, error_rate=0.03)) is Health.DEGRADED
    assert t.health(dict(BASE, latency_p99_ms=2500)) is Health.DEGRADED
    assert t.health(dict(BASE, error_rate=0.3)) is Health.CRITICAL
    assert t.health(dict(BASE, latency_p99_ms=9000)) is Health.CRITICAL
    assert t.health(dict(BASE, instances_ready=0)) is Health.DOWN
    assert t.health({}) is Health.OK


def test_error_thresholds_are_those_of_the_shipped_alert_rules() -> None:
    """The table turns amber and red where the estate's own alerts fire."""
    rules = {r.alert: r for r in load_estate_spec().alert_rules}
    t = HealthThresholds()
    assert (rules["ElevatedErrorRate"].metric, rules["ElevatedErrorRate"].severity) == (
        "error_rate", "warning")
    assert rules["ElevatedErrorRate"].threshold == pytest.approx(t.error_degraded)
    assert (rules["HighErrorRate"].metric, rules["HighErrorRate"].severity) == (
        "error_rate", "critical")
    assert rules["HighErrorRate"].threshold == pytest.approx(t.error_critical)


def test_firing_alerts_keep_the_latest_state_of_each_fingerprint(runtime: Any) -> None:
    a = make_signal(runtime, "cart", name="HighCPU", severity=Severity.WARNING)
    b = make_signal(runtime, "cart", name="InstanceDown", instance="i-2")
    alerts = FiringAlerts([a])
    assert alerts.apply([b]) == {"cart"}
    assert [s.name for s in alerts.of("cart")] == ["InstanceDown", "HighCPU"]  # worst first
    assert alerts.health("cart") is Health.CRITICAL
    assert alerts.apply([replace(b, status=AlertStatus.RESOLVED)]) == {"cart"}
    assert alerts.health("cart") is Health.DEGRADED
    assert len(alerts) == 1
    log = replace(a, kind=SignalKind.LOG, name="log line", fingerprint="")
    assert alerts.apply([log]) == set()  # a log line is not an alert


def test_signal_rows_stop_being_live_when_their_alert_resolves(runtime: Any,
                                                               qtmodeltester: Any) -> None:
    bridge = BusBridge(runtime.bus)
    first = make_signal(runtime, "payments")
    other = make_signal(runtime, "cart", name="HighLatency", severity=Severity.WARNING,
                        seconds=1)
    model = SignalTableModel([first], bridge=bridge)
    qtmodeltester.check(model)
    assert model.is_live(0)
    assert model.live_count == 1
    rec = Recorder(model)
    runtime.service.ingest([other])
    resolved = replace(first, status=AlertStatus.RESOLVED, at=first.at + timedelta(minutes=3))
    runtime.service.ingest([resolved])
    # Rows, newest first: the resolution, the cart alert, the payments alert it ended.
    assert [model.signal_at(r) for r in range(3)] == [resolved, other, first]
    assert rec.changed == [(2, 2)]  # the old firing row, which is history now
    assert rec.resets == 0
    assert [model.is_live(r) for r in range(3)] == [False, True, False]
    assert model.live_count == 1
    assert model.index(2, SignalTableModel.STATUS).data() == "was firing"
    assert model.index(2, 0).data(Qt.ItemDataRole.BackgroundRole) is None  # no red tint
    assert model.index(2, 0).data(Qt.ItemDataRole.ForegroundRole) == model.palette.dimmed
    assert model.index(1, SignalTableModel.STATUS).data() == "firing"
    assert model.index(0, SignalTableModel.STATUS).data() == "resolved"
    refired = replace(first, at=first.at + timedelta(minutes=9))
    model.add_signals([refired])
    assert model.is_live(0)
    assert not model.is_live(3)
    assert model.live_count == 2
    bridge.close()


def test_alerts_resolving_together_make_one_change(runtime: Any, qtmodeltester: Any) -> None:
    model = SignalTableModel()
    qtmodeltester.check(model)
    fired = [make_signal(runtime, f"svc-{i}", seconds=i) for i in range(3)]
    model.add_signals([make_signal(runtime, "cart", name="Other"), *fired])
    rec = Recorder(model)
    model.add_signals([replace(s, status=AlertStatus.RESOLVED) for s in fired])
    assert rec.changed == [(3, 5)]  # one range over the three rows that ended
    assert [model.is_live(r) for r in range(7)] == [False] * 6 + [True]


def test_liveness_survives_rows_falling_off_the_bottom(runtime: Any,
                                                       qtmodeltester: Any) -> None:
    model = SignalTableModel(capacity=3)
    qtmodeltester.check(model)
    alerts = [make_signal(runtime, f"svc-{i}", seconds=i) for i in range(5)]
    model.add_signals(alerts)
    assert model.rowCount() == 3
    assert model.live_count == 5  # two of them no longer have a row, but still fire
    model.add_signals([replace(alerts[0], status=AlertStatus.RESOLVED, at=alerts[4].at)])
    assert model.live_count == 4
    assert [model.is_live(r) for r in range(3)] == [False, True, True]


def test_audit_model_shows_new_records_on_top(runtime: Any, qtmodeltester: Any) -> None:
    bridge = BusBridge(runtime.bus)
    model = AuditTableModel(runtime.service.audit_entries(), bridge=bridge)
    qtmodeltester.check(model)
    assert model.rowCount() == 1  # alice's bootstrap
    rec = Recorder(model)
    runtime.service.set_kill_switch(True, as_user="alice", reason="test")
    assert rec.inserted == [(0, 0)]
    assert model.index(0, AuditTableModel.ACTION).data() == "autonomy.kill_switch"
    assert model.index(0, AuditTableModel.ACTOR).data() == "user:alice"
    assert model.index(0, AuditTableModel.DECISION).data() == "allow"
    assert model.index(0, AuditTableModel.SEQ).data() == "2"
    model.add_entry(model.entry_at(0))  # a duplicate delivery changes nothing
    assert model.rowCount() == 2
    assert rec.resets == 0
    bridge.close()


@pytest.mark.parametrize("model_type", [SignalTableModel, ServiceTableModel, AuditTableModel])
def test_models_answer_invalid_indexes_with_nothing(model_type: type) -> None:
    model = model_type()
    assert model.rowCount() == 0
    assert model.data(QModelIndex()) is None
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.headerData(0, Qt.Orientation.Horizontal)
    assert model.headerData(0, Qt.Orientation.Vertical) is None


def test_many_qt_calls_do_not_exhaust_the_none_and_true_singletons(qapp: Any) -> None:
    """PySide6 6.12.0 on Python < 3.12 drops a reference to None/True on void calls and
    emits (widgets/_pyside_refcount.py). Without the workaround this aborts the process."""
    from PySide6.QtCore import QObject
    from PySide6.QtCore import Signal as QtSignal

    class Chatty(QObject):
        ping = QtSignal(object)

    chatty = Chatty()
    chatty.ping.connect(lambda _v: None)
    for _ in range(20_000):
        chatty.setObjectName("chatty")
        chatty.ping.emit(None)
    assert chatty.objectName() == "chatty"

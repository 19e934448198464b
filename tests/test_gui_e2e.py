"""The console over the embedded estate, end to end: scenario steps reach the panes, and
the composition root starts, plays and shuts down cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings
from PySide6.QtWidgets import QApplication
from qasync import QThreadExecutor

from console import app as console_app
from console.runtime import ScenarioDriver
from widgets.main_window import MainWindow
from widgets.models import Health


@pytest.fixture(autouse=True)
def _no_real_settings(tmp_path: Path) -> Iterator[None]:
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))
    yield
    QSettings.setDefaultFormat(QSettings.Format.NativeFormat)


@pytest.fixture(autouse=True)
def _no_leaked_windows(qapp: QApplication) -> Iterator[None]:
    before = {id(w) for w in qapp.topLevelWidgets()}
    yield
    leaked = [w for w in qapp.topLevelWidgets() if id(w) not in before and w.isVisible()]
    for widget in leaked:
        widget.close()
    assert not leaked, f"test left windows open: {leaked}"


def _dispose(window: MainWindow) -> None:
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_bad_deploy_steps_fill_the_signals_and_services_panes(runtime: Any, qloop: Any,
                                                              tmp_path: Path) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7)
    settings = QSettings(str(tmp_path / "wf.ini"), QSettings.Format.IniFormat)
    window = console_app.build_window(runtime, driver, "alice", settings=settings)
    try:
        window.show()
        services = window.services_pane.model
        assert services.rowCount() > 0  # filled from the estate before the first step
        signals = window.signals_pane.model
        resets: list[bool] = []
        signals.modelReset.connect(lambda: resets.append(True))
        for _ in range(40):
            driver.step(60)
            if signals.rowCount() and any(
                    services.health_of(services.service_at(r)) is not Health.OK
                    for r in range(services.rowCount())):
                break
        assert signals.rowCount() > 0
        assert not resets
        assert window.signals_pane.proxy.rowCount() == signals.rowCount()
        unhealthy = [services.service_at(r) for r in range(services.rowCount())
                     if services.health_of(services.service_at(r)) is not Health.OK]
        assert unhealthy, "the bad deploy should degrade at least one service"
        # Worst first; until the operator picks a row the selection (and so the plot)
        # follows the top one.
        pane = window.services_pane
        top = pane.proxy.index(0, 0).data()
        assert top in unhealthy
        selected = pane.selected_service
        assert selected == top
        assert not pane.pinned
        assert window.metrics_pane.service == top
        t, _errors, _p99 = window.metrics_pane.history.series(selected)
        assert len(t) >= 2
        assert window.status.signal_total == runtime.service.signal_count()
        assert runtime.bus.failures == []
    finally:
        _dispose(window)


def test_main_plays_the_scenario_live_and_shuts_down_when_the_window_closes(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    windows: list[MainWindow] = []
    executor = QThreadExecutor(1)  # shut down below; the shared test loop is never closed
    qloop.set_default_executor(executor)
    task = qloop.create_task(console_app.main(db_url, "bad-deploy", 240.0,
                                              on_window=windows.append))
    qtbot.waitUntil(lambda: bool(windows), timeout=5000)
    window = windows[0]
    try:
        assert window.isVisible()
        assert window.windowTitle() == "Watchfloor \u2014 bad-deploy"
        audit = window.audit_pane.model
        assert {audit.entry_at(r).action for r in range(audit.rowCount())} >= {
            "user.bootstrap", "scenario.start"}
        start = window.status.clock_label.text()
        qtbot.waitUntil(lambda: window.status.clock_label.text() != start, timeout=5000)
        assert "\u00d7240" in window.status.clock_label.text()
    finally:
        window.close()
    qtbot.waitUntil(task.done, timeout=5000)
    executor.shutdown()
    qloop.set_default_executor(None)
    assert task.result() == 0
    assert window.bridge.closed
    _dispose(window)


def test_main_exits_2_on_an_unknown_scenario(db_url: str, qloop: asyncio.AbstractEventLoop,
                                             qtbot: Any, capsys: pytest.CaptureFixture) -> None:
    task = qloop.create_task(console_app.main(db_url, "no-such-scenario", 10.0))
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.result() == 2
    assert "no-such-scenario" in capsys.readouterr().err


def test_a_failed_background_task_is_reported_in_the_status_bar(
        runtime: Any, qloop: asyncio.AbstractEventLoop, qtbot: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "wf.ini"), QSettings.Format.IniFormat)
    window = console_app.build_window(runtime, None, "alice", settings=settings)
    try:
        async def broken() -> None:
            raise RuntimeError("estate exploded")

        task = qloop.create_task(broken(), name="scenario bad-deploy")
        task.add_done_callback(lambda t: console_app._report_task(window, t))
        qtbot.waitUntil(task.done, timeout=2000)
        qtbot.waitUntil(lambda: "estate exploded" in window.status.notice, timeout=2000)
        assert "scenario bad-deploy stopped" in window.status.notice
        assert window.status.notice_label.property("level") == "error"
    finally:
        _dispose(window)


def test_console_receives_webhooks_while_open(db_url: str, qloop: asyncio.AbstractEventLoop,
                                              qtbot: Any) -> None:
    import json
    import socket
    import threading

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    windows: list[MainWindow] = []
    executor = QThreadExecutor(1)
    qloop.set_default_executor(executor)
    task = qloop.create_task(console_app.main(db_url, "quiet-day", 1.0,
                                              listen=("127.0.0.1", port), token="t0k",
                                              on_window=windows.append))
    qtbot.waitUntil(lambda: bool(windows), timeout=5000)
    window = windows[0]
    payload = {"version": "4", "groupKey": "g", "status": "firing", "alerts": [
        {"status": "firing", "startsAt": "2026-01-05T02:01:00Z",
         "labels": {"alertname": "DiskFull", "service": "search", "severity": "critical"}}]}
    answers: list[int] = []

    def send() -> None:  # from another thread, as a real sender would
        answers.append(httpx.post(f"http://127.0.0.1:{port}/webhook/alertmanager",
                                  content=json.dumps(payload),
                                  headers={"Authorization": "Bearer t0k"}).status_code)

    try:
        sender = threading.Thread(target=send)
        sender.start()
        model = window.signals_pane.model
        qtbot.waitUntil(lambda: any(model.signal_at(r).name == "DiskFull"
                                    for r in range(model.rowCount())), timeout=10000)
        sender.join(5)
        assert answers == [200]
    finally:
        window.close()
    qtbot.waitUntil(task.done, timeout=5000)
    executor.shutdown()
    qloop.set_default_executor(None)
    assert task.result() == 0
    with pytest.raises(httpx.ConnectError):  # the receiver stopped with the window
        httpx.post(f"http://127.0.0.1:{port}/webhook/alertmanager", content=b"{}", timeout=2)
    _dispose(window)


def test_a_down_alertmanager_shows_degraded_and_the_console_keeps_running(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    windows: list[MainWindow] = []
    executor = QThreadExecutor(1)
    qloop.set_default_executor(executor)
    task = qloop.create_task(console_app.main(db_url, "bad-deploy", 240.0,
                                              alertmanager=f"http://127.0.0.1:{port}",
                                              poll_interval=0.2, on_window=windows.append))
    qtbot.waitUntil(lambda: bool(windows), timeout=5000)
    window = windows[0]
    try:
        label = window.status.sources_label
        qtbot.waitUntil(lambda: label.text() == "Degraded: alertmanager", timeout=10000)
        assert label.isVisible()
        assert "alertmanager" in label.toolTip()
        assert "alertmanager degraded" in window.status.notice
        start = window.status.clock_label.text()  # the estate keeps playing regardless
        qtbot.waitUntil(lambda: window.status.clock_label.text() != start, timeout=5000)
    finally:
        window.close()
    qtbot.waitUntil(task.done, timeout=5000)
    executor.shutdown()
    qloop.set_default_executor(None)
    assert task.result() == 0
    _dispose(window)

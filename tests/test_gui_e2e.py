"""The console over the embedded estate, end to end: scenario steps reach the panes, and
the composition root starts, plays and shuts down cleanly."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget
from qasync import QThreadExecutor

from console import app as console_app
from console.runtime import ScenarioDriver
from widgets.bridge import BusBridge
from widgets.main_window import MainWindow
from widgets.models import SignalTableModel
from widgets.service_model import Health, ServiceTableModel
from widgets.theme import PLOT_COLORS

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


def _dispose(window: MainWindow) -> None:
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@contextmanager
def thread_executor(qloop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """A default executor for the test loop, shut down at the end (the shared test loop is
    never closed, so nothing else would stop its threads on the thread that made them)."""
    executor = QThreadExecutor(1)
    qloop.set_default_executor(executor)
    try:
        yield
    finally:
        executor.shutdown()
        qloop.set_default_executor(None)


@contextmanager
def running_console(qloop: asyncio.AbstractEventLoop, qtbot: Any, db_url: str, scenario: str,
                    speed: float, **options: Any) -> Iterator[MainWindow]:
    """console.app.main() on the test loop: yields its window once the panes are in; on
    leaving, closes it and checks that main() ended cleanly (exit 0, bridge closed)."""
    windows: list[MainWindow] = []
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, scenario, speed,
                                                  on_ready=windows.append, **options))
        qtbot.waitUntil(lambda: bool(windows), timeout=20_000)
        window = windows[0]
        bridge = window.bridge
        try:
            yield window
        finally:
            window.close()
        qtbot.waitUntil(task.done, timeout=5000)
        assert task.result() == 0
        assert bridge.closed
        qtbot.waitUntil(lambda: not shiboken6.isValid(window), timeout=2000)  # main deletes it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


def _open(runtime: Any, driver: ScenarioDriver | None, tmp_path: Path) -> MainWindow:
    settings = QSettings(str(tmp_path / "wf.ini"), QSettings.Format.IniFormat)
    window = console_app.build_window(runtime, driver, "alice", settings=settings)
    window.show()
    return window


def _live_rows(pane: Any) -> set[str]:
    model = pane.model
    return {model.signal_at(r).fingerprint for r in range(model.rowCount()) if model.is_live(r)}


def _assert_panes_agree_with_the_estate(window: MainWindow, driver: ScenarioDriver) -> None:
    """What the panes show is what the estate says now: its services and metrics, and the
    alerts its evaluator holds as firing (ground truth a test may read; agents may not)."""
    estate = driver.player.estate
    services = window.services_pane.model
    assert {services.service_at(r) for r in range(services.rowCount())} == set(estate.services)
    for name in estate.services:
        row = services.row_of(name)
        metrics = estate.metrics(name)
        assert services.metrics_of(name) == metrics
        assert services.index(row, ServiceTableModel.ERRORS).data() == \
            f"{metrics['error_rate'] * 100:,.2f}"
        assert services.index(row, ServiceTableModel.READY).data() == \
            f"{metrics['instances_ready']:,.0f}"
    firing = driver.player.alerts.firing
    assert window.signals_pane.model.live_count == len(firing)
    assert window.status.firing_count == len(firing)
    for sig in firing:  # a service with an alert firing is never shown as ok
        assert services.health_of(sig.service) is not Health.OK, sig
    t, errors, _p99 = window.metrics_pane.history.series(window.metrics_pane.service)
    assert t[-1] == estate.now.timestamp()
    assert errors[-1] == pytest.approx(
        estate.metrics(window.metrics_pane.service)["error_rate"] * 100)


def test_bad_deploy_steps_fill_the_signals_and_services_panes(runtime: Any, qloop: Any,
                                                              tmp_path: Path) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7)
    window = _open(runtime, driver, tmp_path)
    try:
        services = window.services_pane.model
        assert services.rowCount() == len(driver.player.estate.services)  # before any step
        signals = window.signals_pane.model
        resets: list[bool] = []
        signals.modelReset.connect(lambda: resets.append(True))
        for _ in range(40):
            driver.step(60)
            _assert_panes_agree_with_the_estate(window, driver)
            if signals.rowCount() and any(
                    services.health_of(services.service_at(r)) is not Health.OK
                    for r in range(services.rowCount())):
                break
        assert signals.rowCount() > 0
        assert not resets
        assert window.signals_pane.proxy.rowCount() == signals.rowCount()
        assert _live_rows(window.signals_pane) == {
            s.fingerprint for s in driver.player.alerts.firing}
        unhealthy = [services.service_at(r) for r in range(services.rowCount())
                     if services.health_of(services.service_at(r)) is not Health.OK]
        assert unhealthy, "the bad deploy should degrade at least one service"
        # Worst first; until the operator picks a row the selection (and so the plot)
        # follows the top one.
        pane = window.services_pane
        top = pane.proxy.index(0, 0).data()
        assert top in unhealthy
        assert services.health_of(top) == max(services.health_of(n) for n in unhealthy)
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


def test_alerts_that_resolve_leave_the_live_view_and_the_models_stay_valid(
        runtime: Any, qloop: Any, qtmodeltester: Any, tmp_path: Path) -> None:
    """A whole scenario whose alerts fire and then resolve, with Qt's model tester
    watching every insert and change the real estate causes."""
    resolving = "zone-partition"
    driver = ScenarioDriver(runtime, resolving, seed=3)
    window = _open(runtime, driver, tmp_path)
    try:
        pane = window.signals_pane
        pane.live_only_toggle.setChecked(True)
        for model in (pane.model, pane.proxy, window.services_pane.model,
                      window.services_pane.proxy, window.audit_pane.model):
            qtmodeltester.check(model)
        most_live = 0
        while not driver.finished:
            driver.step(60)
            _assert_panes_agree_with_the_estate(window, driver)
            live = {s.fingerprint for s in driver.player.alerts.firing}
            assert {pane.proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole) is not None
                    for r in range(pane.proxy.rowCount())} <= {True}
            assert pane.proxy.rowCount() == len(live)
            assert _live_rows(pane) == live
            most_live = max(most_live, len(live))
        assert most_live > 0, f"{resolving} should fire alerts"
        ended = [r for r in range(pane.model.rowCount())
                 if pane.model.index(r, SignalTableModel.STATUS).data() == "was firing"]
        assert ended, f"{resolving} should resolve some of them"
        assert runtime.bus.failures == []
    finally:
        _dispose(window)


@pytest.mark.slow
def test_a_storm_keeps_the_live_count_right_when_rows_fall_off(runtime: Any,
                                                               qtmodeltester: Any) -> None:
    """Thousands of alerts flapping: the capped table drops its oldest rows and still
    knows which alerts fire now."""
    driver = ScenarioDriver(runtime, "storm", seed=11)
    bridge = BusBridge(runtime.bus)
    model = SignalTableModel(bridge=bridge, capacity=1000)
    qtmodeltester.check(model)
    ended: list[int] = []  # rows that stopped being live while still shown
    model.dataChanged.connect(lambda top, bottom, _roles=(): ended.append(
        bottom.row() - top.row() + 1))
    try:
        total = 0
        while driver.elapsed < 1500:
            before = runtime.service.signal_count()
            driver.step(60)
            total += runtime.service.signal_count() - before
            firing = {s.fingerprint for s in driver.player.alerts.firing}
            assert model.live_count == len(firing)
            shown = {model.signal_at(r).fingerprint for r in range(model.rowCount())
                     if model.is_live(r)}
            assert shown <= firing
        assert total > model.capacity, "the storm should overflow the table"
        assert sum(ended) > 0, "some alerts should resolve while their rows are shown"
        assert model.rowCount() == model.capacity
    finally:
        bridge.close()


def test_the_window_renders_something_a_person_can_read(runtime: Any, qloop: Any,
                                                        tmp_path: Path) -> None:
    """The bad deploy 15 minutes in, painted offscreen: no black or empty panes, and the
    plot draws the error curve of the selected service."""
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7)
    window = _open(runtime, driver, tmp_path)
    try:
        window.resize(1600, 1000)
        while driver.elapsed < 900:
            driver.step(30)
        QCoreApplication.processEvents()
        assert driver.player.alerts.firing, "the bad deploy fires by now"
        for name, dock in window.docks.items():
            image = dock.widget().grab().toImage()
            assert image.width() > 200, name
            assert image.height() > 100, name
            pixels = [image.pixelColor(x, y) for x in range(0, image.width(), 7)
                      for y in range(0, image.height(), 7)]
            black = sum(1 for c in pixels if max(c.red(), c.green(), c.blue()) < 8)
            assert black / len(pixels) < 0.01, f"{name} pane is black"
            assert len({c.rgb() for c in pixels}) > 8, f"{name} pane is empty"
        plot = window.metrics_pane.error_plot.grab().toImage()
        curve = QColor(PLOT_COLORS[window.theme].error)
        assert any(plot.pixelColor(x, y) == curve for x in range(plot.width())
                   for y in range(0, plot.height(), 2)), "no error curve drawn"
    finally:
        _dispose(window)


def test_main_plays_the_scenario_live_and_shuts_down_when_the_window_closes(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    with running_console(qloop, qtbot, db_url, "bad-deploy", 240.0) as window:
        assert window.isVisible()
        assert window.windowTitle() == "Watchfloor \u2014 bad-deploy"
        audit = window.audit_pane.model
        assert {audit.entry_at(r).action for r in range(audit.rowCount())} >= {
            "user.bootstrap", "scenario.start"}
        start = window.status.clock_label.text()
        qtbot.waitUntil(lambda: window.status.clock_label.text() != start, timeout=5000)
        assert "\u00d7240" in window.status.clock_label.text()


def test_the_window_is_on_screen_saying_what_opens_before_the_core_is_loaded(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    """The operator never looks at nothing while the database, the estate and the agents
    open: the frame is shown first with the step under way, then the panes go in."""
    seen: list[tuple[bool, str, bool]] = []

    def on_window(window: MainWindow) -> None:
        seen.append((window.installed, window.starting.step.text(), window.isVisible()))

    with running_console(qloop, qtbot, db_url, "bad-deploy", 10.0,
                         on_window=on_window) as window:
        assert seen == [(False, "Opening the database\u2026", True)]
        assert window.installed
        assert window.centralWidget() is None  # the starting panel gave way to the docks
        assert window.findChild(QWidget, "startingPanel") is None or \
            not window.findChild(QWidget, "startingPanel").isVisible()
        assert window.findChild(QWidget, "killSwitch") is not None
        # The panes went into a window already on screen: they are on screen too.
        for name in ("incidents", "recommendations", "history", "coordination"):
            assert window.docks[name].isVisible(), name
        assert sum(not dock.isHidden() for dock in window.docks.values()) == \
            len(window.docks)


def test_a_saved_layout_with_every_pane_closed_opens_the_default_one(
        runtime: Any, tmp_path: Path) -> None:
    first = _open(runtime, None, tmp_path)
    for dock in first.docks.values():
        dock.hide()
    _dispose(first)  # saves the layout: every pane closed
    second = _open(runtime, None, tmp_path)
    try:
        for name in ("incidents", "recommendations", "history", "coordination"):
            assert second.docks[name].isVisible(), name
    finally:
        _dispose(second)


def test_closing_the_window_while_it_starts_ends_cleanly(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    windows: list[MainWindow] = []
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "bad-deploy", 10.0,
                                                  on_window=windows.append))
        qtbot.waitUntil(lambda: bool(windows), timeout=5000)
        windows[0].close()  # while the database opens on the worker thread
        qtbot.waitUntil(task.done, timeout=20_000)
        assert task.result() == 0
        assert not windows[0].installed
        qtbot.waitUntil(lambda: not shiboken6.isValid(windows[0]), timeout=2000)  # deleted


def test_a_broken_settings_file_is_said_in_the_window_and_exits_2(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any,
        capsys: pytest.CaptureFixture) -> None:
    windows: list[MainWindow] = []

    def broken_settings() -> Any:
        raise ValueError("settings: config.yaml line 3: sources.alertmanager_url: not a URL")

    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "bad-deploy", 10.0,
                                                  on_window=windows.append,
                                                  saved_sources=broken_settings))
        qtbot.waitUntil(lambda: bool(windows), timeout=5000)
        window = windows[0]
        qtbot.waitUntil(lambda: "could not start" in window.starting.title.text(),
                        timeout=20_000)
        assert "line 3: sources.alertmanager_url" in window.starting.step.text()
        assert not task.done()  # the reason stays on screen until the window is closed
        window.close()
        qtbot.waitUntil(task.done, timeout=5000)
        assert task.result() == 2
        assert "sources.alertmanager_url" in capsys.readouterr().err
        qtbot.waitUntil(lambda: not shiboken6.isValid(window), timeout=2000)  # deleted


def test_main_exits_2_on_an_unknown_scenario(db_url: str, qloop: asyncio.AbstractEventLoop,
                                             qtbot: Any, capsys: pytest.CaptureFixture) -> None:
    windows: list[MainWindow] = []
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "no-such-scenario", 10.0,
                                                  on_window=windows.append))
        qtbot.waitUntil(task.done, timeout=20_000)
        qtbot.waitUntil(lambda: not shiboken6.isValid(windows[0]), timeout=2000)  # deleted
    assert task.result() == 2
    assert "no-such-scenario" in capsys.readouterr().err


def test_a_failed_background_task_is_reported_in_the_status_bar(
        runtime: Any, qloop: asyncio.AbstractEventLoop, qtbot: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "wf.ini"), QSettings.Format.IniFormat)
    window = console_app.build_window(runtime, None, "alice", settings=settings)
    try:
        async def broken() -> None:
            raise RuntimeError("estate exploded")

        from console.leading import LeaderDuties

        duties = LeaderDuties(runtime, "bad-deploy", user="alice", mode="console",
                              notify=lambda text, error: window.notify(text, error=error))
        duties._spawn(broken(), "scenario bad-deploy")  # as lead() starts the estate
        qtbot.waitUntil(lambda: not duties.tasks, timeout=2000)
        qtbot.waitUntil(lambda: "estate exploded" in window.status.notice, timeout=2000)
        assert "scenario bad-deploy stopped" in window.status.notice
        assert window.status.notice_label.property("level") == "error"
    finally:
        _dispose(window)


def test_console_receives_webhooks_while_open(db_url: str, qloop: asyncio.AbstractEventLoop,
                                              qtbot: Any) -> None:
    port = free_port()
    payload = {"version": "4", "groupKey": "g", "status": "firing", "alerts": [
        {"status": "firing", "startsAt": "2026-01-05T02:01:00Z",
         "labels": {"alertname": "DiskFull", "service": "search", "severity": "critical"}}]}
    answers: list[int] = []

    def send() -> None:  # from another thread, retrying as a real sender would: the
        # receiver starts with the sources, once the panes are on screen
        for _ in range(100):
            try:
                answers.append(httpx.post(f"http://127.0.0.1:{port}/webhook/alertmanager",
                                          content=json.dumps(payload),
                                          headers={"Authorization": "Bearer t0k"}).status_code)
                return
            except httpx.ConnectError:
                time.sleep(0.1)

    with running_console(qloop, qtbot, db_url, "quiet-day", 1.0,
                         listen=("127.0.0.1", port), token="t0k") as window:
        sender = threading.Thread(target=send)
        sender.start()
        model = window.signals_pane.model
        qtbot.waitUntil(lambda: any(model.signal_at(r).name == "DiskFull"
                                    for r in range(model.rowCount())), timeout=10000)
        sender.join(5)
        assert answers == [200]
    with pytest.raises(httpx.ConnectError):  # the receiver stopped with the window
        httpx.post(f"http://127.0.0.1:{port}/webhook/alertmanager", content=b"{}", timeout=2)


def test_a_down_alertmanager_shows_degraded_and_the_console_keeps_running(
        db_url: str, qloop: asyncio.AbstractEventLoop, qtbot: Any) -> None:
    with running_console(qloop, qtbot, db_url, "bad-deploy", 240.0,
                         alertmanager=f"http://127.0.0.1:{free_port()}",
                         poll_interval=0.2) as window:
        label = window.status.sources_label
        qtbot.waitUntil(lambda: label.text() == "Degraded: alertmanager", timeout=10000)
        assert label.isVisible()
        assert "alertmanager" in label.toolTip()
        assert "alertmanager degraded" in window.status.notice
        start = window.status.clock_label.text()  # the estate keeps playing regardless
        qtbot.waitUntil(lambda: window.status.clock_label.text() != start, timeout=5000)


def test_the_window_frame_needs_only_qt_before_it_is_shown() -> None:
    """What `watchfloor` imports before its window is on screen is Qt and the frame: the
    core, the panes' plotting and asyncio come after (the first window waits for each)."""
    import subprocess
    import sys

    code = ("import sys, console.cli, console.app; console.cli.build_parser(); "
            "heavy = {'sqlalchemy', 'alembic', 'pyqtgraph', 'numpy', 'networkx', 'pydantic', "
            "'httpx', 'asyncio', 'qasync', 'console.runtime', 'agents'} & set(sys.modules); "
            "assert not heavy, sorted(heavy)")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[1], timeout=60)

"""The GUI composition root: one QApplication, one qasync event loop, one window.

`run_gui` is what `watchfloor` (no command) runs. `build_window` wires the panes to a
runtime; tests and the screenshot script call it directly. This module and `widgets/`
are the only places that import Qt (checked by import-linter).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from console.clock import SimClock
from console.estate import ScenarioError
from console.kpis import Kpis
from console.notify_rules import NotifyRules
from console.runtime import Runtime, ScenarioDriver, local_user
from console.sources.clients import AlertmanagerPoller
from console.sources.polling import poll_forever
from console.sources.webhook import WebhookReceiver
from widgets.ask_pane import AskPane
from widgets.audit_browser import AuditBrowser
from widgets.bridge import BusBridge
from widgets.coordination_pane import CoordinationPane
from widgets.history_model import ExecutionTableModel
from widgets.history_pane import HistoryPane
from widgets.incident_models import IncidentTableModel
from widgets.incidents_pane import IncidentsPane
from widgets.main_window import MainWindow
from widgets.metrics_pane import MetricHistory, MetricsPane
from widgets.models import AuditTableModel, SignalTableModel
from widgets.notifications import DesktopNotifier
from widgets.ops import Worker
from widgets.outcomes_pane import OutcomesPane
from widgets.recommendation_model import RecommendationTableModel
from widgets.recommendations_pane import RecommendationsPane
from widgets.service_model import ServiceTableModel
from widgets.status_bar import ConsoleStatusBar
from widgets.tables import AuditPane, ServicesPane, SignalsPane

if TYPE_CHECKING:
    from widgets.assess_wizard import AssessWizard
    from widgets.settings_dialog import SettingsDialog

log = logging.getLogger(__name__)
APP_NAME = ORG_NAME = "Watchfloor"
SIGNAL_ROWS = 5000
CAUSES_READ = 20  # incidents whose board is read at start (the newest)


def build_window(runtime: Runtime, driver: ScenarioDriver | None, user: str, *,
                 settings: QSettings | None = None) -> MainWindow:
    """Compose the console over `runtime` as `user`; `driver` may be None (no estate).

    Every model is filled from the service first and subscribed to the bridge in the same
    step, on the loop's thread, so no event can fall between the two.
    """
    service = runtime.service
    bridge = BusBridge(runtime.bus)
    recent = service.recent_signals(SIGNAL_ROWS)
    signal_model = SignalTableModel(recent, bridge=bridge, capacity=SIGNAL_ROWS)
    service_model = ServiceTableModel(recent, bridge=bridge)  # alerts firing now count too
    history = MetricHistory(bridge=bridge)
    audit_model = AuditTableModel(service.audit_entries(), bridge=bridge)
    if driver is not None:
        # The estate's state now, so the panes are not empty until the first tick.
        estate = driver.player.estate
        metrics = {name: estate.metrics(name) for name in estate.services}
        service_model.update_metrics(metrics)
        history.record(estate.now.timestamp(), metrics)
    # In the console the bus hands worker-thread events back to the loop, so the panes'
    # reads and operations run off the GUI thread; headless (tests, snapshots) and on an
    # in-memory database (one per thread) they run inline.
    in_memory = runtime.db.engine.url.database in (None, "", ":memory:")
    worker = Worker(offload=runtime.bus.bound and not in_memory)
    engine, steering = service.engine, runtime.steering
    incidents = service.incidents()
    causes = {}
    for info in incidents[:CAUSES_READ]:
        usable = [h for h in steering.hypotheses(info.id) if h.state in ("pinned", "live")]
        if usable:
            causes[info.id] = (usable[0].key, usable[0].confidence, usable[0].state)
    incident_model = IncidentTableModel(incidents, causes=causes, bridge=bridge)
    recommendation_model = RecommendationTableModel(engine.recommendations())
    execution_model = ExecutionTableModel(engine.executions())
    scenario = driver.scenario.name if driver is not None else ""
    status_bar = ConsoleStatusBar(service=service, clock=runtime.clock, bridge=bridge,
                                  user=user, scenario_name=scenario,
                                  signal_total=service.signal_count(), recent_signals=recent)
    window = MainWindow(
        bridge=bridge, clock=runtime.clock, settings=settings or QSettings(),
        services=ServicesPane(service_model), signals=SignalsPane(signal_model),
        metrics=MetricsPane(history, service_model.thresholds), audit=AuditPane(audit_model),
        status_bar=status_bar,
        incidents=IncidentsPane(incident_model, service=service, steering=steering,
                                bridge=bridge, history=history, worker=worker),
        recommendations=RecommendationsPane(recommendation_model, engine=engine, user=user,
                                            bridge=bridge, worker=worker),
        history=HistoryPane(execution_model, engine=engine, user=user, bridge=bridge,
                            worker=worker),
        coordination=CoordinationPane(steering=steering, user=user, bridge=bridge,
                                      worker=worker),
        outcomes=OutcomesPane(Kpis(service), bridge),
        audit_browser=AuditBrowser.for_service(service, bridge),
        ask=AskPane(ask=runtime.ask, suggest=runtime.retriever.suggest, user=user,
                    worker=worker),
        # The dialogs are made when first asked for, over the same service and user.
        make_settings=lambda parent: _settings_dialog(service, user, parent),
        make_assessment=lambda parent: _assess_wizard(service, user, parent),
        worker=worker,
        title=f"Watchfloor \u2014 {scenario}" if scenario else "Watchfloor")
    # The models and the history live as long as the window (parented to it).
    for obj in (signal_model, service_model, history, audit_model, incident_model,
                recommendation_model, execution_model):
        obj.setParent(window)
    # What is already there when the console opens is in the panes, not announced.
    pending = engine.recommendations(("pending",))
    rules = NotifyRules(user, service.role_of(user))
    rules.prime(incidents, pending, runtime.clock.now())
    window.attach_notifier(DesktopNotifier(
        rules=rules, bridge=bridge, pending=lambda: service.engine.recommendations(("pending",)),
        sink=status_bar.notify, now=runtime.clock.now, role_of=service.role_of,
        parent=window))
    return window


# The settings dialog and the assessment wizard (and what only they use) are imported
# when first opened: most sessions never open them, and the first window waits for
# every import made before it.


def _settings_dialog(service: Any, user: str, parent: QWidget) -> SettingsDialog:
    from console.settings_store import SettingsStore
    from widgets.settings_dialog import SettingsDialog

    return SettingsDialog(service, SettingsStore(), user=user, parent=parent)


def _assess_wizard(service: Any, user: str, parent: QWidget) -> AssessWizard:
    from console.assessment_service import AssessmentService
    from widgets.assess_wizard import AssessWizard

    return AssessWizard(AssessmentService(service), user, parent=parent)


def run_snapshot(scenario: str, at_seconds: float, out_dir: Path, *, seed: int | None = None,
                 theme: str = "dark", panes: bool = True) -> list[Path]:
    """`watchfloor snapshot`: PNGs of the window and each pane at a moment of a scenario,
    rendered offscreen (no display needed)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from widgets.snapshot import render_snapshot

    app = QApplication.instance() or QApplication(sys.argv[:1])
    if isinstance(app, QApplication):
        app.setStyle("Fusion")
    return render_snapshot(scenario, at_seconds, out_dir, seed=seed, theme=theme,
                           panes=panes)


def run_review(bundle_path: Path) -> int:
    """`watchfloor review FILE`: the read-only, offline review window of a bundle."""
    from widgets.audit_review import run_review_app

    return run_review_app(bundle_path)


async def main(db_url: str | None, scenario: str, speed: float, *,
               listen: tuple[str, int] | None = None, token: str | None = None,
               mappings: dict[str, Any] | None = None, alertmanager: str | None = None,
               prometheus: str | None = None, poll_interval: float = 10.0,
               on_window: Callable[[MainWindow], None] | None = None) -> int:
    """Run the console until its window closes; `on_window` sees the window once shown.
    With `listen`, the webhook receiver runs on that (host, port) for as long; with
    `alertmanager`, that Alertmanager's API is polled every `poll_interval` seconds; with
    `prometheus`, runbooks' PromQL validations query it."""
    # The estate plays from now, so what the console records lines up with the wall clock.
    runtime = Runtime(db_url, clock=SimClock(datetime.now(UTC).replace(microsecond=0)),
                      prometheus=prometheus)
    runtime.loop = asyncio.get_running_loop()
    runtime.bus.bind_loop(runtime.loop)
    tasks: set[asyncio.Task[None]] = set()
    window: MainWindow | None = None
    receiver: WebhookReceiver | None = None
    http: httpx.AsyncClient | None = None
    try:
        runtime.clock.speed = speed
        user = local_user()
        runtime.service.bootstrap_admin(user)
        try:
            driver = ScenarioDriver(runtime, scenario, agents=True)
        except ScenarioError as exc:  # a bad scenario name or file: say so, exit 2
            print(f"watchfloor: {exc}", file=sys.stderr)  # noqa: T201
            return 2
        if runtime.rule_error:  # the shipped rules run; the operator's file is named
            print(f"watchfloor: your rules were not loaded: {runtime.rule_error}",  # noqa: T201
                  file=sys.stderr)
        # Whatever a crash left in flight is settled before anything new runs.
        await asyncio.to_thread(runtime.service.engine.reconcile)
        window = build_window(runtime, driver, user)
        shutdown = asyncio.Event()
        window.closed.connect(shutdown.set)
        window.show()
        runtime.service.record(actor="system", action="scenario.start",
                               target=driver.scenario.name,
                               inputs={"seed": driver.player.seed, "speed": speed,
                                       "mode": "console", "user": user})
        if listen is not None:
            try:
                receiver = WebhookReceiver(runtime.service, host=listen[0], port=listen[1],
                                           token=token, on_stored=runtime.receive,
                                           mappings=mappings).start()
            except OSError as exc:
                window.notify(f"webhook receiver not started: {exc}", error=True)
            else:
                window.notify(f"receiving webhooks at {receiver.url}/webhook/...")
        if alertmanager is not None:
            http = httpx.AsyncClient()  # one client for the whole run (STYLE.md 8)
            poller = AlertmanagerPoller(http, alertmanager)
            polling = asyncio.create_task(
                poll_forever(poller, runtime.service, runtime, interval=poll_interval),
                name="alertmanager polling")
            tasks.add(polling)
            polling.add_done_callback(lambda task: _report_task(window, task))
        play = asyncio.create_task(driver.run_live(), name=f"scenario {driver.scenario.name}")
        tasks.add(play)
        play.add_done_callback(lambda task: _report_task(window, task))
        if on_window is not None:
            on_window(window)
        await shutdown.wait()
        return 0
    finally:
        if receiver is not None:
            receiver.close()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if http is not None:
            await http.aclose()
        await runtime.agents.aclose()  # every run records how it ended before we close
        await runtime.bus.drain()
        if window is not None:
            window.bridge.close()
        runtime.close()


def _report_task(window: MainWindow | None, task: asyncio.Task[None]) -> None:
    """Every background task's end is shown: a failure in red, never swallowed."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("%s stopped", task.get_name(), exc_info=exc)
        if window is not None:
            window.notify(f"{task.get_name()} stopped: {exc!r}", error=True)


def run_gui(db_url: str | None, scenario: str, speed: float, *,
            listen: tuple[str, int] | None = None, token: str | None = None,
            mappings: dict[str, Any] | None = None, alertmanager: str | None = None,
            prometheus: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setStyle("Fusion")  # the same look on every platform; the QSS builds on it
    # The window's `closed` ends main(); Qt quitting by itself would stop the loop before
    # main() has cancelled its tasks and closed the database.
    app.setQuitOnLastWindowClosed(False)
    # Ctrl+C in the terminal closes the window like Ctrl+Q; the timer lets Python run.
    signal.signal(signal.SIGINT, lambda *_: _close_all(app))
    wake = QTimer()
    wake.start(250)
    wake.timeout.connect(lambda: None)
    # asyncio.run() takes loop_factory only from Python 3.12; the Runner has it on 3.11.
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(main(db_url, scenario, speed, listen=listen, token=token,
                               mappings=mappings, alertmanager=alertmanager,
                               prometheus=prometheus))


def _close_all(app: QApplication) -> None:
    for widget in app.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()

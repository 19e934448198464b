"""The GUI composition root: one QApplication, one qasync event loop, one window.

`run_gui` is what `watchfloor` (no command) runs. `build_window` wires the panes to a
runtime; tests and the screenshot script call it directly. This module and `widgets/`
are the only places that import Qt (checked by import-linter).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

from widgets.main_window import MainWindow
from widgets.process import favour_the_window, favour_the_window_from_now, settle_garbage

# Only Qt and the window's frame are imported before the window is on screen (asyncio
# and qasync too come after it); the core (SQLAlchemy, the estate, the agents) is imported
# on a worker thread while the window says what is being opened, and the panes
# (pyqtgraph) once the core is there.
if TYPE_CHECKING:
    import asyncio

    from console.client_runtime import ClientRuntime
    from console.engine_process import EngineKeeper, EngineOptions, EngineState
    from console.leading import LeaderDuties
    from console.runtime import Runtime, ScenarioDriver
    from console.team_seat import TeamSeat
    from widgets.assess_wizard import AssessWizard
    from widgets.settings_dialog import SettingsDialog

    # A window that runs the engine itself, or a client of an engine process.
    AnyRuntime = Runtime | ClientRuntime

log = logging.getLogger(__name__)
APP_NAME = ORG_NAME = "Watchfloor"
SIGNAL_ROWS = 5000
CAUSES_READ = 20  # incidents whose board is read at start (the newest)
FIRST_PAINT_WAIT_S = 0.5  # the core starts loading once the window is painted (or after this)


def window_title(scenario: str) -> str:
    return f"Watchfloor \u2014 {scenario}" if scenario else "Watchfloor"


def build_window(runtime: AnyRuntime, driver: ScenarioDriver | None, user: str, *,
                 settings: QSettings | None = None, window: MainWindow | None = None,
                 scenario_name: str | None = None) -> MainWindow:
    """Compose the console over `runtime` as `user`; `driver` may be None (no estate here:
    another console of the team plays it, or there is none). The panes go into `window`
    (a frame already on screen) or into a new one; `scenario_name` names the scenario
    (default: the driver's).

    Every model is filled from the service first and subscribed to the bridge in the same
    step, on the loop's thread, so no event can fall between the two.
    """
    from console.kpis import Kpis
    from console.notify_rules import NotifyRules
    from console.records import RecordReader
    from widgets.ask_pane import AskPane
    from widgets.attention import CriticalFocus
    from widgets.audit_browser import AuditBrowser
    from widgets.bridge import BusBridge
    from widgets.coordination_pane import CoordinationPane
    from widgets.history_model import ExecutionTableModel
    from widgets.history_pane import HistoryPane
    from widgets.incident_models import IncidentTableModel
    from widgets.incidents_pane import IncidentsPane
    from widgets.metrics_pane import MetricHistory, MetricsPane
    from widgets.models import AuditTableModel, SignalTableModel
    from widgets.notifications import DesktopNotifier
    from widgets.ops import Worker
    from widgets.outcomes_pane import OutcomesPane
    from widgets.recommendation_model import RecommendationTableModel
    from widgets.recommendations_pane import RecommendationsPane
    from widgets.remote import RemoteFollower
    from widgets.service_model import ServiceTableModel
    from widgets.status_bar import ConsoleStatusBar
    from widgets.tables import AuditPane, ServicesPane, SignalsPane

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
    scenario = scenario_name if scenario_name is not None else (
        driver.scenario.name if driver is not None else "")
    status_bar = ConsoleStatusBar(service=service, clock=runtime.clock, bridge=bridge,
                                  user=user, scenario_name=scenario,
                                  signal_total=service.signal_count(), recent_signals=recent)
    audit_browser = AuditBrowser.for_service(service, bridge)
    # What the other consoles of the team change comes in too (console/team_sync.py).
    remote = RemoteFollower(service, steering, bridge=bridge, worker=worker,
                            incidents=incident_model,
                            audit_models=(audit_model, audit_browser.model))
    # ...and the leader's metrics, when another console plays the estate.
    remote_metrics = _remote_metrics(runtime, bridge, worker, history,
                                     own_estate=driver is not None)
    if window is None:
        window = MainWindow(settings=settings or QSettings(), title=window_title(scenario),
                            make_recording_window=recording_window)
    window.install(
        bridge=bridge, clock=runtime.clock,
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
        audit_browser=audit_browser,
        ask=AskPane(ask=runtime.ask, suggest=runtime.retriever.suggest, user=user,
                    worker=worker),
        # The dialogs are made when first asked for, over the same service and user.
        make_settings=lambda parent: _settings_dialog(service, user, parent),
        make_assessment=lambda parent: _assess_wizard(service, user, parent),
        worker=worker, read_record=RecordReader(runtime.db, engine.library).read,
        make_wallboard=lambda parent: _wallboard(runtime, bridge, incident_model, worker,
                                                 parent))
    # The models and the history live as long as the window (parented to it).
    for obj in (signal_model, service_model, history, audit_model, incident_model,
                recommendation_model, execution_model, remote, remote_metrics):
        obj.setParent(window)
    _follow_causes(runtime, window, worker)
    _attach_handoff(window, service, worker)
    # What is already there when the console opens is in the panes, not announced.
    pending = engine.recommendations(("pending",))
    rules = NotifyRules(user, service.role_of(user))
    rules.prime(incidents, pending, runtime.clock.now())
    window.attach_notifier(DesktopNotifier(
        rules=rules, bridge=bridge, pending=lambda: service.engine.recommendations(("pending",)),
        sink=status_bar.notify, now=runtime.clock.now, role_of=service.role_of,
        withdraw=status_bar.withdraw, parent=window))
    # A new critical incident takes the screen, or a chip counts it (widgets/attention.py).
    CriticalFocus(window=window, incidents=window.incidents_pane, status_bar=status_bar,
                  bridge=bridge, show=lambda ident: window.open_link(f"incident:{ident}"),
                  known=incidents)
    # Maintenance... on the incidents' and services' tables, and in the Operations menu.
    from widgets.maintenance_dialog import attach_maintenance

    attach_maintenance(window, service, user=user, bridge=bridge, worker=worker)
    return window


def _remote_metrics(runtime: AnyRuntime, bridge: Any, worker: Any, history: Any, *,
                    own_estate: bool) -> QObject:
    """The samples the leading console stores (console/metric_samples.py) drawn here; a
    console without an estate of its own first draws the newest stored ones."""
    from console.metric_samples import recent_samples, samples_between
    from widgets.remote_metrics import RemoteMetrics

    db = runtime.db
    return RemoteMetrics(
        bridge=bridge, worker=worker, history=history,
        read_range=lambda low, high: samples_between(db, low, high),
        read_recent=None if own_estate else (lambda limit: recent_samples(db, limit)))


def _follow_causes(runtime: AnyRuntime, window: MainWindow, worker: Any) -> None:
    """Announce each incident's causes whenever what decides them moves (read off the GUI
    thread once the loop runs), starting with the newest incidents' causes."""
    from agents.cause_feed import CauseFeed
    from console.bus import OffLoopSubscriber

    feed = CauseFeed(runtime.service, runtime.bus)
    detach = feed.attach(OffLoopSubscriber(runtime.bus, "causes") if worker.offload
                         else runtime.bus)
    window.closed.connect(detach)
    worker.submit("reading the incidents' causes", feed.announce_newest)


# The settings dialog and the assessment wizard (and what only they use) are imported
# when first opened: most sessions never open them, and the first window waits for
# every import made before it.


def _attach_handoff(window: MainWindow, service: Any, worker: Any) -> None:
    """File > Export hand-off packet...: the packet read and signed by the core."""
    from console.audit_trust import workstation_key
    from console.handoff import build_packet
    from widgets.handoff_export import attach_handoff

    attach_handoff(window, worker=worker,
                   build=lambda incident_id: build_packet(service, incident_id,
                                                          workstation_key()))


def _wallboard(runtime: AnyRuntime, bridge: Any, model: Any, worker: Any,
               parent: QWidget) -> QWidget:
    from widgets.wallboard import Wallboard

    return Wallboard(model, read_status=runtime.service.status, bridge=bridge, worker=worker,
                     clock=runtime.clock, parent=parent)


def _settings_dialog(service: Any, user: str, parent: QWidget) -> SettingsDialog:
    from console.settings_store import SettingsStore
    from widgets.settings_dialog import SettingsDialog

    return SettingsDialog(service, SettingsStore(), user=user, parent=parent)


def _assess_wizard(service: Any, user: str, parent: QWidget) -> AssessWizard:
    from console.assessment_service import AssessmentService
    from widgets.assess_wizard import AssessWizard

    return AssessWizard(AssessmentService(service), user, parent=parent)


def recording_window(folder: Path, parent: QWidget) -> QMainWindow:
    """File > Open recording: the read-only window over a recording folder, investigated
    by the live agents' investigator, in the console's current theme (its modules are
    imported when first opened)."""
    from console.runtime import Runtime
    from widgets.recording_window import open_recording_window
    from widgets.theme import DEFAULT_THEME

    return open_recording_window(folder, parent, investigator=Runtime.investigator_classes(),
                                 theme=getattr(parent, "theme", "") or DEFAULT_THEME)


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


def write_handoff_pdf(body: str, packet: dict[str, Any], out: Path) -> None:
    """`watchfloor incident export N --out FILE.pdf`: the packet drawn as a PDF, offscreen
    when no console is running (no display needed)."""
    import os

    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert app is not None
    from widgets.handoff_pdf import write_pdf

    write_pdf(body, packet, out)


def run_review(bundle_path: Path) -> int:
    """`watchfloor review FILE`: the read-only, offline review window of a bundle."""
    from widgets.audit_review import run_review_app

    return run_review_app(bundle_path)


class _FirstPaint(QObject):
    """Resolves `done` when the watched window has handled its first paint event."""

    def __init__(self, window: QWidget, done: asyncio.Future[None]) -> None:
        super().__init__(window)
        self._done = done
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self._done.done():
            self._done.set_result(None)
        return False


async def _painted(window: QWidget) -> None:
    """Until the window is on screen (or FIRST_PAINT_WAIT_S), so that the imports and the
    database work after it never keep the operator looking at nothing."""
    import asyncio

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    watcher = _FirstPaint(window, done)
    window.update()
    try:
        await asyncio.wait_for(done, FIRST_PAINT_WAIT_S)
    except TimeoutError:
        pass
    finally:
        window.removeEventFilter(watcher)
        watcher.deleteLater()


class StartRefused(Exception):
    """The console cannot start on what it was given (exit 2): a bad settings file."""


def _open_runtime(db_url: str | None, alertmanager: str | None, prometheus: str | None,
                  saved_sources: Callable[[], Any] | None, client: bool = False,
                  ) -> tuple[AnyRuntime, str | None, str | None]:
    """On a worker thread: read the saved sources (Settings -> Sources) when the command
    line left the Alertmanager or the Prometheus open, import the core and open the
    database (migrations included). Returns the runtime, and the Alertmanager and the
    Prometheus to use."""
    if saved_sources is not None and (alertmanager is None or prometheus is None):
        try:
            saved = saved_sources()
        except Exception as exc:  # the command line's UsageError: a bad settings file
            raise StartRefused(str(exc)) from exc
        alertmanager = alertmanager or saved.alertmanager_url
        prometheus = prometheus or saved.prometheus_url
    from console.clock import SimClock

    # The estate plays from now, so what the console records lines up with the wall clock,
    # but never from before what the database holds (console/resume_clock.py).
    from console.resume_clock import resume_after_stored

    clock = SimClock(datetime.now(UTC).replace(microsecond=0))
    runtime: AnyRuntime
    if client:  # the engine process runs the estate, the agents and the actions
        from console.client_runtime import ClientRuntime

        runtime = ClientRuntime(db_url, clock=clock)
    else:
        from console.runtime import Runtime

        runtime = Runtime(db_url, clock=clock, prometheus=prometheus)
    resume_after_stored(runtime.clock, runtime.db)
    return runtime, alertmanager, prometheus


def _preload_panes() -> None:
    """On a worker thread: the Qt-free modules the panes need (pure Python imports), so the
    GUI thread only imports the Qt parts."""
    import console.kpis
    import console.notify_rules
    import console.steering  # noqa: F401


async def main(db_url: str | None, scenario: str, speed: float, *,
               listen: tuple[str, int] | None = None, token: str | None = None,
               mappings: dict[str, Any] | None = None, alertmanager: str | None = None,
               prometheus: str | None = None, poll_interval: float = 10.0,
               on_window: Callable[[MainWindow], None] | None = None,
               on_ready: Callable[[MainWindow], None] | None = None,
               saved_sources: Callable[[], Any] | None = None,
               window: MainWindow | None = None,
               zabbix: tuple[str, str] | None = None,
               engine: EngineOptions | None = None) -> int:
    """Run the console until its window closes. The window is shown first and says what
    is being opened; `on_window` sees it then, `on_ready` once the panes are in. With
    `listen`, the webhook receiver runs on that (host, port) for as long; with
    `alertmanager`, that Alertmanager's API is polled every `poll_interval` seconds; with
    `prometheus`, runbooks' PromQL validations query it; `saved_sources` (Settings ->
    Sources) fills in either when not given; `window` is the frame `run_gui` has shown
    already; with `zabbix` (URL, API token), that Zabbix's open problems are polled.
    Exit 2 on a bad scenario or settings file.

    With `engine`, the window is a client: the estate, the agents, the sources and the
    actions run in an engine process (console/engine_process.py) that this window starts
    when none leads its database, and starts again when it dies; the window only follows
    it and runs no action itself. Without it (the default here; `--engine in-process` on
    the command line), the window's own process may lead, as before."""
    import asyncio

    shutdown = asyncio.Event()
    made_here = window is None
    if window is None:
        window = _show_frame(scenario, on_window)
    window.closed.connect(shutdown.set)
    if not window.isVisible():  # closed before the loop ran
        return 0
    await _painted(window)
    runtime: AnyRuntime | None = None
    seat: TeamSeat | None = None
    duties: LeaderDuties | None = None
    keeper: EngineKeeper | None = None
    keeping: asyncio.Task[None] | None = None
    try:
        try:
            opened = await _unless_closed(asyncio.to_thread(
                _open_runtime, db_url, alertmanager, prometheus, saved_sources,
                engine is not None), shutdown)
        except Exception as exc:  # a bad settings file, an unreachable database: said in
            # the window (which stays until closed) and on stderr
            log.error("the console could not start", exc_info=exc)
            print(f"watchfloor: {exc}", file=sys.stderr)  # noqa: T201
            window.show_start_failure(f"{exc}\n\nClose this window to quit.")
            await shutdown.wait()
            return 2 if isinstance(exc, StartRefused | ValueError) else 1
        if opened is None:  # closed while starting
            return 0
        runtime, alertmanager, prometheus = opened
        from console.local_user import local_user
        from console.team_seat import TeamSeat

        runtime.loop = asyncio.get_running_loop()
        runtime.bus.bind_loop(runtime.loop)
        runtime.clock.speed = speed
        await asyncio.to_thread(runtime.service.bootstrap_admin, local_user())
        user = await _signed_in(runtime, window, shutdown)
        while user is None and not shutdown.is_set() and \
                await _sign_in_again(window, shutdown):
            user = await _signed_in(runtime, window, shutdown)
        if user is None:  # the person cancelled the sign-in and quit, or closed the window
            print("watchfloor: nobody signed in; the console closed without opening "  # noqa: T201
                  "anything (nothing was changed)", file=sys.stderr)
            window.close()
            return 0
        if engine is None:  # a client's engine checks it (and is said to refuse it)
            from console.estate import ScenarioError, load_scenario

            window.show_progress(f"Loading the scenario {scenario}\u2026")
            try:
                await asyncio.to_thread(load_scenario, scenario)
            except ScenarioError as exc:  # a bad scenario name or file: say so, exit 2
                print(f"watchfloor: {exc}", file=sys.stderr)  # noqa: T201
                window.close()
                return 2
        notices = _Notices(window)
        if engine is None:
            from console.leading import LeaderDuties

            duties = LeaderDuties(runtime, scenario, user=user, mode="console",
                                  listen=listen, token=token, mappings=mappings,
                                  alertmanager=alertmanager, poll_interval=poll_interval,
                                  notify=notices.say, held=True, zabbix=zabbix)
        else:  # no executor here: what is approved in this window runs in the engine
            runtime.service.engine.executors.clear()
        # One console of the team leads (plays the estate, runs the agents and the
        # sources); a console alone on its database always does. Leading starts by
        # settling what a crash or a dead leader left in flight. A client window never
        # leads: its engine does.
        window.show_progress("Joining the team; settling what was in flight\u2026")
        seat = TeamSeat(runtime.db, runtime.bus, user=user,
                        lead=duties.lead if duties is not None else _never_leads,
                        follow=duties.follow if duties is not None else _nothing,
                        clock=runtime.clock, on_clock=lambda: _show_clock(window),
                        kind="console" if engine is None else "window",
                        candidate=engine is None)
        await seat.join()
        if seat.lead_error is not None:
            notices.say(f"this console could not take the lead: {seat.lead_error}", True)
        window.show_progress("Laying out the panes\u2026")
        await asyncio.to_thread(_preload_panes)
        if shutdown.is_set():
            return 0
        build_window(runtime, duties.driver if duties is not None else None, user,
                     window=window, scenario_name=scenario)
        notices.flush()
        seat.announce()  # who leads, now that the status bar listens
        if on_ready is not None:
            on_ready(window)
        await _painted(window)  # the panes on screen first, then what is behind them
        settle_garbage()  # before the estate plays (widgets/process.py)
        favour_the_window_from_now(QApplication.instance())
        if duties is not None:
            duties.release()  # the estate plays into the panes from here
        if engine is not None:  # found or started once the panes are in: on two cores
            # the engine's start would otherwise hold the panes up
            from console.engine_process import EngineKeeper

            keeper = EngineKeeper(runtime.db, replace(engine, alertmanager=alertmanager,
                                                      prometheus=prometheus),
                                  say=_EngineView(window, notices).say)
            keeping = asyncio.get_running_loop().create_task(keeper.keep(), name="engine")
        await shutdown.wait()
        return 0
    finally:
        if keeper is not None and keeping is not None:
            keeper.stop()  # the engine ends by itself once no window follows it
            keeping.cancel()
        if seat is not None:
            await seat.leave()
        if duties is not None:
            duties.follow()
            await duties.stop()
        if runtime is not None:
            await runtime.agents.aclose()  # every run records how it ended before we close
            await runtime.bus.drain()
        if window.installed:
            window.bridge.close()
        if runtime is not None:
            runtime.close()
        if made_here and not window.isVisible():
            # Qt deletes it on the loop; a reference kept elsewhere (a logged traceback's
            # frames) then no longer holds a widget that would outlive the QApplication.
            window.deleteLater()


async def _never_leads() -> None:
    """A client window's seat is no candidate: its engine leads."""


def _nothing() -> None:
    return None


class _EngineView:
    """What the window says of its engine: in the status bar's engine label, and as a
    notice when it stops and when it is back."""

    def __init__(self, window: MainWindow, notices: _Notices) -> None:
        self.window, self.notices = window, notices

    def say(self, state: EngineState) -> None:
        if state.state in ("restarting", "unknown", "refused") or "back" in state.text:
            self.notices.say(state.text, state.error)
        _show_engine(self.window, state)


def _show_engine(window: MainWindow, state: EngineState) -> None:
    if window.installed:
        window.status.show_engine(state.text, error=state.error)


def _show_clock(window: MainWindow) -> None:
    """A follower's clock moved to the leader's time: say so in the status bar."""
    if window.installed:
        window.status.show_clock()


class _Notices:
    """What the console says in its status bar; kept until the panes are in."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self._held: list[tuple[str, bool]] = []

    def say(self, text: str, error: bool) -> None:
        if self.window.installed:
            self.window.notify(text, error=error)
        else:
            self._held.append((text, error))

    def flush(self) -> None:
        held, self._held = self._held, []
        for text, error in held:
            self.say(text, error)


async def _signed_in(runtime: AnyRuntime, window: MainWindow,
                     shutdown: asyncio.Event) -> str | None:
    """Who the console runs as (widgets/sign_in.py); None when the person cancelled or
    closed the window instead. Nothing waits in a nested loop: the dialog is open()ed."""
    import asyncio

    from widgets.sign_in import sign_in_at_start

    answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def settle(name: str | None) -> None:
        if not answer.done():
            answer.set_result(name)

    window.show_progress("Signing in\u2026")
    dialog = sign_in_at_start(runtime.service, settle, window,
                              on_cancelled=lambda: settle(None))
    closed: asyncio.Future[Any] = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait({answer, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        if dialog is not None and not answer.done():
            dialog.close()
    return answer.result() if answer.done() else None


async def _sign_in_again(window: MainWindow, shutdown: asyncio.Event) -> bool:
    """The sign-in was cancelled: say what that means in the window and ask whether to
    try again (True) or quit (False; closing the window is quitting too)."""
    import asyncio

    choice: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def chosen(name: str) -> None:
        if not choice.done():
            choice.set_result(name == "signInAgain")

    window.starting.offer(
        "Nobody is signed in",
        "The sign-in was cancelled, so the console has not opened: no panes, no agents "
        "and no actions run from this window, and nothing was changed. Sign in to open "
        "it, or quit.", (("signInAgain", "Sign in\u2026"), ("quitWatchfloor", "Quit")),
        chosen)
    closed: asyncio.Future[Any] = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait({choice, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    return choice.done() and choice.result()


def _show_frame(scenario: str, on_window: Callable[[MainWindow], None] | None) -> MainWindow:
    """The main window's frame on screen, saying that the database is being opened."""
    window = MainWindow(settings=QSettings(), title=window_title(scenario),
                        make_recording_window=recording_window)
    window.show_progress("Opening the database\u2026")
    window.show()
    if on_window is not None:
        on_window(window)
    return window


async def _unless_closed(work: Any, shutdown: asyncio.Event) -> Any:
    """The result of `work` (an awaitable), or None when the window closed first. The
    work is still awaited then (a database half-opened on a thread is closed after)."""
    import asyncio

    job = asyncio.ensure_future(work)
    closed = asyncio.ensure_future(shutdown.wait())
    await asyncio.wait({job, closed}, return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    if job.done() or not shutdown.is_set():
        return job.result()
    result = await job
    if result is not None:
        result[0].close()  # the runtime _open_runtime opened
    return None


def run_gui(db_url: str | None, scenario: str, speed: float, *,
            listen: tuple[str, int] | None = None, token: str | None = None,
            mappings: dict[str, Any] | None = None, alertmanager: str | None = None,
            prometheus: str | None = None, saved_sources: Callable[[], Any] | None = None,
            on_window: Callable[[MainWindow], None] | None = None,
            on_ready: Callable[[MainWindow], None] | None = None,
            zabbix: tuple[str, str] | None = None,
            engine: EngineOptions | None = None) -> int:
    """`watchfloor`: the console until its window closes (see `main`; `engine` None runs
    the estate and the agents in the window's own process)."""
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
    # The GC on the GUI thread; the work behind the window at a lower priority once the
    # panes are in (until then the window waits for that work: widgets/process.py).
    favour_the_window(app, starting=True)
    window = _show_frame(scenario, on_window)  # before asyncio and qasync are imported
    import asyncio

    import qasync

    # asyncio.run() takes loop_factory only from Python 3.12; the Runner has it on 3.11.
    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(main(db_url, scenario, speed, listen=listen, token=token,
                               mappings=mappings, alertmanager=alertmanager,
                               prometheus=prometheus, saved_sources=saved_sources,
                               on_ready=on_ready, window=window, zabbix=zabbix,
                               engine=engine))


def _close_all(app: QApplication) -> None:
    for widget in app.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()

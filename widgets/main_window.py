"""The main window: it composes the panes into docks, the status bar and the actions, and
keeps the layout and theme in QSettings. It holds no business logic of its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QActionGroup, QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QMainWindow,
    QScrollArea,
    QTabBar,
    QToolBar,
    QWidget,
)

from widgets.starting import StartingPanel
from widgets.theme import (
    DEFAULT_THEME,
    PLOT_COLORS,
    STATE_COLORS,
    THEMES,
    load_stylesheet,
    next_theme,
)

if TYPE_CHECKING:  # the panes' modules are imported by whoever makes the panes, after
    # the window is on screen (the first window waits for every import made before it)
    from console.clock import SimClock
    from widgets.ask_pane import AskPane
    from widgets.assess_wizard import AssessWizard
    from widgets.audit_browser import AuditBrowser
    from widgets.bridge import BusBridge
    from widgets.coordination_pane import CoordinationPane
    from widgets.history_pane import HistoryPane
    from widgets.incidents_pane import IncidentsPane
    from widgets.metrics_pane import MetricsPane
    from widgets.notifications import DesktopNotifier
    from widgets.ops import Worker
    from widgets.outcomes_pane import OutcomesPane
    from widgets.record_viewer import ReadRecord, RecordViewer
    from widgets.recommendations_pane import RecommendationsPane
    from widgets.settings_dialog import SettingsDialog
    from widgets.status_bar import ConsoleStatusBar
    from widgets.tables import AuditPane, ServicesPane, SignalsPane

STATE_VERSION = 4  # 2: incidents, recommendations, history and coordination docks;
# 3: outcomes and audit browser docks; 4: the ask dock
SPEED_MIN, SPEED_MAX = 0.25, 1000.0
GEOMETRY_KEY, STATE_KEY, THEME_KEY = "mainWindow/geometry", "mainWindow/state", "ui/theme"
BUNDLE_FILTER = "Audit bundles (*.wfaudit *.json);;All files (*)"


class MainWindow(QMainWindow):
    """Emits ``closed()`` after the layout is saved and the bridge has let go of the bus.

    Made in two steps so that the operator sees the window at once: the frame (title,
    saved geometry, theme, a "starting" panel with what is being done) is shown while the
    database, the estate and the agents open off the GUI thread, then `install` puts the
    panes, the status bar and the actions in."""

    closed = Signal()

    def __init__(self, *, settings: QSettings, title: str = "Watchfloor",
                 make_recording_window: Callable[[Path, QWidget], QMainWindow],
                 parent: QWidget | None = None) -> None:
        """`make_recording_window(folder, parent)`: File > Open recording's read-only
        window (the composition root hands in the investigator it runs)."""
        super().__init__(parent)
        self._make_recording_window = make_recording_window
        self.recording_dialog: QFileDialog | None = None
        self.setObjectName("mainWindow")
        self.setWindowTitle(title)
        self.settings = settings
        self.installed = False
        self.theme = ""
        saved_theme = str(settings.value(THEME_KEY, DEFAULT_THEME))
        self._shell_theme = saved_theme if saved_theme in THEMES else DEFAULT_THEME
        self.setStyleSheet(load_stylesheet(self._shell_theme))
        self.starting = StartingPanel(self)
        self.setCentralWidget(self.starting)
        self.resize(1600, 1000)
        geometry = settings.value(GEOMETRY_KEY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)

    def show_progress(self, step: str) -> None:
        """What the start is doing now, in the starting panel (before `install`)."""
        self.starting.set_step(step)

    def show_start_failure(self, message: str) -> None:
        """The start failed: say why in the window, which stays until closed."""
        self.starting.set_failed(message)

    def install(self, *, bridge: BusBridge, clock: SimClock,
                services: ServicesPane, signals: SignalsPane, metrics: MetricsPane,
                audit: AuditPane, status_bar: ConsoleStatusBar, incidents: IncidentsPane,
                recommendations: RecommendationsPane, history: HistoryPane,
                coordination: CoordinationPane, outcomes: OutcomesPane,
                audit_browser: AuditBrowser, ask: AskPane,
                make_settings: Callable[[QWidget], SettingsDialog],
                make_assessment: Callable[[QWidget], AssessWizard], worker: Worker,
                read_record: ReadRecord | None = None,
                make_wallboard: Callable[[QWidget], QWidget] | None = None) -> None:
        """Compose the panes into docks, the status bar and the actions; restore the
        saved dock layout. Called once, on the GUI thread. `read_record(ref)`: what the
        record viewer shows of a record no pane has a row for (blocks; on the worker);
        `make_wallboard(parent)`: View > Wallboard's window."""
        from widgets.actions import ACTIONS, CEILINGS, build_actions, fill_menus

        starting = self.takeCentralWidget()
        if starting is not None:
            starting.deleteLater()
        self.bridge = bridge
        bridge.setParent(self)
        self.clock = clock
        self.services_pane, self.signals_pane = services, signals
        self.metrics_pane, self.audit_pane = metrics, audit
        self.incidents_pane, self.recommendations_pane = incidents, recommendations
        self.history_pane, self.coordination_pane = history, coordination
        self.outcomes_pane, self.audit_browser = outcomes, audit_browser
        self.ask_pane = ask
        # The tools' windows: made on first use, kept (and reused) while the window lives.
        self._make_settings, self._make_assessment = make_settings, make_assessment
        self._make_wallboard = make_wallboard
        self.wallboard: QWidget | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.assess_wizard: AssessWizard | None = None
        self.bundle_dialog: QFileDialog | None = None
        self.review_windows: list[QMainWindow] = []
        self.notifier: DesktopNotifier | None = None
        self.worker = worker
        worker.setParent(self)
        worker.failed.connect(self._on_worker_failed)
        self.status = status_bar
        self.setStatusBar(status_bar)
        if self.isVisible():  # installed into the shown start-up window: Qt would show
            status_bar.show()  # the new bar only on a later turn of the event loop
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.docks = {
            "incidents": self._dock("incidentsDock", "Incidents", incidents),
            "recommendations": self._dock("recommendationsDock", "Recommendations",
                                          recommendations),
            "history": self._dock("historyDock", "Action history", history),
            "coordination": self._dock("coordinationDock", "Agents", coordination),
            "ask": self._dock("askDock", "Ask", ask, scroll=True),
            "services": self._dock("servicesDock", "Services", services),
            "signals": self._dock("signalsDock", "Signals", signals),
            "metrics": self._dock("metricsDock", "Metrics", metrics),
            "audit": self._dock("auditDock", "Audit", audit),
            "outcomes": self._dock("outcomesDock", "Outcomes", outcomes, scroll=True),
            "audit_browser": self._dock("auditBrowserDock", "Audit browser", audit_browser,
                                        scroll=True),
        }
        for dock in self.docks.values():
            # A child added to a window already on screen (the frame is shown before the
            # panes come) stays hidden until shown; the saved layout then hides those the
            # operator closed.
            dock.show()
        self._default_layout()
        for dock in self.docks.values():  # a pane brought to the front catches up
            outer = dock.widget()
            pane = outer.widget() if isinstance(outer, QScrollArea) else outer
            if hasattr(pane, "shown"):
                dock.visibilityChanged.connect(
                    lambda visible, pane=pane: pane.shown() if visible else None)
        services.serviceSelected.connect(metrics.show_service)
        if services.selected_service is not None:
            metrics.show_service(services.selected_service)
        for follower in (coordination, ask):
            incidents.incidentSelected.connect(follower.show_incident)
            if incidents.selected_incident is not None:
                follower.show_incident(incidents.selected_incident)
        from widgets.record_links import RecordLinks

        self._read_record = read_record
        self.record_viewer: RecordViewer | None = None
        self.links = RecordLinks(incidents=incidents, recommendations=recommendations,
                                 history=history, signals=signals, audit=audit,
                                 metrics=metrics, show_dock=self.show_dock,
                                 viewer=self._viewer, notify=self.notify)
        for pane in (recommendations, coordination, ask):
            pane.linkActivated.connect(self.open_link)
        audit_browser.recordFollowed.connect(self._on_audit_browser_record_followed)
        audit_browser.failed.connect(self._on_worker_failed)

        self.actions_by_id = build_actions(self, ACTIONS, {
            "quit": self.close,
            "open_bundle": self.choose_bundle,
            "open_recording": self.choose_recording,
            "settings": self.open_settings,
            "assess": self.open_assessment,
            "toggle_theme": self.toggle_theme,
            "focus_ask": self.focus_ask,
            "wallboard": self.open_wallboard,
            "faster": self.faster,
            "slower": self.slower,
            "kill_switch": self._on_action_kill_switch,
            "reset_layout": self.reset_layout,
            **{f"ceiling_{level}": (lambda level=level: self.status.request_ceiling(level))
               for level in range(len(CEILINGS))},
            "approve": recommendations.approve_selected,
            "reject": recommendations.reject_selected,
            "rollback": history.rollback_selected,
        })
        for spec in ACTIONS:
            if spec.scope:
                action = self.actions_by_id[spec.id]
                action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.docks[spec.scope].widget().addAction(action)
        self.menus = fill_menus(self.menuBar(), ACTIONS, self.actions_by_id)
        recommendations.selectionChanged.connect(self._on_operations_changed)
        history.selectionChanged.connect(self._on_operations_changed)
        self._on_operations_changed()
        view_menu = self.menus["&View"]
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        # While the kill switch is on, a banner across the top says so over every pane.
        from widgets.kill_switch import KillSwitchBanner

        self.kill_switch_banner = KillSwitchBanner(self)
        self.kill_switch_banner.liftRequested.connect(self._on_banner_lift_requested)
        self.kill_switch_bar = QToolBar("Kill switch", self)
        self.kill_switch_bar.setObjectName("killSwitchBar")
        self.kill_switch_bar.setMovable(False)
        self.kill_switch_bar.toggleViewAction().setVisible(False)
        self.kill_switch_bar.addWidget(self.kill_switch_banner)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.kill_switch_bar)
        # The ceilings are one choice; the ticked one is the ceiling in force.
        self.ceiling_group = QActionGroup(self)
        self.ceiling_group.setExclusive(True)
        for level in range(len(CEILINGS)):
            self.ceiling_group.addAction(self.actions_by_id[f"ceiling_{level}"])
        self.menus["&Autonomy"].insertSeparator(self.actions_by_id["ceiling_0"])
        status_bar.ceilingChanged.connect(self._on_status_ceiling_changed)
        self._on_status_ceiling_changed(status_bar.ceiling)
        status_bar.killSwitchChanged.connect(self._on_status_kill_switch_changed)
        self._on_status_kill_switch_changed(status_bar.kill_switch_on)

        self.apply_theme(self._shell_theme)
        self.restore_layout()
        self._on_status_kill_switch_changed(status_bar.kill_switch_on)  # not the saved one
        self.installed = True

    # --- layout ----------------------------------------------------------------------

    def _dock(self, name: str, title: str, pane: QWidget, *,
              scroll: bool = False) -> QDockWidget:
        """`scroll`: the pane scrolls when the dock is smaller than the pane's minimum
        (the outcomes' plots, the audit browser's filters, the ask box), so a pane tabbed
        away does not keep the window from fitting a small screen."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState find docks by objectName
        if scroll:
            area = QScrollArea(dock)
            area.setObjectName(f"{name}Scroll")
            area.setFrameShape(QFrame.Shape.NoFrame)
            area.setWidgetResizable(True)
            area.setWidget(pane)
            dock.setWidget(area)
        else:
            dock.setWidget(pane)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

    def _default_layout(self) -> None:
        """What a night needs in front: incidents over the action history on the left
        (wide), the recommendation queue over the agents on the right; services,
        signals, metrics and audit are a tab away, each behind the pane it explains (the
        outcomes behind the incidents, the audit browser behind the audit, the ask box
        behind the agents)."""
        d = self.docks
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["incidents"])
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d["recommendations"])
        self.splitDockWidget(d["incidents"], d["history"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["recommendations"], d["coordination"], Qt.Orientation.Vertical)
        for front, behind in (("incidents", "services"), ("history", "signals"),
                              ("recommendations", "metrics"), ("coordination", "audit"),
                              ("incidents", "outcomes"), ("coordination", "audit_browser"),
                              ("coordination", "ask")):
            self.tabifyDockWidget(d[front], d[behind])
        for front in ("incidents", "history", "recommendations", "coordination"):
            d[front].raise_()
        self.resize(1600, 1000)
        self.resizeDocks([d["incidents"], d["recommendations"]], [860, 740],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([d["incidents"], d["history"]], [590, 340], Qt.Orientation.Vertical)
        self.resizeDocks([d["recommendations"], d["coordination"]], [560, 370],
                         Qt.Orientation.Vertical)
        self._default_state = self.saveState(STATE_VERSION)
        self._apply_state(self._default_state)

    def _apply_state(self, state: QByteArray) -> bool:
        """`restoreState`, working around Qt 6.12 leaving the tab bars of an earlier dock
        arrangement visible (stale copies, some at odd places) once docks are tabified:
        those are hidden first, and the layout makes the ones it uses anew."""
        for bar in self.findChildren(QTabBar):
            if bar.parent() is self:
                bar.hide()
        return self.restoreState(state, STATE_VERSION)

    def save_layout(self) -> None:
        self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(STATE_KEY, self.saveState(STATE_VERSION))
        self.settings.setValue(THEME_KEY, self.theme)
        self.settings.sync()

    def restore_layout(self) -> bool:
        """Apply the saved geometry and dock state; False when there was none (or stale)."""
        geometry = self.settings.value(GEOMETRY_KEY)
        state = self.settings.value(STATE_KEY)
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            restored = self._apply_state(state) and restored
            if not any(not dock.isHidden() for dock in self.docks.values()):
                # A layout with every pane closed (as a console that had put its panes in
                # a window already on screen without showing them saved it) is no layout:
                # the default one instead.
                self._apply_state(self._default_state)
                return False
            if restored and isinstance(geometry, QByteArray):
                # Docks the state hides may have kept the first restore from shrinking
                # the window to its saved size (their minimums): once more, now.
                self.restoreGeometry(geometry)
        return restored

    def event(self, event: QEvent) -> bool:
        # Every pane is painted inside this window's UpdateRequest: with this frame in
        # Python the GIL stays with the GUI thread for the whole repaint (see
        # widgets/process.py, "Painting").
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.installed:  # closed while starting: keep the saved layout as it was
            self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
            self.settings.sync()
            super().closeEvent(event)
            self.closed.emit()
            return
        self.save_layout()
        for window in list(self.review_windows):
            window.close()  # each waits for its own verification
        self.review_windows.clear()
        for dialog in (self.settings_dialog, self.assess_wizard, self.bundle_dialog,
                       self.recording_dialog, self.record_viewer, self.wallboard):
            if dialog is not None:
                dialog.close()
        # Wait for the reads and saves in flight before the window and its children go.
        self.outcomes_pane.shutdown()
        self.audit_browser.shutdown()
        if self.settings_dialog is not None:
            self.settings_dialog.shutdown()
        if self.assess_wizard is not None:
            self.assess_wizard.shutdown()
        if self.notifier is not None:
            self.notifier.shutdown()
        self.worker.close()
        self.bridge.close()
        super().closeEvent(event)
        self.closed.emit()

    # --- actions ---------------------------------------------------------------------

    def apply_theme(self, name: str) -> None:
        sheet = load_stylesheet(name)
        if self.styleSheet() != sheet:  # the frame has its theme from the start: setting
            self.setStyleSheet(sheet)  # it again re-polished every new pane for nothing
        self.metrics_pane.set_colors(PLOT_COLORS[name])
        for pane in (self.services_pane, self.signals_pane, self.audit_pane):
            pane.model.set_colors(STATE_COLORS[name])
        for new_pane in (self.incidents_pane, self.recommendations_pane, self.history_pane,
                         self.coordination_pane, self.ask_pane):
            new_pane.set_theme(name)
        self.outcomes_pane.set_colors(PLOT_COLORS[name], STATE_COLORS[name])
        self.theme = name

    def toggle_theme(self) -> None:
        self.apply_theme(next_theme(self.theme))
        self.settings.setValue(THEME_KEY, self.theme)

    def set_speed(self, speed: float) -> None:
        self.clock.speed = min(max(speed, SPEED_MIN), SPEED_MAX)
        self.status.show_clock()

    def faster(self) -> None:
        self.set_speed(self.clock.speed * 2)

    def slower(self) -> None:
        self.set_speed(self.clock.speed / 2)

    def notify(self, message: str, *, error: bool = False) -> None:
        """The window's notification sink (failed tasks, denials, scenario end)."""
        self.status.notify(message, error=error)

    def show_dock(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    def focus_ask(self) -> None:
        """Bring the ask box to the front with its question selected (Ctrl+L)."""
        self.show_dock("ask")
        self.ask_pane.focus_input()

    def open_wallboard(self) -> QWidget | None:
        """The read-only wallboard, full screen (one instance; Esc leaves it)."""
        if self.wallboard is None and self._make_wallboard is not None:
            self.wallboard = self._make_wallboard(self)
        if self.wallboard is None:
            self.notify("No wallboard in this console", error=True)
            return None
        # A second display (the video wall) takes it; with one, it covers this one.
        others = [s for s in QGuiApplication.screens() if s is not self.screen()]
        if others:
            self.wallboard.setGeometry(others[-1].geometry())
        self.wallboard.showFullScreen()
        self.wallboard.activateWindow()
        return self.wallboard

    def open_link(self, ref: str) -> None:
        """Follow a record link from a pane: the record opens in the pane that shows it,
        or in the record viewer (widgets/record_links.py)."""
        self.links.open(ref)

    def _viewer(self) -> RecordViewer | None:
        """The record viewer, made on first use (None when no reader was given)."""
        if self.record_viewer is None and self._read_record is not None:
            from widgets.record_viewer import RecordViewer

            self.record_viewer = RecordViewer(self._read_record, self.worker, self)
        return self.record_viewer

    def attach_notifier(self, notifier: DesktopNotifier) -> None:
        """The desktop notifier: a clicked notice opens its record; shut down on close."""
        self.notifier = notifier
        notifier.setParent(self)
        notifier.noticeClicked.connect(self._on_notifier_notice_clicked)

    # --- tools -----------------------------------------------------------------------

    def open_settings(self) -> None:
        """The settings dialog, non-modal; one instance, brought to the front again."""
        if self.settings_dialog is None:
            self.settings_dialog = self._make_settings(self)
        self._present(self.settings_dialog)

    def open_assessment(self) -> None:
        """The maturity wizard, non-modal. The open one is brought to the front; once
        finished or cancelled (its worker is then shut down) the next is a fresh one."""
        wizard = self.assess_wizard
        if wizard is not None and not wizard.isVisible():
            wizard.shutdown()
            wizard.deleteLater()
            wizard = None
        if wizard is None:
            wizard = self.assess_wizard = self._make_assessment(self)
        self._present(wizard)

    @staticmethod
    def _present(window: QWidget) -> None:
        """Show a tool's window, or bring it back to the front when already open."""
        if window.isVisible():
            window.raise_()
        window.show()
        window.activateWindow()

    def choose_bundle(self) -> None:
        """Ask for an exported audit bundle (never blocking the console), then review it."""
        if self.bundle_dialog is None:
            dialog = QFileDialog(self, "Open audit bundle", "", BUNDLE_FILTER)
            dialog.setObjectName("bundleDialog")
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
            dialog.fileSelected.connect(self._on_bundle_dialog_file_selected)
            self.bundle_dialog = dialog
        self.bundle_dialog.open()

    def open_bundle(self, path: Path) -> QMainWindow | None:
        """The read-only review window of the bundle at `path` (None, and the reason in
        the status bar, when it is not a bundle). Each stays open until closed."""
        from console.audit_bundle_read import BundleError
        from widgets.audit_review import open_review_window

        try:
            window = open_review_window(path, self)
        except BundleError as exc:
            self.notify(str(exc), error=True)
            return None
        return self._keep_shown(window)

    def _keep_shown(self, window: QMainWindow) -> QMainWindow:
        """Show a read-only window (a bundle's review, a recording) and keep it until it
        is closed; those closed since are let go. They all close with the console."""
        for closed in [w for w in self.review_windows if not w.isVisible()]:
            self.review_windows.remove(closed)
            closed.deleteLater()
        self.review_windows.append(window)
        window.show()
        return window

    def _on_bundle_dialog_file_selected(self, path: str) -> None:
        if path:
            self.open_bundle(Path(path))

    def choose_recording(self) -> None:
        """Ask for a recording folder (never blocking the console), then show it."""
        if self.recording_dialog is None:
            dialog = QFileDialog(self, "Open recording (a recording folder, a PetShop issue "
                                       "or a Nezha case)")
            dialog.setObjectName("recordingDialog")
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
            dialog.fileSelected.connect(self._on_recording_dialog_file_selected)
            self.recording_dialog = dialog
        self.recording_dialog.open()

    def open_recording(self, path: Path) -> QMainWindow:
        """The read-only window of the recording at `path`; it investigates the recording
        off the GUI thread and says in itself what is wrong with a bad folder. Each stays
        open until closed (and closes with the console, as the review windows do)."""
        return self._keep_shown(self._make_recording_window(Path(path), self))

    def _on_recording_dialog_file_selected(self, path: str) -> None:
        if path:
            self.open_recording(Path(path))

    def _on_audit_browser_record_followed(self, kind: str, ident: str) -> None:
        self.open_link(f"{kind}:{ident}")

    def _on_notifier_notice_clicked(self, kind: str, ident: str) -> None:
        self.open_link(f"{kind}:{ident}")

    def _on_operations_changed(self) -> None:
        can = self.recommendations_pane.can_decide
        self.actions_by_id["approve"].setEnabled(can)
        self.actions_by_id["reject"].setEnabled(can)
        self.actions_by_id["rollback"].setEnabled(self.history_pane.can_roll_back)

    def _on_worker_failed(self, message: str) -> None:
        self.notify(message, error=True)

    def _on_action_kill_switch(self) -> None:
        self.status.request_kill_switch(not self.status.kill_switch_on)

    def reset_layout(self) -> None:
        """View > Reset layout: every pane where it was when the console was new."""
        self._apply_state(self._default_state)
        for name in ("incidents", "history", "recommendations", "coordination"):
            self.docks[name].raise_()
        self._on_status_kill_switch_changed(self.status.kill_switch_on)

    def _on_status_ceiling_changed(self, level: int) -> None:
        for n, action in enumerate(self.ceiling_group.actions()):
            action.blockSignals(True)
            action.setChecked(n == level)
            action.blockSignals(False)

    def _on_banner_lift_requested(self) -> None:
        self.status.request_kill_switch(False)

    def _on_status_kill_switch_changed(self, on: bool) -> None:
        self.kill_switch_banner.set_since(self.status.kill_switch_since)
        self.kill_switch_bar.setVisible(on)
        action = self.actions_by_id["kill_switch"]
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)


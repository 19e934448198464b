"""The main window: it composes the panes into docks, the status bar and the actions, and
keeps the layout and theme in QSettings. It holds no business logic of its own."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from console.clock import SimClock
from widgets.actions import ACTIONS, build_actions, fill_menus
from widgets.bridge import BusBridge
from widgets.metrics_pane import MetricsPane
from widgets.status_bar import ConsoleStatusBar
from widgets.tables import AuditPane, ServicesPane, SignalsPane
from widgets.theme import (
    DEFAULT_THEME,
    PLOT_COLORS,
    STATE_COLORS,
    THEMES,
    load_stylesheet,
    next_theme,
)

STATE_VERSION = 1
SPEED_MIN, SPEED_MAX = 0.25, 1000.0
GEOMETRY_KEY, STATE_KEY, THEME_KEY = "mainWindow/geometry", "mainWindow/state", "ui/theme"


class MainWindow(QMainWindow):
    """Emits ``closed()`` after the layout is saved and the bridge has let go of the bus."""

    closed = Signal()

    def __init__(self, *, bridge: BusBridge, clock: SimClock, settings: QSettings,
                 services: ServicesPane, signals: SignalsPane, metrics: MetricsPane,
                 audit: AuditPane, status_bar: ConsoleStatusBar, title: str = "Watchfloor",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle(title)
        self.bridge = bridge
        bridge.setParent(self)
        self.clock = clock
        self.settings = settings
        self.services_pane, self.signals_pane = services, signals
        self.metrics_pane, self.audit_pane = metrics, audit
        self.status = status_bar
        self.setStatusBar(status_bar)
        self.setDockNestingEnabled(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowNestedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.docks = {
            "services": self._dock("servicesDock", "Services", services),
            "signals": self._dock("signalsDock", "Signals", signals),
            "metrics": self._dock("metricsDock", "Metrics", metrics),
            "audit": self._dock("auditDock", "Audit", audit),
        }
        self._default_layout()
        services.serviceSelected.connect(metrics.show_service)
        if services.selected_service is not None:
            metrics.show_service(services.selected_service)

        self.actions_by_id = build_actions(self, ACTIONS, {
            "quit": self.close,
            "toggle_theme": self.toggle_theme,
            "faster": self.faster,
            "slower": self.slower,
            "kill_switch": self._on_action_kill_switch,
        })
        self.menus = fill_menus(self.menuBar(), ACTIONS, self.actions_by_id)
        view_menu = self.menus["&View"]
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        status_bar.killSwitchChanged.connect(self._on_status_kill_switch_changed)
        self._on_status_kill_switch_changed(status_bar.kill_switch_on)

        saved_theme = str(settings.value(THEME_KEY, DEFAULT_THEME))
        self.theme = ""
        self.apply_theme(saved_theme if saved_theme in THEMES else DEFAULT_THEME)
        self.restore_layout()

    # --- layout ----------------------------------------------------------------------

    def _dock(self, name: str, title: str, pane: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState find docks by objectName
        dock.setWidget(pane)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

    def _default_layout(self) -> None:
        """Services over signals on the left (wide), metrics over audit on the right."""
        d = self.docks
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["services"])
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d["metrics"])
        self.splitDockWidget(d["services"], d["signals"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["metrics"], d["audit"], Qt.Orientation.Vertical)
        self.resize(1600, 1000)
        self.resizeDocks([d["services"], d["metrics"]], [930, 670], Qt.Orientation.Horizontal)
        # Enough height for the demo estate's 20 services without a scroll bar.
        self.resizeDocks([d["services"], d["signals"]], [500, 430], Qt.Orientation.Vertical)
        self.resizeDocks([d["metrics"], d["audit"]], [560, 370], Qt.Orientation.Vertical)

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
            restored = self.restoreState(state, STATE_VERSION) and restored
        return restored

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.bridge.close()
        super().closeEvent(event)
        self.closed.emit()

    # --- actions ---------------------------------------------------------------------

    def apply_theme(self, name: str) -> None:
        self.setStyleSheet(load_stylesheet(name))
        self.metrics_pane.set_colors(PLOT_COLORS[name])
        for pane in (self.services_pane, self.signals_pane, self.audit_pane):
            pane.model.set_colors(STATE_COLORS[name])
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

    def _on_action_kill_switch(self) -> None:
        self.status.request_kill_switch(not self.status.kill_switch_on)

    def _on_status_kill_switch_changed(self, on: bool) -> None:
        action = self.actions_by_id["kill_switch"]
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)

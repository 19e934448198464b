"""The status bar: simulated time, autonomy, the kill switch, who is signed in, which
console of the team leads, signal counts, and the console's one notification sink
(failures are shown here, never lost)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy, QStatusBar, QWidget

from console.clock import SimClock
from console.domain import AlertStatus
from console.domain import Signal as AlertSignal
from console.events import (
    HandlerFailed,
    LeadershipChanged,
    OperationDenied,
    OperationDone,
    ScenarioFinished,
    SignalsReceived,
    SourceHealthChanged,
)
from console.operations import PermissionDenied
from console.service import Status, WatchfloorService
from widgets.bridge import BusBridge
from widgets.elided import ElidedLabel
from widgets.kill_switch import LiftKillSwitchDialog

INFO_NOTICE_MS = 15_000
NOTICE_HISTORY = 50


class ConsoleStatusBar(QStatusBar):
    """Emits ``killSwitchChanged(bool)`` and ``ceilingChanged(int)`` whenever the stored
    kill-switch state and autonomy ceiling are re-read."""

    killSwitchChanged = Signal(bool)
    ceilingChanged = Signal(int)

    def __init__(self, *, service: WatchfloorService, clock: SimClock, bridge: BusBridge,
                 user: str, scenario_name: str = "", signal_total: int = 0,
                 recent_signals: Iterable[AlertSignal] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setSizeGripEnabled(False)
        self._service = service
        self._clock = clock
        self._user = user
        self._scenario_name = scenario_name
        self._signal_total = signal_total
        self._alert_state: dict[str, AlertStatus] = {}
        self._track(recent_signals)
        self.notices: list[tuple[str, bool]] = []
        """(message, is_error) newest last, bounded; the tooltip of the notice shows them."""
        self.notice_about = ""
        """The record the notice shown is about ("recommendation:12"), "" for none: a
        notice about a record is withdrawn once it is no longer true (`withdraw`)."""

        self.clock_label = self._label("clockLabel", "Simulated time and speed")
        self.autonomy_label = self._label("autonomyLabel", "Effective autonomy ceiling")
        self.kill_switch = QPushButton("Kill switch: off", self)
        self.kill_switch.setObjectName("killSwitch")
        self.kill_switch.setCheckable(True)
        self.kill_switch.clicked.connect(self._on_kill_switch_clicked)
        bold = QFont(self.kill_switch.font())
        bold.setBold(True)  # its "on" text is bold and must never be clipped
        self.kill_switch.setMinimumWidth(
            QFontMetrics(bold).horizontalAdvance("KILL SWITCH ON") + 32)
        self.lift_dialog: LiftKillSwitchDialog | None = None
        self.ceiling = 0
        """The autonomy ceiling in force, as last read (the kill switch aside)."""
        self.kill_switch_since = ""
        """Who pulled the kill switch and when, as seen by this console ("" unknown)."""
        self.user_label = self._label("userLabel", "Signed-in user and role")
        self.signal_label = self._label("signalCountLabel",
                                        "Signals stored, and alerts firing now")
        self.sources_label = self._label("sourcesLabel", "Signal sources")
        self.sources_label.setMinimumWidth(40)  # may be clipped on a narrow window
        self.sources_label.setVisible(False)  # shown once an outside source reports
        self._sources: dict[str, tuple[str, str]] = {}
        self.team_label = self._label("teamLabel", "Which console of the team runs the agents")
        self.team_label.setVisible(False)  # shown once the console has joined its team
        self.team: LeadershipChanged | None = None
        self.engine_label = self._label(
            "engineLabel", "The engine process this window follows: it plays the estate, "
            "runs the agents, the sources and every action approved here")
        self.engine_label.setVisible(False)  # shown when the window follows an engine
        self.critical_chip = QPushButton(self)
        self.critical_chip.setObjectName("newCriticalChip")
        self.critical_chip.setCursor(Qt.CursorShape.PointingHandCursor)
        self.critical_chip.hide()  # shown while new critical incidents wait to be seen
        self.notice_label = ElidedLabel("", self)
        self.notice_label.setObjectName("noticeLabel")
        # A long notice is elided (the tooltip has it whole), never widening the window.
        self.notice_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self._on_notice_timer_timeout)

        self.addWidget(self.critical_chip)
        self.addWidget(self.notice_label, 1)
        for widget in (self.sources_label, self.signal_label, self.clock_label,
                       self.team_label, self.engine_label, self.autonomy_label,
                       self.kill_switch,
                       self.user_label):
            self.addPermanentWidget(widget)

        bridge.signalsReceived.connect(self._on_bridge_signals)
        bridge.estateSnapshot.connect(self._on_bridge_snapshot)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        bridge.operationDenied.connect(self._on_bridge_operation_denied)
        bridge.scenarioFinished.connect(self._on_bridge_scenario_finished)
        bridge.handlerFailed.connect(self._on_bridge_handler_failed)
        bridge.sourceHealth.connect(self._on_bridge_source_health)
        bridge.leadershipChanged.connect(self._on_bridge_leadership_changed)

        role = service.role_of(user)
        self.user_label.setText(f"{user} ({role})" if role else f"{user} (not a user)")
        self.show_clock()
        self.refresh_status()
        self._show_counts()
        self._show_sources()

    def _label(self, name: str, tip: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setToolTip(tip)
        return label

    # --- kill switch and autonomy --------------------------------------------------

    @property
    def kill_switch_on(self) -> bool:
        return self.kill_switch.isChecked()

    def request_kill_switch(self, on: bool, reason: str = "") -> bool:
        """Pull the kill switch at once, as the signed-in user; lifting it first asks for
        a reason (`LiftKillSwitchDialog`, opened here; the switch is lifted when it is
        given). False, and a notice, when refused; False too while the reason is asked."""
        if not on and not reason.strip():
            self._ask_lift_reason()
            return False
        try:
            self._service.set_kill_switch(on, as_user=self._user,
                                          reason=reason or "pulled from the console")
        except PermissionDenied as exc:
            self.notify(f"Kill switch not changed: {exc}", error=True)
            self.refresh_status()
            return False
        self.refresh_status()
        self.notify("Kill switch ON: every agent is at autonomy level 0" if on
                    else "Kill switch lifted: autonomy back to its ceiling", error=False)
        return True

    def request_ceiling(self, level: int) -> bool:
        """Set the autonomy ceiling as the signed-in user (admin; audited); False, and a
        notice, when refused."""
        try:
            self._service.set_autonomy_ceiling(
                level, as_user=self._user, reason="set from the console's Autonomy menu")
        except PermissionDenied as exc:
            self.notify(f"Autonomy ceiling not changed: {exc}", error=True)
            self.refresh_status()
            return False
        self.refresh_status()
        self.notify(f"Autonomy ceiling {level}: no agent acts above level {level}"
                    + (" (the kill switch still holds every agent at 0)"
                       if self.kill_switch_on else ""))
        return True

    def _ask_lift_reason(self) -> None:
        if self.lift_dialog is not None:
            self.lift_dialog.raise_()
            self.lift_dialog.activateWindow()
            return
        self.refresh_status()  # the button stays as stored until the reason is given
        dialog = LiftKillSwitchDialog(self._service.status().autonomy_ceiling,
                                      self.window())
        dialog.reasonGiven.connect(self._on_lift_dialog_reason)
        dialog.finished.connect(self._on_lift_dialog_finished)
        self.lift_dialog = dialog
        dialog.open()

    def _on_lift_dialog_reason(self, reason: str) -> None:
        self.request_kill_switch(False, reason)

    def _on_lift_dialog_finished(self, _result: int) -> None:
        self.lift_dialog = None

    def refresh_status(self) -> Status:
        status = self._service.status()
        self.kill_switch.blockSignals(True)
        self.kill_switch.setChecked(status.kill_switch)
        self.kill_switch.blockSignals(False)
        self.kill_switch.setText("KILL SWITCH ON" if status.kill_switch
                                 else "Kill switch: off")
        self.kill_switch.setToolTip(
            "The agents are stopped (autonomy level 0). Press to lift the kill switch: "
            "you will be asked why (kept in the audit log)" if status.kill_switch else
            "Agents work up to the autonomy ceiling. Press (or Ctrl+Shift+K) to stop "
            "every agent at once: autonomy level 0, their queued runs cancelled")
        if status.kill_switch:
            text = (f"KILL SWITCH ON \u2014 autonomy {status.effective_ceiling} "
                    f"(ceiling {status.autonomy_ceiling})")
        else:
            text = f"Autonomy ceiling {status.effective_ceiling}"
        self.autonomy_label.setText(text)
        self._set_property(self.autonomy_label, "killSwitch",
                           "true" if status.kill_switch else "false")
        self.ceiling = status.autonomy_ceiling
        self.killSwitchChanged.emit(status.kill_switch)
        self.ceilingChanged.emit(status.autonomy_ceiling)
        return status

    def _on_kill_switch_clicked(self, checked: bool) -> None:
        self.request_kill_switch(checked)

    def _on_bridge_operation_done(self, event: OperationDone) -> None:
        if event.operation == "autonomy.kill_switch":
            on = bool(event.result.get("after", True)) if event.result else True
            who = event.initiator.removeprefix("user:")
            self.kill_switch_since = (f"pulled by {who} at "
                                      f"{self._clock.now().strftime('%H:%M')}") if on else ""
        if event.changes.settings:
            self.refresh_status()

    def _on_bridge_operation_denied(self, event: OperationDenied) -> None:
        self.notify(f"{event.operation} denied for {event.initiator}: {event.reason}",
                    error=True)

    # --- clock and counts ----------------------------------------------------------

    def show_clock(self) -> None:
        now = self._clock.now().strftime("%H:%M:%S UTC")
        speed = f"\u00d7{self._clock.speed:g}"
        prefix = f"{self._scenario_name} \u00b7 " if self._scenario_name else ""
        self.clock_label.setText(f"{prefix}{now} \u00b7 {speed}")

    def _on_bridge_snapshot(self, _event: object) -> None:
        self.show_clock()

    def _track(self, signals: Iterable[AlertSignal]) -> None:
        for sig in signals:
            self._alert_state[sig.fingerprint] = sig.status

    @property
    def firing_count(self) -> int:
        return sum(1 for s in self._alert_state.values() if s is AlertStatus.FIRING)

    @property
    def signal_total(self) -> int:
        return self._signal_total

    def _on_bridge_signals(self, event: SignalsReceived) -> None:
        self._signal_total += len(event.signals)
        self._track(event.signals)
        self._show_counts()

    def _show_counts(self) -> None:
        self.signal_label.setText(f"Signals {self._signal_total:,} \u00b7 "
                                  f"firing {self.firing_count:,}")

    # --- sources -------------------------------------------------------------------

    def _on_bridge_source_health(self, event: SourceHealthChanged) -> None:
        before = self._sources.get(event.source, ("ok", ""))[0]
        self._sources[event.source] = (event.state, event.detail)
        self.sources_label.setVisible(True)
        self._show_sources()
        if event.state != before:
            if event.state == "ok":
                self.notify(f"{event.source} is answering again")
            else:
                self.notify(f"{event.source} degraded: {event.detail}", error=True)

    def _show_sources(self) -> None:
        bad = sorted(name for name, (state, _) in self._sources.items() if state != "ok")
        if bad:
            self.sources_label.setText(f"Degraded: {', '.join(bad)}")
        else:
            self.sources_label.setText("Sources ok")
        self.sources_label.setToolTip("\n".join(
            f"{name}: {state}{' - ' + detail if detail else ''}"
            for name, (state, detail) in sorted(self._sources.items())) or "estate (in-process)")
        self._set_property(self.sources_label, "level", "error" if bad else "info")

    # --- the team ------------------------------------------------------------------

    def _on_bridge_leadership_changed(self, event: LeadershipChanged) -> None:
        before, self.team = self.team, event
        others = len(event.members) - 1
        consoles = f" \u00b7 {len(event.members)} consoles" if others > 0 else ""
        connected = "Connected: " + ", ".join(event.members) if event.members else ""
        if event.leading:
            text = f"Agents: this console{consoles}"
            tip = ("This console leads the team: it runs the agents, the estate and the "
                   "sources, and the queued actions.")
        elif event.leader:
            text = f"Agents: {event.leader}{consoles}"
            tip = (f"{event.leader} leads the team (runs the agents, the estate and the "
                   "sources); this console shows its changes as they are made, and what "
                   "is approved here runs there.")
        else:
            text = "Agents: no leader yet"
            tip = ("No console leads the team at the moment: the next to try takes over "
                   "within a few seconds.")
        self.team_label.setText(text)
        self.team_label.setToolTip("\n".join(filter(None, (tip, connected))))
        self._set_property(self.team_label, "level",
                           "info" if event.leading or event.leader else "error")
        self.team_label.setVisible(True)
        if before is not None and (before.leading, before.leader) != (event.leading,
                                                                      event.leader):
            if event.leading:
                self.notify("This console leads the team now: it runs the agents")
            elif event.leader:
                self.notify(f"{event.leader} leads the team now: it runs the agents")
            else:
                self.notify("The team has no leader at the moment", error=True)

    def show_engine(self, text: str, *, error: bool = False) -> None:
        """The engine's state as the window's keeper last saw it (console/engine_process.py)."""
        self.engine_label.setText(text)
        self._set_property(self.engine_label, "level", "error" if error else "info")
        self.engine_label.setVisible(True)

    # --- new critical incidents ----------------------------------------------------

    def show_new_critical(self, count: int, names: list[str]) -> None:
        """The chip counting new critical incidents that did not take the screen (the
        operator was typing or in a dialog); hidden at 0. Clicking it shows the newest
        (widgets/attention.py)."""
        self.critical_chip.setVisible(count > 0)
        self.critical_chip.setText(f"{count} new critical")
        self.critical_chip.setToolTip(
            f"New critical incidents: {', '.join(names)}. Click to show the newest.")

    # --- notices -------------------------------------------------------------------

    def notify(self, message: str, *, error: bool = False, about: str = "") -> None:
        """Show a notice; errors stay until the next notice (or, with `about`, until what
        they say of that record stops being true: `withdraw`), info fades after a while."""
        self.notices.append((message, error))
        del self.notices[:-NOTICE_HISTORY]
        self.notice_about = about
        self.notice_label.setText(message)
        self.notice_label.setToolTip("\n".join(m for m, _ in self.notices[-10:]))
        self._set_property(self.notice_label, "level", "error" if error else "info")
        if error:
            self._notice_timer.stop()
        else:
            self._notice_timer.start(INFO_NOTICE_MS)

    def withdraw(self, about: str) -> None:
        """What the notice about `about` said is no longer true (the approval was given,
        the incident resolved): it leaves the bar, kept only in the tooltip's history."""
        if about and self.notice_about == about:
            self._notice_timer.stop()
            self._on_notice_timer_timeout()

    @property
    def notice(self) -> str:
        return self.notice_label.text()

    def _on_notice_timer_timeout(self) -> None:
        self.notice_label.clear()
        self.notice_about = ""
        self._set_property(self.notice_label, "level", "info")

    def _on_bridge_scenario_finished(self, event: ScenarioFinished) -> None:
        self.notify(f"Scenario {event.scenario} finished")

    def _on_bridge_handler_failed(self, event: HandlerFailed) -> None:
        self.notify(f"{event.handler} failed on {event.event_type}: {event.error}", error=True)

    @staticmethod
    def _set_property(widget: QWidget, name: str, value: str) -> None:
        if widget.property(name) != value:
            widget.setProperty(name, value)
            widget.style().unpolish(widget)
            widget.style().polish(widget)

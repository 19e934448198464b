"""Desktop notifications: new serious incidents and approvals waiting on this operator.

What to announce is decided by `console.notify_rules` (no Qt, tested alone); this
object only listens and shows. It uses the system tray where there is one
(`QSystemTrayIcon.isSystemTrayAvailable()`), and otherwise hands each notice to the
console's one notification sink (the status bar's `notify`), so nothing is lost on a
desktop without a tray. Pending recommendations are re-read on a worker thread, only
when an operation changed recommendations or users (a role change may make this user
an approver).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QSystemTrayIcon

from console.domain import Recommendation
from console.notify_rules import Notice, NotifyRules
from widgets.offthread import BackgroundJob
from widgets.theme import DEFAULT_THEME, STATE_COLORS

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

Sink = Callable[..., None]
MESSAGE_MS = 15_000


def dot_icon(color: str) -> QIcon:
    """A plain coloured disc: the tray needs an icon and the theme ships none."""
    pixmap = QPixmap(32, 32)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(color))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(3, 3, 26, 26)
    painter.end()
    return QIcon(pixmap)


class DesktopNotifier(QObject):
    """Shows the notices `rules` returns, in the tray or through `sink`.

    Signals:

    - ``notified(Notice)``: a notice was shown (tray or sink).
    - ``noticeClicked(str, str)``: the operator clicked the last tray message; (kind, id)
      of what it is about, e.g. ("incident", "12"), for the main window to route.

    `pending` returns the recommendations still pending (it runs on a worker thread);
    `now` is the console clock. With `tray_available=None` the platform is asked.
    """

    notified = Signal(object)
    noticeClicked = Signal(str, str)

    def __init__(self, *, rules: NotifyRules, bridge: BusBridge | None,
                 pending: Callable[[], Sequence[Recommendation]], sink: Sink,
                 now: Callable[[], datetime] | None = None,
                 role_of: Callable[[str], str | None] | None = None,
                 tray_available: bool | None = None, icon: QIcon | None = None,
                 withdraw: Callable[[str], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("desktopNotifier")
        self.rules = rules
        self._pending, self._sink = pending, sink
        self._now = now or (lambda: datetime.now(UTC))
        self._role_of = role_of
        # With `withdraw`, the sink is told what each notice is about (`about=`), and told
        # to drop it once it is no longer true: an approval given, an incident resolved.
        self._withdraw = withdraw
        self._standing: set[str] = set()
        self.shown: list[Notice] = []
        self._last: Notice | None = None
        available = QSystemTrayIcon.isSystemTrayAvailable() if tray_available is None \
            else tray_available
        self.tray: QSystemTrayIcon | None = None
        if available:
            self.tray = QSystemTrayIcon(icon or dot_icon(STATE_COLORS[DEFAULT_THEME].blue),
                                        self)
            self.tray.setToolTip("Watchfloor")
            self.tray.messageClicked.connect(self._on_tray_message_clicked)
            self.tray.show()
        self._job = BackgroundJob("notify-pending", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        if bridge is not None:
            bridge.operationDone.connect(self._on_bridge_operation_done)
            incidents = getattr(bridge, "incidentsUpdated", None)
            if incidents is not None:
                incidents.connect(self._on_bridge_incidents_updated)

    @property
    def uses_tray(self) -> bool:
        return self.tray is not None

    # --- inputs -----------------------------------------------------------------------

    def incidents_updated(self, incidents: Sequence[Any]) -> None:
        """Incidents were opened or changed (an IncidentsUpdated event's incidents)."""
        self._show_all(self.rules.incidents(incidents))
        self._withdraw_all(f"incident:{inc.id}" for inc in incidents if inc.state != "open")

    def check_approvals(self) -> None:
        """Re-read the pending recommendations off the GUI thread, then announce."""
        pending, role_of, user = self._pending, self._role_of, self.rules.user

        def work() -> tuple[Sequence[Recommendation], str | None, bool]:
            if role_of is None:
                return pending(), None, False
            return pending(), role_of(user), True

        self._job.submit(work)

    def _on_bridge_incidents_updated(self, event: Any) -> None:
        self.incidents_updated(event.incidents)

    def _on_bridge_operation_done(self, event: Any) -> None:
        if event.changes.recommendations or event.changes.users:
            self.check_approvals()

    def _on_job_finished(self, outcome: tuple[Sequence[Recommendation], str | None,
                                              bool]) -> None:
        recommendations, role, known = outcome
        if known:
            self.rules.set_role(role)
        self._show_all(self.rules.approvals(recommendations, self._now()))
        now = self._now()
        waiting = {f"recommendation:{r.id}" for r in recommendations if r.state == "pending"
                   and (r.expires_at is None or r.expires_at > now)}
        self._withdraw_all(ref for ref in self._standing
                           if ref.startswith("recommendation:") and ref not in waiting)

    def _on_job_failed(self, message: str) -> None:
        self._sink(f"Approvals not checked: {message}", error=True)

    # --- output -----------------------------------------------------------------------

    def _show_all(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self.show_notice(notice)

    def show_notice(self, notice: Notice) -> None:
        self.shown.append(notice)
        self._last = notice
        if self.tray is not None:
            icon = (QSystemTrayIcon.MessageIcon.Critical if notice.severity == "critical"
                    else QSystemTrayIcon.MessageIcon.Warning)
            self.tray.showMessage(notice.title, notice.message, icon, MESSAGE_MS)
        elif self._withdraw is not None:
            self._standing.add(notice.ref)
            self._sink(" ".join(f"{notice.title}: {notice.message}".split()),
                       error=notice.severity == "critical", about=notice.ref)
        else:
            text = " ".join(f"{notice.title}: {notice.message}".split())
            self._sink(text, error=notice.severity == "critical")
        self.notified.emit(notice)

    def _withdraw_all(self, refs: Iterable[str]) -> None:
        for ref in list(refs):
            if ref in self._standing and self._withdraw is not None:
                self._standing.discard(ref)
                self._withdraw(ref)

    def _on_tray_message_clicked(self) -> None:
        if self._last is not None:
            kind, _, ident = self._last.ref.partition(":")
            self.noticeClicked.emit(kind, ident)

    def shutdown(self) -> None:
        self._job.shutdown()
        if self.tray is not None:
            self.tray.hide()

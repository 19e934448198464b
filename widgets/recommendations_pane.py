"""The recommendation queue: what the agents propose, with its preview and the policy's
answer, and one click (or A / R) to approve or reject it.

The selected recommendation is shown as a decision card (widgets/decision_card.py): a tab
per cause of its incident, each with its own recommendation, and the answers an approver
weighs, with Approve, Reject and Roll back on it; the full preview and the why are in
the details box under it, which takes the room that is left.

Approving and rejecting are the engine's operations, run on the `Worker`; the pane shows
the preview it approves (the approval is bound to that preview's hash) and what came of
it. Whether an approval suffices, who may give it and whether four eyes are needed is the
policy engine's to say (`ExecutionEngine.standing`), never the pane's. The buttons
follow the signed-in user's role (`console.auth.can`); where the approval needs someone
else, "Sign in a second person…" lets them sign in here and approve as themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.auth import can
from console.execution import ExecutionEngine
from console.storage.repos import ROLES
from console.storage.repos_causes import Cause
from widgets.bridge import BusBridge
from widgets.card_rollback import CardRollback
from widgets.decision_card import DecisionCard
from widgets.decision_text import run_to_roll_back
from widgets.delegates import ConfidenceDelegate
from widgets.elided import ElidedLabel
from widgets.ops import Worker, describe_error
from widgets.recommendation_model import OPEN, RecommendationTableModel, Standing
from widgets.recommendation_parts import RecommendationFilterProxy, RejectDialog
from widgets.recommendation_view import document_css, recommendation_html
from widgets.tables import make_table
from widgets.theme import DEFAULT_THEME, STATE_COLORS

RELOAD_MS = 150  # a burst of lifecycle events makes one read
STANDING_MS = 5000  # how often open previews are checked for staleness


class RecommendationsPane(QWidget):
    """Emits ``linkActivated(str)`` with a record link the operator clicked (evidence),
    and ``selectionChanged()`` when the selected recommendation or what may be done with
    it changed (the window enables its A / R actions from `can_decide`)."""

    linkActivated = QtSignal(str)
    selectionChanged = QtSignal()

    def __init__(self, model: RecommendationTableModel, *, engine: ExecutionEngine,
                 user: str, bridge: BusBridge, worker: Worker,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recommendationsPane")
        self.model = model
        self._engine, self._user, self._worker = engine, user, worker
        self._colors = STATE_COLORS[DEFAULT_THEME]
        self._busy = False
        self._wanted: set[int] = set()
        self._reads = self._applied = 0  # reads may finish out of order off the GUI thread
        self.dialog: RejectDialog | None = None
        self.second: Any = None  # the open "sign in a second person" dialog
        self._role: str | None = None  # the signed-in user's, read with the queue
        self._role_read = False  # until then nothing is offered
        # (recommendation id, the states in which the message shown is still true): a
        # message about a run leaves once the run has moved on.
        self._message_holds: tuple[int, tuple[str, ...]] | None = None
        self.pinned = False
        self._following = False

        self.proxy = RecommendationFilterProxy(model, self)
        self.open_only = QCheckBox("Waiting only", self)
        self.open_only.setObjectName("recommendationOpenOnly")
        self.open_only.toggled.connect(self._on_open_only_toggled)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("recommendationFilter")
        self.filter.setPlaceholderText("Filter recommendations\u2026")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter_changed)
        self.table = make_table("recommendationsTable", self.proxy,
                                ("88", "00:00:00", "", "0.00 \u2588\u2588\u2588",
                                 "medium", "needs approver", "executing"), self, fit=True)
        # Three rows stay in sight under the card; the title column gets the room the
        # others leave (a title cut short says so with an ellipsis and its tooltip).
        rows = self.table.verticalHeader().defaultSectionSize()
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height()
                                    + 3 * rows + 4)
        self.table.horizontalHeader().setSectionResizeMode(
            RecommendationTableModel.WHAT, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.delegate = ConfidenceDelegate(self.table)
        self.table.setItemDelegateForColumn(RecommendationTableModel.CONFIDENCE, self.delegate)
        self.details = QTextBrowser(self)
        self.details.setObjectName("recommendationDetails")
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._on_details_anchor_clicked)
        self.approve_button = QPushButton("Approve  (A)", self)
        self.approve_button.setObjectName("approveButton")
        self.approve_button.setToolTip("Approve exactly the preview shown (A)")
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton("Reject\u2026  (R)", self)
        self.reject_button.setObjectName("rejectButton")
        self.reject_button.setToolTip("Reject with a reason (R)")
        self.reject_button.clicked.connect(self.reject_selected)
        self.other_button = QPushButton("Sign in a second person\u2026", self)
        self.other_button.setObjectName("approveAsOtherButton")
        self.other_button.setToolTip("Four eyes: another person signs in here and approves")
        self.other_button.clicked.connect(self.approve_as_other)
        self.other_button.hide()
        self.message = ElidedLabel("", self)
        self.message.setObjectName("recommendationMessage")
        self.rollback_button = QPushButton("Roll back\u2026", self)
        self.rollback_button.setObjectName("cardRollbackButton")
        self.rollback_button.clicked.connect(self.rollback_selected)
        self.card = DecisionCard(self)
        self.card.causePicked.connect(self._on_card_cause_picked)
        self._causes: dict[int, tuple[Cause, ...]] = {}  # incident id -> its causes
        self.rollback = CardRollback(engine, user, worker, self._say, self)
        self.rollback.done.connect(lambda exec_id: self.reload())
        self._layout()

        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(RELOAD_MS)
        self._reload.timeout.connect(self._on_reload_timeout)
        self._standing_timer = QTimer(self)
        self._standing_timer.setInterval(STANDING_MS)
        self._standing_timer.timeout.connect(self._on_standing_timeout)
        self._standing_timer.start()
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.pressed.connect(self._on_table_pressed)
        model.dataChanged.connect(self._on_model_data_changed)
        for sig in (self.proxy.rowsInserted, self.proxy.layoutChanged):
            sig.connect(self._follow_first_waiting)
        bridge.operationDone.connect(self._on_bridge_operation_done)
        bridge.causesChanged.connect(self._on_bridge_causes)
        self.reload(model.open_ids())
        self._follow_first_waiting()
        self.set_theme(DEFAULT_THEME)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.setContentsMargins(4, 4, 4, 0)
        top.setSpacing(12)
        top.addWidget(self.filter, 1)
        top.addWidget(self.open_only)
        for button in (self.approve_button, self.reject_button, self.rollback_button,
                       self.other_button):
            self.card.add_button(button)
        self.card.add_button(self.message, 1)
        lower = QWidget(self)
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.setSpacing(4)
        lower_layout.addWidget(self.card)
        lower_layout.addWidget(self.details, 1)
        upper = QWidget(self)
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.setSpacing(4)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.table)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("recommendationsSplitter")
        self.splitter.addWidget(upper)
        self.splitter.addWidget(lower)
        # The card is never squeezed: the queue gives up rows first, then the details.
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setCollapsible(1, False)
        # A small explicit minimum: a narrow window squeezes (or collapses) the parts
        # instead of refusing to shrink below the sum of their minimums.
        self.splitter.setMinimumSize(160, 72)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def set_theme(self, name: str) -> None:
        self._colors = STATE_COLORS[name]
        self.model.set_colors(self._colors)
        self.delegate.set_colors(self._colors)
        self.details.document().setDefaultStyleSheet(document_css(self._colors))
        self._show_selected()

    # --- selection -----------------------------------------------------------------

    @property
    def selected(self) -> Any:
        """The selected recommendation (a domain object), or None."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.recommendation_at(self.proxy.mapToSource(rows[0]).row())

    def select_recommendation(self, rec_id: int) -> bool:
        source = self.model.row_of(rec_id)
        if source < 0:
            return False
        row = self.proxy.mapFromSource(self.model.index(source, 0)).row()
        if row < 0:
            return False
        self.pinned = True
        self.table.selectRow(row)
        return True

    @property
    def can_decide(self) -> bool:
        rec = self.selected
        return rec is not None and rec.state == "pending" and not self._busy and \
            self._role_read and can(self._role, "approve")

    def _on_table_pressed(self, _index: QModelIndex) -> None:
        self.pinned = True

    def _on_table_selection_changed(self, _s: QItemSelection, _d: QItemSelection) -> None:
        if not self._following:
            self.pinned = True
        self.message.clear()
        self._show_selected()

    def _follow_first_waiting(self, *_args: object) -> None:
        """Until the operator picks one, the newest recommendation waiting is selected."""
        if self.pinned:
            return
        for row in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(row, 0)).row()
            if self.model.recommendation_at(source).state == "pending":
                if not self.table.selectionModel().isRowSelected(row, QModelIndex()):
                    self._following = True
                    try:
                        self.table.selectRow(row)
                    finally:
                        self._following = False
                return

    def _on_model_data_changed(self, top: QModelIndex, bottom: QModelIndex,
                               _roles: object = ()) -> None:
        rec = self.selected
        if rec is not None and top.row() <= self.model.row_of(rec.id) <= bottom.row():
            self._show_selected()
        self._follow_first_waiting()
        self._expire_message()

    def _expire_message(self) -> None:
        """Clear a message about a run once the run is no longer what it says."""
        if self._message_holds is None:
            return
        rec_id, states = self._message_holds
        row = self.model.row_of(rec_id)
        if row >= 0 and self.model.recommendation_at(row).state not in states:
            self._message_holds = None
            self.message.clear()

    def _show_selected(self) -> None:
        rec = self.selected
        if rec is None:
            self.card.show_nothing()
            self.details.setHtml(f"<p style='color:{self._colors.dimmed}'>No recommendation "
                                 "selected. When the agents propose a remediation it waits "
                                 "here with its preview.</p>")
        else:
            self.card.show_recommendation(rec, self.model.standing_of(rec.id),
                                          self.causes_of(rec), self._user, self._colors)
            scroll = self.details.verticalScrollBar().value()
            self.details.setHtml(recommendation_html(rec, self.model.standing_of(rec.id),
                                                     self._user, self._colors))
            self.details.verticalScrollBar().setValue(scroll)
        enabled = self.can_decide
        self.approve_button.setEnabled(enabled)
        self.reject_button.setEnabled(enabled)
        run = self.run_of_selected
        self.rollback_button.setEnabled(run is not None and not self.rollback.busy)
        self.rollback_button.setToolTip(
            f"Undo execution {run} (asks first, showing what it runs)" if run is not None
            else "Nothing of this recommendation ran that could be rolled back")
        self.other_button.setVisible(self.needs_someone_else)
        self.approve_button.setToolTip(
            f"{self._user} is {self._role or 'not a user'}: approving needs operator or above"
            if self._role_read and not can(self._role, "approve")
            else "Approve exactly the preview shown (A)")
        self.selectionChanged.emit()

    def _on_details_anchor_clicked(self, url: QUrl) -> None:
        self.linkActivated.emit(url.toString())

    # --- causes ----------------------------------------------------------------------

    def causes_of(self, rec: Any) -> tuple[Cause, ...]:
        """The stored causes of `rec`'s incident, as the last ``causesChanged`` said."""
        return self._causes.get(rec.incident_id, ()) if rec.incident_id is not None else ()

    def _on_bridge_causes(self, event: Any) -> None:
        self._causes[event.incident_id] = tuple(event.causes)
        rec = self.selected
        if rec is not None and rec.incident_id == event.incident_id:
            self._show_selected()

    def _on_card_cause_picked(self, rec_id: int) -> None:
        if rec_id < 0:
            self._say("That cause has no recommendation yet: the agents are still on it")
        elif not self.select_recommendation(rec_id):
            self.reload([rec_id])  # not read yet (or filtered out): read it, then pick
            self._say(f"Recommendation #{rec_id} is not in the list as filtered")

    @property
    def run_of_selected(self) -> int | None:
        """The execution of the selected recommendation that could be rolled back now."""
        rec = self.selected
        return None if rec is None else run_to_roll_back(rec, self.causes_of(rec))

    def rollback_selected(self) -> None:
        """Roll back the selected recommendation's run (asks first)."""
        run = self.run_of_selected
        if run is not None:
            self.pinned = True
            self.rollback.start(run)

    # --- reading -------------------------------------------------------------------

    def reload(self, ids: Iterable[int] = ()) -> None:
        """Read the open recommendations again, and `ids` (debounced)."""
        self._wanted.update(ids)
        if not self._reload.isActive():
            self._reload.start()  # not restarted: a steady stream must not starve it

    def _on_reload_timeout(self) -> None:
        wanted = sorted(self._wanted | set(self.model.open_ids()))
        self._wanted.clear()
        engine = self._engine

        user = self._user

        def read() -> tuple[list[Any], dict[int, Standing], str | None]:
            recs = {r.id: r for r in engine.recommendations(OPEN)}
            for rec_id in wanted:
                if rec_id not in recs and (rec := engine.recommendation(rec_id)) is not None:
                    recs[rec_id] = rec
            standing = {}
            for rec in recs.values():
                if rec.state in ("pending", "queued"):
                    answer = engine.standing(rec.id)
                    if answer is not None:
                        standing[rec.id] = Standing.of(*answer)
            return list(recs.values()), standing, engine.service.role_of(user)

        self._reads += 1
        number = self._reads
        self._worker.submit("reading the recommendation queue", read,
                            on_done=lambda result: self._apply(number, *result))

    def _apply(self, read: int, recs: list[Any], standing: dict[int, Standing],
               role: str | None) -> None:
        if read < self._applied:
            return  # a newer read has been shown already; this one is older news
        self._applied = read
        changed = (role, True) != (self._role, self._role_read)
        self._role, self._role_read = role, True
        self.model.update(recs, standing)
        if changed:
            self._show_selected()

    def _on_standing_timeout(self) -> None:
        if any(self.model.recommendation_at(r).state == "pending"
               for r in range(self.model.rowCount())) and not self._reload.isActive():
            self.reload()

    def _on_bridge_operation_done(self, event: Any) -> None:
        changes = event.changes
        if changes.recommendations or changes.executions or changes.users:
            self.reload(int(i) for i in changes.ids if str(i).isdigit())

    def _on_open_only_toggled(self, on: bool) -> None:
        self.proxy.set_open_only(on)

    def _on_filter_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())

    # --- operations ----------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._show_selected()

    def _say(self, text: str, *, error: bool = False) -> None:
        self._message_holds = None
        self.message.setText(text)
        self.message.setProperty("level", "error" if error else "info")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def approve_selected(self) -> None:
        """Approve the selected recommendation as previewed (A)."""
        rec = self.selected
        if rec is None or not self.can_decide:
            return
        self._approve(rec, rec.preview_hash, self._user)

    def _approve(self, rec: Any, preview: str, user: str) -> None:
        engine, who = self._engine, "" if user == self._user else f" as {user}"
        self.pinned = True  # the selection stays put: a second A never approves another
        self._set_busy(True)
        self._say(f"Approving #{rec.id}{who}\u2026")

        def done(result: Any) -> None:
            self._set_busy(False)
            if result.get("execution") is not None:
                self._say(f"Approved #{rec.id}{who}: running as execution "
                          f"{result['execution']}")
                self._message_holds = (rec.id, ("pending", "executing"))
            elif result.get("state") == "queued":
                self._say(f"Approved #{rec.id}{who}: queued for the console that can run it")
                self._message_holds = (rec.id, ("pending", "queued"))
            else:
                reasons = "; ".join(result.get("reasons", [])) or result.get("decision", "")
                self._say(f"Approval of #{rec.id}{who} recorded; policy still says: "
                          f"{reasons}")
            self.reload([rec.id])

        self._worker.submit(f"approving recommendation {rec.id}",
                            lambda: engine.approve(rec.id, as_user=user, preview_hash=preview),
                            on_done=done, on_error=lambda exc: self._failed(rec.id, exc))

    # --- four eyes: a second person -------------------------------------------------

    @property
    def needs_someone_else(self) -> bool:
        """The selected recommendation waits for an approval the signed-in user cannot
        give: they asked for it (four eyes), approved it already, or their role is below
        the approver's the policy names."""
        rec = self.selected
        standing = self.model.standing_of(rec.id) if rec is not None else None
        if rec is None or rec.state != "pending" or self._busy or not self._role_read \
                or standing is None or standing.outcome != "needs_approval":
            return False
        needed = standing.approver_role if standing.approver_role in ROLES else "operator"
        return standing.approver_not == f"user:{self._user}" \
            or any(who == self._user for who, _role in rec.approvals) \
            or self._role not in ROLES \
            or ROLES.index(str(self._role)) < ROLES.index(str(needed))

    def approve_as_other(self) -> None:
        """Open the sign-in dialog for a second person; their approval follows their
        sign-in (their role is checked by the operation, not here)."""
        from widgets.sign_in import SECOND_PERSON, SignInDialog

        rec = self.selected
        if rec is None or not self.needs_someone_else:
            return
        self.pinned = True
        if self.second is not None:
            self.second.close()
        preview = rec.preview_hash  # what the second person sees is what they approve
        self.second = SignInDialog(
            self._engine.service.auth, worker=self._worker, mode=SECOND_PERSON,
            exclude=self._user, purpose=f"four eyes: recommendation:{rec.id}",
            detail=f"Recommendation #{rec.id}: {rec.preview.get('summary') or rec.runbook_id}",
            parent=self)
        self.second.signedIn.connect(lambda who: self._approve(rec, preview, who.name))
        self.second.finished.connect(self._on_second_finished)
        self.second.open()

    def _on_second_finished(self, _result: int) -> None:
        self.second = None

    def reject_selected(self) -> None:
        """Ask for a reason, then reject (R); the dialog is not waited on."""
        rec = self.selected
        if rec is None or not self.can_decide:
            return
        self.pinned = True
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = RejectDialog(rec.id, self.model.index(self.model.row_of(rec.id),
                                                            RecommendationTableModel.WHAT)
                                   .data(), self)
        self.dialog.reasonGiven.connect(self._on_dialog_reason_given)
        self.dialog.finished.connect(self._on_dialog_finished)
        self.dialog.open()

    def _on_dialog_finished(self, _result: int) -> None:
        self.dialog = None

    def _on_dialog_reason_given(self, rec_id: int, reason: str) -> None:
        engine, user = self._engine, self._user
        self._set_busy(True)
        self._say(f"Rejecting #{rec_id}\u2026")

        def done(_result: Any) -> None:
            self._set_busy(False)
            self._say(f"Rejected #{rec_id}: {reason}")
            self.reload([rec_id])

        self._worker.submit(f"rejecting recommendation {rec_id}",
                            lambda: engine.reject(rec_id, as_user=user, reason=reason),
                            on_done=done, on_error=lambda exc: self._failed(rec_id, exc))

    def _failed(self, rec_id: int, exc: BaseException) -> None:
        self._set_busy(False)
        self._say(f"#{rec_id} not changed: {describe_error(exc)}", error=True)
        self.reload([rec_id])


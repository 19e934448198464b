"""Roll back, from the decision card, the run of the recommendation it shows.

The same confirmation as the action history's (it says what the rollback will run, on
what) and the same operation (`ExecutionEngine.rollback`, on the `Worker`); the run is
read again first, so the dialog shows the run as it is now, not as the card last heard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import QWidget

from console.execution import ExecutionEngine
from widgets.history_pane import RollbackDialog
from widgets.ops import Worker, describe_error


class CardRollback(QObject):
    """Emits ``done(int)`` with the execution's id once its rollback ended (or failed),
    so the owner reads it again. `say(text, error=...)` shows what happened."""

    done = QtSignal(int)

    def __init__(self, engine: ExecutionEngine, user: str, worker: Worker,
                 say: Callable[..., None], parent: QWidget) -> None:
        super().__init__(parent)
        self._engine, self._user, self._worker, self._say = engine, user, worker, say
        self._parent = parent
        self.dialog: RollbackDialog | None = None
        self.busy = False

    def start(self, exec_id: int) -> None:
        """Read the run, then ask (the dialog is not waited on)."""
        engine = self._engine
        self._worker.submit(f"reading execution {exec_id}", lambda: engine.execution(exec_id),
                            on_done=lambda run: self._ask(exec_id, run),
                            on_error=lambda exc: self._failed(exec_id, exc))

    def _ask(self, exec_id: int, run: Any) -> None:
        if run is None or not run.can_roll_back:
            why = "it has no rollback path" if run is not None and not run.reversible \
                else f"it is {run.state}" if run is not None else "it is not found"
            self._say(f"#{exec_id} cannot be rolled back: {why}", error=True)
            return
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = RollbackDialog(run, self._parent)
        self.dialog.confirmed.connect(self._on_dialog_confirmed)
        self.dialog.finished.connect(self._on_dialog_finished)
        self.dialog.open()

    def _on_dialog_finished(self, _result: int) -> None:
        self.dialog = None

    def _on_dialog_confirmed(self, exec_id: int) -> None:
        engine, user = self._engine, self._user
        self.busy = True
        self._say(f"Rolling back #{exec_id}\u2026")

        def finished(state: str) -> None:
            self.busy = False
            self._say(f"#{exec_id}: {state.replace('_', ' ')}", error=state != "rolled_back")
            self.done.emit(exec_id)

        self._worker.submit(f"rolling back execution {exec_id}",
                            lambda: engine.rollback(exec_id, as_user=user),
                            on_done=finished, on_error=lambda exc: self._failed(exec_id, exc))

    def _failed(self, exec_id: int, exc: BaseException) -> None:
        self.busy = False
        self._say(f"#{exec_id} not rolled back: {describe_error(exc)}", error=True)
        self.done.emit(exec_id)

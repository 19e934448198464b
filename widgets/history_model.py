"""The action history's model: every execution, autonomous or approved, newest on top,
with its state, validation and duration; rows change in place as a run moves from
running to validating to succeeded (or is rolled back)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt

from console.domain import Execution
from widgets.models import RIGHT, SORT_ROLE, AnyIndex, TableModel, bold_font, hhmmss, tint
from widgets.theme import StateColors

IN_FLIGHT = ("intent", "running", "validating", "rolling_back")
GOOD, BAD = ("succeeded", "rolled_back"), ("failed", "rollback_failed", "interrupted")


def duration(execution: Execution) -> float | None:
    """How long the action itself took: to when it ended (`result["ran_until"]`), not to
    a rollback made minutes later (which moves `finished_at`)."""
    if execution.finished_at is None:
        return None
    ended = execution.finished_at
    ran_until = execution.result.get("ran_until")
    if isinstance(ran_until, str):
        try:
            ended = datetime.fromisoformat(ran_until)
        except ValueError:
            pass
    return (ended - execution.started_at).total_seconds()


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def title_of(execution: Execution) -> str:
    """Short enough for a table cell: runbook, target and the other parameters."""
    params = dict(execution.plan.get("params") or {})
    extra = ", ".join(f"{k}={v}" for k, v in params.items() if v != execution.target)
    return f"{execution.runbook_id} \u2192 {execution.target}" + (f" ({extra})" if extra else "")


def validation_text(execution: Execution) -> str:
    validation = execution.result.get("validation")
    if isinstance(validation, dict):
        return ("passed: " if validation.get("passed") else "failed: ") + \
            str(validation.get("detail", ""))
    if execution.state == "validating":
        return "validating\u2026"
    return ""


def rollback_text(execution: Execution) -> str:
    if execution.state in ("rolled_back", "rollback_failed", "rolling_back"):
        return execution.state.replace("_", " ")
    if not execution.reversible:
        return "none"
    return "available" if execution.can_roll_back else "\u2014"


class ExecutionTableModel(TableModel):
    HEADERS = ("#", "Started", "Action", "How", "State", "Validation", "Took", "Rollback")
    ID, STARTED, ACTION, HOW, STATE, VALIDATION, TOOK, ROLLBACK = range(8)

    def __init__(self, executions: Iterable[Execution] = (), *,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Execution] = sorted(executions, key=lambda e: -e.id)

    def execution_at(self, row: int) -> Execution:
        return self._rows[row]

    def row_of(self, exec_id: int) -> int:
        for row, execution in enumerate(self._rows):
            if execution.id == exec_id:
                return row
        return -1

    def in_flight_ids(self) -> list[int]:
        return [e.id for e in self._rows if e.state in IN_FLIGHT]

    def update(self, executions: Iterable[Execution]) -> None:
        """Changed runs change their rows; new ones are inserted on top, in id order."""
        new = []
        for execution in executions:
            row = self.row_of(execution.id)
            if row < 0:
                new.append(execution)
            elif execution != self._rows[row]:
                self._rows[row] = execution
                self.dataChanged.emit(self.index(row, 0),
                                      self.index(row, len(self.HEADERS) - 1))
        for execution in sorted(new, key=lambda e: e.id):
            pos = next((r for r, old in enumerate(self._rows) if old.id < execution.id),
                       len(self._rows))
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._rows.insert(pos, execution)
            self.endInsertRows()

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        ex, col = self._rows[index.row()], index.column()
        if role == SORT_ROLE:
            return {self.ID: ex.id, self.STARTED: ex.started_at.timestamp(),
                    self.TOOK: duration(ex) or 0.0}.get(col, self._text(ex, col))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(ex, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (self.ID, self.TOOK):
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            outcome = str(ex.result.get("outcome") or "")
            how = "autonomous" if ex.autonomous else "approved"
            return (f"{title_of(ex)}\n{how}, initiated by {ex.initiator}\n{ex.state}"
                    + (f": {outcome}" if outcome else ""))
        p = self.palette
        tone = p.green if ex.state in GOOD else p.red if ex.state in BAD else \
            p.amber if ex.state in IN_FLIGHT else p.dimmed
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.STATE:
                return tone
            if col == self.VALIDATION and isinstance(ex.result.get("validation"), dict):
                return p.green if ex.result["validation"].get("passed") else p.red
            if col == self.ROLLBACK:
                return p.blue if ex.can_roll_back else p.dimmed
            if col == self.HOW:
                return p.amber if ex.autonomous else None
            return None
        if role == Qt.ItemDataRole.BackgroundRole and col == self.STATE and \
                (ex.state in IN_FLIGHT or ex.state in BAD):
            return tint(tone, 45)
        if role == Qt.ItemDataRole.FontRole and col == self.STATE:
            return bold_font()
        return None

    def _text(self, ex: Execution, col: int) -> str:
        if col == self.ID:
            return str(ex.id)
        if col == self.STARTED:
            return hhmmss(ex.started_at)
        if col == self.ACTION:
            return title_of(ex)
        if col == self.HOW:
            return "autonomous" if ex.autonomous else "approved"
        if col == self.STATE:
            return ex.state.replace("_", " ")
        if col == self.VALIDATION:
            return validation_text(ex)
        if col == self.TOOK:
            return duration_text(duration(ex))
        return rollback_text(ex)


def steps_html(steps: Any) -> str:
    if not isinstance(steps, list) or not steps:
        return "none"
    return "<br>".join(
        f"{n}. {escape(str(s.get('action', '?')))} "
        f"({escape(', '.join(f'{k}={v}' for k, v in dict(s.get('args') or {}).items()))})"
        for n, s in enumerate(steps, 1) if isinstance(s, dict))


def execution_html(ex: Execution, colors: StateColors) -> str:
    """What ran, what came of it, and what a rollback would do."""
    state_color = colors.green if ex.state in GOOD else colors.red if ex.state in BAD \
        else colors.amber
    parts = [f"<h3 style='margin:0'>#{ex.id} {escape(title_of(ex))}</h3>",
             f"<p>{escape(str(ex.plan.get('title') or ''))}</p>",
             f"<p><b style='color:{state_color}'>{escape(ex.state.replace('_', ' '))}</b>"
             f" \u00b7 {'autonomous' if ex.autonomous else 'approved'} \u00b7 initiated by "
             f"{escape(ex.initiator)} \u00b7 started {ex.started_at:%H:%M:%S}"
             + (f" \u00b7 took {duration_text(duration(ex))}" if ex.finished_at else "")
             + "</p>"]
    outcome = ex.result.get("outcome")
    if outcome:
        parts.append(f"<p>{escape(str(outcome))}</p>")
    results = ex.result.get("steps") or []
    if results:
        parts.append("<p><b>Steps run</b><br>" + "<br>".join(
            f"{int(r.get('step', 0)) + 1}. {'ok' if r.get('ok') else 'FAILED'} \u2014 "
            f"{escape(str(r.get('message', '')))}" for r in results if isinstance(r, dict))
            + "</p>")
    parts.append(f"<p><b>Validation:</b> {escape(validation_text(ex) or 'not yet')}</p>")
    parts.append(f"<p><b>Rollback</b> ({escape(rollback_text(ex))}): "
                 f"{steps_html(ex.plan.get('rollback'))}</p>")
    return "".join(parts)

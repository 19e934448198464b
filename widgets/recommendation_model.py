"""The recommendation queue's model: one row per recommendation, newest on top.

Rows come from the engine's reads and change in place (`dataChanged`) when a read brings
a newer copy; new recommendations are inserted on top. Beside each open one the model
keeps its *standing*: what policy says of it now and whether its preview is still what
would run (`ExecutionEngine.standing`), so the queue can show who may approve it, when
four eyes are needed, and a stale preview, without deciding anything itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt

from console.domain import Recommendation
from widgets.delegates import CONFIDENCE_ROLE
from widgets.models import RIGHT, SORT_ROLE, AnyIndex, TableModel, bold_font, hhmmss, tint

OPEN = ("pending", "queued", "executing")


@dataclass(frozen=True, slots=True)
class Standing:
    """The engine's answer for one recommendation, as the queue shows it."""

    outcome: str  # allow | needs_approval | deny
    reasons: tuple[str, ...]
    approver_role: str | None
    approver_not: str | None  # four eyes: this requester may not approve it
    preview_current: bool | None  # None: this console cannot recompute it

    @classmethod
    def of(cls, decision: Any, current: bool | None) -> Standing:
        return cls(decision.outcome, tuple(decision.reasons), decision.approver_role,
                   decision.approver_not, current)

    @property
    def four_eyes(self) -> bool:
        return self.approver_not is not None

    @property
    def who(self) -> str:
        """Who may approve it, in words."""
        if self.outcome == "deny":
            return "nobody: policy denies it now"
        if self.outcome == "allow":
            return "policy allows it as it stands"
        who = f"{self.approver_role or 'operator'} or above"
        if self.approver_not:
            who += f", other than {self.approver_not}"
        return who


def preview_summary(rec: Recommendation) -> str:
    return str(rec.preview.get("summary") or rec.preview.get("title") or rec.runbook_id)


class RecommendationTableModel(TableModel):
    HEADERS = ("#", "Time", "Recommendation", "Confidence", "Risk", "Policy", "State")
    ID, TIME, WHAT, CONFIDENCE, RISK, POLICY, STATE = range(7)

    def __init__(self, recommendations: Iterable[Recommendation] = (), *,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Recommendation] = sorted(recommendations, key=lambda r: -r.id)
        self._standing: dict[int, Standing] = {}

    def recommendation_at(self, row: int) -> Recommendation:
        return self._rows[row]

    def row_of(self, rec_id: int) -> int:
        for row, rec in enumerate(self._rows):
            if rec.id == rec_id:
                return row
        return -1

    def standing_of(self, rec_id: int) -> Standing | None:
        return self._standing.get(rec_id)

    def open_ids(self) -> list[int]:
        return [r.id for r in self._rows if r.state in OPEN]

    def update(self, recommendations: Iterable[Recommendation],
               standing: Mapping[int, Standing] | None = None) -> None:
        """Newer copies change their rows; unknown ones are inserted on top."""
        standing = dict(standing or {})
        new: dict[int, Recommendation] = {}
        for rec in recommendations:
            row = self.row_of(rec.id)
            if row < 0:
                new[rec.id] = rec
                continue
            self._rows[row] = rec
            if rec.state not in OPEN:
                self._standing.pop(rec.id, None)
            self._changed(row)
        for rec_id, answer in standing.items():
            self._standing[rec_id] = answer
            row = self.row_of(rec_id)
            if row >= 0:
                self._changed(row)
        if not new:
            return
        ordered = sorted(new.values(), key=lambda r: -r.id)
        top = self._rows[0].id if self._rows else -1
        if ordered[-1].id > top:
            self.beginInsertRows(QModelIndex(), 0, len(ordered) - 1)
            self._rows[0:0] = ordered
            self.endInsertRows()
            return
        for rec in ordered:  # an older one read late: where its id belongs
            pos = next((r for r, old in enumerate(self._rows) if old.id < rec.id),
                       len(self._rows))
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._rows.insert(pos, rec)
            self.endInsertRows()

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))

    # --- what a cell says ----------------------------------------------------------

    def policy_text(self, rec: Recommendation) -> str:
        if rec.state not in ("pending", "queued"):
            return ""
        answer = self._standing.get(rec.id)
        if answer is None:
            return "\u2026"
        text = {"allow": "allowed", "deny": "denied",
                "needs_approval": f"needs {answer.approver_role or 'operator'}"}[answer.outcome]
        if answer.four_eyes and answer.outcome == "needs_approval":
            text += " \u00b7 4 eyes"
        if answer.preview_current is False:
            text += " \u00b7 STALE"
        return text

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        rec, col = self._rows[index.row()], index.column()
        if role == CONFIDENCE_ROLE and col == self.CONFIDENCE:
            return float(rec.confidence)
        if role == SORT_ROLE:
            return {self.ID: rec.id, self.TIME: rec.created_at.timestamp(),
                    self.CONFIDENCE: rec.confidence}.get(col, self._text(rec, col))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(rec, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.ID:
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(rec)
        p = self.palette
        pending = rec.state == "pending"
        answer = self._standing.get(rec.id)
        if role == Qt.ItemDataRole.ForegroundRole:
            if rec.state not in OPEN:
                return p.green if rec.state == "executed" and col == self.STATE else p.dimmed
            if col == self.RISK:
                return {"high": p.red, "medium": p.amber}.get(rec.risk, p.green)
            if col == self.POLICY and answer is not None:
                if answer.preview_current is False or answer.outcome == "deny":
                    return p.red
                return p.amber if answer.outcome == "needs_approval" else p.green
            if col == self.STATE:
                return p.amber if pending else p.blue
            return None
        if role == Qt.ItemDataRole.BackgroundRole and pending and col == self.STATE:
            return tint(p.amber, 45)
        if role == Qt.ItemDataRole.FontRole and pending and col in (self.WHAT, self.STATE):
            return bold_font()
        return None

    def _text(self, rec: Recommendation, col: int) -> str:
        if col == self.ID:
            return str(rec.id)
        if col == self.TIME:
            return hhmmss(rec.created_at)
        if col == self.WHAT:
            return preview_summary(rec)
        if col == self.CONFIDENCE:
            return f"{rec.confidence:.2f}"
        if col == self.RISK:
            return rec.risk
        if col == self.POLICY:
            return self.policy_text(rec)
        return "waiting" if rec.state == "pending" else rec.state

    def _tooltip(self, rec: Recommendation) -> str:
        lines = [f"Recommendation {rec.id}: {preview_summary(rec)}",
                 f"{rec.runbook_id} on {rec.target}, by {rec.requester}"
                 + (f", incident {rec.incident_id}" if rec.incident_id is not None else ""),
                 f"confidence {rec.confidence:.2f}, risk {rec.risk}, {rec.state}"]
        answer = self._standing.get(rec.id)
        if answer is not None:
            lines.append(f"policy: {answer.outcome.replace('_', ' ')}; may approve: "
                         f"{answer.who}")
        return "\n".join(lines)

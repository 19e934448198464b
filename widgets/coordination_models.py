"""Models of the coordination view: the messages the agents send each other and the
board's current hypotheses, for one incident at a time.

Both are fed by the bridge (``agentEventPosted``, ``hypothesesUpdated``,
``steeringChanged``) after one read when the incident is shown; a new board changes
rows in place, inserts new hypotheses and removes those no longer on it, so a ranking
every few seconds never resets the table under the operator's selection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt

from console.domain import AgentEvent
from console.storage.repos_agents import RankedHypothesis
from widgets.delegates import CONFIDENCE_ROLE
from widgets.models import SORT_ROLE, AnyIndex, TableModel, bold_font, hhmmss, struck_font, tint


class AgentMessageModel(TableModel):
    """Messages between agents (and to the whole board), oldest first."""

    HEADERS = ("Time", "From", "To", "Message")
    TIME, FROM, TO, MESSAGE = range(4)
    KINDS = ("message", "error", "steer")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.incident_id: int | None = None
        self._rows: list[AgentEvent] = []
        self._ids: set[int] = set()

    def event_at(self, row: int) -> AgentEvent:
        return self._rows[row]

    def show_incident(self, incident_id: int | None, events: Iterable[AgentEvent] = ()) -> None:
        self.beginResetModel()  # another incident, not an event
        self.incident_id = incident_id
        self._rows = sorted((e for e in events if e.kind in self.KINDS), key=lambda e: e.id)
        self._ids = {e.id for e in self._rows}
        self.endResetModel()

    def add(self, events: Iterable[AgentEvent]) -> None:
        fresh = sorted((e for e in events if e.kind in self.KINDS and e.id not in self._ids
                        and e.incident_id == self.incident_id), key=lambda e: e.id)
        if fresh and (not self._rows or fresh[0].id > self._rows[-1].id):
            # the usual case, newer than every row: one insert at the end
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(fresh) - 1)
            self._rows.extend(fresh)
            self._ids.update(e.id for e in fresh)
            self.endInsertRows()
            return
        for event in fresh:
            pos = len(self._rows)
            while pos and self._rows[pos - 1].id > event.id:
                pos -= 1
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._rows.insert(pos, event)
            self._ids.add(event.id)
            self.endInsertRows()

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        event, col = self._rows[index.row()], index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if col == self.TIME:
                return event.id if role == SORT_ROLE else hhmmss(event.at)
            if col == self.FROM:
                return event.agent
            if col == self.TO:
                return event.to_agent or ("board" if event.kind == "message" else event.kind)
            return event.summary
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{event.agent} \u2192 {event.to_agent or 'everyone'} at " \
                   f"{event.at.isoformat()}\n{event.summary}"
        if role == Qt.ItemDataRole.ForegroundRole:
            if event.kind == "error":
                return self.palette.red
            if event.kind == "steer":
                return self.palette.blue
            if col in (self.TIME, self.TO):
                return self.palette.dimmed
        return None


def _identity(h: RankedHypothesis) -> tuple[str, str]:
    return (h.agent, h.key)


class HypothesisModel(TableModel):
    """The incident's board: pinned first, then live by confidence, excluded and
    superseded last (the order the board itself keeps)."""

    HEADERS = ("Hypothesis", "Confidence", "State", "Signals", "By")
    KEY, CONFIDENCE, STATE, SIGNALS, BY = range(5)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.incident_id: int | None = None
        self.contested: tuple[str, ...] = ()
        self.closed = False  # the incident is resolved: its board is history, not live
        self._rows: list[RankedHypothesis] = []

    def hypothesis_at(self, row: int) -> RankedHypothesis:
        return self._rows[row]

    def row_of(self, key: str) -> int:
        return next((r for r, h in enumerate(self._rows) if h.key == key), -1)

    def show_incident(self, incident_id: int | None,
                      hypotheses: Iterable[RankedHypothesis] = ()) -> None:
        self.beginResetModel()  # another incident, not an event
        self.incident_id = incident_id
        self.contested = ()
        self.closed = False
        self._rows = [h for h in hypotheses if h.state != "superseded"]
        self.endResetModel()

    def set_closed(self, incident_id: int, closed: bool) -> None:
        """The shown incident resolved (or reopened): its hypotheses stop (or start
        again) being live."""
        if incident_id != self.incident_id or closed == self.closed:
            return
        self.closed = closed
        if self._rows:
            self.dataChanged.emit(self.index(0, self.STATE),
                                  self.index(len(self._rows) - 1, self.STATE))

    def state_text(self, h: RankedHypothesis) -> str:
        """Its state as shown: `closed` once the incident resolved; which cause it would
        be when the board holds several; contested only against a rival for the same
        cause (two causes at once are not a disagreement)."""
        state = "closed" if self.closed and h.state == "live" else h.state
        causes = {r.hypothesis.cause for r in self._rows if r.hypothesis.cause}
        if len(causes) > 1 and h.hypothesis.cause:
            state += f" \u00b7 cause {h.hypothesis.cause}"
        if self._contested(h):
            state += " \u00b7 contested"
        return state

    def _contested(self, h: RankedHypothesis) -> bool:
        if self.closed or h.key not in self.contested:
            return False
        rivals = [r for r in self._rows if r.key in self.contested and r.key != h.key]
        return any(r.hypothesis.cause == h.hypothesis.cause for r in rivals)

    def set_board(self, incident_id: int, hypotheses: Sequence[RankedHypothesis],
                  contested: Sequence[str] = ()) -> None:
        """The whole board after a ranking or a steer: rows change, come and go in place."""
        if incident_id != self.incident_id:
            return
        self.contested = tuple(contested)
        board = [h for h in hypotheses if h.state != "superseded"]
        wanted = {_identity(h) for h in board}
        for row in range(len(self._rows) - 1, -1, -1):
            if _identity(self._rows[row]) not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        for pos, h in enumerate(board):
            current = next((r for r, old in enumerate(self._rows)
                            if _identity(old) == _identity(h)), -1)
            if current < 0:
                self.beginInsertRows(QModelIndex(), pos, pos)
                self._rows.insert(pos, h)
                self.endInsertRows()
                continue
            if current != pos:
                self.beginMoveRows(QModelIndex(), current, current, QModelIndex(),
                                   pos if pos < current else pos + 1)
                self._rows.insert(pos, self._rows.pop(current))
                self.endMoveRows()
            self._rows[pos] = h
            self.dataChanged.emit(self.index(pos, 0), self.index(pos, len(self.HEADERS) - 1))

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        h, col = self._rows[index.row()], index.column()
        if role == CONFIDENCE_ROLE and col == self.CONFIDENCE:
            return float(h.confidence)
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if col == self.KEY:
                return h.key
            if col == self.CONFIDENCE:
                return h.confidence if role == SORT_ROLE else f"{h.confidence:.2f}"
            if col == self.STATE:
                return self.state_text(h)
            if col == self.SIGNALS:
                return h.hypothesis.signals if role == SORT_ROLE else str(h.hypothesis.signals)
            return h.agent
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{h.key}: {h.confidence:.2f} ({h.state}), by {h.agent}, rank {h.rank}"]
            lines += [f"\u2022 {e.summary}  [{e.ref}]" for e in h.hypothesis.evidence]
            return "\n".join(lines)
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole:
            if h.state == "excluded":
                return p.dimmed
            if col == self.STATE:
                if self._contested(h):
                    return p.amber
                if self.closed:
                    return p.dimmed
                return {"pinned": p.blue, "live": p.green}.get(h.state, p.dimmed)
        if role == Qt.ItemDataRole.FontRole:
            if h.state == "pinned" or (col == self.KEY and index.row() == 0):
                return bold_font()
            if h.state == "excluded":
                return struck_font()
        if role == Qt.ItemDataRole.BackgroundRole and h.state == "pinned" and col == self.KEY:
            return tint(p.blue, 45)
        return None

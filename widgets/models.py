"""Table models over the core's collections: signals and audit (services live in
`widgets/service_model.py`), and the plumbing they share.

Each model is filled once from the service facade and then grows or changes only through
the bridge's signals, with `beginInsertRows`/`beginRemoveRows`/`dataChanged`; none ever
resets itself because an event arrived (STYLE.md 4). Newest rows are on top: an operator
on a night shift looks at the top of the table, not at a scroll bar.

Text colours come from the theme (`set_colors`); backgrounds are translucent tints of
them, so they blend with either theme's base and alternate row colours. The theme's QSS
must not paint `::item` backgrounds or it would hide them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QFont

from console.domain import AlertStatus, AuditEntry, Severity, Signal, SignalKind
from widgets.filtering import role_slots
from widgets.theme import DEFAULT_THEME, STATE_COLORS, StateColors

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

AnyIndex = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
"""Role carrying a sortable value (numbers stay numbers) for QSortFilterProxyModel."""

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


_TINTS: dict[tuple[int, int], QColor] = {}
_FONTS: dict[str, QFont] = {}
# Made once and shared (never change what they return): a model's `data` runs for every
# painted cell, and making a QColor or QFont there lets go of the GIL (widgets/process.py).


def tint(color: QColor, alpha: int) -> QColor:
    key = (color.rgba(), alpha)
    tinted = _TINTS.get(key)
    if tinted is None:
        tinted = _TINTS[key] = QColor(color)
        tinted.setAlpha(alpha)
    return tinted


class Palette:
    """The state colours of the current theme as QColors (see widgets/theme.py)."""

    def __init__(self, colors: StateColors) -> None:
        self.red = QColor(colors.red)
        self.amber = QColor(colors.amber)
        self.green = QColor(colors.green)
        self.blue = QColor(colors.blue)
        self.dimmed = QColor(colors.dimmed)


def hhmmss(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


def bold_font() -> QFont:
    font = _FONTS.get("bold")
    if font is None:
        font = _FONTS["bold"] = QFont()
        font.setBold(True)
    return font


def struck_font() -> QFont:
    font = _FONTS.get("struck")
    if font is None:
        font = _FONTS["struck"] = QFont()
        font.setStrikeOut(True)
    return font


def fill_roles(model: QAbstractItemModel, index: AnyIndex,
               span: QModelRoleDataSpan | QModelRoleData) -> None:
    """Answer a `multiData` request with the model's `data`, role by role, in Python."""
    data = model.data
    for role_data in role_slots(span):
        value = data(index, role_data.role())
        if value is None:
            role_data.clearData()
        else:
            role_data.setData(value)


class TableModel(QAbstractTableModel):
    """Shared plumbing: fixed headers, a flat list of rows, read-only selectable cells.

    Subclasses keep their rows in `self._rows` (set before any view sees the model).
    """

    HEADERS: Sequence[str] = ()
    palette = Palette(STATE_COLORS[DEFAULT_THEME])
    _rows: Sequence[Any] = ()

    def set_colors(self, colors: StateColors) -> None:
        """Switch to another theme's colours (one dataChanged over the whole table)."""
        self.palette = Palette(colors)
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1))

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._row_count()

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(self.HEADERS)):
            return self.HEADERS[section]
        return None

    # No `flags` override: QAbstractTableModel's own (enabled, selectable, no children)
    # is what these read-only tables need, and it answers in C++ (see multiData).

    def multiData(self, index: AnyIndex,
                  roleDataSpan: QModelRoleDataSpan | QModelRoleData) -> None:
        """Every role a delegate asks of one cell, in one call (Qt 6 asks this way).

        Qt's default calls `data` once per role (seven or eight per painted cell), and
        each call from C++ into Python has to take the interpreter lock back from the
        threads behind the window: a table repaint during the storm waited for it
        hundreds of times. One entry per cell instead (`fill_roles`)."""
        fill_roles(self, index, roleDataSpan)

    def _row_count(self) -> int:
        return len(self._rows)

    def _valid(self, index: AnyIndex) -> bool:
        # A flat table's own indexes have no parent; asking (`index.parent()`) makes a
        # new QModelIndex, which lets go of the GIL, and under load each such call waits
        # tens of microseconds to get it back (see `multiData`). `model()` only reads.
        return (index.isValid() and index.model() is self
                and 0 <= index.row() < self._row_count()
                and 0 <= index.column() < len(self.HEADERS))


# --- signals -------------------------------------------------------------------------


class SignalTableModel(TableModel):
    """Alert and log signals, newest on top, capped at `capacity` rows (oldest dropped).

    The table is the stream of alert state changes, so a "firing" row stays after its
    alert resolves. The model knows which rows are *live* (the alert is firing now: no
    later row of the same fingerprint resolved or re-fired it); only live rows are
    tinted, the others are dimmed history, and `is_live` lets a proxy show live ones
    only. When a row stops being live it gets a `dataChanged`.
    """

    HEADERS = ("Time", "Severity", "Status", "Service", "Alert", "Summary")
    TIME, SEVERITY, STATUS, SERVICE, NAME, SUMMARY = range(6)

    def __init__(self, signals: Iterable[Signal] = (), *, bridge: BusBridge | None = None,
                 capacity: int = 5000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # Every signal gets a serial in arrival order; row r holds serial `_top - r`.
        self._top = -1
        self._live: dict[str, int] = {}  # fingerprint -> serial of its firing signal
        ordered = list(signals)  # `recent_signals` and bus batches come oldest first
        self._assign(ordered)
        self._rows: list[Signal] = ordered[::-1][:capacity]  # newest first
        if bridge is not None:
            bridge.signalsReceived.connect(self._on_bridge_signals)

    def signal_at(self, row: int) -> Signal:
        return self._rows[row]

    @property
    def live_count(self) -> int:
        """Alerts firing now, including those whose rows fell off the bottom."""
        return len(self._live)

    def is_live(self, row: int) -> bool:
        """True when the alert on `row` is firing now (its latest state change)."""
        sig = self._rows[row]
        return (sig.kind is SignalKind.ALERT and sig.status is AlertStatus.FIRING
                and self._live.get(sig.fingerprint) == self._top - row)

    def _active(self, row: int) -> bool:
        sig = self._rows[row]
        if sig.kind is SignalKind.ALERT:
            return self.is_live(row)
        return sig.status is AlertStatus.FIRING  # a log line has no "resolved" to wait for

    def _assign(self, signals: Sequence[Signal]) -> set[int]:
        """Give `signals` (oldest first) serials; return the serials that stopped being live."""
        ended: set[int] = set()
        for sig in signals:
            self._top += 1
            if sig.kind is not SignalKind.ALERT:
                continue
            before = self._live.pop(sig.fingerprint, None)
            if before is not None:
                ended.add(before)
            if sig.status is AlertStatus.FIRING:
                self._live[sig.fingerprint] = self._top
        return ended

    def add_signals(self, signals: Sequence[Signal]) -> None:
        """Insert a batch (oldest first, as the bus delivers it) on top; drop the oldest."""
        if not signals:
            return
        ended = self._assign(signals)
        batch = list(signals)[::-1][: self.capacity]
        overflow = len(self._rows) + len(batch) - self.capacity
        if overflow > 0:
            keep = len(self._rows) - overflow
            self.beginRemoveRows(QModelIndex(), keep, len(self._rows) - 1)
            del self._rows[keep:]
            self.endRemoveRows()
        self.beginInsertRows(QModelIndex(), 0, len(batch) - 1)
        self._rows[0:0] = batch
        self.endInsertRows()
        # Older rows that are still shown and stopped being live: one dataChanged per run
        # of adjacent rows (alerts that fired together tend to resolve together).
        rows = sorted(r for r in (self._top - s for s in ended)
                      if len(batch) <= r < len(self._rows))
        last_col = len(self.HEADERS) - 1
        while rows:
            first = last = rows.pop(0)
            while rows and rows[0] == last + 1:
                last = rows.pop(0)
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_col))

    def _on_bridge_signals(self, event: Any) -> None:
        self.add_signals(event.signals)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row, col = index.row(), index.column()
        sig = self._rows[row]
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if role == SORT_ROLE and col == self.TIME:
                return sig.at.timestamp()
            if role == SORT_ROLE and col == self.SEVERITY:
                return list(Severity).index(sig.severity)
            return self._text(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        active = self._active(row)
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole:
            if not active:
                return p.dimmed
            if col == self.SEVERITY:
                return {Severity.CRITICAL: p.red, Severity.WARNING: p.amber,
                        Severity.INFO: p.blue}[sig.severity]
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if active and sig.severity is Severity.CRITICAL:
                return tint(p.red, 70 if col == self.SEVERITY else 40)
            if active and sig.severity is Severity.WARNING and col == self.SEVERITY:
                return tint(p.amber, 45)
            return None
        if role == Qt.ItemDataRole.FontRole and col == self.SEVERITY and active:
            return bold_font()
        return None

    def _text(self, row: int, col: int) -> str:
        sig = self._rows[row]
        if col == self.TIME:
            return hhmmss(sig.at)
        if col == self.SEVERITY:
            return sig.severity.value.upper()
        if col == self.STATUS:
            if (sig.kind is SignalKind.ALERT and sig.status is AlertStatus.FIRING
                    and not self.is_live(row)):
                return "was firing"
            return sig.status.value
        if col == self.SERVICE:
            return sig.service
        if col == self.NAME:
            return sig.name
        return sig.annotations.get("summary") or sig.annotations.get("description", "")

    def _tooltip(self, row: int) -> str:
        sig = self._rows[row]
        labels = ", ".join(f"{k}={v}" for k, v in sorted(sig.labels.items()))
        state = "firing now" if self.is_live(row) else self._text(row, self.STATUS)
        lines = [f"{sig.name} on {sig.service} ({sig.severity.value}, {state})",
                 f"at {sig.at.isoformat()} from {sig.source}"]
        if labels:
            lines.append(labels)
        lines.extend(f"{k}: {v}" for k, v in sorted(sig.annotations.items()))
        return "\n".join(lines)


# --- audit ---------------------------------------------------------------------------


def seq_position(newest_first: Sequence[AuditEntry], seq: int) -> int | None:
    """Where record `seq` goes in rows ordered by seq, newest first; None when a row
    already holds it."""
    if not newest_first or seq > newest_first[0].seq:
        return 0
    low, high = 0, len(newest_first)
    while low < high:  # the first row with a seq not above `seq`
        mid = (low + high) // 2
        if newest_first[mid].seq > seq:
            low = mid + 1
        else:
            high = mid
    if low < len(newest_first) and newest_first[low].seq == seq:
        return None
    return low


class AuditTableModel(TableModel):
    """Records of the audit chain, newest on top; duplicates (by seq) are ignored."""

    HEADERS = ("Seq", "Time", "Actor", "Action", "Target", "Decision")
    SEQ, TIME, ACTOR, ACTION, TARGET, DECISION = range(6)

    def __init__(self, entries: Iterable[AuditEntry] = (), *, bridge: BusBridge | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        ordered = sorted(entries, key=lambda e: e.seq)
        self._rows: list[AuditEntry] = ordered[::-1]
        if bridge is not None:
            bridge.auditAppended.connect(self._on_bridge_audit)

    def entry_at(self, row: int) -> AuditEntry:
        return self._rows[row]

    @property
    def last_seq(self) -> int:
        return self._rows[0].seq if self._rows else 0

    def add_entry(self, entry: AuditEntry) -> None:
        """A new record goes on top; an older one this model lacks (another console's,
        read after a newer one of this console) goes in its place; a known one is
        ignored."""
        row = seq_position(self._rows, entry.seq)
        if row is None:
            return
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, entry)
        self.endInsertRows()

    def _on_bridge_audit(self, event: Any) -> None:
        self.add_entry(event.entry)

    _TEXT: Mapping[int, Callable[[AuditEntry], str]] = {
        SEQ: lambda e: str(e.seq),
        TIME: lambda e: hhmmss(e.at),
        ACTOR: lambda e: e.actor,
        ACTION: lambda e: e.action,
        TARGET: lambda e: e.target,
        DECISION: lambda e: e.decision,
    }

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        entry = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._TEXT[col](entry)
        if role == SORT_ROLE:
            return entry.seq if col == self.SEQ else self._TEXT[col](entry)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.SEQ:
            return RIGHT
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole and col == self.DECISION:
            # "n/a" (a record that decided nothing, e.g. a scenario start) is dimmed.
            return {"deny": p.red, "needs_approval": p.amber, "allow": p.green}.get(
                entry.decision, p.dimmed)
        if role == Qt.ItemDataRole.BackgroundRole and entry.decision == "deny":
            return tint(p.red, 40)
        if role == Qt.ItemDataRole.ToolTipRole:
            parts = [f"#{entry.seq} {entry.action} on {entry.target or '-'} by {entry.actor}",
                     f"at {entry.at.isoformat()}  decision: {entry.decision}"]
            if entry.reason:
                parts.append(f"reason: {entry.reason}")
            if entry.inputs:
                parts.append(f"inputs: {dict(entry.inputs)}")
            if entry.outputs:
                parts.append(f"outputs: {dict(entry.outputs)}")
            parts.append(f"hash: {entry.hash[:16]}\u2026")
            return "\n".join(parts)
        return None

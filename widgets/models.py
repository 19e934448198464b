"""Table models over the core's collections: signals, services (live metrics), audit.

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
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QFont

from console.domain import AlertStatus, AuditEntry, Severity, Signal
from widgets.theme import DEFAULT_THEME, STATE_COLORS, StateColors

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

AnyIndex = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
"""Role carrying a sortable value (numbers stay numbers) for QSortFilterProxyModel."""

_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


def tint(color: QColor, alpha: int) -> QColor:
    tinted = QColor(color)
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


def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


class _TableModel(QAbstractTableModel):
    """Shared plumbing: fixed headers, flat table, read-only selectable cells."""

    HEADERS: Sequence[str] = ()
    palette = Palette(STATE_COLORS[DEFAULT_THEME])

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

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def _row_count(self) -> int:
        raise NotImplementedError

    def _valid(self, index: AnyIndex) -> bool:
        return (index.isValid() and not index.parent().isValid()
                and 0 <= index.row() < self._row_count()
                and 0 <= index.column() < len(self.HEADERS))


# --- signals -------------------------------------------------------------------------


class SignalTableModel(_TableModel):
    """Alert and log signals, newest on top, capped at `capacity` rows (oldest dropped)."""

    HEADERS = ("Time", "Severity", "Status", "Service", "Alert", "Summary")
    TIME, SEVERITY, STATUS, SERVICE, NAME, SUMMARY = range(6)

    def __init__(self, signals: Iterable[Signal] = (), *, bridge: BusBridge | None = None,
                 capacity: int = 5000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # Newest first; `recent_signals` and bus batches come oldest first.
        self._rows: list[Signal] = list(signals)[::-1][:capacity]
        if bridge is not None:
            bridge.signalsReceived.connect(self._on_bridge_signals)

    def _row_count(self) -> int:
        return len(self._rows)

    def signal_at(self, row: int) -> Signal:
        return self._rows[row]

    def add_signals(self, signals: Sequence[Signal]) -> None:
        """Insert a batch (oldest first, as the bus delivers it) on top; drop the oldest."""
        if not signals:
            return
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

    def _on_bridge_signals(self, event: Any) -> None:
        self.add_signals(event.signals)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        sig = self._rows[index.row()]
        col = index.column()
        firing = sig.status is AlertStatus.FIRING
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if role == SORT_ROLE and col == self.TIME:
                return sig.at.timestamp()
            if role == SORT_ROLE and col == self.SEVERITY:
                return list(Severity).index(sig.severity)
            return self._text(sig, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(sig)
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole:
            if not firing:
                return p.dimmed
            if col == self.SEVERITY:
                return {Severity.CRITICAL: p.red, Severity.WARNING: p.amber,
                        Severity.INFO: p.blue}[sig.severity]
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if firing and sig.severity is Severity.CRITICAL:
                return tint(p.red, 70 if col == self.SEVERITY else 40)
            if firing and sig.severity is Severity.WARNING and col == self.SEVERITY:
                return tint(p.amber, 45)
            return None
        if role == Qt.ItemDataRole.FontRole and col == self.SEVERITY and firing:
            return _bold()
        return None

    def _text(self, sig: Signal, col: int) -> str:
        if col == self.TIME:
            return hhmmss(sig.at)
        if col == self.SEVERITY:
            return sig.severity.value.upper()
        if col == self.STATUS:
            return sig.status.value
        if col == self.SERVICE:
            return sig.service
        if col == self.NAME:
            return sig.name
        return sig.annotations.get("summary") or sig.annotations.get("description", "")

    @staticmethod
    def _tooltip(sig: Signal) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(sig.labels.items()))
        lines = [f"{sig.name} on {sig.service} ({sig.severity.value}, {sig.status.value})",
                 f"at {sig.at.isoformat()} from {sig.source}"]
        if labels:
            lines.append(labels)
        lines.extend(f"{k}: {v}" for k, v in sorted(sig.annotations.items()))
        return "\n".join(lines)


# --- services ------------------------------------------------------------------------


class Health(IntEnum):
    OK = 0
    DEGRADED = 1
    DOWN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Where a service stops being ok. Error rate is a ratio (0-1), latency in ms."""

    error_degraded: float = 0.02
    error_down: float = 0.25
    p99_degraded_ms: float = 1000.0
    p99_down_ms: float = 5000.0

    def health(self, metrics: Mapping[str, float]) -> Health:
        err = metrics.get("error_rate", 0.0)
        p99 = metrics.get("latency_p99_ms", 0.0)
        if ("instances_ready" in metrics and metrics["instances_ready"] <= 0) \
                or err >= self.error_down or p99 >= self.p99_down_ms:
            return Health.DOWN
        if err >= self.error_degraded or p99 >= self.p99_degraded_ms:
            return Health.DEGRADED
        return Health.OK


@dataclass(frozen=True, slots=True)
class _Column:
    title: str
    metric: str | None  # None: not a metric column (name, health)
    scale: float = 1.0
    decimals: int = 0
    suffix: str = ""


class ServiceTableModel(_TableModel):
    """One row per service of the estate with its latest metrics and derived health.

    Rows appear the first time a snapshot names a service; after that a snapshot emits
    `dataChanged` only for rows whose displayed values changed.
    """

    COLUMNS = (
        _Column("Service", None),
        _Column("Health", None),
        _Column("Req/s", "request_rate", decimals=0),
        _Column("Errors %", "error_rate", scale=100.0, decimals=2),
        _Column("p99 ms", "latency_p99_ms", decimals=0),
        _Column("CPU %", "cpu", decimals=0),
        _Column("Mem %", "memory", decimals=0),
        _Column("Disk %", "disk", decimals=0),
    )
    HEADERS = tuple(c.title for c in COLUMNS)
    NAME, HEALTH, RPS, ERRORS, P99, CPU, MEM, DISK = range(8)
    HOT_PERCENT = 85.0  # cpu/mem/disk above this are highlighted

    def __init__(self, *, bridge: BusBridge | None = None,
                 thresholds: HealthThresholds | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thresholds = thresholds or HealthThresholds()
        self._names: list[str] = []
        self._row_of: dict[str, int] = {}
        self._metrics: dict[str, dict[str, float]] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}
        if bridge is not None:
            bridge.estateSnapshot.connect(self._on_bridge_snapshot)

    def _row_count(self) -> int:
        return len(self._names)

    def service_at(self, row: int) -> str:
        return self._names[row]

    def row_of(self, service: str) -> int:
        return self._row_of[service]

    def health_of(self, service: str) -> Health:
        return self.thresholds.health(self._metrics.get(service, {}))

    def update_metrics(self, metrics: Mapping[str, Mapping[str, float]]) -> None:
        new = [name for name in metrics if name not in self._row_of]
        if new:
            first = len(self._names)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for name in new:
                self._row_of[name] = len(self._names)
                self._names.append(name)
                self._metrics[name] = dict(metrics[name])
                self._shown[name] = self._display_key(name)
            self.endInsertRows()
        last_col = len(self.COLUMNS) - 1
        for name, values in metrics.items():
            if name in new:
                continue
            self._metrics[name] = dict(values)
            shown = self._display_key(name)
            if shown != self._shown[name]:
                self._shown[name] = shown
                row = self._row_of[name]
                self.dataChanged.emit(self.index(row, self.HEALTH), self.index(row, last_col))

    def _on_bridge_snapshot(self, event: Any) -> None:
        self.update_metrics(event.metrics)

    def _display_key(self, name: str) -> tuple[Any, ...]:
        return (self.health_of(name),
                *(self._text(name, col) for col in range(self.RPS, len(self.COLUMNS))))

    def _value(self, name: str, col: int) -> float | None:
        column = self.COLUMNS[col]
        if column.metric is None or column.metric not in self._metrics[name]:
            return None
        return float(self._metrics[name][column.metric]) * column.scale

    def _text(self, name: str, col: int) -> str:
        if col == self.NAME:
            return name
        if col == self.HEALTH:
            return f"\u25cf {self.health_of(name).label}"
        value = self._value(name, col)
        if value is None:
            return "\u2013"
        return f"{value:,.{self.COLUMNS[col].decimals}f}"

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        name = self._names[index.row()]
        col = index.column()
        health = self.health_of(name)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(name, col)
        if role == SORT_ROLE:
            if col == self.NAME:
                return name
            if col == self.HEALTH:  # health first, then how bad: the worst sorts on top
                err = self._metrics[name].get("error_rate", 0.0)
                return int(health) * 1000.0 + min(float(err), 1.0) * 100.0
            value = self._value(name, col)
            return -1.0 if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _LEFT if col in (self.NAME, self.HEALTH) else _RIGHT
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.HEALTH:
                return {Health.OK: p.green, Health.DEGRADED: p.amber, Health.DOWN: p.red}[health]
            if self._is_hot(name, col):
                return p.red if health is Health.DOWN else p.amber
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if health is Health.DOWN:
                return tint(p.red, 60)
            if health is Health.DEGRADED and col in (self.NAME, self.HEALTH):
                return tint(p.amber, 40)
            return None
        if role == Qt.ItemDataRole.FontRole and (
                (col == self.HEALTH and health is not Health.OK) or self._is_hot(name, col)):
            return _bold()
        if role == Qt.ItemDataRole.ToolTipRole:
            values = self._metrics[name]
            return "\n".join([f"{name}: {health.label}"]
                             + [f"{k} = {v:g}" for k, v in sorted(values.items())])
        return None

    def _is_hot(self, name: str, col: int) -> bool:
        value = self._value(name, col)
        if value is None:
            return False
        t = self.thresholds
        if col == self.ERRORS:
            return value >= t.error_degraded * 100.0
        if col == self.P99:
            return value >= t.p99_degraded_ms
        if col in (self.CPU, self.MEM, self.DISK):
            return value >= self.HOT_PERCENT
        return False


# --- audit ---------------------------------------------------------------------------


class AuditTableModel(_TableModel):
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

    def _row_count(self) -> int:
        return len(self._rows)

    def entry_at(self, row: int) -> AuditEntry:
        return self._rows[row]

    @property
    def last_seq(self) -> int:
        return self._rows[0].seq if self._rows else 0

    def add_entry(self, entry: AuditEntry) -> None:
        if entry.seq <= self.last_seq:
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, entry)
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
            return _RIGHT
        p = self.palette
        if role == Qt.ItemDataRole.ForegroundRole and col == self.DECISION:
            return {"deny": p.red, "needs_approval": p.amber, "allow": p.green}.get(
                entry.decision)
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

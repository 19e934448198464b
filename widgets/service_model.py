"""The services table: one row per service of the estate, its latest metrics and a health
that agrees with the alerts.

Health is the worse of two readings: the metrics of the last snapshot against
`HealthThresholds` (immediate, no `for:` delay) and the alerts firing on the service now
(which also cover what no column shows: a certificate about to expire, a queue backlog,
one unreachable instance). A row therefore never says "ok" next to a firing alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtCore import Signal as QtSignal

from console.domain import AlertStatus, Severity, Signal, SignalKind
from widgets.models import (
    LEFT,
    RIGHT,
    SORT_ROLE,
    AnyIndex,
    TableModel,
    bold_font,
    tint,
)

if TYPE_CHECKING:
    from widgets.bridge import BusBridge


class Health(IntEnum):
    OK = 0
    DEGRADED = 1
    CRITICAL = 2
    DOWN = 3  # no instance ready to serve

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Where a service stops being ok. Error rate is a ratio (0-1), latency in ms.

    The error-rate defaults are those of the shipped alert rules (ElevatedErrorRate 2%,
    HighErrorRate 5%), so the table turns amber and red where the alerts will.
    """

    error_degraded: float = 0.02
    error_critical: float = 0.05
    p99_degraded_ms: float = 1000.0
    p99_critical_ms: float = 5000.0

    def health(self, metrics: Mapping[str, float]) -> Health:
        err = metrics.get("error_rate", 0.0)
        p99 = metrics.get("latency_p99_ms", 0.0)
        if "instances_ready" in metrics and metrics["instances_ready"] <= 0:
            return Health.DOWN
        if err >= self.error_critical or p99 >= self.p99_critical_ms:
            return Health.CRITICAL
        if err >= self.error_degraded or p99 >= self.p99_degraded_ms:
            return Health.DEGRADED
        return Health.OK


_ALERT_HEALTH = {Severity.CRITICAL: Health.CRITICAL, Severity.WARNING: Health.DEGRADED,
                 Severity.INFO: Health.OK}


class FiringAlerts:
    """The alerts firing now, per service, folded from signals in arrival order (the
    latest state change of a fingerprint wins). Plain Python: no Qt."""

    def __init__(self, signals: Iterable[Signal] = ()) -> None:
        self._service_of: dict[str, str] = {}  # fingerprint -> service
        self._by_service: dict[str, dict[str, Signal]] = {}
        self.apply(signals)

    def apply(self, signals: Iterable[Signal]) -> set[str]:
        """Fold a batch (oldest first); return the services whose firing alerts changed."""
        changed: set[str] = set()
        for sig in signals:
            if sig.kind is not SignalKind.ALERT:
                continue
            before = self._service_of.pop(sig.fingerprint, None)
            if before is not None:
                del self._by_service[before][sig.fingerprint]
                changed.add(before)
            if sig.status is AlertStatus.FIRING:
                self._service_of[sig.fingerprint] = sig.service
                self._by_service.setdefault(sig.service, {})[sig.fingerprint] = sig
                changed.add(sig.service)
        return changed

    def __len__(self) -> int:
        return len(self._service_of)

    def of(self, service: str) -> list[Signal]:
        """The firing alerts of `service`, most severe first."""
        firing = self._by_service.get(service, {}).values()
        return sorted(firing, key=lambda s: (-list(Severity).index(s.severity), s.name))

    def health(self, service: str) -> Health:
        return max((_ALERT_HEALTH[s.severity] for s in self.of(service)), default=Health.OK)


@dataclass(frozen=True, slots=True)
class _Column:
    title: str
    metric: str | None  # None: not a metric column (name, health)
    scale: float = 1.0
    decimals: int = 0
    hot: float | None = None  # displayed values at or above this are highlighted


@dataclass(slots=True)
class _Row:
    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    health: Health = Health.OK
    texts: tuple[str, ...] = ()


class ServiceTableModel(TableModel):
    """One row per service of the estate with its latest metrics and derived health.

    Rows appear the first time a snapshot names a service; after that a snapshot or an
    alert emits `dataChanged` only for rows whose displayed values or health changed.
    Display texts and health are computed once per update, not per paint.

    Emits ``updated()`` once after each snapshot or batch of alerts has been applied
    (after its `dataChanged`s), so a view re-sorts once per update, not once per row.
    """

    updated = QtSignal()

    COLUMNS = (
        _Column("Service", None),
        _Column("Health", None),
        _Column("Req/s", "request_rate"),
        _Column("Errors %", "error_rate", scale=100.0, decimals=2),
        _Column("p99 ms", "latency_p99_ms"),
        _Column("Sat %", "saturation", scale=100.0, hot=90.0),
        _Column("CPU %", "cpu", hot=90.0),
        _Column("Mem %", "memory", hot=85.0),
        _Column("Disk %", "disk", hot=85.0),
        _Column("Ready", "instances_ready"),
    )
    HEADERS = tuple(c.title for c in COLUMNS)
    NAME, HEALTH, RPS, ERRORS, P99, SAT, CPU, MEM, DISK, READY = range(10)

    def __init__(self, signals: Iterable[Signal] = (), *, bridge: BusBridge | None = None,
                 thresholds: HealthThresholds | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thresholds = thresholds or HealthThresholds()
        self.alerts = FiringAlerts(signals)
        self._rows: list[_Row] = []
        self._row_of: dict[str, int] = {}
        if bridge is not None:
            bridge.estateSnapshot.connect(self._on_bridge_snapshot)
            bridge.signalsReceived.connect(self._on_bridge_signals)

    def service_at(self, row: int) -> str:
        return self._rows[row].name

    def row_of(self, service: str) -> int:
        return self._row_of[service]

    def health_of(self, service: str) -> Health:
        row = self._row_of.get(service)
        return self._rows[row].health if row is not None else self.alerts.health(service)

    def metrics_of(self, service: str) -> dict[str, float]:
        return dict(self._rows[self._row_of[service]].metrics)

    def update_metrics(self, metrics: Mapping[str, Mapping[str, float]]) -> None:
        new = [name for name in metrics if name not in self._row_of]
        if new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for name in new:
                self._row_of[name] = len(self._rows)
                row = _Row(name, dict(metrics[name]))
                self._rows.append(row)
                self._recompute(row)
            self.endInsertRows()
        changed = []
        for name, values in metrics.items():
            if name not in new:
                row = self._rows[self._row_of[name]]
                row.metrics = dict(values)
                if self._refresh(row):
                    changed.append(self._row_of[name])
        self._announce(changed)
        self.updated.emit()

    def update_alerts(self, signals: Iterable[Signal]) -> None:
        touched, changed = False, []
        for name in self.alerts.apply(signals):
            if name in self._row_of:
                touched = True
                if self._refresh(self._rows[self._row_of[name]]):
                    changed.append(self._row_of[name])
        self._announce(changed)
        if touched:
            self.updated.emit()

    def _on_bridge_snapshot(self, event: Any) -> None:
        self.update_metrics(event.metrics)

    def _on_bridge_signals(self, event: Any) -> None:
        self.update_alerts(event.signals)

    def _recompute(self, row: _Row) -> None:
        row.health = max(self.thresholds.health(row.metrics), self.alerts.health(row.name))
        row.texts = tuple(self._format(row, col) for col in range(len(self.COLUMNS)))

    def _refresh(self, row: _Row) -> bool:
        """Recompute `row`; True when what it shows changed."""
        shown = (row.health, row.texts)
        self._recompute(row)
        return (row.health, row.texts) != shown

    def _announce(self, rows: Sequence[int]) -> None:
        """One dataChanged over the rows that changed (not one per row: each emit and
        each index made wait for the GIL while the estate's threads are busy)."""
        if rows:
            self.dataChanged.emit(self.index(min(rows), 0),
                                  self.index(max(rows), len(self.COLUMNS) - 1))

    def _value(self, row: _Row, col: int) -> float | None:
        column = self.COLUMNS[col]
        if column.metric is None or column.metric not in row.metrics:
            return None
        return float(row.metrics[column.metric]) * column.scale

    def _format(self, row: _Row, col: int) -> str:
        if col == self.NAME:
            return row.name
        if col == self.HEALTH:
            return f"\u25cf {row.health.label}"
        value = self._value(row, col)
        if value is None:
            return "\u2013"
        return f"{value:,.{self.COLUMNS[col].decimals}f}"

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row = self._rows[index.row()]
        col = index.column()
        health = row.health
        if role == Qt.ItemDataRole.DisplayRole:
            return row.texts[col]
        if role == SORT_ROLE:
            if col == self.NAME:
                return row.name
            if col == self.HEALTH:  # health first, then how bad: the worst sorts on top
                err = row.metrics.get("error_rate", 0.0)
                return int(health) * 1000.0 + min(float(err), 1.0) * 100.0
            value = self._value(row, col)
            return -1.0 if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return LEFT if col in (self.NAME, self.HEALTH) else RIGHT
        p = self.palette
        bad = health >= Health.CRITICAL
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.HEALTH:
                return p.amber if health is Health.DEGRADED else p.red if bad else p.green
            if self._is_hot(row, col):
                return p.red if bad else p.amber
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if bad:
                return tint(p.red, 60)
            if health is Health.DEGRADED and col in (self.NAME, self.HEALTH):
                return tint(p.amber, 40)
            return None
        if role == Qt.ItemDataRole.FontRole and (
                (col == self.HEALTH and health is not Health.OK) or self._is_hot(row, col)):
            return bold_font()
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        return None

    def _tooltip(self, row: _Row) -> str:
        lines = [f"{row.name}: {row.health.label}"]
        firing = self.alerts.of(row.name)
        if firing:
            lines.append("firing now:")
            lines.extend(f"  {s.severity.value.upper()} {s.name}: "
                         f"{s.annotations.get('summary', '')}" for s in firing)
        lines.extend(f"{k} = {v:g}" for k, v in sorted(row.metrics.items()))
        return "\n".join(lines)

    def _is_hot(self, row: _Row, col: int) -> bool:
        value = self._value(row, col)
        if value is None:
            return False
        t = self.thresholds
        if col == self.ERRORS:
            return value >= t.error_degraded * 100.0
        if col == self.P99:
            return value >= t.p99_degraded_ms
        hot = self.COLUMNS[col].hot
        return hot is not None and value >= hot

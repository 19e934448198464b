"""Models of the incidents pane: the incidents themselves and one incident's timeline.

The incidents table grows and changes only through ``incidentsUpdated`` (a row per
incident, newest on top) and learns each one's likely cause from
``hypothesesUpdated``; neither needs the database after the first fill.

The timeline is the story of the selected incident in time order: signals, changes,
the correlator's grouping, the agents' steps, recommendations, policy decisions,
approvals, the runs and their validations. `timeline_entries` turns what the facade
read (`IncidentActivity` and the agents' events) into rows; it is plain Python, so the
read and the merge can run on a worker thread. `TimelineModel.merge` inserts only rows it
has not seen (each has a stable key), where they belong in time; switching to another
incident is the only reset.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject, Qt

from console.domain import AgentEvent, AlertStatus, IncidentInfo, Severity
from console.incident_state import LiveState, incident_state
from console.service import IncidentActivity
from widgets.decision_text import cause_line, cause_name
from widgets.models import SORT_ROLE, AnyIndex, TableModel, bold_font, hhmmss, tint

if TYPE_CHECKING:
    from widgets.bridge import BusBridge

KINDS = ("signal", "change", "agent", "approval", "action", "validation", "note")
"""Timeline kinds, in the order the kind filter lists them."""


# --- incidents -----------------------------------------------------------------------


class IncidentTableModel(TableModel):
    """Incidents, newest on top. `cause` per incident is the board's leading hypothesis
    (pinned first), as the last ``hypothesesUpdated`` said; the State column is the
    incident's live state (`console.incident_state`) from its stored causes, as the last
    ``causesChanged`` said."""

    HEADERS = ("#", "Opened", "Severity", "State", "Likely cause", "Services")
    ID, OPENED, SEVERITY, STATE, CAUSE, SERVICES = range(6)

    def __init__(self, incidents: Iterable[IncidentInfo] = (), *,
                 causes: dict[int, tuple[str, float, str]] | None = None,
                 bridge: BusBridge | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[IncidentInfo] = sorted(incidents, key=lambda i: -i.id)
        self._causes: dict[int, tuple[str, float, str]] = dict(causes or {})
        self._stored: dict[int, tuple[Any, ...]] = {}  # incident id -> its stored causes
        if bridge is not None:
            bridge.incidentsUpdated.connect(self._on_bridge_incidents)
            bridge.hypothesesUpdated.connect(self._on_bridge_hypotheses)
            bridge.causesChanged.connect(self._on_bridge_causes)

    def incident_at(self, row: int) -> IncidentInfo:
        return self._rows[row]

    def row_of(self, incident_id: int) -> int:
        for row, info in enumerate(self._rows):
            if info.id == incident_id:
                return row
        return -1

    def cause_of(self, incident_id: int) -> tuple[str, float, str] | None:
        """(hypothesis key, confidence, board state) of the leading hypothesis."""
        return self._causes.get(incident_id)

    def update(self, incidents: Iterable[IncidentInfo]) -> None:
        """New incidents go on top (one insert per batch); known ones change in place."""
        new: list[IncidentInfo] = []
        for info in incidents:
            row = self.row_of(info.id)
            if row < 0:
                if all(n.id != info.id for n in new):
                    new.append(info)
                else:
                    new = [info if n.id == info.id else n for n in new]
                continue
            self._rows[row] = info
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))
        if new:
            new.sort(key=lambda i: -i.id)
            if self._rows and new[-1].id < self._rows[0].id:  # an old one, loaded late
                for info in new:
                    pos = next((r for r, old in enumerate(self._rows) if old.id < info.id),
                               len(self._rows))
                    self.beginInsertRows(QModelIndex(), pos, pos)
                    self._rows.insert(pos, info)
                    self.endInsertRows()
                return
            self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
            self._rows[0:0] = new
            self.endInsertRows()

    def live_state(self, incident_id: int) -> LiveState | None:
        """The incident's live state as the row shows it (None: not in the model)."""
        row = self.row_of(incident_id)
        if row < 0:
            return None
        return incident_state(self._rows[row], self._stored.get(incident_id, ()))

    def set_stored_causes(self, incident_id: int, causes: Sequence[Any]) -> None:
        """The incident's stored causes changed: its State (and cause) cells follow."""
        self._stored[incident_id] = tuple(causes)
        row = self.row_of(incident_id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, self.STATE), self.index(row, self.CAUSE))

    def _on_bridge_causes(self, event: Any) -> None:
        self.set_stored_causes(event.incident_id, event.causes)

    def set_cause(self, incident_id: int, key: str, confidence: float, state: str) -> None:
        self._causes[incident_id] = (key, confidence, state)
        row = self.row_of(incident_id)
        if row >= 0:
            index = self.index(row, self.CAUSE)
            self.dataChanged.emit(index, index)

    def _on_bridge_incidents(self, event: Any) -> None:
        self.update(event.incidents)

    def _on_bridge_hypotheses(self, event: Any) -> None:
        usable = [h for h in event.hypotheses if h.state in ("pinned", "live")]
        if usable:
            top = usable[0]
            self.set_cause(event.incident_id, top.key, top.confidence, top.state)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        info, col = self._rows[index.row()], index.column()
        if role == SORT_ROLE:
            if col == self.ID:
                return info.id
            if col == self.OPENED:
                return info.opened_at.timestamp()
            if col == self.SEVERITY:
                return list(Severity).index(info.severity)
            return self._text(info, col)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(info, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(info)
        p, open_ = self.palette, info.state == "open"
        if role == Qt.ItemDataRole.ForegroundRole:
            if not open_:
                return p.dimmed
            if col == self.SEVERITY:
                return {Severity.CRITICAL: p.red, Severity.WARNING: p.amber,
                        Severity.INFO: p.blue}[info.severity]
            if col == self.STATE:
                return getattr(p, incident_state(info, self._stored.get(info.id, ())).tone)
            if col == self.CAUSE and (cause := self._causes.get(info.id)) and \
                    cause[2] == "pinned":
                return p.blue
            return None
        if role == Qt.ItemDataRole.BackgroundRole and open_ and \
                info.severity is Severity.CRITICAL and col == self.SEVERITY:
            return tint(p.red, 70)
        if role == Qt.ItemDataRole.FontRole and open_ and col in (self.SEVERITY, self.ID):
            return bold_font()
        return None

    def _text(self, info: IncidentInfo, col: int) -> str:
        if col == self.ID:
            return str(info.id)
        if col == self.OPENED:
            return hhmmss(info.opened_at)
        if col == self.SEVERITY:
            return info.severity.value.upper()
        if col == self.STATE:
            return incident_state(info, self._stored.get(info.id, ())).label
        if col == self.CAUSE:
            cause = self._causes.get(info.id)
            named = self.causes_text(info.id)
            if named and (cause is None or cause[2] != "pinned"):
                return named
            if cause is None:
                return "investigating\u2026" if info.state == "open" else ""
            if info.state != "open":  # its diagnosis, no longer a live hypothesis
                return f"{cause[0]} {cause[1]:.2f}"
            pin = " \U0001f4cc" if cause[2] == "pinned" else ""
            return f"{cause[0]} {cause[1]:.2f}{pin}"
        return ", ".join(info.services)

    def causes_text(self, incident_id: int) -> str:
        """Its stored causes by name (a zone-wide one as its zone), each once, joined by
        "+": the cause column of an incident with several causes names them all."""
        names = list(dict.fromkeys(cause_name(c) for c in self._stored.get(incident_id, ())))
        return " + ".join(names)

    def _tooltip(self, info: IncidentInfo) -> str:
        live = incident_state(info, self._stored.get(info.id, ()))
        lines = [f"Incident {info.id}: {info.title}",
                 f"{info.severity.value}, {live.label}: {live.detail}",
                 f"opened {info.opened_at.isoformat()}"]
        lines += [cause_line(c, incident_open=info.state == "open")
                  for c in self._stored.get(info.id, ())]
        if info.resolved_at is not None:
            lines.append(f"resolved {info.resolved_at.isoformat()}")
        lines.append("services: " + ", ".join(info.services))
        return "\n".join(lines)


# --- timeline ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One row of an incident's timeline; `key` is stable across reads."""

    key: str
    at: datetime
    kind: str  # one of KINDS
    actor: str
    summary: str
    ref: str = ""  # a record link (signal:, change:, audit:, execution:, recommendation:)
    detail: str = ""
    tone: str = ""  # red | amber | green | blue | "" (how the row is coloured)
    mark: str = ""  # a short label where the plots mark it with a line ("" = no line)


_AUDIT_KIND = {
    "recommendation.create": "agent", "policy.decide": "approval",
    "recommendation.approve": "approval", "recommendation.reject": "approval",
    "recommendation.stale": "approval", "recommendation.preview_completed": "note",
    "execution.intent": "action", "execution.executed": "action",
    "execution.rollback": "action", "execution.rolled_back": "action",
    "execution.rollback_failed": "action", "execution.succeeded": "validation",
    "execution.failed": "validation", "execution.cancelled": "action",
    "execution.interrupted": "action",
}


def _audit_entry(entry: Any, titles: dict[str, str]) -> TimelineEntry | None:
    kind = _AUDIT_KIND.get(entry.action)
    if kind is None:
        return None
    what = titles.get(entry.target, entry.target)
    denied = entry.decision == "deny"
    refused = str(entry.outputs.get("refused") or entry.outputs.get("denied") or "")
    text = {
        "recommendation.create": f"recommended {what} "
                                 f"(confidence {float(entry.inputs.get('confidence', 0)):.2f})",
        "recommendation.approve": f"approval of {what} refused: {refused}" if denied
        else f"approved {what}",
        "recommendation.reject": f"rejection refused: {refused}" if denied
        else f"rejected {what}: {entry.reason}",
        "recommendation.stale": f"{what}: preview stale, approvals void",
        "recommendation.preview_completed": f"{what}: preview completed",
        "policy.decide": f"policy: {entry.decision.replace('_', ' ')} for {what}",
        "execution.intent": f"{what}: intent written, about to run",
        "execution.executed": f"{what}: steps ran, validating",
        "execution.succeeded": f"{what}: {entry.reason or 'validated'}",
        "execution.failed": f"{what}: {entry.reason or 'failed'}",
        "execution.rollback": f"{what}: rollback started",
        "execution.rolled_back": f"{what}: rolled back",
        "execution.rollback_failed": f"{what}: rollback failed",
        "execution.cancelled": f"{what}: cancelled, nothing ran",
        "execution.interrupted": f"{what}: interrupted",
    }[entry.action]
    tone = ("red" if denied or entry.action in ("execution.failed", "execution.rollback_failed")
            else "green" if entry.action in ("execution.succeeded", "recommendation.approve")
            else "amber" if entry.decision == "needs_approval" else "")
    detail = entry.reason if entry.action not in ("execution.succeeded", "execution.failed") \
        else ""
    mark = "" if denied else _MARKS.get(entry.action, "")
    return TimelineEntry(f"audit:{entry.seq}", entry.at, kind, entry.actor, text,
                         f"audit:{entry.seq}", detail, tone, mark)


_MARKS = {"recommendation.approve": "approved", "recommendation.reject": "rejected",
          "execution.intent": "run", "execution.succeeded": "validated",
          "execution.failed": "failed", "execution.rolled_back": "rolled back"}


def timeline_entries(activity: IncidentActivity,
                     events: Sequence[AgentEvent] = ()) -> list[TimelineEntry]:
    """Everything the facade read about one incident, as time-ordered timeline rows.

    An alert series shows once when it first fired (and once more when it resolved, if
    it did), not at every flap; everything else shows as recorded.
    """
    out: list[TimelineEntry] = []
    first_fired: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for sig in activity.signals:
        if sig.status is AlertStatus.FIRING:
            first_fired.setdefault(sig.fingerprint, sig)
        last[sig.fingerprint] = sig
    for fp, sig in first_fired.items():
        tone = "red" if sig.severity is Severity.CRITICAL else "amber"
        out.append(TimelineEntry(f"sig:{fp}", sig.at, "signal", sig.source,
                                 f"{sig.name} firing on {sig.service}",
                                 f"signal:{fp}", sig.annotations.get("summary", ""), tone))
        end = last[fp]
        if end.status is AlertStatus.RESOLVED:
            out.append(TimelineEntry(f"sig:{fp}:resolved:{end.at.isoformat()}", end.at,
                                     "signal", end.source,
                                     f"{end.name} resolved on {end.service}", f"signal:{fp}",
                                     "", "green"))
    for chg in activity.changes:
        version = f" {chg.version_from} \u2192 {chg.version_to}" if chg.version_to else ""
        out.append(TimelineEntry(f"chg:{chg.id}", chg.at, "change", chg.author,
                                 f"{chg.kind} of {chg.service}{version}: {chg.description}",
                                 f"change:{chg.id}", "", "blue", chg.kind.replace("_", " ")))
    # A note's key is its stored id where the read said it (an incremental read starts
    # after the notes already shown), its place in the timeline otherwise.
    ids = activity.note_ids if len(activity.note_ids) == len(activity.notes) \
        else range(len(activity.notes))
    # The kind, agent and reason repeat across a long timeline: one string each, not one
    # per row.
    for n, note in zip(ids, activity.notes, strict=True):
        kind = sys.intern(note.kind) if note.kind in KINDS else "note"
        reason = sys.intern(str(note.data.get("reason", "")))
        out.append(TimelineEntry(f"note:{n}", note.at, kind,
                                 sys.intern(str(note.data.get("agent", ""))), note.summary,
                                 f"signal:{note.ref}" if note.ref else "", reason))
    titles = {f"recommendation:{r.id}": str(r.preview.get("summary") or r.runbook_id)
              for r in activity.recommendations}
    for run in activity.executions:
        rec_title = titles.get(f"recommendation:{run.recommendation_id}", run.runbook_id)
        titles[f"execution:{run.id}"] = f"run {run.id} ({rec_title})"
    for entry in activity.audit:
        row = _audit_entry(entry, titles)
        if row is not None:
            out.append(row)
    out.extend(agent_entry(event) for event in events)
    out.sort(key=_order)
    return out


def agent_entry(event: AgentEvent) -> TimelineEntry:
    to = f" \u2192 {event.to_agent}" if event.to_agent else ""
    took = f" ({event.duration_ms:.0f} ms)" if event.duration_ms is not None else ""
    tone = "red" if event.kind == "error" else "blue" if event.kind == "steer" else ""
    return TimelineEntry(f"ev:{event.id}", event.at, "agent", event.agent,
                         f"{event.kind}{to}: {event.summary}", f"agent_event:{event.id}",
                         took.strip(" ()"), tone)


_SOURCE_RANK = {"sig": 0, "chg": 1, "note": 2, "ev": 3, "audit": 4}


def _order(entry: TimelineEntry) -> tuple[float, int, int, str]:
    """Time first; within one instant, the cause before what followed from it: signals,
    changes, the correlator's notes, the agents' steps, then the lifecycle's records,
    each source in the order it was recorded."""
    head, _, tail = entry.key.partition(":")
    number = tail.partition(":")[0]
    return (entry.at.timestamp(), _SOURCE_RANK.get(head, 5),
            int(number) if number.isdigit() else 0, entry.key)


class TimelineModel(TableModel):
    """One incident's timeline, oldest first (a story reads down)."""

    HEADERS = ("Time", "Kind", "Who", "What")
    TIME, KIND, WHO, WHAT = range(4)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.incident_id: int | None = None
        self._rows: list[TimelineEntry] = []
        self._keys: set[str] = set()
        # The ids of the last stored note, signal and agent event merged: the next read
        # asks only for later ones.
        self.last_note_id = self.last_signal_id = self.last_event_id = 0

    def entry_at(self, row: int) -> TimelineEntry:
        return self._rows[row]

    def entries(self) -> list[TimelineEntry]:
        return list(self._rows)

    def show_incident(self, incident_id: int | None,
                      entries: Iterable[TimelineEntry] = ()) -> None:
        """Another incident: the one reset this model does (not an event)."""
        self.beginResetModel()
        self.incident_id = incident_id
        self.last_note_id = self.last_signal_id = self.last_event_id = 0
        self._rows = sorted(entries, key=_order)
        self._keys = {e.key for e in self._rows}
        self.endResetModel()

    def merge(self, incident_id: int, entries: Iterable[TimelineEntry],
              last_note_id: int = 0, last_signal_id: int = 0,
              last_event_id: int = 0) -> list[TimelineEntry]:
        """Insert the rows not shown yet, each where it belongs in time; returns them.
        `last_*_id` are the ids of the last stored note, signal and agent event the read
        covered."""
        if incident_id != self.incident_id:
            return []
        self.last_note_id = max(self.last_note_id, last_note_id)
        self.last_signal_id = max(self.last_signal_id, last_signal_id)
        self.last_event_id = max(self.last_event_id, last_event_id)
        # A read returns rows already shown (its signals, changes and records again, the
        # notes only after `last_note_id`): only the unseen rows are sorted, and
        # each run of them that lands in one place is one insert (a read after a burst
        # adds hundreds at the end; row by row, the views relaid out for each).
        unseen: dict[str, TimelineEntry] = {}
        for entry in entries:
            if entry.key not in self._keys:
                unseen.setdefault(entry.key, entry)
        new = sorted(((_order(e), e) for e in unseen.values()), key=lambda pair: pair[0])
        start = 0
        while start < len(new):
            # Each row's place is worked out when looked for, not kept per row (a long
            # timeline's order keys cost as much memory as its rows).
            pos = bisect.bisect_right(self._rows, new[start][0], key=_order)
            end = start + 1
            if pos < len(self._rows):
                limit = _order(self._rows[pos])
                while end < len(new) and new[end][0] < limit:
                    end += 1
            else:
                end = len(new)
            run = new[start:end]
            self.beginInsertRows(QModelIndex(), pos, pos + len(run) - 1)
            self._rows[pos:pos] = [e for _o, e in run]
            self._keys.update(e.key for _o, e in run)
            self.endInsertRows()
            start = end
        return [e for _o, e in new]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        entry, col = self._rows[index.row()], index.column()
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            if col == self.TIME:
                return entry.at.timestamp() if role == SORT_ROLE else hhmmss(entry.at)
            return (entry.kind, entry.actor, entry.summary)[col - 1]
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [entry.summary, f"{entry.kind} at {entry.at.isoformat()}"
                     + (f" by {entry.actor}" if entry.actor else "")]
            if entry.detail:
                lines.append(entry.detail)
            if entry.ref:
                lines.append(f"record: {entry.ref}")
            return "\n".join(lines)
        if role == Qt.ItemDataRole.ForegroundRole:
            p = self.palette
            color = {"red": p.red, "amber": p.amber, "green": p.green,
                     "blue": p.blue}.get(entry.tone)
            if col == self.KIND:
                return color or p.dimmed
            if col == self.WHAT:
                return color
            if col == self.WHO:
                return p.dimmed
        if role == Qt.ItemDataRole.FontRole and col == self.WHAT and \
                entry.kind in ("approval", "action", "validation"):
            return bold_font()
        return None

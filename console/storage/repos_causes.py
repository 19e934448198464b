"""The causes of an incident (Incident 1..n Cause), next to the rows they govern.

An incident may have several causes at once: two faults in different branches of the
graph, or one that joined while the first was being fixed. The investigator groups its
hypotheses by the cause they would be (`Hypothesis.cause`, 1, 2... within one ranking);
here each group is matched to the incident's stored causes, so that a cause keeps its
identity, its recommendations and its actions from one ranking to the next:

- a group is the cause that has held its leading hypothesis' key before, else one that
  held another of its keys and was not acted on;
- a first group matching none takes over the first cause nobody acted on yet, when
  that cause was a faint guess or names the same service (the investigation changed
  its mind about the first cause, it did not find a second); a sure cause of another
  service keeps its identity, and the group becomes a cause of its own;
- any other group matching none becomes a new cause when it is sure enough
  (`NEW_CAUSE_AT`); a fainter one is shown as an alternative of the first cause;
- a cause nobody acted on that a ranking no longer supports is withdrawn.

A cause's diagnosis is frozen once an action on it is running or succeeded (the record
keeps what was acted on, not what a look after the fix thought of a recovered service);
after a fix that failed or was rolled back it follows the rankings again.

A cause's state follows its recommendations and their executions (matched by the
hypothesis key each recommendation was made for, from the recommender's audit note):
diagnosing, waiting (a recommendation waits for a person or for policy), running,
validating, resolved (its fix validated), rolled_back (its fix failed or was rolled
back); `needs_person` is set by whoever gives up on it and stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.domain import Hypothesis
from console.storage.models import AuditRow, CauseRow, ExecutionRow, RecommendationRow
from console.storage.repos_learning import DIAGNOSIS_ACTION

NEW_CAUSE_AT = 0.5
STATES = ("diagnosing", "waiting", "running", "validating", "resolved", "rolled_back",
          "needs_person", "withdrawn")
# While an action on it runs or after its fix held, a cause's diagnosis stays as acted on.
FROZEN = frozenset({"running", "validating", "resolved", "needs_person"})
_UNACTED = frozenset({"diagnosing", "waiting"})
_EXECUTION_STATE = {"intent": "running", "running": "running", "validating": "validating",
                    "succeeded": "resolved", "failed": "rolled_back",
                    "interrupted": "rolled_back", "rolling_back": "rolled_back",
                    "rolled_back": "rolled_back", "rollback_failed": "rolled_back"}
_WAITING = frozenset({"pending", "queued", "executing"})


@dataclass(frozen=True, slots=True)
class CauseAction:
    """A recommendation made for a cause, and its execution if it ran."""

    recommendation_id: int
    runbook_id: str
    target: str
    recommendation_state: str
    confidence: float
    autonomous: bool
    execution_id: int | None = None
    execution_state: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cause:
    """One cause of an incident as stored, with its recommendations and actions."""

    id: int
    incident_id: int
    ordinal: int
    service: str
    fault_class: str
    confidence: float
    signals: int
    state: str
    keys: tuple[str, ...]
    evidence: tuple[str, ...]  # refs of the diagnosis's evidence
    note: str
    opened_at: datetime
    updated_at: datetime
    actions: tuple[CauseAction, ...] = ()
    zone: str = ""  # a zone-wide cause's zone (its service is where it was seen first)

    @property
    def key(self) -> str:
        return f"{self.service}/{self.fault_class}"

    @property
    def recommendation(self) -> CauseAction | None:
        """Its newest recommendation."""
        return self.actions[-1] if self.actions else None


class CauseRepo:
    def record_ranking(self, session: Session, incident_id: int,
                       ranking: Sequence[Hypothesis], at: datetime) -> list[Hypothesis]:
        """Match the ranking's groups to the incident's causes (see the module
        docstring); returns the ranking with each hypothesis's `cause` set to the
        ordinal of its stored cause."""
        groups: dict[int, list[Hypothesis]] = {}
        for h in ranking:
            groups.setdefault(h.cause, []).append(h)
        if not groups:
            return []
        rows = list(session.scalars(select(CauseRow).where(
            CauseRow.incident_id == incident_id).order_by(CauseRow.ordinal)))
        actions = self._actions(session, incident_id, rows)
        state = {r.id: _state(r, actions.get(r.id, ())) for r in rows}
        live = [r for r in rows if state[r.id] != "withdrawn"]
        order = sorted(groups)
        match: dict[int, CauseRow | None] = {}
        used: set[int] = set()
        # A cause that held the group's leading key is that cause; then one that held
        # any of its keys, unless it was acted on: an acted-on cause keeps the diagnosis
        # it was fixed for, so a group led by another fault that merely lists it among
        # its alternatives is not it (it would hide the new fault behind a fixed one).
        for leading_only in (True, False):
            for index in order:
                if index in match:
                    continue
                keys = [groups[index][0].key] if leading_only else [
                    h.key for h in groups[index]]
                row = next((r for k in keys for r in live
                            if r.id not in used and k in r.keys
                            and (leading_only or state[r.id] not in FROZEN)), None)
                if row is not None:
                    match[index] = row
                    used.add(row.id)
        for n, index in enumerate(order):
            if index in match:
                continue
            leader = groups[index][0]
            row = None
            if n == 0:  # the first cause, seen differently: take over one not acted on
                # (a faint first guess, or the same service named for another fault;
                # never another service's cause that was sure enough to stand alone)
                row = next((r for r in live if r.id not in used
                            and state[r.id] in _UNACTED
                            and (r.service == leader.service
                                 or r.confidence < NEW_CAUSE_AT)), None)
            if row is None and (not live or leader.confidence >= NEW_CAUSE_AT):
                row = CauseRow(incident_id=incident_id,
                               ordinal=max((r.ordinal for r in rows), default=0) + 1,
                               service=leader.service, fault_class=leader.fault_class,
                               confidence=0.0, signals=0, keys=[], evidence=[],
                               state="diagnosing", note="", opened_at=at, updated_at=at)
                session.add(row)
                session.flush()
                rows.append(row)
                live.append(row)
                state[row.id] = "diagnosing"
            if row is not None:
                used.add(row.id)
            match[index] = row
        session.flush()
        for index, row in match.items():
            if row is None:
                continue
            current = _state(row, actions.get(row.id, ()))
            if current not in FROZEN:
                _diagnose(row, groups[index][0], at)
            row.state = current
        for row in live:  # nobody acted on it and nothing supports it any more
            if row.id not in used and state[row.id] == "diagnosing":
                row.state, row.updated_at = "withdrawn", at
        session.flush()
        first = min((r.ordinal for r in live if r.state != "withdrawn"), default=0)
        out = []
        for h in ranking:
            row = match.get(h.cause)
            out.append(_with_cause(h, row.ordinal if row is not None else first))
        return out

    def causes(self, session: Session, incident_id: int, *,
               withdrawn: bool = False) -> list[Cause]:
        """The incident's causes, first found first, each with its actions and its state
        as they stand now."""
        rows = list(session.scalars(select(CauseRow).where(
            CauseRow.incident_id == incident_id).order_by(CauseRow.ordinal)))
        actions = self._actions(session, incident_id, rows)
        out = []
        for row in rows:
            mine = actions.get(row.id, ())
            state = _state(row, mine)
            if state == "withdrawn" and not withdrawn:
                continue
            out.append(Cause(row.id, row.incident_id, row.ordinal, row.service,
                             row.fault_class, row.confidence, row.signals, state,
                             tuple(row.keys), tuple(str(e.get("ref", ""))
                                                    for e in row.evidence),
                             row.note, row.opened_at, row.updated_at, tuple(mine),
                             row.zone or ""))
        return out

    def set_state(self, session: Session, incident_id: int, ordinal: int, state: str,
                  note: str, at: datetime) -> Cause:
        """Set a cause's state by hand (e.g. needs_person, with why in `note`)."""
        if state not in STATES:
            raise ValueError(f"unknown cause state {state!r} (known: {', '.join(STATES)})")
        row = session.scalar(select(CauseRow).where(CauseRow.incident_id == incident_id,
                                                    CauseRow.ordinal == ordinal))
        if row is None:
            raise LookupError(f"incident {incident_id} has no cause {ordinal}")
        row.state, row.note, row.updated_at = state, note, at
        session.flush()
        return next(c for c in self.causes(session, incident_id, withdrawn=True)
                    if c.ordinal == ordinal)

    # --- which recommendations are whose -------------------------------------------------

    def _actions(self, session: Session, incident_id: int,
                 rows: Sequence[CauseRow]) -> dict[int, list[CauseAction]]:
        if not rows:
            return {}
        recs = list(session.scalars(select(RecommendationRow).where(
            RecommendationRow.incident_id == incident_id).order_by(RecommendationRow.id)))
        if not recs:
            return {}
        keys = _diagnosis_keys(session, [r.id for r in recs])
        executions: dict[int, ExecutionRow] = {}
        for ex in session.scalars(select(ExecutionRow).where(
                ExecutionRow.recommendation_id.in_([r.id for r in recs]))
                .order_by(ExecutionRow.id)):
            if ex.recommendation_id is not None:
                executions[ex.recommendation_id] = ex  # the newest one of each
        out: dict[int, list[CauseAction]] = {}
        for rec in recs:
            row = _owner(rows, keys.get(rec.id), rec.target)
            if row is None:
                continue
            ex = executions.get(rec.id)
            out.setdefault(row.id, []).append(CauseAction(
                rec.id, rec.runbook_id or rec.action, rec.target, rec.state, rec.confidence,
                rec.autonomous, ex.id if ex is not None else None,
                ex.state if ex is not None else None,
                ex.started_at if ex is not None else None))
        return out


def _diagnosis_keys(session: Session, rec_ids: Iterable[int]) -> dict[int, str]:
    targets = [f"recommendation:{i}" for i in rec_ids]
    out: dict[int, str] = {}
    for row in session.scalars(select(AuditRow).where(AuditRow.action == DIAGNOSIS_ACTION,
                                                      AuditRow.target.in_(targets))
                               .order_by(AuditRow.seq)):
        data: Mapping[str, Any] = row.inputs or {}
        out[int(row.target.removeprefix("recommendation:"))] = \
            f"{data.get('service', '')}/{data.get('fault_class', '')}"
    return out


def _owner(rows: Sequence[CauseRow], key: str | None, target: str) -> CauseRow | None:
    """The cause a recommendation was made for: the one holding its diagnosis now, else
    one that held it, else (no note) the one on its target service."""
    if key is not None:
        return (next((r for r in rows if f"{r.service}/{r.fault_class}" == key), None)
                or next((r for r in rows if key in r.keys), None))
    return next((r for r in rows if r.service == target), None)


def _state(row: CauseRow, actions: Sequence[CauseAction]) -> str:
    if row.state in ("needs_person", "withdrawn"):
        return row.state
    if not actions:
        return "diagnosing"
    last = actions[-1]
    if last.execution_state is not None:
        return _EXECUTION_STATE.get(last.execution_state, "running")
    if last.recommendation_state in _WAITING:
        return "waiting"
    earlier = [a for a in actions if a.execution_state is not None]
    if earlier:  # a later proposal was turned down: what the last run left stands
        return _EXECUTION_STATE.get(earlier[-1].execution_state or "", "running")
    return "diagnosing"


def _diagnose(row: CauseRow, h: Hypothesis, at: datetime) -> None:
    row.service, row.fault_class, row.zone = h.service, h.fault_class, h.zone
    row.confidence, row.signals = float(h.confidence), int(h.signals)
    row.evidence = [{"kind": e.kind, "ref": e.ref} for e in h.evidence][:50]
    if h.key not in row.keys:
        row.keys = [*row.keys, h.key]
    row.updated_at = at


def _with_cause(h: Hypothesis, ordinal: int) -> Hypothesis:
    return replace(h, cause=ordinal)

"""Repository of the playbook agent's drafts (`playbook_drafts`).

A draft is a runbook the playbook agent wrote where no runbook of the library fitted.
It moves draft -> linted -> dry_run_passed -> signed_off, or to rejected (it did not
load, or it failed the policy lint). Nothing here runs it: it reaches the execution
engine's library only once a person signed it off (agents/playbooks.py).

`PlaybookDraft` is the domain type the repository returns (never a row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.storage.models import PlaybookDraftRow

DRAFT_STATES = ("draft", "linted", "dry_run_passed", "signed_off", "rejected")


@dataclass(frozen=True, slots=True)
class PlaybookDraft:
    id: int
    incident_id: int | None
    runbook_id: str
    fault_class: str
    yaml: str
    state: str  # one of DRAFT_STATES
    lint: Mapping[str, Any] = field(default_factory=dict)
    dry_run: Mapping[str, Any] = field(default_factory=dict)
    signed_off_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PlaybookDraftRepo:
    def add(self, session: Session, *, incident_id: int | None, runbook_id: str,
            fault_class: str, yaml: str, state: str, lint: Mapping[str, Any],
            at: datetime) -> int:
        if state not in DRAFT_STATES:
            raise ValueError(f"unknown draft state {state!r}")
        row = PlaybookDraftRow(incident_id=incident_id, runbook_id=runbook_id[:200],
                               fault_class=fault_class[:64], yaml=yaml, state=state,
                               lint=dict(lint), dry_run={}, signed_off_by="",
                               created_at=at, updated_at=at)
        session.add(row)
        session.flush()
        return row.id

    def row(self, session: Session, draft_id: int) -> PlaybookDraftRow | None:
        return session.get(PlaybookDraftRow, draft_id)

    def get(self, session: Session, draft_id: int) -> PlaybookDraft | None:
        row = session.get(PlaybookDraftRow, draft_id)
        return None if row is None else self._to_domain(row)

    def update(self, session: Session, draft_id: int, *, at: datetime,
               **fields: Any) -> PlaybookDraftRow:
        row = session.get(PlaybookDraftRow, draft_id)
        if row is None:
            raise KeyError(draft_id)
        if "state" in fields and fields["state"] not in DRAFT_STATES:
            raise ValueError(f"unknown draft state {fields['state']!r}")
        for name, value in fields.items():
            setattr(row, name, dict(value) if name in ("lint", "dry_run") else value)
        row.updated_at = at
        return row

    def runbook_ids(self, session: Session) -> set[str]:
        return set(session.scalars(select(PlaybookDraftRow.runbook_id)))

    def recent(self, session: Session, states: Iterable[str] | None = None,
               limit: int = 200) -> list[PlaybookDraft]:
        query = select(PlaybookDraftRow).order_by(PlaybookDraftRow.id.desc()).limit(limit)
        if states is not None:
            query = query.where(PlaybookDraftRow.state.in_(list(states)))
        return [self._to_domain(r) for r in session.scalars(query)]

    @staticmethod
    def _to_domain(row: PlaybookDraftRow) -> PlaybookDraft:
        return PlaybookDraft(row.id, row.incident_id, row.runbook_id, row.fault_class,
                             row.yaml, row.state, dict(row.lint or {}),
                             dict(row.dry_run or {}), row.signed_off_by or "",
                             row.created_at, row.updated_at)

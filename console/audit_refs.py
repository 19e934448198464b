"""The rows that the audit chain vouches for, checked against the chain both ways.

Recommendations, approvals, executions and rollbacks are each written in the same
transaction as the audit record that says who made them (`recommendation.create`,
`recommendation.approve|reject`, `execution.intent`, `execution.rollback`, the record's
target naming the row), and so is an incident the correlator opens (`incident.open`).
So a database whose chain was deleted or cut short still shows what happened in those
tables, and a chain that was re-forged has to agree with them: a row without its
record, or a record that allowed something (decision `allow`) naming a row that is not
stored (or stored as someone else's), is a named failure. Records without that decision
may be notes about a row (`WatchfloorService.record`), so they are not held to one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.storage.models import (
    ApprovalRow,
    ExecutionRow,
    IncidentRow,
    RecommendationRow,
    RollbackRow,
)

# action -> the kind of row it makes (the target is "<kind>:<id>")
CREATES = {"incident.open": ("incident", IncidentRow),
           "recommendation.create": ("recommendation", RecommendationRow),
           "execution.intent": ("execution", ExecutionRow)}
DECISIONS = {"recommendation.approve": "approved", "recommendation.reject": "rejected"}
# Kinds whose every row must have its record. An incident may be stored by an agent
# without one (`save_incidents` audits what the update says); only a record naming an
# incident that is not stored is checked for them.
ROW_NEEDS_RECORD = ("recommendation", "execution")


@dataclass(frozen=True, slots=True)
class RefProblem:
    seq: int | None  # the record at fault, when it is a record
    text: str


@dataclass
class References:
    """Fed every record of a chain that holds (`see`), then compared with the rows."""

    created: dict[str, dict[int, int]] = field(
        default_factory=lambda: {kind: {} for kind, _row in CREATES.values()})
    # what records that allowed something say they made (the rest may be notes)
    allowed: dict[str, dict[int, int]] = field(
        default_factory=lambda: {kind: {} for kind, _row in CREATES.values()})
    approvals: dict[tuple[int, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(list))
    rollbacks: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(list))

    def see(self, rec: Mapping[str, Any]) -> None:
        action = rec["action"]
        if rec["decision"] == "deny" or (action not in CREATES and action not in DECISIONS
                                         and action != "execution.rollback"):
            return
        kind, _, ident = rec["target"].partition(":")
        if not ident.isdigit():
            return
        number, seq, actor = int(ident), int(rec["seq"]), rec["actor"]
        if action in CREATES:
            if kind == CREATES[action][0]:
                self.created[kind].setdefault(number, seq)
                if rec["decision"] == "allow":
                    self.allowed[kind].setdefault(number, seq)
        elif rec["decision"] != "allow":
            return  # a note about an approval or a rollback, not the one that made it
        elif action in DECISIONS:
            if kind == "recommendation" and actor.startswith("user:"):
                self.approvals[(number, actor.removeprefix("user:"), DECISIONS[action])] \
                    .append(seq)
        elif kind == "execution":
            self.rollbacks[(number, actor)].append(seq)

    def check(self, session: Session) -> tuple[list[RefProblem], dict[str, int]]:
        """Every problem found (rows without records, then records without rows) and how
        many rows of each kind were checked."""
        problems: list[RefProblem] = []
        counted: dict[str, int] = {}
        for action, (kind, row_type) in CREATES.items():
            ids = set(session.scalars(select(row_type.id)).all())
            counted[f"{kind}s"] = len(ids)
            seen = self.created[kind]
            for number in sorted(ids - seen.keys() if kind in ROW_NEEDS_RECORD else ()):
                problems.append(RefProblem(None, f"{kind} #{number} is stored but the chain "
                                                 f"has no '{action}' record for "
                                                 f"{kind}:{number}"))
            made = self.allowed[kind]
            for number in sorted(made.keys() - ids):
                problems.append(RefProblem(made[number], f"record {made[number]} ('{action}') "
                                                         f"names {kind} #{number}, which is "
                                                         "not stored"))
        approvals = Counter((int(r), str(u), str(d)) for r, u, d in session.execute(
            select(ApprovalRow.recommendation_id, ApprovalRow.user, ApprovalRow.decision)))
        counted["approvals"] = sum(approvals.values())
        problems += _compare(approvals, self.approvals, _approval_row, _approval_record)
        rollbacks = Counter((int(e), str(u)) for e, u in session.execute(
            select(RollbackRow.execution_id, RollbackRow.user)))
        counted["rollbacks"] = sum(rollbacks.values())
        problems += _compare(rollbacks, self.rollbacks, _rollback_row, _rollback_record)
        return problems, counted


def _compare(rows: Counter[Any], records: Mapping[Any, list[int]], row_text: Any,
             record_text: Any) -> list[RefProblem]:
    problems = []
    for key in sorted(set(rows) | set(records)):
        stored, seqs = rows.get(key, 0), records.get(key, [])
        if stored > len(seqs):
            problems.append(RefProblem(None, row_text(key, stored - len(seqs))))
        elif len(seqs) > stored:
            extra = seqs[stored]
            problems.append(RefProblem(extra, record_text(key, extra)))
    return problems


def _approval_row(key: tuple[int, str, str], missing: int) -> str:
    rec, user, decision = key
    action = "recommendation.approve" if decision == "approved" else "recommendation.reject"
    times = f" ({missing} of them)" if missing > 1 else ""
    return (f"approval of recommendation #{rec} by {user} ({decision}) is stored without "
            f"its '{action}' record{times}")


def _approval_record(key: tuple[int, str, str], seq: int) -> str:
    rec, user, decision = key
    return (f"record {seq} says {user} {decision} recommendation #{rec}, but no such "
            "approval is stored")


def _rollback_row(key: tuple[int, str], missing: int) -> str:
    execution, who = key
    times = f" ({missing} of them)" if missing > 1 else ""
    return (f"rollback of execution #{execution} by {who} is stored without its "
            f"'execution.rollback' record{times}")


def _rollback_record(key: tuple[int, str], seq: int) -> str:
    execution, who = key
    return (f"record {seq} says {who} rolled back execution #{execution}, but no such "
            "rollback is stored")

"""The change gate: a change record opened before a governed run and closed after it.

The execution lifecycle calls `open_change` before the first step of an action class
whose policy asks for change records (no record, no run) and `close_change` when the
run has settled. The idempotency key is the execution's, so a lifecycle that retries
after a crash links to the change record it opened the first time instead of opening
another. Which system holds the record is the ticket config's choice; PagerDuty, which
has no change requests, gets change events instead (console/itsm/pagerduty.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from console.itsm.base import TicketRef, TicketSystem


class ChangeGate:
    def __init__(self, tickets: TicketSystem) -> None:
        self.tickets = tickets

    def open_change(self, action_class: str, summary: str, details: str,
                    key: str) -> TicketRef:
        plan = _plan(details)
        return self.tickets.open(kind="change", title=f"[{action_class}] {summary}",
                                 body=describe(plan, details),
                                 service=str(plan.get("target", "")) if plan else "",
                                 severity="info", idempotency_key=f"change:{key}")

    def close_change(self, ref: TicketRef, outcome: str, success: bool) -> None:
        self.tickets.close(ref, outcome, success=success)


def _plan(details: str) -> Mapping[str, Any] | None:
    try:
        plan = json.loads(details)
    except ValueError:
        return None
    return plan if isinstance(plan, dict) else None


def describe(plan: Mapping[str, Any] | None, details: str) -> str:
    """What a change approver reads: the plan in words, then the plan as it is stored."""
    if plan is None:
        return details
    lines = [f"Watchfloor will run {plan.get('title', plan.get('runbook', '?'))} on "
             f"{plan.get('target', '?')} (action class {plan.get('action_class', '?')}, "
             f"risk {plan.get('risk', '?')}).", "", "Steps:"]
    for number, step in enumerate(plan.get("steps") or [], 1):
        lines.append(f"  {number}. {_step(step)}")
    probe = plan.get("probe")
    if probe:
        lines += ["", f"Validation: {_step(probe)} within {plan.get('deadline', '?')} s"]
    rollback = plan.get("rollback")
    lines += ["", "Rollback: " + ("none" if not rollback else
                                  "; ".join(_step(s) for s in rollback))]
    lines += ["", "Plan (as stored):", details]
    return "\n".join(lines)


def _step(step: Any) -> str:
    if not isinstance(step, Mapping):
        return str(step)
    head = step.get("action") or step.get("kind") or step.get("executor") or "step"
    rest = {k: v for k, v in step.items() if k not in ("action", "kind")}
    return f"{head} {json.dumps(rest, sort_keys=True)}" if rest else str(head)

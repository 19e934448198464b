"""High-risk action classes an admin let run on their own, and who did, for the wizard.

High risk needs an approver other than the requester, except where the policy's
`high_risk_autonomy` grants a class level 3 on named services (console/policy.py). That
is a decision about trust, so whoever places the team on the maturity scale must see
it beside the evidence: which class, on which services, granted by whom and when. The
policy holds only the grant; the person and the time come from the audited
`policy.set` operation that added it (the latest one, when it was taken away and given
again). A grant no audited change added (the policy a database started with) says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.policy import Policy
from console.storage.models import AuditRow

POLICY_SET = "policy.set"


@dataclass(frozen=True, slots=True)
class HighRiskGrant:
    """One admin's grant of a high-risk class on some services (as it holds today)."""

    action_class: str
    services: tuple[str, ...]
    granted_by: str | None  # "user:NAME"; None when no audited change added it
    at: datetime | None
    reason: str = ""

    def says(self) -> str:
        """"failover on orders-db, cart-db: granted by user:alice at 2026-12-07 02:10"."""
        where = ", ".join(self.services)
        if self.granted_by is None:
            return (f"{self.action_class} on {where}: in the policy since before its audited "
                    "changes (no record says who granted it)")
        when = "" if self.at is None else f" at {self.at:%Y-%m-%d %H:%M} UTC"
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.action_class} on {where}: granted by {self.granted_by}{when}{why}"

    def as_dict(self) -> dict[str, Any]:
        return {"action_class": self.action_class, "services": list(self.services),
                "granted_by": self.granted_by,
                "at": None if self.at is None else self.at.isoformat(), "reason": self.reason}


def _granted(policy: Any) -> set[tuple[str, str]]:
    grants = (policy or {}).get("high_risk_autonomy") if isinstance(policy, Mapping) else None
    if not isinstance(grants, Mapping):
        return set()
    return {(str(c), str(s)) for c, services in grants.items()
            for s in (services or ()) if isinstance(services, (list, tuple))}


def high_risk_grants(session: Session, policy: Policy) -> list[HighRiskGrant]:
    """The grants in force, each with the audited change that last added it, grouped
    by class and change (one line per admin decision)."""
    wanted = {(c, s) for c, services in policy.high_risk_autonomy.items() for s in services}
    if not wanted:
        return []
    found: dict[tuple[str, str], AuditRow] = {}
    rows = session.scalars(select(AuditRow).where(AuditRow.action == POLICY_SET,
                                                  AuditRow.decision == "allow")
                           .order_by(AuditRow.seq.desc()))
    for row in rows:
        outputs = row.outputs or {}
        added = _granted(outputs.get("after")) - _granted(outputs.get("before"))
        for pair in (added & wanted) - found.keys():
            found[pair] = row
        if found.keys() >= wanted:
            break
    grouped: dict[tuple[str, int | None], list[str]] = {}
    for action_class, service in sorted(wanted):
        row = found.get((action_class, service))
        grouped.setdefault((action_class, None if row is None else row.seq), []).append(service)
    by_seq = {row.seq: row for row in found.values()}
    grants = []
    for (action_class, seq), services in sorted(grouped.items(),
                                                key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        row = by_seq.get(seq) if seq is not None else None
        grants.append(HighRiskGrant(action_class, tuple(services),
                                    None if row is None else row.actor,
                                    None if row is None else row.at,
                                    "" if row is None else row.reason[:200]))
    return grants

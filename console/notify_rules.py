"""What deserves a desktop notification, decided without Qt so it can be tested.

An operator on a night shift must be interrupted for two things only: a new incident
that is serious enough, and an approval that is waiting on *them*. Both are decided
here; the tray widget only shows what these rules return. The rules are stateful on
purpose: each incident and each recommendation is announced at most once, so 340
alerts folded into one incident give one notification, and a recommendation that is
re-published on every refresh does not nag.

"Waiting on them" follows the same rules as the execution lifecycle and the policy
engine: approving needs the operator role; a high-risk action needs an approver other
than the person who requested it; an approval already given by this user, an expired
recommendation, or one not pending any more needs nothing from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from console.domain import IncidentInfo, Recommendation, Severity
from console.storage.repos import ROLES, role_rank

SEVERITY_ORDER = (Severity.INFO, Severity.WARNING, Severity.CRITICAL)


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification: `key` is unique per thing announced (incident:ID,
    recommendation:ID), `ref` the link the console follows when it is clicked."""

    key: str
    kind: str  # incident | approval
    title: str
    message: str
    severity: str  # info | warning | critical
    ref: str


def may_approve(rec: Recommendation, user: str, role: str | None) -> bool:
    """True when `user` with `role` can give `rec` an approval that counts."""
    if role not in ROLES or role_rank(role) < role_rank("operator"):
        return False
    if rec.risk == "high":
        if role_rank(role) < role_rank("approver"):
            return False
        if rec.requester == f"user:{user}":
            return False  # a high-risk action needs someone other than its requester
    return all(who != user for who, _ in rec.approvals)


class NotifyRules:
    """Turns incident updates and the pending recommendations into notices, once each.

    `min_severity` is the lowest incident severity announced (critical by default: a
    warning is visible in the console, it does not wake anyone).
    """

    def __init__(self, user: str, role: str | None, *,
                 min_severity: Severity = Severity.CRITICAL) -> None:
        self.user = user
        self.role = role
        self.min_severity = min_severity
        self._incidents: set[int] = set()
        self._approvals: set[int] = set()

    def set_role(self, role: str | None) -> None:
        """The user's role changed (an admin edited it): later approvals follow it."""
        self.role = role

    def prime(self, incidents: Iterable[IncidentInfo] = (),
              recommendations: Iterable[Recommendation] = (),
              now: datetime | None = None) -> None:
        """Mark what was already there when the console opened as announced: the
        operator sees it in the panes, a burst of stale notifications helps nobody."""
        self.incidents(incidents)
        self.approvals(recommendations, now)

    def _serious(self, severity: Severity) -> bool:
        return SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(self.min_severity)

    def incidents(self, incidents: Iterable[IncidentInfo]) -> list[Notice]:
        """Notices for incidents open, serious enough and not announced before. An
        incident that grows from warning to critical is announced when it turns
        critical; one that resolves or grows again is not announced a second time."""
        out = []
        for inc in incidents:
            if inc.id in self._incidents or inc.state != "open" or \
                    not self._serious(inc.severity):
                continue
            self._incidents.add(inc.id)
            services = ", ".join(inc.services[:3]) + (
                f" (+{len(inc.services) - 3})" if len(inc.services) > 3 else "")
            out.append(Notice(f"incident:{inc.id}", "incident",
                              f"{inc.severity.value.upper()} incident #{inc.id}",
                              f"{inc.title}\n{services}" if services else inc.title,
                              inc.severity.value, f"incident:{inc.id}"))
        return out

    def approvals(self, recommendations: Iterable[Recommendation],
                  now: datetime | None = None) -> list[Notice]:
        """Notices for pending recommendations this user may approve, once each."""
        out = []
        for rec in recommendations:
            if rec.id in self._approvals or rec.state != "pending":
                continue
            if now is not None and rec.expires_at is not None and rec.expires_at <= now:
                continue
            if not may_approve(rec, self.user, self.role):
                continue
            self._approvals.add(rec.id)
            summary = str(rec.preview.get("summary") or rec.runbook_id)
            why = f"{rec.risk} risk, confidence {rec.confidence:.2f}"
            incident = f" for incident #{rec.incident_id}" if rec.incident_id else ""
            out.append(Notice(f"recommendation:{rec.id}", "approval",
                              f"Approval waiting{incident}",
                              f"{summary} on {rec.target} ({why})",
                              "critical" if rec.risk == "high" else "warning",
                              f"recommendation:{rec.id}"))
        return out

"""The policy engine: may this action run, who must approve it, or why not.

`decide()` is a pure function of the policy, the request and what it is told about
the recent past (runs, failures); it returns allow, needs approval (from whom), or
deny, always with its reasons, so every decision can be audited and explained. The
policy itself is data: a YAML file (validated like every other input) or the copy in
the database, changed only through an operation.

Rules, in order:
1. the kill switch or a global ceiling of 0 stops every agent run;
2. roles: a viewer may do nothing; requesting needs operator; approving needs approver;
3. freezes and change windows deny what they cover;
4. rate limits and circuit breakers per (action class, service);
5. the blast radius must fit the budget for the recommendation's confidence;
6. an agent may run on its own only where the autonomy level of the action class (per
   service, under the global ceiling) is 3 or more and the risk tier allows it; a
   level-1 rule (actor rule:ID, a fixed workflow someone wrote and reviewed) may run its
   named runbook from level 1, within the same risk tiers;
   otherwise a person approves, and high risk needs an approver other than the requester,
   unless an admin granted that high-risk action class level 3 on the named service
   (`high_risk_autonomy`, changed like all policy through an audited operation).
`causes` sets the circuit breaker per cause and per incident (agents/escalation.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from console.storage.repos import ROLES, role_rank
from console.yamlpos import Duration

Outcome = Literal["allow", "needs_approval", "deny"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Strict):
    max: int = Field(ge=0)
    per: Duration = Field(gt=0)


class Breaker(_Strict):
    failures: int = Field(3, ge=1)
    window: Duration = 3600.0
    cooldown: Duration = 1800.0


class Freeze(_Strict):
    reason: str = Field(min_length=1)
    start: datetime
    end: datetime
    action_classes: tuple[str, ...] = ("*",)
    services: tuple[str, ...] = ("*",)

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.end <= self.start:
            raise ValueError("a freeze must end after it starts")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("freeze times need a timezone")
        return self


class ChangeWindow(_Strict):
    """Action classes listed here may run only inside the daily window (UTC)."""

    action_classes: tuple[str, ...] = Field(min_length=1)
    start: time
    end: time


class BlastBudget(_Strict):
    """At least `confidence` allows up to `targets` targets."""

    confidence: float = Field(ge=0, le=1)
    targets: int = Field(ge=0)


class ActionBudget(_Strict):
    """At least `confidence` allows up to `actions` actions on one incident per window."""

    confidence: float = Field(ge=0, le=1)
    actions: int = Field(ge=0)


class Causes(_Strict):
    """The circuit breaker per cause (an incident's diagnosed service and fault class)
    and per incident: stop acting where acting did not help, and hand it to a person."""

    autonomous_attempts: int = Field(1, ge=0, le=10, description="actions on one cause "
                                     "that may run on their own; after that a person "
                                     "approves, and never after an ineffective one")
    ineffective: int = Field(2, ge=1, le=10, description="ineffective actions on one "
                             "cause after which the team proposes nothing more and "
                             "escalates")
    incident_budgets: tuple[ActionBudget, ...] = Field(
        (ActionBudget(confidence=0.9, actions=3), ActionBudget(confidence=0.7, actions=2),
         ActionBudget(confidence=0.0, actions=1)),
        description="actions per incident per window, fewer as the diagnosis is less sure")
    window: Duration = Field(3600.0, gt=0, description="the window of the incident budget "
                             "and of the attempts counted on a cause")
    observe: Duration = Field(240.0, gt=0, le=86400, description="how long after an action "
                              "settles its cause's symptoms are checked")
    recurrence: Duration = Field(1800.0, ge=0, le=86400, description="how long after an "
                                 "effective action a return of the symptoms means it did "
                                 "not last")

    def incident_budget(self, confidence: float) -> int:
        fitting = [b.actions for b in self.incident_budgets if confidence >= b.confidence]
        return max(fitting, default=0)


class Policy(_Strict):
    default_level: int = Field(2, ge=0, le=5)
    levels: dict[str, int] = Field(default_factory=dict, description="per action class")
    service_levels: dict[str, dict[str, int]] = Field(default_factory=dict)
    autonomous_risk: tuple[Literal["low", "medium", "high"], ...] = ("low",)
    rate_limits: dict[str, RateLimit] = Field(default_factory=lambda: {
        "default": RateLimit(max=5, per=3600.0)})
    breaker: Breaker = Breaker.model_validate({})
    freezes: tuple[Freeze, ...] = ()
    change_windows: tuple[ChangeWindow, ...] = ()
    blast_budgets: tuple[BlastBudget, ...] = (
        BlastBudget(confidence=0.9, targets=10), BlastBudget(confidence=0.7, targets=3),
        BlastBudget(confidence=0.0, targets=1))
    auto_rollback: tuple[str, ...] = Field(("*",), description="action classes rolled back "
                                           "on their own when validation fails")
    approval_ttl: Duration = Field(900.0, gt=0, description="an approval is good this long")
    recommendation_ttl: Duration = Field(3600.0, gt=0,
                                         description="a recommendation expires after this")
    change_records: tuple[str, ...] = Field((), description="action classes that need a "
                                            "change record opened before they run")
    autonomy_threshold: float = Field(0.8, ge=0, le=1, description="an agent's remediation "
                                      "runs on its own only above this diagnosis confidence")
    corroboration: int = Field(2, ge=1, le=10, description="independent signals a diagnosis "
                               "needs before its remediation may run on its own")
    min_persistence: Duration = Field(120.0, ge=0, description="a symptom must have lasted "
                                      "this long (two 60 s evaluation intervals) before "
                                      "its remediation may run on its own")
    load_persistence: Duration = Field(600.0, ge=0, description="a cause that is load (a "
                                       "surge) gets a remedy proposed only once the load "
                                       "rise has lasted this long: a pulse passes by itself")

    causes: Causes = Field(Causes.model_validate({}), description="the circuit breaker "
                           "per cause and per incident")
    high_risk_autonomy: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="action class -> services where a high-risk "
        "remediation may run on its own at level 3 (an admin's grant); elsewhere high risk "
        "always needs an approver")

    @model_validator(mode="after")
    def _levels_in_range(self) -> Policy:
        for name, level in (*self.levels.items(),
                            *((f"{s}.{c}", v) for s, m in self.service_levels.items()
                              for c, v in m.items())):
            if not 0 <= level <= 5:
                raise ValueError(f"level of {name} must be 0-5, got {level}")
        return self

    def level(self, action_class: str, service: str) -> int:
        per_service = self.service_levels.get(service, {})
        if action_class in per_service:
            return per_service[action_class]
        return self.levels.get(action_class, self.default_level)

    def rolls_back_on_failure(self, action_class: str) -> bool:
        return _covers(self.auto_rollback, action_class)

    def needs_change_record(self, action_class: str) -> bool:
        return _covers(self.change_records, action_class)

    def budget(self, confidence: float) -> int:
        fitting = [b.targets for b in self.blast_budgets if confidence >= b.confidence]
        return max(fitting, default=0)

    def grants_high_risk(self, action_class: str, service: str) -> bool:
        """An admin granted this high-risk action class level 3 on this service."""
        return _covers(self.high_risk_autonomy.get(action_class, ()), service)


@dataclass(frozen=True)
class Request:
    """One thing someone (a person or an agent) wants to run."""

    actor: str  # user:NAME or agent:NAME
    role: str | None  # the person's role; None for agents
    action_class: str
    service: str
    risk: Literal["low", "medium", "high"]
    blast_radius: int
    confidence: float = 1.0
    approved_by: tuple[str, ...] = ()  # people (user:NAME) who approved it, with their roles
    approver_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class History:
    """What happened recently to this (action class, service): start times and failures."""

    runs: tuple[datetime, ...] = ()
    failures: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    approver_role: str | None = None
    approver_not: str | None = None  # the requester, who may not approve it alone
    level: int = 0
    budget: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def decide(policy: Policy, request: Request, *, ceiling: int, kill_switch: bool,
           now: datetime, history: History = History()) -> Decision:
    reasons: list[str] = []
    rule = request.actor.startswith("rule:")  # a level-1 rule: a fixed, reviewed workflow
    agent = rule or request.actor.startswith("agent:")
    effective = 0 if kill_switch else ceiling
    level = min(policy.level(request.action_class, request.service), effective)
    budget = policy.budget(request.confidence)

    def deny(why: str) -> Decision:
        return Decision("deny", (*reasons, why), level=level, budget=budget)

    if agent and effective == 0:
        return deny("the kill switch is on" if kill_switch else "the autonomy ceiling is 0")
    if not agent:
        if request.role not in ROLES:
            return deny(f"{request.actor} has no role")
        if role_rank(request.role) < role_rank("operator"):
            return deny(f"{request.actor} is a {request.role}; running actions needs operator")
    for freeze in policy.freezes:
        if freeze.start <= now < freeze.end and _covers(freeze.action_classes,
                                                        request.action_class) \
                and _covers(freeze.services, request.service):
            return deny(f"freeze until {freeze.end.isoformat()}: {freeze.reason}")
    for window in policy.change_windows:
        if _covers(window.action_classes, request.action_class) and \
                not _inside(window.start, window.end, now.time()):
            return deny(f"{request.action_class} may run only between "
                        f"{window.start:%H:%M} and {window.end:%H:%M} UTC")
    limit = policy.rate_limits.get(request.action_class, policy.rate_limits.get("default"))
    if limit is not None:
        recent = [t for t in history.runs if (now - t).total_seconds() < limit.per]
        if len(recent) >= limit.max:
            return deny(f"rate limit: {len(recent)} {request.action_class} run(s) on "
                        f"{request.service} in the last {limit.per:g}s (max {limit.max})")
    fails = sorted(t for t in history.failures
                   if (now - t).total_seconds() < policy.breaker.window)
    if len(fails) >= policy.breaker.failures and \
            (now - fails[-1]).total_seconds() < policy.breaker.cooldown:
        return deny(f"circuit open: {len(fails)} failed {request.action_class} run(s) on "
                    f"{request.service}; cooling down {policy.breaker.cooldown:g}s")
    if request.blast_radius > budget:
        return deny(f"blast radius {request.blast_radius} is over the budget of {budget} "
                    f"for confidence {request.confidence:.2f}")
    reasons.append(f"{request.action_class} on {request.service} is at level {level} "
                   f"(ceiling {effective})")
    approvals = list(zip(request.approved_by, request.approver_roles, strict=True))

    def qualified(min_role: str, *, not_requester: bool) -> list[str]:
        return [who for who, role in approvals
                if role in ROLES and role_rank(role) >= role_rank(min_role)
                and not (not_requester and who == request.actor)]

    if request.risk == "high":
        independent = qualified("approver", not_requester=True)
        if independent:
            return Decision("allow", (*reasons, f"high risk, approved by {independent[0]}"),
                            level=level, budget=budget)
        if agent and not rule and level >= 3 and \
                policy.grants_high_risk(request.action_class, request.service):
            return Decision("allow", (*reasons, f"high risk {request.action_class} on "
                            f"{request.service} may run on its own at level 3+: granted by "
                            "policy"), level=level, budget=budget)
        return Decision("needs_approval", (*reasons, "high risk needs an approver other "
                        "than the requester"), approver_role="approver",
                        approver_not=request.actor, level=level, budget=budget)
    if rule and level >= 1 and request.risk in policy.autonomous_risk:
        return Decision("allow", (*reasons, f"a rule may run a fixed {request.risk}-risk "
                        "runbook at level 1+"), level=level, budget=budget)
    if agent:
        if level >= 3 and request.risk in policy.autonomous_risk:
            return Decision("allow", (*reasons, f"{request.risk} risk may run on its own at "
                            "level 3+"), level=level, budget=budget)
        people = qualified("operator", not_requester=True)
        if people:
            return Decision("allow", (*reasons, f"approved by {people[0]}"),
                            level=level, budget=budget)
        why = "level below 3" if level < 3 else f"{request.risk} risk is not autonomous"
        return Decision("needs_approval", (*reasons, f"{why}: a person approves"),
                        approver_role="operator", level=level, budget=budget)
    return Decision("allow", (*reasons, f"{request.actor} ({request.role}) runs a "
                    f"{request.risk}-risk action"), level=level, budget=budget)


def _covers(names: tuple[str, ...], value: str) -> bool:
    return "*" in names or value in names


def _inside(start: time, end: time, now: time) -> bool:
    return start <= now < end if start <= end else (now >= start or now < end)


class PolicyError(ValueError):
    """A policy file or value that cannot be used; the message names file, line and field."""


def load_policy_text(text: str, source: str) -> Policy:
    from console.yamlpos import load_model_text

    return load_model_text(Policy, text, source, PolicyError)


def load_policy(path: Path) -> Policy:
    from console.yamlpos import read_config_text

    return load_policy_text(read_config_text(path, PolicyError), str(path))

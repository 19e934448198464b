"""Databases with known histories for the maturity assessment, made by the real lifecycle.

Recommendations are proposed, approved, rejected and run by the real ExecutionEngine
under the real policy; only the estate is a stand-in whose validations pass or fail on
demand, so a test can say "this autonomous run failed its validation and was rolled
back" and get exactly that history, with its audit records, from the engine itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from console.actions.base import ProbeResult, StepResult
from console.domain import IncidentUpdate, Severity, TimelineNote
from console.policy import Policy

SERVICES = {"cart", "search", "payments", "checkout", "frontend", "orders"}
EVERY_CLASS = {"scale": 2, "disk_hygiene": 2, "restart": 2, "feature_flag": 2,
               "cache_hygiene": 2}  # set explicitly: the policy covers most classes


@dataclass
class FakeEstate:
    """The `estate` executor: every step succeeds, a validation fails where told to."""

    services: set[str] = field(default_factory=lambda: set(SERVICES))
    failing: set[str] = field(default_factory=set)
    kind: str = "estate"

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        return {"target_state": {"service": step["args"]["service"]}}

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        return StepResult(True, f"{step['action']} done")

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        service = str(probe.get("service"))
        if service in self.failing:
            return ProbeResult(False, f"{probe.get('metric')} of {service} still bad", 1.0)
        return ProbeResult(True, f"{probe.get('metric')} of {service} fine", 0.0)

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        return StepResult(True, f"undid {step['action']}")


class History:
    """Drives one runtime's engine; every method leaves a finished run behind."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.estate = FakeEstate()
        self.engine = self.service.engine
        self.engine.executors["estate"] = self.estate
        for name, role in (("bob", "operator"), ("carol", "approver")):
            if self.service.role_of(name) is None:
                self.service.add_user(name, role, as_user="alice")

    def policy(self, **levels: int) -> None:
        merged = {**EVERY_CLASS, **levels}
        self.service.set_policy(Policy(levels=merged, rate_limits={
            "default": {"max": 100, "per": 3600}}), as_user="alice")
        self.service.set_autonomy_ceiling(max(2, *merged.values()), as_user="alice")

    def tick(self, seconds: float = 600) -> None:
        self.runtime.clock.advance(seconds)

    def rule_run(self, service: str = "search") -> int | None:
        rec = self.engine.propose("free-disk", {"service": service},
                                  requester="rule:disk-space-low", autonomous=True)
        self.engine.drain()
        self.tick()
        return rec

    def approved_run(self, runbook: str = "scale-out", service: str = "cart", *,
                     fail: bool = False, wait_s: float = 120, **params: Any) -> int:
        rec_id = self.engine.propose(runbook, {"service": service, **params},
                                     requester="agent:recommender", confidence=0.9)
        self.tick(wait_s)
        rec = self.engine.recommendation(rec_id)
        assert rec is not None
        self._failing(service, fail)
        self.engine.approve(rec_id, as_user="bob", preview_hash=rec.preview_hash)
        self._settle(service, fail)
        return rec_id

    def rejected(self, runbook: str = "scale-out", service: str = "cart") -> int:
        rec_id = self.engine.propose(runbook, {"service": service},
                                     requester="agent:recommender", confidence=0.9)
        self.tick(60)
        self.engine.reject(rec_id, as_user="bob", reason="not now")
        self.tick()
        return rec_id

    def autonomous_run(self, runbook: str = "scale-out", service: str = "cart", *,
                       fail: bool = False) -> int:
        rec_id = self.engine.propose(runbook, {"service": service},
                                     requester="agent:recommender", confidence=0.95,
                                     autonomous=True)
        self._failing(service, fail)
        self.engine.drain()
        self._settle(service, fail)
        return rec_id

    def _failing(self, service: str, fail: bool) -> None:
        if fail:
            self.estate.failing.add(service)

    def _settle(self, service: str, fail: bool) -> None:
        if fail:  # past its deadline: failed, and rolled back where it can be
            self.tick(3600)
            self.engine.poll()
        self.estate.failing.discard(service)
        self.tick()

    def incident(self, services: tuple[str, ...], minutes: float,
                 fingerprint: str) -> int:
        """An incident opened now and resolved `minutes` later, grouping one alert series."""
        opened = self.runtime.clock.now()
        update = IncidentUpdate(
            key=0, id=None, title=f"trouble on {services[0]}", severity=Severity.CRITICAL,
            state="resolved", services=services, opened_at=opened,
            resolved_at=opened + timedelta(minutes=minutes),
            notes=(TimelineNote(opened, "agent", "grouped", ref=fingerprint),))
        [saved] = self.service.save_incidents([update], "agent:correlator")
        self.tick(minutes * 60 + 600)
        return int(saved.id)

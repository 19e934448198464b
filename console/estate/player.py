"""Plays a scenario on the estate: the timeline, the ticks, and what comes out of them.

`advance(seconds)` runs whole ticks (the scenario's `tick`, 5 s by default) and returns
the signals, change events and log lines they produced. The same seed gives the same
run, whatever the sizes of the `advance` calls.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.domain import ChangeEvent, LogRecord, Signal
from console.estate.actions import ActionRefused, ActionResult, apply_action
from console.estate.alerts import AlertEvaluator
from console.estate.faults import FAULT_KINDS, Fault
from console.estate.logs import emit_logs
from console.estate.model import Estate
from console.estate.spec import (
    ActionEntry,
    ChangeEntry,
    FaultEntry,
    LoadEntry,
    Scenario,
    load_estate_spec,
)

DEFAULT_START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@dataclass
class PlayerOutput:
    signals: list[Signal] = field(default_factory=list)
    changes: list[ChangeEvent] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)


class ScenarioPlayer:
    def __init__(self, scenario: Scenario, *, seed: int | None = None,
                 start: datetime | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.start = start or DEFAULT_START
        spec = load_estate_spec(scenario.estate)
        self.estate = Estate(spec, dict(scenario.baselines), self.start,
                             random.Random(self.seed))
        self.alerts = AlertEvaluator(spec.alert_rules)
        self._timeline = sorted(enumerate(scenario.timeline), key=lambda e: (e[1].at, e[0]))
        self._next = 0
        self._carry = 0.0
        self._loads: list[LoadEntry] = []
        self._entry_fault: dict[int, Fault] = {}
        for index, entry in self._timeline:
            if isinstance(entry, FaultEntry):
                fault = FAULT_KINDS[entry.kind](entry.service, entry.at, entry.params)
                fault.prepare(self.estate)
                self._entry_fault[index] = fault
        self.action_log: list[ActionResult] = []
        # The driver advances the estate in a worker thread while executors act on it.
        self.lock = threading.RLock()

    @property
    def finished(self) -> bool:
        return self.estate.elapsed >= self.scenario.duration - 1e-9

    def advance(self, seconds: float) -> PlayerOutput:
        out = PlayerOutput()
        self._carry += seconds
        tick = self.scenario.tick
        while not self.finished and self._carry >= tick - 1e-9:
            dt = min(tick, self.scenario.duration - self.estate.elapsed)
            self._carry -= tick
            self._step(dt, out)
        if self.finished:
            self._carry = 0.0
        return out

    def _step(self, dt: float, out: PlayerOutput) -> None:
        estate = self.estate
        target = estate.elapsed + dt
        while self._next < len(self._timeline) and self._timeline[self._next][1].at <= target:
            index, entry = self._timeline[self._next]
            self._next += 1
            self._trigger(index, entry)
        estate.load_inputs = [(entry.service, self._load_factor(entry, target), entry.propagate)
                              for entry in self._loads
                              if entry.until is None or target < entry.until]
        estate.step(dt)
        emit_logs(estate, dt)
        out.signals.extend(self.alerts.evaluate(estate))
        out.changes.extend(estate.pending_changes)
        out.logs.extend(estate.pending_logs)
        estate.pending_changes = []
        estate.pending_logs = []

    @staticmethod
    def _load_factor(entry: LoadEntry, t: float) -> float:
        ramp = 1.0 if entry.ramp <= 0 else min(1.0, max(0.0, (t - entry.at) / entry.ramp))
        return 1.0 + (entry.factor - 1.0) * ramp

    def _trigger(self, index: int, entry: Any) -> None:
        estate = self.estate
        if isinstance(entry, FaultEntry):
            fault = self._entry_fault[index]
            estate.faults.append(fault)
            fault.start(estate)
        elif isinstance(entry, ChangeEntry):
            self._benign_change(entry)
        elif isinstance(entry, LoadEntry):
            self._loads.append(entry)
        elif isinstance(entry, ActionEntry):
            try:
                self.apply_action(entry.kind, entry.service, entry.params)
            except ActionRefused as exc:  # the world moved on (an agent acted first)
                estate.log(entry.service, "WARN", f"scripted {entry.kind} refused: {exc}")

    def _benign_change(self, entry: ChangeEntry) -> None:
        estate, svc = self.estate, self.estate.services[entry.service]
        if entry.kind == "deploy":
            estate.deploy(entry.service, entry.version or _next_version(svc.version))
        elif entry.kind == "feature_flag" and entry.flag:
            svc.flags[entry.flag] = not svc.flags.get(entry.flag, False)
            estate.record_change(entry.service, "feature_flag", entry.description or
                                 f"flip feature flag {entry.flag} on {entry.service}",
                                 author="product")
        else:
            estate.record_change(entry.service, entry.kind, entry.description or
                                 f"{entry.kind} change on {entry.service}", author="ops")

    def apply_action(self, kind: str, service: str,
                     params: dict[str, Any] | None = None) -> ActionResult:
        result = apply_action(self.estate, kind, service, params)
        self.action_log.append(result)
        return result

    def ground_truth_faults(self) -> list[dict[str, Any]]:
        """What really happened (for evaluation only; agents never see this)."""
        return [fault.ground_truth() for fault in self._entry_fault.values() if fault.started]


def _next_version(version: str) -> str:
    from console.estate.faults import _bump

    return _bump(version)

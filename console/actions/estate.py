"""The embedded estate's executor: its actions, behind the same interface as a real one.

The console talks to the estate the way it would talk to a real control plane: it
reads each service's desired configuration (for the preview), runs actions, and reads
metrics (for validation). It never sees the faults, so an agent that uses it cannot
learn the ground truth from it.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from console.actions.base import ExecutorError, ProbeResult, StepResult
from console.estate.actions import ACTIONS, ActionRefused
from console.estate.player import ScenarioPlayer

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


class EstateExecutor:
    kind = "estate"

    def __init__(self, player: ScenarioPlayer) -> None:
        self._player = player
        # The estate lives in this process only: a console that plays the same scenario
        # after a crash plays another estate, never the one an action changed.
        self.target = f"estate:{player.scenario.name}:{uuid.uuid4().hex[:12]}"

    @property
    def services(self) -> set[str]:
        return set(self._player.estate.services)

    def _service(self, step: Mapping[str, Any]) -> str:
        args = step.get("args") or {}
        service = args.get("service") if isinstance(args, Mapping) else None
        if not isinstance(service, str) or service not in self._player.estate.services:
            raise ExecutorError(f"estate step: no service {service!r}")
        if step.get("action") not in ACTIONS:
            raise ExecutorError(f"estate step: unknown action {step.get('action')!r}")
        return service

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        service = self._service(step)
        with self._player.lock:
            state = self._player.estate.describe(service)
        args = {k: v for k, v in dict(step["args"]).items() if k != "service"}
        return {"executor": "estate", "action": step["action"], "service": service,
                "args": args, "target_state": state}

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        service = self._service(step)
        args = {k: v for k, v in dict(step["args"]).items() if k != "service"}
        try:
            with self._player.lock:
                result = self._player.apply_action(str(step["action"]), service, args)
        except ActionRefused as exc:
            raise ExecutorError(str(exc)) from None
        return StepResult(True, result.message, {"action": result.action,
                                                 "service": result.service})

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        return self.execute(step)

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        if probe.get("kind") != "check":
            raise ExecutorError(f"the estate checks metrics only, not {probe.get('kind')!r}")
        service, metric = str(probe.get("service")), str(probe.get("metric"))
        if service not in self._player.estate.services:
            raise ExecutorError(f"check: no service {service!r}")
        with self._player.lock:
            metrics = self._player.estate.metrics(service)
        if metric not in metrics:
            raise ExecutorError(f"check: {service} has no metric {metric!r}")
        value, op, threshold = metrics[metric], str(probe["op"]), float(probe["threshold"])
        passed = _OPS[op](value, threshold)
        return ProbeResult(passed, f"{metric} of {service} is {value:.4g} "
                           f"({'' if passed else 'not '}{op} {threshold:g})", value)

"""Settling what a crash left in flight, once, without running any step again.

A console killed mid-run leaves an execution in the state it had reached. The console
that starts next (`watchfloor reconcile`, or a member taking the team's lead) ends each
of them in a final state and audits how:

- intent: nothing ran; cancelled.
- running: the step may or may not have completed; interrupted, rollback offered.
- validating: the steps ran; the validation goes on, but only where this console
  observes the very target the action ran on (the intent records each executor's
  target). An estate lived in the process that died, and a command's host is where it
  ran: checking a new estate or another host would say nothing about the action, so
  the execution is then interrupted with its rollback offered instead.
- rolling_back: the rollback may or may not have completed; rollback_failed (check
  the target), and never run a second time.

A resumed validation keeps its deadline but no later than the runbook's whole window
from now: the console that wrote it may have read another clock (a simulated one that
runs months behind, or ahead), and a deadline on a clock that is not this one's must
not keep an execution validating for months.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from console.actions.base import PROBE_EXECUTOR, Executor, target_of
from console.domain import Execution
from console.storage.repos_exec import IN_FLIGHT, ExecutionRepo

if TYPE_CHECKING:
    from console.execution import ExecutionEngine

def probe_executor(plan: Mapping[str, Any]) -> str:
    """The executor name a plan's validation needs."""
    return PROBE_EXECUTOR.get(str(dict(plan.get("probe") or {}).get("kind")), "")


def executors_named(plan: Mapping[str, Any]) -> list[str]:
    """Every executor a plan may call: its steps', its rollback's and its probe's."""
    names = [str(s.get("executor")) for s in [*plan.get("steps", []),
                                              *(plan.get("rollback") or [])]]
    return sorted({*names, probe_executor(plan)} - {""})


def targets(plan: Mapping[str, Any], executors: Mapping[str, Executor]) -> dict[str, Any]:
    """What each executor the plan names acts on here, for the intent."""
    return {name: target_of(executors.get(name)) for name in executors_named(plan)}


def unobserved(plan: Mapping[str, Any], executors: Mapping[str, Executor],
               names: Iterable[str]) -> str | None:
    """Why this console does not reach what the plan acted on through `names`, or None
    when every one of them is the same target the intent recorded."""
    recorded = plan.get("targets")
    if not isinstance(recorded, Mapping):
        return "its targets were not recorded, so they cannot be told from new ones"
    for name in names:
        executor = executors.get(name)
        was = recorded.get(name)
        if executor is None:
            return f"this console has no {name} executor (it ran on {was or name})"
        here = target_of(executor)
        if here != was:
            return f"it ran on {was or 'an unnamed ' + name}; this console's {name} is " \
                   f"{here or 'unnamed'}"
    return None


class Reconciler:
    """The engine's crash path, kept apart from the engine's normal run."""

    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine

    def reconcile(self, *, wait: bool = False, interval: float = 1.0,
                  sleep: Callable[[float], None] = time.sleep) -> list[tuple[int, str]]:
        """Settle every execution in flight; (id, state) for each. A resumed validation
        is left to the caller's own polling unless `wait`: then it is probed every
        `interval` wall seconds until it ends (by its deadline at the latest)."""
        engine = self.engine
        settled: list[tuple[int, str]] = []
        notes: dict[str, str] = {}
        for execution in engine.executions(IN_FLIGHT):
            state, note = self._settle(execution)
            settled.append((execution.id, state))
            notes[str(execution.id)] = note
        if settled:
            engine.service.record(actor=engine.actor, action="execution.reconcile",
                                  outputs={"settled": [list(s) for s in settled],
                                           "how": notes})
        # On a real clock every deadline passes within the runbook's window; the wall
        # bound only keeps a clock that does not move (a paused simulation) from holding
        # the caller for ever: what is still validating then is named as such.
        windows = [float(e.plan.get("deadline") or 0) for e in engine.executions(("validating",))]
        give_up = time.monotonic() + max(windows, default=0.0) + 60.0
        while wait and any(state == "validating" for _, state in settled) and \
                time.monotonic() < give_up:
            sleep(interval)
            settled = [(exec_id, engine.validate(exec_id) or self._state(exec_id))
                       if state == "validating" else (exec_id, state)
                       for exec_id, state in settled]
        return [(exec_id, self._state(exec_id) if wait else state)
                for exec_id, state in settled]

    def _state(self, exec_id: int) -> str:
        execution = self.engine.execution(exec_id)
        return execution.state if execution is not None else "gone"

    def _settle(self, execution: Execution) -> tuple[str, str]:
        engine = self.engine
        plan = execution.plan
        if execution.state == "intent":
            why = "interrupted before any step ran; nothing was executed"
            engine._finish(execution.id, "cancelled", why, None, rollback_offered=False)
            return "cancelled", why
        if execution.state == "running":
            elsewhere = unobserved(plan, engine.executors, [probe_executor(plan)])
            probe = engine._probe(dict(plan["probe"])) if elsewhere is None else None
            why = (f"interrupted during step {execution.step}; it may or may not have "
                   "completed, so it is not run again")
            if elsewhere is not None:
                why += f"; its target is not checked here: {elsewhere}"
            engine._finish(execution.id, "interrupted", why, None, rollback_offered=True,
                           validation=probe)
            return "interrupted", why
        if execution.state == "rolling_back":
            why = "interrupted during rollback; it is not run again: check the target"
            engine._finish(execution.id, "rollback_failed", why, None,
                           rollback_offered=False, open_rollbacks="interrupted")
            return "rollback_failed", why
        return self._resume(execution)

    def _resume(self, execution: Execution) -> tuple[str, str]:
        """Validate again where the target is the one the action ran on; otherwise
        interrupt, with the rollback offered."""
        engine = self.engine
        plan = execution.plan
        elsewhere = unobserved(plan, engine.executors, [probe_executor(plan)])
        if elsewhere is not None:
            why = (f"interrupted while validating; not validated here: {elsewhere}. The "
                   "steps ran: check the target, or roll it back")
            engine._finish(execution.id, "interrupted", why, None, rollback_offered=True)
            return "interrupted", why
        now = engine.service.clock.now()
        latest = now + timedelta(seconds=float(plan.get("deadline") or 0))
        validate_by = min(execution.validate_by or latest, latest)
        with engine.service.db.sessions() as session:
            ExecutionRepo().move(session, execution.id, ("validating",),
                                 {"validate_by": validate_by})
            session.commit()
        state = engine.validate(execution.id) or self._state(execution.id)
        target = dict(plan.get("targets") or {}).get(probe_executor(plan))
        return state, f"validated again on {target} (until {validate_by.isoformat()})"

"""A console process that runs one autonomous action and is killed (-9) by the test.

Usage: python -m tests.crash.child DB_URL RUNBOOK_DIR MARKER [--stop-at POINT]
       [--runbook ID] [--estate SCENARIO] [--prometheus URL] [--then-rollback]

`--estate` plays that scenario's estate here and scales out its cart service (the
runbook and MARKER are then unused for the step).

Prints "ready" once its runtime is up, then proposes, runs and validates the action.
With `--stop-at`, it prints "at POINT" and waits, still alive, at that point of the
lifecycle, so the test kills it exactly there instead of guessing a delay:

  intent            the intent is committed, no step claimed yet
  running           a step is claimed (state running), its executor not yet called
  running-ran       the step's executor returned, the state is still running
  validating        the steps ran (state validating), no probe made yet
  rolling_back      a rollback is claimed (state rolling_back), its step not yet run
  rolling_back-ran  the rollback step returned, the state is still rolling_back

`--then-rollback` rolls the action back (as alice) once it has settled; the rolling_back
points need it. Every executor call is appended to MARKER.calls ("execute", "validate",
"rollback"), so the test can count what this process did.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from console.actions.runbooks import load_library
from console.clock import RealClock
from console.events import AuditAppended
from console.policy import Policy
from console.runtime import Runtime, ScenarioDriver

POINTS = ("intent", "running", "running-ran", "validating", "rolling_back",
          "rolling_back-ran")


def _stop(point: str) -> None:
    print(f"at {point}", flush=True)
    threading.Event().wait()  # until the test's SIGKILL


class Stopping:
    """Stands in for an executor: logs each call and stops at the chosen point."""

    def __init__(self, inner: Any, stop_at: str | None, calls: Path) -> None:
        self._inner, self._stop_at, self._calls = inner, stop_at, calls
        self.kind = inner.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _log(self, what: str) -> None:
        with self._calls.open("a") as out:
            out.write(what + "\n")

    def _around(self, before: str, call: str, *args: Any) -> Any:
        if self._stop_at == before:
            _stop(before)
        self._log(call)
        result = getattr(self._inner, call)(*args)
        if self._stop_at == f"{before}-ran":
            _stop(self._stop_at)
        return result

    def execute(self, step: Mapping[str, Any]) -> Any:
        return self._around("running", "execute", step)

    def rollback(self, step: Mapping[str, Any]) -> Any:
        return self._around("rolling_back", "rollback", step)

    def validate(self, probe: Mapping[str, Any]) -> Any:
        return self._around("validating", "validate", probe)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("folder", type=Path)
    parser.add_argument("marker")
    parser.add_argument("--stop-at", choices=POINTS, default=None)
    parser.add_argument("--runbook", default="crash-probe")
    parser.add_argument("--estate", default=None, metavar="SCENARIO")
    parser.add_argument("--prometheus", default=None, metavar="URL")
    parser.add_argument("--then-rollback", action="store_true")
    args = parser.parse_args()
    runtime = Runtime(args.db_url, clock=RealClock(), prometheus=args.prometheus)
    service = runtime.service
    engine = service.engine
    service.bootstrap_admin("alice")
    engine.library = load_library(args.folder)  # the shipped runbooks and the tests'
    runbook, params = args.runbook, {"marker": args.marker}
    if args.estate is not None:  # an estate action, on the estate this process plays
        ScenarioDriver(runtime, args.estate, seed=1)
        runbook, params = "scale-out", {"service": "cart", "count": 1}
    service.set_policy(Policy(levels={"hygiene": 3, "scale": 3}), as_user="alice")
    service.set_autonomy_ceiling(3, as_user="alice")
    calls = Path(args.marker + ".calls")
    for name in list(engine.executors):
        engine.executors[name] = Stopping(engine.executors[name], args.stop_at, calls)
    if args.stop_at == "intent":
        def at_intent(event: AuditAppended) -> None:
            if event.entry.action == "execution.intent":
                _stop("intent")

        runtime.bus.subscribe(AuditAppended, at_intent)
    print("ready", flush=True)
    engine.propose(runbook, params, requester="agent:recommender", confidence=0.95,
                   autonomous=True)
    engine.drain()
    while engine.executions(("validating",)):
        time.sleep(0.05)
        engine.poll()
    if args.then_rollback:
        [execution] = engine.executions()
        engine.rollback(execution.id, as_user="alice")
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())

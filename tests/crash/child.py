"""A console process that runs one autonomous action and is killed (-9) by the test.

Usage: python -m tests.crash.child DB_URL RUNBOOK_DIR MARKER
Prints "ready" once its runtime is up, then proposes, runs and validates the action.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from console.actions.runbooks import load_library
from console.clock import RealClock
from console.policy import Policy
from console.runtime import Runtime


def main() -> None:
    db_url, folder, marker = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    runtime = Runtime(db_url, clock=RealClock())
    service = runtime.service
    service.bootstrap_admin("alice")
    service.set_policy(Policy(levels={"hygiene": 3}), as_user="alice")
    service.set_autonomy_ceiling(3, as_user="alice")
    service.engine.library = load_library(folder)
    print("ready", flush=True)
    service.engine.propose("crash-probe", {"marker": marker}, requester="agent:recommender",
                           confidence=0.95, autonomous=True)
    service.engine.drain()
    while service.engine.executions(("validating",)):
        time.sleep(0.05)
        service.engine.poll()
    print("done", flush=True)


if __name__ == "__main__":
    main()

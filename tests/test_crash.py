"""Kill -9 a console at many points of an autonomous run: no record is lost, nothing
runs twice, and start-up reconciles what was in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from console.actions.runbooks import load_library
from console.clock import RealClock
from console.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = Path(__file__).parent / "crash" / "runbooks"
IN_FLIGHT = ("intent", "running", "rolling_back")
# seconds after the child is ready: before the intent, inside the step, while it
# validates, after it finished
KILL_AFTER = [0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.4]


def _run_and_kill(db_url: str, marker: Path, delay: float) -> bool:
    """Start the child, kill it `delay` s after it is ready; True if it was still alive."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash.child", db_url, str(RUNBOOKS), str(marker)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    alive = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    # A step's program runs in its own session and outlives the killed console, as a
    # real one would; let it finish before counting what ran.
    time.sleep(0.6)
    return alive


def _lines(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.exists() else []


def _settle(engine: Any) -> None:
    deadline = time.monotonic() + 30
    while engine.executions(("validating",)) and time.monotonic() < deadline:
        time.sleep(0.1)
        engine.poll()


@pytest.mark.slow
def test_kill_at_any_point_loses_nothing_and_runs_nothing_twice(
        tmp_path: Path, make_db_url: Any) -> None:
    seen_states: set[str] = set()
    for n, delay in enumerate(KILL_AFTER):
        db_url = make_db_url(tmp_path, f"crash{n}")
        marker = tmp_path / f"marker{n}"
        _run_and_kill(db_url, marker, delay)
        with Runtime(db_url, clock=RealClock()) as runtime:
            engine = runtime.service.engine
            engine.library = load_library(RUNBOOKS)
            executions = engine.executions()
            seen_states.update(e.state for e in executions)
            runs = _lines(marker).count("run")
            assert runs <= 1, f"kill after {delay}s: the step ran {runs} times"
            # intent before action: a step that ran always has its execution record
            assert len(executions) == (1 if runs or executions else 0)
            settled = engine.reconcile()
            _settle(engine)
            after = engine.executions()
            assert not [e for e in after if e.state in (*IN_FLIGHT, "validating")], settled
            # A run the dead console had queued but never started runs now, once, after
            # policy and the preview are checked again; nothing that started runs again.
            engine.drain()
            _settle(engine)
            engine.reconcile()  # a second start settles nothing new and re-runs nothing
            final = engine.executions()
            total = _lines(marker).count("run")
            assert total <= 1, f"kill after {delay}s: the step ran {total} times"
            if executions:
                assert total == runs
                assert len(final) == len(executions)
            for e in final:
                assert e.state in ("succeeded", "interrupted", "cancelled", "rolled_back",
                                   "failed"), (delay, e.state)
                if e.state == "interrupted":
                    assert e.can_roll_back
                    assert e.result["rollback_offered"]
            verify = runtime.service.verify_audit()
            assert verify.ok, f"kill after {delay}s: {verify}"
            intents = [a for a in runtime.service.audit_entries()
                       if a.action == "execution.intent"]
            assert len(intents) == len(final)
    # the kills landed inside the run and after its end
    assert "succeeded" in seen_states, seen_states
    assert seen_states & {"running", "validating", "intent"}, seen_states


def test_an_interrupted_action_can_be_rolled_back_once(tmp_path: Path,
                                                       make_db_url: Any) -> None:
    for n, delay in enumerate((0.15, 0.2, 0.25, 0.3, 0.1, 0.35)):  # inside the 0.4 s step
        db_url = make_db_url(tmp_path, f"crash{n}")
        marker = tmp_path / f"marker{n}"
        _run_and_kill(db_url, marker, delay)
        with Runtime(db_url, clock=RealClock()) as runtime:
            engine = runtime.service.engine
            engine.library = load_library(RUNBOOKS)
            if [e for e in engine.executions() if e.state == "running"]:
                [(exec_id, state)] = engine.reconcile()
                assert state == "interrupted"
                assert engine.rollback(exec_id, as_user="alice") == "rolled_back"
                assert _lines(marker)[-1] == "rollback"
                with pytest.raises(Exception, match="cannot be rolled back"):
                    engine.rollback(exec_id, as_user="alice")
                assert _lines(marker).count("rollback") == 1
                return
    pytest.fail("no kill landed inside the step")

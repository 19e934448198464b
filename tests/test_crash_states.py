"""Kill -9 a console at each state of an execution, then settle it the two ways a crash
is settled: `watchfloor reconcile`, and a console that starts leading the team.

The child stops at a named point of the lifecycle (tests/crash/child.py `--stop-at`) and
the test kills it there, so every state is hit on every run. Afterwards: the execution
is in a final state, no step ran twice, the audit chain holds and names the settlement,
its finish is not before its start, and a validation is resumed only against the very
target the action ran on (the same host; never a new estate): otherwise the execution is
interrupted with its rollback offered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from console.actions.command import CommandExecutor
from console.actions.estate import EstateExecutor
from console.cli import main
from console.clock import RealClock
from console.domain import Execution
from console.operations import Refused
from console.runtime import Runtime
from console.storage.db import Database
from console.storage.models import RollbackRow
from console.storage.repos_exec import IN_FLIGHT, ExecutionRepo
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = Path(__file__).parent / "crash" / "runbooks"
FINAL = ("succeeded", "failed", "interrupted", "cancelled", "rolled_back", "rollback_failed")
NOWHERE = "http://127.0.0.1:9"  # a Prometheus the child names and never asks


@dataclass(frozen=True)
class Case:
    stop_at: str
    state_at_kill: str
    settles_as: str  # what reconcile makes of it
    ends_as: str  # the final state once settled (and rolled back, where a person does)
    runs: int  # times the step's executor was called, all in the killed console
    rollbacks: int  # lines the rollback wrote in the end (never more than one)
    args: tuple[str, ...] = ()
    person_rolls_back: bool = False


CASES = {
    "intent": Case("intent", "intent", "cancelled", "cancelled", runs=0, rollbacks=0),
    "running": Case("running", "running", "interrupted", "rolled_back", runs=0,
                    rollbacks=1, person_rolls_back=True),
    "running-ran": Case("running-ran", "running", "interrupted", "rolled_back", runs=1,
                        rollbacks=1, person_rolls_back=True),
    # the same host runs the same check again: the step's effect is validated
    "validating": Case("validating", "validating", "succeeded", "succeeded", runs=1,
                       rollbacks=0),
    # the check is one this console cannot make: interrupted, rollback offered and done
    "validating-unchecked": Case("validating", "validating", "interrupted", "rolled_back",
                                 runs=1, rollbacks=1, person_rolls_back=True,
                                 args=("--runbook", "crash-promql", "--prometheus", NOWHERE)),
    # the estate lived in the killed console: a new estate is never checked in its stead,
    # nor rolled back
    "validating-estate": Case("validating", "validating", "interrupted", "interrupted",
                              runs=1, rollbacks=0, person_rolls_back=True,
                              args=("--estate", "quiet-day")),
    # a check that never passes fails by its deadline and rolls back, as policy says
    "validating-failing": Case("validating", "validating", "validating", "rolled_back",
                               runs=1, rollbacks=1, args=("--runbook", "crash-failing")),
    "rolling_back": Case("rolling_back", "rolling_back", "rollback_failed", "rollback_failed",
                         runs=1, rollbacks=0, args=("--then-rollback",)),
    "rolling_back-ran": Case("rolling_back-ran", "rolling_back", "rollback_failed",
                             "rollback_failed", runs=1, rollbacks=1,
                             args=("--then-rollback",)),
}


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _executions(db_url: str) -> list[Execution]:
    db = Database(db_url)
    try:
        with db.sessions() as session:
            return ExecutionRepo().recent(session)
    finally:
        db.dispose()


def _crash_at(case: Case, db_url: str, marker: Path) -> Execution:
    """Run the child to the case's point, check the state there, kill -9 it."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash.child", db_url, str(RUNBOOKS), str(marker),
         "--stop-at", case.stop_at, *case.args],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        assert child.stdout.readline().strip() == f"at {case.stop_at}"
        [execution] = _executions(db_url)
        assert execution.state == case.state_at_kill
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    return execution


class Calls:
    """What the settling process asks of its executors, by kind of call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, str, Any]] = []
        self._inside: str | None = None
        for cls in (CommandExecutor, EstateExecutor):
            for name in ("execute", "validate", "rollback"):
                monkeypatch.setattr(cls, name, self._spy(cls.__name__, name,
                                                         getattr(cls, name)))

    def _spy(self, owner: str, name: str, real: Any) -> Any:
        def spy(executor: Any, arg: Any) -> Any:
            if self._inside is None:  # a rollback step runs through execute: one call
                self.seen.append((owner, name, dict(arg)))
            outer, self._inside = self._inside, name
            try:
                return real(executor, arg)
            finally:
                self._inside = outer
        return spy

    def of(self, name: str, spec: Any = None) -> int:
        return sum(1 for _, n, arg in self.seen if n == name and spec in (None, arg))


def _settle_by_command(case: Case, exec_id: int, db_url: str,
                       capsys: pytest.CaptureFixture[str]) -> tuple[list[str], str]:
    """`watchfloor reconcile`, then `watchfloor rollback` where a person would."""
    assert main(["reconcile", "--db", db_url]) == 0
    out = capsys.readouterr().out
    answer = ""
    if case.person_rolls_back:
        code = main(["rollback", str(exec_id), "--as", "alice", "--db", db_url])
        printed = capsys.readouterr()
        answer = f"exit {code}: {printed.out}{printed.err}"
    return out.splitlines(), answer


async def _lead(runtime: Runtime, case: Case, exec_id: int) -> tuple[list[str], str]:
    """The leader's start path (console/leading.py), as `watchfloor node` and the window
    run it, then a person's rollback (the history's button) while this estate is there."""
    from console.leading import LeaderDuties

    loop = asyncio.get_running_loop()
    runtime.loop = loop
    runtime.bus.bind_loop(loop)
    runtime.clock.speed = 20.0
    engine = runtime.service.engine
    duties = LeaderDuties(runtime, "quiet-day", user="alice", mode="node", seed=2)
    try:
        await duties.lead()
        # the leader's own ticks go on with a validation it took up again
        await asyncio.to_thread(wait_for, lambda: not engine.executions(IN_FLIGHT), 30,
                                "every execution settled")
        answer = ""
        if case.person_rolls_back:
            try:
                answer = await asyncio.to_thread(engine.rollback, exec_id, as_user="alice")
            except Refused as exc:
                answer = f"refused: {exc}"
        return [f"execution #{i}: {state}" for i, state in duties.reconciled], answer
    finally:
        duties.follow()
        await duties.stop()
        await runtime.agents.aclose()
        await runtime.bus.drain()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["command", "leader"])
@pytest.mark.parametrize("name", list(CASES))
def test_a_kill_at_each_state_is_settled_once(name: str, path: str, tmp_path: Path,
                                              make_db_url: Any, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    db_url = make_db_url(tmp_path, "crash")
    marker = tmp_path / "marker"
    before = _crash_at(case, db_url, marker)
    time.sleep(0.6)  # a step's program outlives the killed console, as a real one would
    assert _lines(Path(f"{marker}.calls")).count("execute") == case.runs
    calls = Calls(monkeypatch)
    probe = dict(before.plan["probe"])

    if path == "command":
        printed, answer = _settle_by_command(case, before.id, db_url, capsys)
    else:
        with Runtime(db_url) as runtime:  # a simulated clock, months behind the child's
            printed, answer = asyncio.run(_lead(runtime, case, before.id))
    assert f"execution #{before.id}: {case.settles_as}" in printed or (
        path == "command" and f"execution #{before.id}: {case.ends_as}" in printed), printed

    with Runtime(db_url, clock=RealClock()) as runtime:
        engine = runtime.service.engine
        [after] = engine.executions()
        assert after.state == case.ends_as, (after.result, answer)
        assert after.finished_at is not None
        assert after.finished_at >= after.started_at, (after.started_at, after.finished_at)
        # nothing the dead console began is begun again here; a rollback runs at most once
        assert calls.of("execute") == 0
        assert _lines(marker).count("run") == (case.runs if "estate" not in name else 0)
        assert _lines(marker).count("rollback") == case.rollbacks
        if case.settles_as == "interrupted":
            assert after.result["rollback_offered"]
        if name == "validating":  # validated again, on the host it ran on
            assert after.result["validation"]["passed"]
            assert after.result["validation"]["target"] == after.plan["targets"]["command"]
        if name == "validating-estate":
            # the estate now played is not the one the action ran on: it is not checked,
            # and its rollback is refused by name rather than applied to it
            assert calls.of("validate", probe) == 0
            assert calls.of("rollback") == 0
            assert "validation" not in after.result
            assert "estate" in answer
            assert answer.startswith(("refused", "exit 1")), answer
        elif case.person_rolls_back:
            assert "rolled_back" in answer, answer
        verify = runtime.service.verify_audit()
        assert verify.ok, verify
        entries = runtime.service.audit_entries()
        [settlement] = [e for e in entries if e.action == "execution.reconcile"]
        assert before.id in [row[0] for row in settlement.outputs["settled"]]
        assert f"execution.{case.settles_as}" in [e.action for e in entries
                                                  if e.target == f"execution:{before.id}"] \
            or case.settles_as == "validating"
        with runtime.db.sessions() as session:  # a rollback cut short is not left running
            assert not session.scalars(select(RollbackRow.state)
                                       .where(RollbackRow.state == "running")).all()
        # a second start settles nothing and runs nothing
        assert engine.reconcile() == []
        assert _lines(marker).count("run") == (case.runs if "estate" not in name else 0)
        assert _lines(marker).count("rollback") == case.rollbacks


def test_a_later_run_never_validates_on_its_own_estate(tmp_path: Path, make_db_url: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario run on the same database, before any reconcile, polls what is validating:
    the action it finds was made on the killed console's estate, so its check is not made
    on this run's estate (it used to pass there, and the action was called a success)."""
    from console.runtime import ScenarioDriver

    case = CASES["validating-estate"]
    db_url = make_db_url(tmp_path, "later")
    before = _crash_at(case, db_url, tmp_path / "marker")
    calls = Calls(monkeypatch)
    with Runtime(db_url) as runtime:
        driver = ScenarioDriver(runtime, "quiet-day", seed=5)
        driver.step(60)  # a step polls the validations (console/runtime.py)
        assert runtime.service.engine.validate(before.id) == "validating"
        [after] = runtime.service.engine.executions()
        assert after.state == "validating"
        assert calls.of("validate", dict(before.plan["probe"])) == 0
        assert calls.of("execute") == 0

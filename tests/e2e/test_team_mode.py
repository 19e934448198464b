"""Team mode end to end on a real PostgreSQL: three `watchfloor node` processes.

A change at one process is seen at every node within a second (their JSON events say
so); three consoles approving the same recommendation at once run it once, at the
leader (the console that owns the estate); killing the leader (SIGKILL) hands the agents
to another node within a few seconds, and the action the dead leader had in flight is
reconciled by the new one, not run again; the audit chain holds after all of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.actions.runbooks import load_library
from console.clock import RealClock
from console.policy import Policy
from console.runtime import Runtime
from console.storage.models import ChangeFeedRow, ExecutionRow
from tests.e2e.nodes import ROOT, SLOW_RUNBOOK, NodeProcess
from tests.waiting import wait_for

SYNC_BUDGET_MS = 1000.0
TAKEOVER_BUDGET_S = 5.0


@pytest.fixture
def team(pg_url: str, tmp_path: Path) -> Iterator[Callable[[str], NodeProcess]]:
    """Starts nodes on one fresh database; every node is stopped at the end, and so is
    any step program a killed node left running."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "slow-mark.yaml").write_text(SLOW_RUNBOOK)
    nodes: list[NodeProcess] = []

    def start(name: str) -> NodeProcess:
        node = NodeProcess(pg_url, name, tmp_path / name, runbooks)
        nodes.append(node)
        return node

    yield start
    codes = {node.name: node.stop() for node in nodes}
    for marker in tmp_path.glob("*.marker"):
        for line in marker.read_text().split("\n"):
            if line.startswith("run "):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line.split()[1]), signal.SIGKILL)
    # a node stopped by SIGTERM exits 0; a killed one is reported as -9
    assert all(code in (0, -signal.SIGKILL) for code in codes.values()), codes


@pytest.fixture
def operator(pg_url: str) -> Iterator[Runtime]:
    """The test's own console (a fourth process): it changes things through the service
    facade as an operator's window would."""
    runtime = Runtime(pg_url, clock=RealClock())
    service = runtime.service
    service.bootstrap_admin("alice")
    yield runtime
    runtime.close()


def _three_nodes(start: Callable[[str], NodeProcess]) -> list[NodeProcess]:
    first = start("n1")
    first.wait(lambda e: e["event"] == "leader", 60, "leadership")
    rest = [start("n2"), start("n3")]
    for node in rest:
        joined = node.wait(lambda e: e["event"] == "joined", 60, "joining")
        assert joined["leading"] is False
        assert joined["leader"] == first.console_id
    return [first, *rest]


def _newest_seq(runtime: Runtime) -> int:
    with runtime.db.sessions() as session:
        return int(session.scalar(select(func.max(ChangeFeedRow.seq))) or 0)


def _cli(pg_url: str, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "console", *argv, "--db", pg_url],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _verify_audit(pg_url: str) -> None:
    done = _cli(pg_url, "audit", "verify")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, out + err


def test_changes_reach_every_node_within_a_second_and_approvals_run_once(
        team: Callable[[str], NodeProcess], operator: Runtime, pg_url: str) -> None:
    nodes = _three_nodes(team)
    leader, followers = nodes[0], nodes[1:]
    service = operator.service
    service.add_user("bob", "approver", as_user="alice")
    service.add_user("carol", "approver", as_user="alice")
    service.add_user("dave", "approver", as_user="alice")

    # 1. a policy change through the service facade of another console
    committed = time.monotonic()
    service.set_autonomy_ceiling(2, as_user="alice", reason="team-mode test")
    seq = _newest_seq(operator)
    for node in nodes:
        seen = node.wait(lambda e: e["event"] == "remote_change" and e["seq"] == seq, 5,
                         f"the ceiling change (seq {seq})")
        assert seen["operation"] == "autonomy.set_ceiling"
        assert seen["initiator"] == "alice"
        assert seen["latency_ms"] < SYNC_BUDGET_MS, seen
    assert time.monotonic() - committed < 2.0  # including the pipes and this loop

    # 2. three consoles approve the same recommendation at the same moment
    rec_id = service.engine.propose("restart-service", {"service": "cart"},
                                    requester="agent:recommender", confidence=0.9,
                                    explanation="team-mode test")
    # The leader owns the estate: it completes the preview the approvers then see.
    wait_for(lambda: (service.engine.recommendation(rec_id).preview.get("steps") or [{}])[0]
             .get("effect") is not None, 15, "the leader completed the preview")
    approvals = [_cli(pg_url, "approve", str(rec_id), "--as", user)
                 for user in ("bob", "carol", "dave")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in approvals]
    assert sorted(code for code, _out, _err in results) == [0, 1, 1], results
    assert all("already approved and claimed" in err or "not pending" in err
               for code, _out, err in results if code == 1), results

    # the leader runs it, once; the followers hear about the approval and the run
    intent = leader.wait(lambda e: e["event"] == "action" and e["action"] == "execution.intent",
                         30, "the execution's intent")
    for node in followers:
        node.wait(lambda e: e["event"] == "remote_change"
                  and e["operation"] == "recommendation.approve", 5, "the approval")
        seen = node.wait(lambda e: e["event"] == "remote_change"
                         and e["operation"] == "execution.intent", 5,
                         "the leader's execution, a change made at another node")
        assert seen["origin"] == leader.console_id
        assert seen["latency_ms"] < SYNC_BUDGET_MS, seen
        assert node.find(lambda e: e["event"] == "action"
                         and e["action"] == "execution.intent") is None, "followers never run"
    with operator.db.sessions() as session:
        runs = session.scalars(select(ExecutionRow)
                               .where(ExecutionRow.recommendation_id == rec_id)).all()
    assert len(runs) == 1
    assert intent["target"] == f"execution:{runs[0].id}"
    _verify_audit(pg_url)


def test_killing_the_leader_hands_over_and_its_action_in_flight_is_reconciled(
        team: Callable[[str], NodeProcess], operator: Runtime, pg_url: str,
        tmp_path: Path) -> None:
    nodes = _three_nodes(team)
    leader = nodes[0]
    service = operator.service
    service.set_policy(Policy(levels={"hygiene": 3}), as_user="alice")
    service.set_autonomy_ceiling(3, as_user="alice")
    service.engine.library.update(load_library(tmp_path / "runbooks"))
    marker = tmp_path / "slow.marker"
    rec_id = service.engine.propose("slow-mark", {"marker": str(marker)},
                                    requester="agent:recommender", confidence=0.95,
                                    autonomous=True)
    assert service.engine.recommendation(rec_id).state == "queued"

    # the leader claims it and is inside its one step when it is killed
    leader.wait(lambda e: e["event"] == "action" and e["action"] == "execution.intent", 30,
                "the leader started the action")
    wait_for(lambda: marker.exists() and "run" in marker.read_text(), 15, "the step runs")
    with operator.db.sessions() as session:
        run = session.scalars(select(ExecutionRow)
                              .where(ExecutionRow.recommendation_id == rec_id)).one()
    assert run.state == "running"
    leader.proc.send_signal(signal.SIGKILL)
    killed = time.time()
    leader.proc.wait(timeout=10)

    new_leader = wait_for(lambda: next((n for n in nodes[1:] if n.find(
        lambda e: e["event"] == "leader")), None), 15, "another node took over")
    took_over = new_leader.find(lambda e: e["event"] == "leader")
    assert took_over is not None
    assert took_over["t"] - killed < TAKEOVER_BUDGET_S, took_over["t"] - killed
    assert [run.id, "interrupted"] in took_over["reconciled"], took_over
    other = next(n for n in nodes[1:] if n is not new_leader)
    assert other.find(lambda e: e["event"] == "leader") is None, "exactly one leads"
    other.wait(lambda e: e["event"] == "remote_change"
               and e["operation"] == "execution.interrupted", 5, "the reconciled action")
    execution = service.engine.execution(run.id)
    assert execution is not None
    assert execution.state == "interrupted"
    assert execution.can_roll_back
    # nothing ran twice: one line from the step the dead leader started
    assert sum(1 for line in marker.read_text().split("\n") if line.startswith("run")) == 1
    _verify_audit(pg_url)

"""Exactly once on PostgreSQL: however many consoles (processes, each with its own engine
and connection pool) approve or claim the same recommendation at the same moment, its
action runs once, there is one intent row, and every other console is told it was
already claimed; nothing crashes and the audit chain holds."""

from __future__ import annotations

import multiprocessing
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from console.actions.runbooks import load_library
from console.clock import RealClock
from console.policy import Policy
from console.runtime import Runtime
from console.storage.models import ExecutionRow

CONSOLES = 4

RUNBOOK = textwrap.dedent("""\
    id: mark-once
    title: Append one line to a marker file (exactly-once tests)
    action_class: hygiene
    parameters:
      marker: {{type: str, description: file the step appends to}}
    steps:
      - executor: command
        argv: [{python}, -c, "{append}", "{{marker}}"]
        timeout: 10s
    preview: "Append a line to {{marker}}"
    validation:
      command:
        argv: [{python}, -c, "import sys; sys.exit(0)"]
      deadline: 10s
    rollback: none
    risk: low
    blast_radius: 1
    owner: test
    """)


APPEND = ("import sys, time; f = open(sys.argv[1], 'a'); f.write('run' + chr(10)); "
          "f.close(); time.sleep(0.2)")


def _library(folder: Path) -> Path:
    books = folder / "runbooks"
    books.mkdir(exist_ok=True)
    (books / "mark-once.yaml").write_text(RUNBOOK.format(python=sys.executable, append=APPEND))
    return books


def _console(url: str, books: str, how: str, rec_id: int, user: str,
             preview_hash: str, start: Any, results: Any) -> None:
    """One console process: its own Runtime (engine, pool, connections); waits at the
    barrier with the others, then approves (or claims) the recommendation once."""
    try:
        from console.operations import Refused

        runtime = Runtime(url, clock=RealClock())
        engine = runtime.service.engine
        engine.library = load_library(Path(books))
        start.wait(timeout=60)
        try:
            if how == "approve":
                outcome = engine.approve(rec_id, as_user=user, preview_hash=preview_hash)
                results.put((user, "ran" if outcome.get("execution") else "approved",
                             str(outcome.get("execution"))))
            else:
                exec_id = engine.run_queued(rec_id, initiator=f"user:{user}")
                results.put((user, "ran" if exec_id is not None else "not claimed",
                             str(exec_id)))
        except Refused as refused:
            results.put((user, "refused", refused.reason))
        runtime.close()
    except BaseException:
        results.put((user, "crashed", traceback.format_exc()))
        raise


def _race(url: str, books: Path, how: str, rec_id: int, preview_hash: str,
          users: list[str]) -> list[tuple[str, str, str]]:
    ctx = multiprocessing.get_context("spawn")  # no pool or connection crosses a fork
    start = ctx.Barrier(len(users))
    results = ctx.Queue()
    consoles = [ctx.Process(target=_console, args=(url, str(books), how, rec_id, user,
                                                   preview_hash, start, results))
                for user in users]
    for console in consoles:
        console.start()
    outcomes = [results.get(timeout=120) for _ in consoles]
    for console in consoles:
        console.join(timeout=60)
    assert [c.exitcode for c in consoles] == [0] * len(consoles), outcomes
    return sorted(outcomes)


@pytest.fixture
def team(pg_url: str, tmp_path: Path) -> Any:
    runtime = Runtime(pg_url, clock=RealClock())
    service = runtime.service
    service.bootstrap_admin("alice")
    users = [f"approver{n}" for n in range(CONSOLES)]
    for name in users:
        service.add_user(name, "approver", as_user="alice")
    books = _library(tmp_path)
    service.engine.library = load_library(books)
    yield runtime, books, users
    runtime.close()


def _check_once(runtime: Runtime, rec_id: int, marker: Path,
                outcomes: list[tuple[str, str, str]], losers: str) -> None:
    assert [o for o in outcomes if o[1] == "crashed"] == []
    winners = [o for o in outcomes if o[1] == "ran"]
    assert len(winners) == 1, outcomes
    others = [o for o in outcomes if o[1] != "ran"]
    assert len(others) == len(outcomes) - 1
    for _user, kind, reason in others:
        assert kind == losers, outcomes
        if kind == "refused":
            assert "already" in reason, reason
            assert "claimed" in reason, reason
    assert marker.read_text().split() == ["run"]  # the step itself ran once
    with runtime.db.sessions() as session:
        intents = session.scalar(select(func.count()).select_from(ExecutionRow)
                                 .where(ExecutionRow.recommendation_id == rec_id))
    assert intents == 1
    engine = runtime.service.engine
    [execution] = [e for e in engine.executions() if e.recommendation_id == rec_id]
    assert execution.state == "succeeded"
    assert engine.recommendation(rec_id).state == "executed"  # type: ignore[union-attr]
    audit = runtime.service.audit_entries()
    assert [a.target for a in audit if a.action == "execution.intent"] == [
        f"execution:{execution.id}"]
    verify = runtime.service.verify_audit()
    assert verify.ok, verify.describe()


def test_approvers_in_many_consoles_at_once_run_the_action_once(team: Any,
                                                                 tmp_path: Path) -> None:
    runtime, books, users = team
    service = runtime.service
    service.set_policy(Policy(levels={"hygiene": 2}), as_user="alice")
    service.set_autonomy_ceiling(3, as_user="alice")
    marker = tmp_path / "marker"
    rec_id = service.engine.propose("mark-once", {"marker": str(marker)},
                                    requester="agent:recommender", confidence=0.9)
    rec = service.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.state == "pending"

    outcomes = _race(runtime.db.url, books, "approve", rec_id, rec.preview_hash, users)

    _check_once(runtime, rec_id, marker, outcomes, losers="refused")
    refusals = [a for a in service.audit_entries()
                if a.action == "recommendation.approve" and a.decision == "deny"]
    assert len(refusals) == CONSOLES - 1  # every refused approval is on the record


def test_consoles_claiming_a_queued_run_at_once_run_it_once(team: Any,
                                                            tmp_path: Path) -> None:
    runtime, books, users = team
    service = runtime.service
    service.set_policy(Policy(levels={"hygiene": 3}), as_user="alice")
    service.set_autonomy_ceiling(3, as_user="alice")
    marker = tmp_path / "marker"
    rec_id = service.engine.propose("mark-once", {"marker": str(marker)},
                                    requester="agent:recommender", confidence=0.95,
                                    autonomous=True)
    rec = service.engine.recommendation(rec_id)
    assert rec is not None
    assert rec.state == "queued"  # allowed at level 3, not yet run

    outcomes = _race(runtime.db.url, books, "claim", rec_id, rec.preview_hash, users)

    _check_once(runtime, rec_id, marker, outcomes, losers="not claimed")

"""A delivery is stored, answered, and only then correlated, on the runtime's correlation
worker (console/correlation.py), never on a receiver thread. What was answered but not
correlated when the process died is correlated by the next leader. A writer that stores
in chunks (the correlation of a big delivery) lets a waiting one in at each commit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.correlation import DeferredCorrelation, _read_back
from console.leading import LeaderDuties
from console.runtime import Runtime
from console.sources.alertmanager import PayloadError
from console.sources.mapping import load_mappings
from console.sources.webhook import Delivery, source_parsers
from console.storage.repos_backlog import BacklogRepo
from console.storage.sqlite_gate import WriteGate
from tests.test_sources import AM_PAYLOAD, MAPPING_YAML
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
PATH = "/webhook/alertmanager"


def _delivery(count: int, service: str = "ledger") -> dict[str, Any]:
    alert = AM_PAYLOAD["alerts"][0]
    alerts = [{**alert, "labels": {**alert["labels"], "service": service,
                                   "instance": f"{service}-{n}"}, "fingerprint": f"fp{n}"}
              for n in range(count)]
    return {**AM_PAYLOAD, "alerts": alerts}


def _backlog(runtime: Runtime) -> int:
    with runtime.db.sessions() as session:
        return BacklogRepo().count(session)


class Blocking:
    """Stands in for the correlator: notes each batch and waits for the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[int] = []

    def handle(self, signals: Any, now: datetime) -> list[Any]:
        self.batches.append(len(list(signals)))
        self.gate.wait(60)
        return []


async def _until(predicate: Any, within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 (set on other threads)
            await asyncio.sleep(0.02)


async def _leading(runtime: Runtime, **kwargs: Any) -> LeaderDuties:
    """A runtime leading as `watchfloor node` has it, on the running loop."""
    runtime.loop = asyncio.get_running_loop()
    runtime.bus.bind_loop(runtime.loop)
    duties = LeaderDuties(runtime, "quiet-day", user="alice", mode="node", **kwargs)
    await duties.lead()
    return duties


async def _step_down(runtime: Runtime, duties: LeaderDuties) -> None:
    duties.follow()
    await duties.stop()
    await runtime.agents.aclose()
    await runtime.bus.drain()


def test_a_delivery_is_answered_before_it_is_correlated(db_url: str) -> None:
    """The receiver as the leader runs it: the sender has its 200 while the correlation
    of its alerts is still under way (here, held until the test lets it go)."""

    async def scenario() -> None:
        with Runtime(db_url) as runtime:
            duties = await _leading(runtime, listen=("127.0.0.1", 0))
            blocking = Blocking()
            try:
                await _until(lambda: duties.receiver is not None)
                assert duties.receiver is not None
                runtime.correlator = blocking  # type: ignore[assignment]
                answer = await asyncio.to_thread(
                    httpx.post, duties.receiver.url + PATH, json=_delivery(500), timeout=20)
                assert answer.status_code == 200
                assert answer.json() == {"status": "stored", "signals": 500, "changes": 0}
                await _until(lambda: blocking.batches == [500])
                assert await asyncio.to_thread(_backlog, runtime) == 1  # stored, owed
                blocking.gate.set()
                assert await asyncio.to_thread(runtime.deferred.wait_idle, 30)
                assert await asyncio.to_thread(_backlog, runtime) == 0
            finally:
                blocking.gate.set()
                await _step_down(runtime, duties)

    asyncio.run(scenario())


def test_what_was_answered_but_not_correlated_is_correlated_by_the_next_leader(
        db_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.crash.receiver", db_url], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://"), url
        answer = httpx.post(url + PATH, json=_delivery(3), timeout=20)
        assert answer.status_code == 200
        assert child.stdout.readline().strip() == "correlating 3"
    finally:
        child.kill()  # -9: dead between its answer and the end of the correlation
        child.wait(10)

    async def next_leader() -> None:
        with Runtime(db_url) as runtime:
            assert await asyncio.to_thread(_backlog, runtime) == 1
            duties = await _leading(runtime)
            try:
                assert duties.recovered == 1
                assert await asyncio.to_thread(runtime.deferred.wait_idle, 30)
                incidents = await asyncio.to_thread(runtime.service.incidents)
                assert any(i.services == ("ledger",) for i in incidents)
                assert await asyncio.to_thread(_backlog, runtime) == 0
            finally:
                await _step_down(runtime, duties)

    asyncio.run(next_leader())


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


def test_each_source_is_read_back_as_it_was_stored(rt: Runtime, tmp_path: Path) -> None:
    """With the parser it arrived through; a source this leader has no parser for (a
    mapping it was not given) stays in the backlog for one that has."""
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING_YAML)
    parsers = source_parsers(load_mappings(path))
    generic = {"alerts": [{"status": "alerting", "startsAt": "2026-01-05T02:10:00Z",
                           "labels": {"alertname": "DiskFull", "service": "search",
                                      "severity": "warning"},
                           "annotations": {"summary": "disk full"}}]}
    signals, _ = parsers["alertmanager"](_delivery(2))
    generic_signals, _ = parsers["webhook:grafana"](generic)
    first = rt.service.accept_payload("alertmanager", _delivery(2), signals, defer=True)
    second = rt.service.accept_payload("webhook:grafana", generic, generic_signals, defer=True)
    third = rt.service.accept_payload("webhook:gone", {"x": 1}, signals[:1], defer=True)
    assert first
    assert second
    assert third
    seen: list[Delivery] = []
    deferred = DeferredCorrelation(rt.db, lambda s, c: None)
    deferred.submit = seen.append  # type: ignore[method-assign,assignment]
    assert deferred.recover(parsers) == 2
    assert [(d.id, d.source, d.signals) for d in seen] == [
        (first, "alertmanager", tuple(signals)), (second, "webhook:grafana",
                                                  tuple(generic_signals))]
    assert _backlog(rt) == 3  # settled only once correlated


def test_a_list_body_is_read_back_from_its_stored_form() -> None:
    """A list is stored as {"items": it} (console/storage/repos.py): read back as a list
    when that gives the signal count it was stored with."""
    signals, _ = source_parsers()["alertmanager"](_delivery(2))

    def parse(body: Any) -> tuple[list[Any], list[Any]]:
        if not isinstance(body, list):
            raise PayloadError("expected a list")
        return list(signals[:len(body)]), []

    assert _read_back(parse, {"items": [1, 2]}, 2) == (tuple(signals), ())
    assert _read_back(parse, {"items": [1, 2]}, 3) is None
    assert _read_back(None, {"items": [1, 2]}, 2) is None


def test_a_stopped_worker_leaves_its_queue_in_the_backlog(rt: Runtime) -> None:
    """A lost leadership stops the worker; the next leader's recover finds it all."""
    blocking = Blocking()
    rt.correlator = blocking  # type: ignore[assignment]
    parse = source_parsers()["alertmanager"]
    for n in range(3):
        signals, _ = parse(_delivery(n + 1, service=f"svc{n}"))
        delivery = rt.service.accept_payload("alertmanager", _delivery(n + 1, f"svc{n}"),
                                             signals, defer=True)
        assert delivery is not None
        rt.deferred.submit(Delivery(delivery, "alertmanager", tuple(signals), ()))
        if n == 0:  # the other two queue behind it
            wait_for(lambda: blocking.batches == [1], 10, "the first batch under way")
    rt.deferred.stop()
    blocking.gate.set()
    assert rt.deferred.wait_idle(10)
    assert blocking.batches == [1]
    assert _backlog(rt) == 2  # the batch under way was finished; the queue was not
    assert rt.deferred.recover(source_parsers()) == 2
    assert rt.deferred.wait_idle(10)
    assert sum(blocking.batches[1:]) == 5  # the two left: 2 and 3 alerts
    assert _backlog(rt) == 0


def test_a_writer_that_writes_again_at_once_waits_behind_one_already_waiting() -> None:
    """The SQLite write gate hands the lock to the writer that waited first: the
    correlation of a big delivery commits every few incidents and at once writes again,
    and used to take the lock back before a waiting sender's store could."""
    gate, correlation, sender = WriteGate(), object(), object()
    assert gate.acquire(correlation, 1.0)
    got: list[bool] = []
    waiting = threading.Thread(target=lambda: got.append(gate.acquire(sender, 10.0)))
    waiting.start()
    wait_for(lambda: gate._cond._waiters, 10, "the sender waiting")  # type: ignore[attr-defined]
    gate.release(correlation)  # a chunk committed...
    assert not gate.acquire(correlation, 0.0)  # ...and the next chunk waits its turn
    waiting.join(10)
    assert got == [True]
    gate.release(sender)
    assert gate.acquire(correlation, 0.0)
    gate.release(correlation)

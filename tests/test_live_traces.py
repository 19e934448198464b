"""The console's own investigator reads the estate's trace-derived series, as it reads a
recording's: the team on a live scenario stores trace evidence, linked to a sample the
console can open, on the service whose callers all wait for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from console.runtime import Runtime, ScenarioDriver

SCENARIO = "cascading-failure"  # orders-db slows down; its callers time out
SLOW = "orders-db"


@pytest.fixture
def played(db_url: str) -> Iterator[tuple[Runtime, ScenarioDriver]]:
    runtime = Runtime(db_url)
    driver = ScenarioDriver(runtime, SCENARIO, agents=True)
    try:
        yield runtime, driver
    finally:
        runtime.close()


def _trace_evidence(runtime: Runtime) -> list[tuple[str, str]]:
    out = []
    for incident in runtime.service.incidents():
        for ranked in runtime.steering.hypotheses(incident.id):
            out += [(ranked.hypothesis.service, e.ref) for e in ranked.hypothesis.evidence
                    if e.kind == "trace"]
    return out


def test_the_live_team_cites_the_callers_client_spans(
        played: tuple[Runtime, ScenarioDriver]) -> None:
    runtime, driver = played
    found: list[tuple[str, str]] = []
    while not driver.finished and not found:
        driver.step(15.0)
        found = [(s, ref) for s, ref in _trace_evidence(runtime) if s == SLOW]
    assert found, "no trace evidence on the slow database"
    service, ref = found[0]
    target, _, at = ref.removeprefix("metric:").rpartition("@")
    caller, metric = target.split("/", 1)
    assert metric == f"trace_call_p50_ms:{SLOW}"
    assert SLOW in driver.player.estate.topology()[caller]
    moment = datetime.fromisoformat(at)
    assert driver.metrics.series(caller, metric, moment, moment), "the link opens nothing"

"""What the team's own executions explain: their runbooks' declared side effects, on the
target and its callers, inside their window; what is left out is said in the evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.own_actions import OwnActions, Wake
from console.actions.runbooks import load_library
from console.domain import Evidence, Execution, Hypothesis

T0 = datetime(2026, 1, 5, 2, 10, tzinfo=UTC)


def execution(ident: int, runbook: str, target: str, *, state: str = "succeeded",
              at: datetime = T0) -> Execution:
    return Execution(ident, ident, runbook, "restart", target, "agent:recommender", True,
                     state, 1, {"params": {"service": target}}, {}, at,
                     at + timedelta(seconds=20), None)


class Engine:
    def __init__(self, *executions: Execution) -> None:
        self.runs = list(executions)

    def executions(self, states: tuple[str, ...] | None = None) -> list[Execution]:
        return list(self.runs)


CALLERS = {"orders": ["checkout", "frontend"]}


def wake(*executions: Execution, now: datetime = T0 + timedelta(seconds=60)) -> Wake:
    return OwnActions(Engine(*executions), load_library(),
                      lambda s: CALLERS.get(s, [])).wake(now)


def test_a_restart_explains_its_targets_instances_and_its_callers_errors_in_its_window() -> None:
    w = wake(execution(3, "restart-service", "orders"))
    inside, after = T0 + timedelta(seconds=30), T0 + timedelta(minutes=10)
    effect = w.explaining("orders", "instances_ready", inside)
    assert effect is not None and effect.execution_id == 3
    assert w.explaining("checkout", "error_rate", inside) is not None  # a caller
    assert w.explaining("checkout", "instances_ready", inside) is None  # not declared there
    assert w.explaining("orders", "instances_ready", after) is None  # past its window
    assert w.explaining("orders", "instances_ready", T0 - timedelta(seconds=1)) is None
    assert w.explaining("payments", "error_rate", inside) is None  # unrelated service


def test_refused_or_unknown_executions_explain_nothing() -> None:
    assert not wake(execution(1, "restart-service", "orders", state="cancelled"))
    assert not wake(execution(2, "no-such-runbook", "orders"))
    later = execution(4, "restart-service", "orders", at=T0 + timedelta(hours=1))
    assert not wake(later)  # not started yet at `now`


def test_the_samples_it_explains_are_left_out_and_the_evidence_says_so() -> None:
    w = wake(execution(3, "restart-service", "orders"))
    points = [(T0 - timedelta(seconds=s), 3.0) for s in (60, 30, 5)] + \
        [(T0 + timedelta(seconds=10), 1.0), (T0 + timedelta(seconds=40), 0.0)]
    kept = w.series("orders", "instances_ready", points)
    assert kept == points[:3]
    assert w.series("orders", "cpu", points[:3]) == points[:3]
    own = Hypothesis("orders", "network_partition", 0.4,
                     (Evidence("metric", "instances down", "metric:orders/up", 0.5),))
    other = Hypothesis("payments", "bad_deploy", 0.5)
    annotated, untouched = w.annotate([own, other])
    assert untouched == other
    note = annotated.evidence[-1]
    assert note.kind == "own_action" and note.weight == 0.0
    assert note.ref == "execution:3"
    assert note.summary.startswith("instances_ready 0 on orders explained by "
                                   "restart-service #3 at 02:10:00, within its 180 s window")
    assert annotated.signals == own.signals  # an explanation corroborates nothing


def test_a_reading_within_the_normal_range_is_left_out_without_a_word() -> None:
    w = wake(execution(3, "restart-service", "orders"))
    points = [(T0 - timedelta(seconds=s), v) for s, v in ((60, 40.0), (30, 60.0))] + \
        [(T0 + timedelta(seconds=10), 50.0)]
    assert w.series("orders", "cpu", points) == points[:2]
    assert w.notes() == []

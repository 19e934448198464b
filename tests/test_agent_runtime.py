"""The agent runtime and the coordinator: parallel runs on a shared board, everything
recorded, failures contained, budgets enforced, steering obeyed (no Qt, a real database)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agents.board import AgentEventPosted, HypothesesUpdated
from agents.coordinator import Coordinator, Role
from agents.runtime import AgentRuntime, IncidentContext, ServiceExcluded
from console.domain import Evidence, Hypothesis, IncidentInfo, IncidentUpdate, Severity
from console.events import EstateSnapshot, HandlerFailed
from console.operations import PermissionDenied, Refused
from console.runtime import Runtime
from console.steering import SteeringChanged, SteeringOps
from console.storage.repos_agents import HypothesisRepo

DEPLOY = Hypothesis("payments", "bad_deploy", 0.45,
                    (Evidence("change", "deploy v42 of payments", "change:chg-1", 0.4),
                     Evidence("metric", "error rate jumps at payments first",
                              "metric:payments/error_rate@2026-01-05T02:15:00+00:00", 0.3)),
                    score=2.1, signals=2)
SLOW_DB = Hypothesis("payments-db", "slow_database", 0.40,
                     (Evidence("metric", "db latency p99 up", "metric:payments-db/latency", 0.2),),
                     signals=1)
FAINT_DB = Hypothesis("payments-db", "slow_database", 0.11)
CLEAR_DEPLOY = Hypothesis("payments", "bad_deploy", 0.82, DEPLOY.evidence, signals=3)


# --- small agents, written for these tests ------------------------------------------


class Investigator:
    """Looks at each allowed service through a (sync) tool, then posts its ranking;
    optionally waits for the recommender's answer."""

    name = "investigator"
    produces_hypotheses = True

    def __init__(self, ranking: list[Hypothesis], *, await_ack: bool = False) -> None:
        self.ranking = ranking
        self.await_ack = await_ack
        self.runs = 0
        self.looked_at: list[tuple[str, ...]] = []

    async def work(self, ctx: IncidentContext) -> None:
        self.runs += 1
        self.looked_at.append(ctx.services)
        for service in ctx.services:
            await ctx.tool("metrics.latest", lambda s: {"error_rate": 0.2, "service": s},
                           service)
        await ctx.publish_hypotheses(self.ranking)
        if self.await_ack:
            ack = await ctx.wait_for_message(sender="recommender")
            await ctx.status(f"acknowledged: {ack.summary if ack else 'nothing'}")


class Recommender:
    """Waits for hypotheses (declared), acts on the top one and tells the investigator."""

    name = "recommender"
    needs_hypotheses = True

    def __init__(self) -> None:
        self.saw: list[str | None] = []

    async def work(self, ctx: IncidentContext) -> None:
        top = ctx.top
        self.saw.append(top.key if top else None)
        await ctx.post(f"acting on {top.key if top else 'nothing'}", to="investigator",
                       data={"key": top.key if top else None})


class Crasher:
    name = "crasher"

    async def work(self, ctx: IncidentContext) -> None:
        await ctx.status("about to fail")
        raise RuntimeError("boom")


class Sleeper:
    """Sleeps in a tool far past its budget."""

    name = "sleeper"
    budget_s = 0.2

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self.began = asyncio.Event()

    async def work(self, ctx: IncidentContext) -> None:
        self.began.set()
        await ctx.tool("sleep", asyncio.sleep, self.seconds)


# --- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def rt(runtime: Any) -> Runtime:
    rt: Runtime = runtime
    rt.service.add_user("olga", "operator", as_user="alice")
    rt.service.add_user("victor", "viewer", as_user="alice")
    return rt


@pytest.fixture
def agents(rt: Runtime) -> Iterator[AgentRuntime]:
    runtime = AgentRuntime(rt.service)
    yield runtime
    runtime.close()


def open_incident(rt: Runtime, services: tuple[str, ...] = ("checkout", "payments",
                                                             "payments-db"),
                  incident_id: int | None = None, state: str = "open") -> IncidentInfo:
    update = IncidentUpdate(1, incident_id, "errors at checkout", Severity.CRITICAL, state,
                            services, rt.clock.now(), None)
    [info] = rt.service.save_incidents([update], actor="agent:correlator")
    rt.service.announce_incidents([info])
    return info


def collect(rt: Runtime, event_type: type[Any]) -> list[Any]:
    seen: list[Any] = []
    rt.bus.subscribe(event_type, seen.append)
    return seen


def kinds(rt: Runtime, incident_id: int, agent: str) -> list[tuple[str, str]]:
    return [(e.kind, str(e.data.get("state", ""))) for e in
            SteeringOps(rt.service).agent_events(incident_id) if e.agent == agent]


def audits(rt: Runtime, action: str) -> list[Any]:
    return [e for e in rt.service.audit_entries() if e.action == action]


# --- the runtime ------------------------------------------------------------------


def test_events_are_recorded_in_order_with_their_kinds(rt: Runtime,
                                                       agents: AgentRuntime) -> None:
    posted = collect(rt, AgentEventPosted)
    boards = collect(rt, HypothesesUpdated)
    investigator = Investigator([SLOW_DB, DEPLOY], await_ack=True)
    recommender = Recommender()
    Coordinator(agents, [investigator, recommender]).attach(rt.bus)
    incident = open_incident(rt)
    agents.run_until_idle()

    assert kinds(rt, incident.id, "investigator") == [
        ("status", "started"), ("tool_call", ""), ("tool_call", ""), ("tool_call", ""),
        ("hypothesis", "live"), ("hypothesis", "live"), ("status", ""), ("status", "done")]
    assert kinds(rt, incident.id, "recommender") == [
        ("status", "started"), ("message", ""), ("status", "done")]
    assert kinds(rt, incident.id, "coordinator") == [("status", "plan"), ("disagreement", "")]
    events = SteeringOps(rt.service).agent_events(incident.id)
    # The plan comes first; the recommender acted only after the ranking was posted.
    assert events[0].agent == "coordinator"
    first_message = next(e for e in events if e.kind == "message")
    assert max(e.id for e in events if e.kind == "hypothesis") < first_message.id
    assert first_message.to_agent == "investigator"
    assert first_message.data["key"] == "payments/bad_deploy"  # ranked by confidence
    tool = next(e for e in events if e.kind == "tool_call")
    assert tool.data["tool"] == "metrics.latest"
    assert tool.data["result_size"] == 2
    assert tool.duration_ms is not None
    assert tool.duration_ms >= 0
    assert "acknowledged: acting on payments/bad_deploy" in [e.summary for e in events]
    # Everything stored was announced, each agent's in its own order.
    assert sorted(e.event.id for e in posted) == [e.id for e in events]
    assert boards[-1].incident_id == incident.id
    assert len(boards[-1].hypotheses) == 2
    # The ranking is stored with its evidence; one audit record per run and per plan.
    board = SteeringOps(rt.service).hypotheses(incident.id)
    assert [(h.key, h.rank, h.state) for h in board] == [
        ("payments/bad_deploy", 1, "live"), ("payments-db/slow_database", 2, "live")]
    # ungrouped (cause 0) as posted; on the board it belongs to the incident's one cause
    assert board[0].hypothesis == dataclasses.replace(DEPLOY, cause=1)
    runs = audits(rt, "agent.run")
    assert {(e.actor, e.outputs["outcome"]) for e in runs} == {
        ("agent:investigator", "done"), ("agent:recommender", "done")}
    assert [e.actor for e in audits(rt, "agents.plan")] == ["agent:coordinator"]
    assert rt.service.verify_audit().ok


@pytest.mark.parametrize("threads", [True, False], ids=["writer-thread", "inline"])
def test_tool_calls_are_not_waited_for_yet_announced_in_their_order(
        rt: Runtime, threads: bool) -> None:
    """A tool call's record is queued, not awaited (the result is on the way to the
    recommendation); it still comes, stored and announced, before what the agent did
    next, whether the store writes on its thread or inline."""
    agents = AgentRuntime(rt.service, threads=threads)
    posted = collect(rt, AgentEventPosted)
    try:
        Coordinator(agents, [Investigator([CLEAR_DEPLOY]), Recommender()]).attach(rt.bus)
        incident = open_incident(rt)
        agents.run_until_idle()
    finally:
        agents.close()
    stored = [e for e in SteeringOps(rt.service).agent_events(incident.id)
              if e.agent == "investigator"]
    assert [e.kind for e in stored] == ["status", "tool_call", "tool_call", "tool_call",
                                        "hypothesis", "status"]
    assert all(e.duration_ms is not None for e in stored if e.kind == "tool_call")
    announced = [e.event for e in posted if e.event.agent == "investigator"]
    assert [e.id for e in announced] == [e.id for e in stored]


def test_the_team_recommends_before_it_traces_impact_or_writes_paperwork() -> None:
    """The operator's next action is the team's critical path: the lanes that act on
    hypotheses besides the recommender work after it, never beside it."""
    from agents.lanes import (
        ImpactLane,
        InvestigatorLane,
        PlaybookLane,
        RecommenderLane,
        ScribeLane,
    )

    roles = {r.name: r for r in map(Role.of, [
        InvestigatorLane(None), ImpactLane(None), RecommenderLane(None), PlaybookLane(None),
        ScribeLane(None)])}
    assert roles["recommender"].after == ()
    assert roles["recommender"].needs_hypotheses
    for name in ("impact_tracer", "playbook", "scribe"):
        assert roles[name].needs_hypotheses
        assert roles[name].after == ("recommender",), name


def test_close_hypotheses_are_a_recorded_disagreement_and_both_stay_live(
        rt: Runtime, agents: AgentRuntime) -> None:
    Coordinator(agents, [Investigator([DEPLOY, SLOW_DB])]).attach(rt.bus)
    boards = collect(rt, HypothesesUpdated)
    incident = open_incident(rt)
    agents.run_until_idle()
    [dispute] = [e for e in SteeringOps(rt.service).agent_events(incident.id)
                 if e.kind == "disagreement"]
    assert dispute.agent == "coordinator"
    assert dispute.data["keys"] == ["payments/bad_deploy", "payments-db/slow_database"]
    assert "payments/bad_deploy" in dispute.summary
    assert "payments-db/slow_database" in dispute.summary
    assert boards[-1].contested == ("payments/bad_deploy", "payments-db/slow_database")
    assert [h.state for h in boards[-1].hypotheses] == ["live", "live"]


def test_a_clear_leader_is_no_disagreement(rt: Runtime, agents: AgentRuntime) -> None:
    Coordinator(agents, [Investigator([CLEAR_DEPLOY, FAINT_DB])]).attach(rt.bus)
    incident = open_incident(rt)
    agents.run_until_idle()
    assert not [e for e in SteeringOps(rt.service).agent_events(incident.id)
                if e.kind == "disagreement"]
    assert agents.board_of(incident.id) is not None
    assert agents.board_of(incident.id).contested is None  # type: ignore[union-attr]


def test_a_failing_agent_stops_neither_the_others_nor_the_caller(
        rt: Runtime, agents: AgentRuntime) -> None:
    failures = collect(rt, HandlerFailed)
    recommender = Recommender()
    Coordinator(agents, [Crasher(), Investigator([CLEAR_DEPLOY]), recommender]).attach(rt.bus)
    incident = open_incident(rt)  # the caller sees no exception
    agents.run_until_idle()
    assert kinds(rt, incident.id, "crasher") == [
        ("status", "started"), ("status", ""), ("error", "failed")]
    assert kinds(rt, incident.id, "investigator")[-1] == ("status", "done")
    assert recommender.saw == ["payments/bad_deploy"]
    [failure] = failures
    assert failure.handler == "agent:crasher"
    assert "boom" in failure.error
    [crash] = [e for e in audits(rt, "agent.run") if e.actor == "agent:crasher"]
    assert crash.outputs["outcome"] == "failed"
    assert "boom" in crash.outputs["error"]
    assert rt.service.verify_audit().ok


def test_an_agent_over_its_budget_is_cancelled_and_recorded(rt: Runtime,
                                                            agents: AgentRuntime) -> None:
    failures = collect(rt, HandlerFailed)
    Coordinator(agents, [Sleeper(), Investigator([CLEAR_DEPLOY])]).attach(rt.bus)
    began = time.perf_counter()
    incident = open_incident(rt)
    agents.run_until_idle()
    assert time.perf_counter() - began < 5
    [*_, last] = [e for e in SteeringOps(rt.service).agent_events(incident.id)
                  if e.agent == "sleeper"]
    assert last.kind == "error"
    assert last.data["state"] == "timeout"
    assert last.data["in_flight"] == "sleep"
    assert "budget of 0.2 s" in last.summary
    assert [f.handler for f in failures] == ["agent:sleeper"]
    assert kinds(rt, incident.id, "investigator")[-1] == ("status", "done")
    assert [e.outputs["outcome"] for e in audits(rt, "agent.run")
            if e.actor == "agent:sleeper"] == ["timeout"]


def test_a_new_run_supersedes_the_previous_one(rt: Runtime, agents: AgentRuntime) -> None:
    incident = open_incident(rt)
    sleeper = Sleeper(seconds=0.05)
    first = agents.start(incident, sleeper, budget_s=5, trigger="first")
    second = agents.start(incident, sleeper, budget_s=5, trigger="second")
    agents.run_until_idle()
    assert (first.outcome, second.outcome) == ("superseded", "done")
    states = kinds(rt, incident.id, "sleeper")
    # The old run has ended and said so before the new one starts.
    assert states == [("status", "superseded"), ("status", "started"), ("tool_call", ""),
                      ("status", "done")]


def test_waiting_agents_are_released_when_no_one_can_post(rt: Runtime,
                                                          agents: AgentRuntime) -> None:
    recommender = Recommender()
    Coordinator(agents, [recommender]).attach(rt.bus)
    open_incident(rt)
    agents.run_until_idle()  # returns: nobody is left to post hypotheses
    assert recommender.saw == [None]


def test_an_in_memory_database_is_written_from_its_own_thread() -> None:
    with Runtime("sqlite://") as rt:
        agents = AgentRuntime(rt.service)
        investigator = Investigator([DEPLOY, SLOW_DB])
        Coordinator(agents, [investigator, Recommender()]).attach(rt.bus)
        incident = open_incident(rt)
        agents.run_until_idle()
        agents.close()
        assert investigator.runs == 1
        assert [h.key for h in SteeringOps(rt.service).hypotheses(incident.id)] == [
            "payments/bad_deploy", "payments-db/slow_database"]
        assert rt.service.verify_audit().ok


def test_closing_cancels_every_run_and_records_it(rt: Runtime) -> None:
    agents = AgentRuntime(rt.service)
    incident = open_incident(rt)
    run = agents.start(incident, Sleeper(), budget_s=60)
    agents.close()
    assert run.outcome == "cancelled"
    assert kinds(rt, incident.id, "sleeper") == [("status", "cancelled")]
    assert [e.outputs["outcome"] for e in audits(rt, "agent.run")] == ["cancelled"]
    agents.close()  # twice is harmless


# --- steering ---------------------------------------------------------------------


def test_steering_needs_an_operator_and_is_audited(rt: Runtime, agents: AgentRuntime) -> None:
    Coordinator(agents, [Investigator([DEPLOY, SLOW_DB])]).attach(rt.bus)
    incident = open_incident(rt)
    agents.run_until_idle()
    ops = SteeringOps(rt.service)
    with pytest.raises(PermissionDenied):
        ops.pin_hypothesis(incident.id, "payments-db/slow_database", as_user="victor")
    [denied] = audits(rt, "incident.steer.pin")
    assert (denied.actor, denied.decision) == ("user:victor", "deny")
    assert ops.steers(incident.id) == []

    changes = ops.pin_hypothesis(incident.id, "payments-db/slow_database", as_user="olga",
                                 reason="the DBA saw lock waits")
    assert changes.incidents
    assert changes.ids == (str(incident.id),)
    assert [(h.key, h.state) for h in ops.hypotheses(incident.id)] == [
        ("payments-db/slow_database", "pinned"), ("payments/bad_deploy", "live")]
    ops.exclude_hypothesis(incident.id, "payments/bad_deploy", as_user="olga")
    assert [(h.key, h.state) for h in ops.hypotheses(incident.id)] == [
        ("payments-db/slow_database", "pinned"), ("payments/bad_deploy", "excluded")]
    # Excluding the pinned cause's service lifts the pin, and says so.
    ops.exclude_service(incident.id, "payments-db", as_user="olga")
    assert [(h.key, h.state) for h in ops.hypotheses(incident.id)] == [
        ("payments/bad_deploy", "excluded"), ("payments-db/slow_database", "excluded")]
    assert ops.steering(incident.id).pinned is None
    [excluded] = [e for e in audits(rt, "incident.steer.exclude_service")]
    assert excluded.outputs["lifted"] == ["pin payments-db/slow_database"]
    ops.clear_steer(incident.id, as_user="olga")
    assert [h.state for h in ops.hypotheses(incident.id)] == ["live", "live"]

    with pytest.raises(Refused):
        ops.pin_hypothesis(incident.id, "search/disk_full", as_user="olga")
    with pytest.raises(Refused):
        ops.clear_steer(incident.id, as_user="olga")  # nothing left to clear
    with pytest.raises(Refused):
        ops.pin_hypothesis(999, "payments/bad_deploy", as_user="olga")
    with pytest.raises(ValueError, match="service/fault_class"):
        ops.pin_hypothesis(incident.id, "payments", as_user="olga")
    refusals = [e for e in rt.service.audit_entries()
                if e.action.startswith("incident.steer") and e.decision == "deny"]
    assert len(refusals) == 4  # the viewer and three refusals; the bad key never ran
    agents.run_until_idle()
    assert rt.service.verify_audit().ok


def test_a_pin_replans_the_agents_that_act_on_hypotheses(rt: Runtime,
                                                         agents: AgentRuntime) -> None:
    investigator, recommender = Investigator([DEPLOY, SLOW_DB]), Recommender()
    Coordinator(agents, [investigator, recommender]).attach(rt.bus)
    steers = collect(rt, SteeringChanged)
    incident = open_incident(rt)
    agents.run_until_idle()
    assert recommender.saw == ["payments/bad_deploy"]

    SteeringOps(rt.service).pin_hypothesis(incident.id, "payments-db/slow_database",
                                           as_user="olga")
    agents.run_until_idle()
    assert recommender.saw == ["payments/bad_deploy", "payments-db/slow_database"]
    assert investigator.runs == 1  # a pin does not re-run the investigation
    assert steers[-1].changed_kinds == ("pin",)
    plans = audits(rt, "agents.plan")
    assert plans[-1].reason == "steer by olga: pin payments-db/slow_database"
    assert plans[-1].outputs == {"start": [], "after_hypotheses": ["recommender"]}
    # Pinned: the operator has decided, so no new disagreement is raised on it.
    board = agents.board_of(incident.id)
    assert board is not None
    assert board.contested is None
    assert board.pinned is not None
    assert board.pinned.key == "payments-db/slow_database"

    # Ruling the pinned cause out lifts the pin: the recommender re-plans onto the other.
    SteeringOps(rt.service).exclude_hypothesis(incident.id, "payments-db/slow_database",
                                               as_user="olga")
    agents.run_until_idle()
    assert recommender.saw[-1] == "payments/bad_deploy"
    assert investigator.runs == 1
    assert steers[-1].changed_kinds == ("exclude_hypothesis", "pin")


def test_excluding_a_service_reruns_the_investigation_without_it(
        rt: Runtime, agents: AgentRuntime) -> None:
    investigator, recommender = Investigator([DEPLOY, SLOW_DB]), Recommender()
    Coordinator(agents, [investigator, recommender]).attach(rt.bus)
    incident = open_incident(rt)
    agents.run_until_idle()

    SteeringOps(rt.service).exclude_service(incident.id, "payments", as_user="olga")
    agents.run_until_idle()
    assert investigator.runs == 2
    assert investigator.looked_at[-1] == ("checkout", "payments-db")  # nothing run on it
    # The new ranking still names payments: stored, shown, but excluded, never acted on.
    assert recommender.saw[-1] == "payments-db/slow_database"
    current = SteeringOps(rt.service).hypotheses(incident.id)
    assert [(h.key, h.state) for h in current] == [
        ("payments-db/slow_database", "live"), ("payments/bad_deploy", "excluded")]
    tool_calls = [e for e in SteeringOps(rt.service).agent_events(incident.id)
                  if e.kind == "tool_call" and e.agent == "investigator"]
    assert len(tool_calls) == 3 + 2


def test_a_tool_call_about_an_excluded_service_is_refused_and_recorded(
        rt: Runtime, agents: AgentRuntime) -> None:
    class Stubborn:
        name = "stubborn"

        def __init__(self) -> None:
            self.refused: list[str] = []

        async def work(self, ctx: IncidentContext) -> None:
            try:
                await ctx.tool("metrics.latest", dict, "payments")
            except ServiceExcluded as exc:
                self.refused.append(str(exc))

    incident = open_incident(rt)
    SteeringOps(rt.service).exclude_service(incident.id, "payments", as_user="olga")
    stubborn = Stubborn()
    agents.start(incident, stubborn)
    agents.run_until_idle()
    assert stubborn.refused
    assert "payments" in stubborn.refused[0]
    [call] = [e for e in SteeringOps(rt.service).agent_events(incident.id)
              if e.kind == "tool_call"]
    assert call.data["refused"] == "payments"
    assert call.data["ok"] is False


def test_rankings_supersede_each_other_but_a_pin_outlives_them(
        rt: Runtime, agents: AgentRuntime) -> None:
    investigator = Investigator([CLEAR_DEPLOY, FAINT_DB])
    coordinator = Coordinator(agents, [investigator])
    coordinator.attach(rt.bus)
    incident = open_incident(rt)
    agents.run_until_idle()
    ops = SteeringOps(rt.service)
    ops.pin_hypothesis(incident.id, "payments-db/slow_database", as_user="olga")
    cache = Hypothesis("cart", "cache_stampede", 0.3)
    investigator.ranking = [CLEAR_DEPLOY, cache]  # the investigator changed its mind
    coordinator.plan(incident, reason="test")
    agents.run_until_idle()
    assert [(h.key, h.state, h.rank) for h in ops.hypotheses(incident.id)] == [
        ("payments-db/slow_database", "pinned", 2), ("payments/bad_deploy", "live", 1),
        ("cart/cache_stampede", "live", 2)]
    with rt.db.sessions() as session:
        history = HypothesisRepo().history(session, incident.id)
    assert [(h.key, h.state) for h in history] == [
        ("payments/bad_deploy", "superseded"), ("payments-db/slow_database", "pinned"),
        ("payments/bad_deploy", "live"), ("cart/cache_stampede", "live")]
    ops.clear_steer(incident.id, "pin", as_user="olga")  # no ranking names it any more
    assert [h.key for h in ops.hypotheses(incident.id)] == [
        "payments/bad_deploy", "cart/cache_stampede"]


# --- re-planning on growth ----------------------------------------------------------


def test_growth_and_reopening_rerun_the_investigation_at_most_every_30_s(
        rt: Runtime, agents: AgentRuntime) -> None:
    investigator = Investigator([CLEAR_DEPLOY])
    Coordinator(agents, [investigator, Recommender()]).attach(rt.bus)
    incident = open_incident(rt, ("payments",))
    agents.run_until_idle()
    assert investigator.runs == 1

    rt.clock.advance(10)
    open_incident(rt, ("payments", "checkout"), incident.id)  # grew inside the window
    open_incident(rt, ("payments", "checkout", "cart"), incident.id)
    agents.run_until_idle()
    assert investigator.runs == 1
    rt.clock.advance(21)  # the window has passed: the next tick runs what was kept
    rt.bus.publish(EstateSnapshot(rt.clock.now(), {}))
    agents.run_until_idle()
    assert investigator.runs == 2
    assert audits(rt, "agents.plan")[-1].reason == "incident grew: checkout; incident grew: cart"

    rt.clock.advance(40)
    open_incident(rt, ("payments", "checkout", "cart"), incident.id, state="resolved")
    rt.clock.advance(5)
    open_incident(rt, ("payments", "checkout", "cart"), incident.id)  # reopened
    agents.run_until_idle()
    assert investigator.runs == 3
    assert audits(rt, "agents.plan")[-1].reason == "incident reopened"
    assert rt.service.verify_audit().ok


def test_a_running_fix_holds_the_replans_and_a_good_one_gets_time_to_take_hold(
        rt: Runtime, agents: AgentRuntime) -> None:
    investigator = Investigator([CLEAR_DEPLOY])
    coordinator = Coordinator(agents, [investigator, Recommender()], settle_s=120)
    coordinator.attach(rt.bus)
    incident = open_incident(rt, ("payments",))
    agents.run_until_idle()
    assert investigator.runs == 1

    coordinator.action_started(incident.id, "execution:1")
    rt.clock.advance(60)
    open_incident(rt, ("payments", "checkout"), incident.id)  # the fix at work, not news
    agents.run_until_idle()
    assert investigator.runs == 1
    coordinator.action_settled(incident.id, "rollback-deploy succeeded", succeeded=True,
                               action="execution:1")
    agents.run_until_idle()
    assert investigator.runs == 1  # it gets settle_s to take hold
    rt.clock.advance(119)
    rt.bus.publish(EstateSnapshot(rt.clock.now(), {}))
    agents.run_until_idle()
    assert investigator.runs == 1
    rt.clock.advance(2)  # past the hold: what was kept runs once
    rt.bus.publish(EstateSnapshot(rt.clock.now(), {}))
    agents.run_until_idle()
    assert investigator.runs == 2
    assert "an action settled: rollback-deploy succeeded" in audits(rt, "agents.plan")[-1].reason
    holds = [e for e in SteeringOps(rt.service).agent_events(incident.id)
             if e.agent == "coordinator" and e.data.get("state") == "hold"]
    assert len(holds) == 1

    coordinator.action_started(incident.id, "execution:2")
    coordinator.action_settled(incident.id, "restart-service failed", action="execution:2")
    rt.clock.advance(31)  # a failed fix holds nothing: only the debounce
    open_incident(rt, ("payments", "checkout", "cart"), incident.id)
    agents.run_until_idle()
    assert investigator.runs == 3


# --- the async API, on a running loop (as on the GUI's qasync loop) --------------------


def test_the_same_api_works_on_a_running_loop(rt: Runtime) -> None:
    async def main() -> None:
        rt.bus.bind_loop(asyncio.get_running_loop())
        agents = AgentRuntime(rt.service)
        investigator, recommender = Investigator([DEPLOY, SLOW_DB]), Recommender()
        Coordinator(agents, [Role(investigator, produces_hypotheses=True),
                             Role(recommender, needs_hypotheses=True)]).attach(rt.bus)
        incident = open_incident(rt)
        with pytest.raises(RuntimeError, match="await idle"):
            agents.run_until_idle()
        await agents.idle()
        assert recommender.saw == ["payments/bad_deploy"]

        # Supersede a run that is under way, then close with one still running.
        sleeper = Sleeper(seconds=30)
        first = agents.start(incident, sleeper, budget_s=60)
        await asyncio.wait_for(sleeper.began.wait(), 5)
        sleeper.began.clear()
        second = agents.start(incident, sleeper, budget_s=60)
        await asyncio.wait_for(sleeper.began.wait(), 5)
        assert first.outcome == "superseded"
        assert first.finished
        await agents.aclose()
        assert second.outcome == "cancelled"
        assert not agents.runs()
        with pytest.raises(RuntimeError, match="closed"):
            agents.start(incident, sleeper)

    asyncio.run(main())
    rt.bus.bind_loop(None)
    events = SteeringOps(rt.service).agent_events(1)
    sleeper_ends = [e.data["state"] for e in events
                    if e.agent == "sleeper" and e.data.get("state") != "started"
                    and e.kind != "tool_call"]
    assert sleeper_ends == ["superseded", "cancelled"]
    assert [e.outputs["outcome"] for e in audits(rt, "agent.run")
            if e.actor == "agent:sleeper"] == ["superseded", "cancelled"]
    assert rt.service.verify_audit().ok

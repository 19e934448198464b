"""A ranking with nothing usable in it must not hang the team: the agents that wait for
hypotheses are released, including when one of them also waits for another agent of
the same plan (the scribe works after the recommender)."""

from __future__ import annotations

import threading
from typing import Any

from agents.coordinator import Coordinator
from agents.runtime import AgentRuntime, IncidentContext
from console.domain import IncidentUpdate, Severity


class EmptyInvestigator:
    name = "investigator"
    produces_hypotheses = True

    async def work(self, ctx: IncidentContext) -> None:
        await ctx.publish_hypotheses([])  # the team's own action explained everything


class Consumer:
    needs_hypotheses = True

    def __init__(self, name: str, after: tuple[str, ...] = ()) -> None:
        self.name = name
        self.after = after
        self.saw: list[str | None] = []

    async def work(self, ctx: IncidentContext) -> None:
        self.saw.append(ctx.top.key if ctx.top else None)


def test_an_empty_ranking_releases_agents_that_also_wait_for_another(runtime: Any) -> None:
    agents = AgentRuntime(runtime.service)
    team = [EmptyInvestigator(), Consumer("recommender"), Consumer("impact_tracer"),
            Consumer("playbook", ("recommender",)), Consumer("scribe", ("recommender",))]
    coordinator = Coordinator(agents, team)
    update = IncidentUpdate(1, None, "errors at checkout", Severity.CRITICAL, "open",
                            ("checkout",), runtime.clock.now(), None)
    [info] = runtime.service.save_incidents([update], actor="agent:correlator")
    done = threading.Event()

    def play() -> None:
        for _ in range(3):  # the first plan, then two re-plans on the same board
            coordinator.plan(info, reason="look again")
            agents.run_until_idle()
        done.set()

    worker = threading.Thread(target=play, daemon=True)
    worker.start()
    worker.join(30)
    finished = done.is_set()
    agents.close()
    assert finished, "the team hung on an empty ranking"
    assert all(None in member.saw for member in team[1:]), [m.saw for m in team[1:]]

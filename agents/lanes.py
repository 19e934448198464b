"""The team's lanes: each agent class of issue 5 behind the runtime's Agent protocol.

The investigator, impact tracer, recommender and scribe are plain synchronous classes,
tested on their own; a lane is what puts one on an incident board: it reads the board
(the incident, the steering, the live hypotheses), calls its agent through
`ctx.tool(...)` (so every call is recorded with its duration and can be budgeted),
and writes back (hypotheses, a message to the other agents). Nothing here decides
anything the agents themselves do not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agents.runtime import IncidentContext


class InvestigatorLane:
    """Ranks the causes of the incident, leaving out services the operator excluded."""

    name = "investigator"
    produces_hypotheses = True
    budget_s = 10.0

    def __init__(self, investigator: Any) -> None:
        self.investigator = investigator

    async def work(self, ctx: IncidentContext) -> None:
        scope = replace(ctx.incident, services=tuple(ctx.services))
        ranking = await ctx.tool("investigator.investigate", self.investigator.investigate,
                                 scope, ctx.now())
        ranking = [h for h in ranking if ctx.allowed(h.service)]
        await ctx.publish_hypotheses(ranking)
        if ranking:
            top = ranking[0]
            await ctx.post(f"most likely {top.fault_class} on {top.service} "
                           f"({top.confidence:.2f}, {top.signals} signal kinds)",
                           data={"top": top.key, "confidence": top.confidence})
        else:
            await ctx.post("no cause stands out yet")


class ImpactLane:
    """Traces who is affected by the top hypothesis and tells the board."""

    name = "impact_tracer"
    needs_hypotheses = True
    # The operator's next action comes first. Tracing reads every affected service's
    # metrics (tens of ms on a wide incident): run beside the recommender it only takes
    # turns with it on the interpreter, so its answer comes no sooner and the
    # recommendation later. Its message follows the recommendation by a few ms.
    after = ("recommender",)
    budget_s = 10.0

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    async def work(self, ctx: IncidentContext) -> None:
        top = ctx.top
        if top is None:
            return
        impact = await ctx.tool("impact.trace", self.tracer.trace, ctx.incident,
                                top.hypothesis, ctx.now(), about=top.service)
        summary = getattr(impact, "summary", str(impact))
        await ctx.post(summary, data={"impact": _plain(impact)})


class RecommenderLane:
    """Turns the live (or pinned) hypotheses into recommendations with previews."""

    name = "recommender"
    needs_hypotheses = True
    budget_s = 15.0

    def __init__(self, recommender: Any) -> None:
        self.recommender = recommender

    async def work(self, ctx: IncidentContext) -> None:
        steering = ctx.steering
        ids = await ctx.tool("recommender.recommend", self.recommender.recommend,
                             ctx.incident.id, [h.hypothesis for h in ctx.live],
                             excluded_services=steering.excluded_services,
                             pinned=steering.pinned)
        choices = list(getattr(self.recommender, "last", []))
        await ctx.post(f"proposed {len(ids)} recommendation(s)" if ids else
                       "nothing new to propose",
                       data={"recommendations": list(ids),
                             "why": [getattr(c, "explanation", "")[:500] for c in choices]})


class PlaybookLane:
    """Level 4: names the library's playbook for the diagnosis, or drafts one for review
    where none fits (a draft never runs before lint, dry run and a person's sign-off)."""

    name = "playbook"
    needs_hypotheses = True
    after = ("recommender",)  # classifying for the record can wait for the fix
    budget_s = 10.0

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self._drafted: set[tuple[int, str]] = set()  # one draft per incident and cause

    async def work(self, ctx: IncidentContext) -> None:
        top = ctx.top
        if top is None:
            return
        found = await ctx.tool("playbook.discover", self.agent.discover, top.hypothesis,
                               ctx.incident.id, about=top.service)
        if found.runbook_id is not None:
            await ctx.post(f"playbook {found.runbook_id} answers {found.fault_class}",
                           data={"runbook": found.runbook_id, "reason": found.reason})
            return
        if (ctx.incident.id, top.key) in self._drafted:
            return
        self._drafted.add((ctx.incident.id, top.key))
        draft_id = await ctx.tool("playbook.draft", self.agent.draft, top.hypothesis,
                                  ctx.incident.id, about=top.service)
        await ctx.post(f"no playbook fits {found.fault_class}; draft {draft_id} awaits review",
                       data={"draft": draft_id, "reason": found.reason})


class ScribeLane:
    """Keeps the ticket and the stakeholder draft in step with the diagnosis."""

    name = "scribe"
    needs_hypotheses = True
    after = ("recommender",)  # so its update can say what is being done about it
    budget_s = 15.0

    def __init__(self, scribe: Any) -> None:
        self.scribe = scribe

    async def work(self, ctx: IncidentContext) -> None:
        hypotheses = [h.hypothesis for h in ctx.live]
        await ctx.tool("scribe.on_hypotheses", self.scribe.on_hypotheses, ctx.incident.id,
                       hypotheses)
        await ctx.status("ticket and stakeholder draft updated")


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a result dataclass (for the agent event's data)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)

"""The coordinator (level 5): the team of agents on each incident, run in parallel on
the incident's board.

The plan is dependencies, not a sequence. Every agent of the team starts at once; an
agent that acts on hypotheses (impact tracer, recommender, scribe) waits on the board
until a hypothesis is there to act on, so it starts as soon as the investigator posts,
and a slow retriever never holds it up. When the plan re-runs the investigation, those
agents wait for the *new* ranking, never acting on the one it replaces. Among them the
recommender goes first: the impact tracer, the playbook agent and the scribe declare
`after = ("recommender",)`, since their CPU work beside it (one interpreter lock) would
only delay the operator's next action, not bring their own answers sooner.

The coordinator re-plans when the world changes:

- an incident opens: the whole team runs;
- it grows (new services or alerts) or reopens: the whole team runs again, at most once
  per `debounce_s` simulated seconds (a storm of 340 alerts is one re-plan, not 340);
  a change inside the window is kept and run when the window ends;
- the operator steers (console/steering.py): excluding or re-admitting a service
  re-runs the whole team (what was found on it is void); a pin or a hypothesis's
  exclusion re-runs only the agents that act on hypotheses, with the new steering.

It shows disagreement instead of hiding it: when the two best live hypotheses are too
close to call (agents/board.py, `contested_pair`), both stay live on the board and the
coordinator records a `disagreement` event naming both. Every plan is one agent event
and one audit record (actor agent:coordinator) saying why it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.board import IncidentBoard
from agents.runtime import Agent, AgentRun, AgentRuntime
from console.bus import EventBus
from console.domain import IncidentInfo
from console.events import EstateSnapshot, IncidentsUpdated
from console.steering import SteeringChanged

NAME = "coordinator"
DEBOUNCE_S = 30.0
# A fix that validated gets this long to show its effect before the team looks again:
# right after a scale-out or a rollback the estate is still settling (a surge moves on to
# the next tier for a while), and what looks wrong then is mostly the fix taking hold.
SETTLE_S = 240.0
# What the agents of issue 5 are, unless they declare it themselves.
PRODUCERS = frozenset({"investigator"})
CONSUMERS = frozenset({"impact_tracer", "impact", "recommender", "scribe"})


@dataclass(frozen=True, slots=True)
class Role:
    """An agent's place in the plan."""

    agent: Agent
    needs_hypotheses: bool = False  # starts once the board has hypotheses to act on
    produces_hypotheses: bool = False  # its run is "the investigation"
    budget_s: float | None = None  # None: the runtime's default
    # Agents of the same plan this one works after: the operator's next action (the
    # recommendation) comes first, the paperwork about it (ticket, playbook record) next.
    after: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.agent.name

    @classmethod
    def of(cls, member: Agent | Role) -> Role:
        """A Role as given, or one read from the agent's own declarations (attributes
        `needs_hypotheses`, `produces_hypotheses`, `budget_s`), else from its name."""
        if isinstance(member, Role):
            return member
        name = member.name
        return cls(member,
                   bool(getattr(member, "needs_hypotheses", name in CONSUMERS)),
                   bool(getattr(member, "produces_hypotheses", name in PRODUCERS)),
                   getattr(member, "budget_s", None),
                   tuple(getattr(member, "after", ())))


class Coordinator:
    """Plans the team's runs per incident; attach it to the bus to make it react."""

    name = NAME

    def __init__(self, runtime: AgentRuntime, team: Iterable[Agent | Role], *,
                 debounce_s: float = DEBOUNCE_S, settle_s: float = SETTLE_S) -> None:
        self.runtime = runtime
        self.roles: tuple[Role, ...] = tuple(Role.of(m) for m in team)
        names = [r.name for r in self.roles]
        if len(set(names)) != len(names):
            raise ValueError(f"two agents of the team share a name: {names}")
        self.debounce_s = debounce_s
        self.settle_s = settle_s
        self._hold: dict[int, datetime] = {}  # incident -> no automatic re-plan before
        self._in_flight: dict[int, set[str]] = {}  # incident -> actions running on it
        self._seen: dict[int, IncidentInfo] = {}
        self._last_plan: dict[int, datetime] = {}
        self._pending: dict[int, str] = {}  # incident -> why it must re-plan after the window
        self._disputed: dict[int, tuple[str, str]] = {}  # last disagreement recorded
        runtime.add_ranking_observer(self._on_ranking)

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """React to incidents, steers and the clock from now; returns the detach."""
        detach = [bus.subscribe(IncidentsUpdated, self._on_incidents),
                  bus.subscribe(SteeringChanged, self._on_steering),
                  bus.subscribe(EstateSnapshot, self._on_snapshot)]

        def detach_all() -> None:
            for undo in detach:
                undo()

        return detach_all

    # --- planning -------------------------------------------------------------------

    def plan(self, incident: IncidentInfo, *, reason: str,
             scope: str = "all") -> list[AgentRun]:
        """Start the team (`scope="all"`) or only the agents that act on hypotheses
        (`"consumers"`) on `incident`; each run supersedes that agent's previous one."""
        if self.runtime.closed:
            return []
        if scope not in ("all", "consumers"):
            raise ValueError(f"unknown plan scope {scope!r}")
        roles = [r for r in self.roles if scope == "all" or r.needs_hypotheses]
        if not roles:
            return []
        self._seen.setdefault(incident.id, incident)
        board = self.runtime.board(incident)
        producers = {r.name for r in self.roles if r.produces_hypotheses}
        investigating = any(r.produces_hypotheses for r in roles) or any(
            run.agent in producers for run in self.runtime.runs(incident.id))
        # While the investigation (re)runs, act on the ranking it makes, not the one before.
        floor = board.revision + 1 if investigating else 0
        now = self.runtime.service.clock.now()
        if scope == "all":
            self._last_plan[incident.id] = now
            self._pending.pop(incident.id, None)
        self.runtime.spawn(self._record_plan(board, roles, reason, scope),
                           name=f"coordinator plan for incident {incident.id}")
        started: dict[str, AgentRun] = {}
        for role in sorted(roles, key=lambda r: bool(r.after)):  # who others wait on first
            started[role.name] = self.runtime.start(
                incident, role.agent, budget_s=role.budget_s,
                needs_hypotheses=role.needs_hypotheses,
                min_revision=floor if role.needs_hypotheses else 0, trigger=reason,
                after=[started[name] for name in role.after if name in started])
        return [started[r.name] for r in roles]

    def tick(self, now: datetime | None = None) -> list[AgentRun]:
        """Run the re-plans whose debounce window has passed."""
        now = now or self.runtime.service.clock.now()
        runs: list[AgentRun] = []
        for incident_id, reason in list(self._pending.items()):
            incident = self._seen[incident_id]
            if incident.state != "open":  # resolved meanwhile: nothing left to investigate
                del self._pending[incident_id]
                continue
            last = self._last_plan.get(incident_id)
            if self._held(incident_id, now):
                continue
            if last is None or (now - last).total_seconds() >= self.debounce_s:
                runs += self.plan(incident, reason=reason)
        return runs

    def action_started(self, incident_id: int, what: str) -> None:
        """An action on the incident is running: until it settles, what the team would
        see is the action at work, so its automatic re-plans wait (steers never do)."""
        self._in_flight.setdefault(incident_id, set()).add(what)

    def _held(self, incident_id: int, now: datetime) -> bool:
        if self._in_flight.get(incident_id):
            return True
        until = self._hold.get(incident_id)
        if until is None:
            return False
        if now >= until:
            del self._hold[incident_id]
            return False
        return True

    def action_settled(self, incident_id: int, what: str, *, succeeded: bool = False,
                       action: str = "") -> None:
        """An action on the incident ended (validated, failed, rolled back): the world
        changed under the diagnosis, so the team looks again. This is how a second cause
        behind one incident is found once the first is fixed. After a fix that
        `succeeded`, the automatic re-plans of the incident wait `settle_s` (the fix
        takes hold first); after a failed one, only the debounce. An operator's steer is
        never held."""
        running = self._in_flight.get(incident_id, set())
        running.discard(action)
        if not running:
            self._in_flight.pop(incident_id, None)
        incident = self._seen.get(incident_id)
        if incident is None or incident.state != "open":
            return
        if succeeded and self.settle_s > 0 and not self.runtime.closed:
            until = self.runtime.service.clock.now() + timedelta(seconds=self.settle_s)
            self._hold[incident_id] = until
            board = self.runtime.board(incident)
            self.runtime.spawn(self._record_hold(board, what, until),
                               name=f"coordinator hold for incident {incident_id}")
        self._replan(incident, f"an action settled: {what}")

    def _replan(self, incident: IncidentInfo, reason: str) -> None:
        last = self._last_plan.get(incident.id)
        now = self.runtime.service.clock.now()
        if not self._held(incident.id, now) and (
                last is None or (now - last).total_seconds() >= self.debounce_s):
            self.plan(incident, reason=reason)
        elif incident.id not in self._pending:
            self._pending[incident.id] = reason
        else:
            self._pending[incident.id] = _merge(self._pending[incident.id], reason)

    # --- what it reacts to ----------------------------------------------------------

    def _on_incidents(self, event: IncidentsUpdated) -> None:
        for incident in event.incidents:
            seen = self._seen.get(incident.id)
            self._seen[incident.id] = incident
            if seen is not None:
                self.runtime.board(incident)  # running agents see the newest incident
            if incident.state != "open":
                continue
            if seen is None:
                self.plan(incident, reason="incident opened")
            elif seen.state != "open":
                self._replan(incident, "incident reopened")
            else:
                grown = sorted(set(incident.services) - set(seen.services))
                self._replan(incident, f"incident grew: {', '.join(grown)}" if grown
                             else "incident grew: new alerts")
        self.tick()

    def _on_steering(self, event: SteeringChanged) -> None:
        board = self.runtime.board(event.incident)
        board.adopt(event.steering, event.hypotheses)
        self.runtime.service.bus.publish(board.event())
        scope = "all" if "exclude_service" in event.changed_kinds else "consumers"
        self._seen.setdefault(event.incident.id, event.incident)
        self.plan(event.incident, scope=scope,
                  reason=f"steer by {event.user}: {event.kind} {event.value}")

    def _on_snapshot(self, event: EstateSnapshot) -> None:
        if self._pending:
            self.tick(event.at)

    async def _on_ranking(self, board: IncidentBoard, run: AgentRun) -> None:
        """After each ranking: two close live hypotheses are a disagreement, recorded
        once per pair (and again if the pair changes)."""
        pair = board.contested
        if pair is None:
            self._disputed.pop(board.id, None)
            return
        keys = (pair[0].key, pair[1].key)
        if self._disputed.get(board.id) == keys:
            return
        self._disputed[board.id] = keys
        first, second = pair
        await self.runtime.record(
            board, NAME, "disagreement",
            f"too close to call: {first.key} ({first.confidence:.2f}) and {second.key} "
            f"({second.confidence:.2f}); both stay live",
            data={"keys": list(keys), "confidence": [first.confidence, second.confidence],
                  "agents": [first.agent, second.agent], "ranking_by": run.agent,
                  "run": run.id})

    async def _record_hold(self, board: IncidentBoard, what: str, until: datetime) -> None:
        await self.runtime.record(
            board, NAME, "status", f"{what}: looking again at {until:%H:%M:%S}, once the "
            "fix has taken hold", data={"state": "hold", "until": until.isoformat()})

    async def _record_plan(self, board: IncidentBoard, roles: Sequence[Role], reason: str,
                           scope: str) -> None:
        await self.runtime.load(board)
        waits = [r.name for r in roles if r.needs_hypotheses]
        now = [r.name for r in roles if not r.needs_hypotheses]
        summary = f"plan ({reason}): {', '.join(now) or '-'}" + (
            f"; on hypotheses: {', '.join(waits)}" if waits else "")
        await self.runtime.record(
            board, NAME, "status", summary,
            data={"state": "plan", "reason": reason, "scope": scope, "start": now,
                  "after_hypotheses": waits},
            audit={"actor": f"agent:{NAME}", "action": "agents.plan",
                   "target": f"incident:{board.id}", "reason": reason,
                   "inputs": {"scope": scope, "steering": board.steering.as_dict()},
                   "outputs": {"start": now, "after_hypotheses": waits}, "decision": "n/a"})


def _merge(reasons: str, reason: str) -> str:
    return reasons if reason in reasons else f"{reasons}; {reason}"

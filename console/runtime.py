"""The headless composition root: store, bus, clock, service and the scenario driver.

The GUI (console/app.py) and the CLI both build a `Runtime`; tests build one on a
temporary database. Nothing here imports Qt.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.coordinator import Coordinator
from agents.escalation import CauseBreaker
from agents.correlator_agent import CorrelatorAgent
from agents.impact import ImpactTracer
from agents.investigator import Investigator, InvestigatorSettings
from agents.lanes import (
    ImpactLane,
    InvestigatorLane,
    PlaybookLane,
    RecommenderLane,
    ScribeLane,
)
from agents.learner import Learner
from agents.llm import LLM
from agents.own_actions import OwnActions
from agents.playbooks import PlaybookAgent
from agents.recommender import NOT_A_FIX, Recommender
from agents.retriever import Answer, Retriever
from agents.runtime import Agent, AgentRuntime
from agents.scribe import Scribe
from console.actions.estate import EstateExecutor
from console.audit_checkpointer import start_checkpoints
from console.bus import EventBus, OffLoopSubscriber
from console.clock import RealClock, SimClock
from console.correlation import DeferredCorrelation
from console.domain import AlertStatus, ChangeEvent, IncidentInfo, LogRecord, Signal
from console.estate import ScenarioPlayer, load_scenario
from console.estate.telemetry import EstateMetrics
from console.events import AuditAppended, EstateSnapshot, ScenarioFinished
from console.itsm.change import ChangeGate
from console.itsm.config import ConfiguredTickets
from console.llm_config import configured_llm
from console.local_user import local_user  # noqa: F401  (where callers import it from)
from console.mcp.client import configured_sources
from console.rules import RuleEngine, RuleError, load_rules, user_rules_dir
from console.service import WatchfloorService
from console.sources.logs import StreamMiner
from console.sources.metrics import MetricsReader
from console.steering import SteeringOps
from console.storage.db import Database
from console.storage.repos_evidence import EvidenceRepo

SCENARIO_EPOCH = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
TREND_EVERY = timedelta(minutes=5)
STARTED = "execution.intent"  # written before the first step runs
SETTLED = ("execution.succeeded", "execution.failed", "execution.rolled_back",
           "execution.rollback_failed")
log = logging.getLogger(__name__)


class Runtime:
    """Owns the database, the bus and the service for one process."""

    def __init__(self, db_url: str | None, *, clock: SimClock | RealClock | None = None,
                 prometheus: str | None = None) -> None:
        self.db = Database(db_url)
        self.bus = EventBus()
        # Scenarios move a simulated clock; headless commands live in real time.
        self.clock: Any = clock or SimClock(SCENARIO_EPOCH)
        self.service = WatchfloorService(self.db, self.bus, self.clock)
        # Signed checkpoints of the audit chain, outside the database's reach
        self.checkpoints = start_checkpoints(self.db, self.bus)
        # Tickets and change records go to the configured system (tickets.yaml; the
        # built-in store by default), built on first use.
        self.tickets = ConfiguredTickets(self.service)
        self.service.change_gate = ChangeGate(self.tickets)
        if prometheus is not None:  # PromQL validations need a Prometheus to ask
            from console.actions.prometheus import PrometheusProbe

            self.service.engine.executors["prometheus"] = PrometheusProbe(prometheus)
        # Without an estate there is no topology: grouping by time and labels only.
        self.correlator = CorrelatorAgent(self.service, {})
        # What the webhook receiver stored is correlated on this worker, after the answer.
        self.deferred = DeferredCorrelation(self.db, self.receive)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.rules: RuleEngine | None = None
        self.rule_error: str | None = None
        self._detach: list[Callable[[], None]] = []
        # Rules and the scribe call the ticket system, maybe over HTTP: in the console
        # they do it on one worker thread, in order, never on the GUI's.
        self.ticket_worker = OffLoopSubscriber(self.bus, "tickets")
        # The agent team (issue 5): questions are answered from the start; the rest of
        # the team starts with an estate to watch (start_agents).
        llm_settings = configured_llm()
        self.llm = LLM(llm_settings) if llm_settings is not None else None
        # Other tools' MCP servers (mcp.yaml): quoted evidence for questions and causes.
        self.external = configured_sources()
        self.retriever = Retriever(self.service, None, self.llm, external=self.external)
        self.agents = AgentRuntime(self.service)
        self.steering = SteeringOps(self.service)
        self.coordinator: Coordinator | None = None
        self.learner: Learner | None = None
        self.recommender: Recommender | None = None
        self.scribe: Scribe | None = None
        self.playbooks: PlaybookAgent | None = None
        self.breaker: CauseBreaker | None = None

    def start_agents(self, metrics: MetricsReader,
                     topology: Mapping[str, Iterable[str]]) -> Coordinator:
        """Put the team on every incident from now: investigator, impact tracer,
        recommender and scribe under the coordinator (idempotent)."""
        if self.coordinator is not None:
            return self.coordinator
        library = self.service.engine.library
        fault_classes = sorted({f for book in library.values() for f in book.applies_to.faults})
        self.learner = Learner(self.service, metrics)
        self.recommender = Recommender(self.service, library, learner=self.learner,
                                       metrics=metrics)
        self.retriever.metrics = metrics
        self.scribe = Scribe(self.service, self.tickets)
        own = OwnActions(self.service.engine, library)
        investigator = Investigator(metrics, topology, fault_classes, EvidenceRepo(self.db),
                                    own_actions=own, external=self.external)
        # Stop and hand over where acting did not help (agents/escalation.py).
        self.breaker = CauseBreaker(self.service, metrics, library, own_actions=own,
                                    eases=NOT_A_FIX,
                                    callers=lambda s: sorted(investigator.ancestors.get(s, ())),
                                    callees=lambda s: sorted(investigator.descendants.get(s, ())))
        self.recommender.breaker = self.breaker
        self.recommender.callees = lambda s: sorted(investigator.descendants.get(s, ()))
        self.playbooks = PlaybookAgent(self.service)
        self._readopt_playbooks(self.playbooks)
        team: list[Agent] = [InvestigatorLane(investigator),
                             ImpactLane(ImpactTracer(metrics, topology)),
                             RecommenderLane(self.recommender), PlaybookLane(self.playbooks),
                             ScribeLane(self.scribe)]
        self.coordinator = Coordinator(self.agents, team)
        self._detach += [self.coordinator.attach(self.bus),
                         self.scribe.attach(self.ticket_worker),
                         self.breaker.attach(self.bus),
                         self.bus.subscribe(AuditAppended, self._on_audited)]
        return self.coordinator

    def _readopt_playbooks(self, agent: PlaybookAgent) -> None:
        """Playbooks a person signed off in an earlier session join the library again."""
        from console.storage.repos_playbooks import PlaybookDraftRepo

        with self.db.sessions() as session:
            signed = PlaybookDraftRepo().recent(session, ("signed_off",))
        for draft in signed:
            if draft.runbook_id not in self.service.engine.library:
                agent.adopt(draft.id)

    def _on_audited(self, event: AuditAppended) -> None:
        """An execution that starts holds its incident's re-plans; one that settled sends
        the team back to its incident."""
        entry = event.entry
        if self.coordinator is None or entry.action not in (*SETTLED, STARTED):
            return
        kind, _, ident = entry.target.partition(":")
        execution = self.service.engine.execution(int(ident)) if ident.isdigit() else None
        if kind != "execution" or execution is None or execution.recommendation_id is None:
            return
        rec = self.service.engine.recommendation(execution.recommendation_id)
        if rec is None or rec.incident_id is None:
            return
        if entry.action == STARTED:
            self.coordinator.action_started(rec.incident_id, entry.target)
        else:
            self.coordinator.action_settled(rec.incident_id,
                                            f"{execution.runbook_id} {execution.state}",
                                            succeeded=execution.state == "succeeded",
                                            action=entry.target)

    @staticmethod
    def investigator_classes() -> tuple[type[Investigator], type[InvestigatorSettings]]:
        """The live investigator and its settings, for the core's offline uses (a
        recording investigated or evaluated), which may not import the agents."""
        return Investigator, InvestigatorSettings

    def ask(self, question: str, *, user: str, incident_id: int | None = None) -> Answer:
        """A question in plain language, answered with a citation for every fact (level 0);
        blocks on the database (and the LLM, if one is set): call it off the GUI thread."""
        return self.retriever.ask(question, user=user, incident_id=incident_id)

    def start_rules(self) -> RuleEngine | None:
        """Run the enabled level-1 rules (shipped + the user's folder) on the bus from now;
        None when none is enabled. A bad user file is reported, and the shipped rules
        still load, so one typo never keeps the console from starting."""
        if self.rules is not None:
            return self.rules
        from console.settings_store import configured_packs

        library, packs = self.service.engine.library, configured_packs()
        try:
            rules = load_rules(user_rules_dir(), library, packs)
        except RuleError as exc:
            log.error("rules not loaded from %s: %s", user_rules_dir(), exc)
            self.rule_error = str(exc)
            rules = load_rules(None, library, packs)
        if not any(rule.enabled for rule in rules):
            return None
        self.rules = RuleEngine(self.service, rules, tickets=self.tickets)
        self.rules.emit = self._store_and_correlate  # what proactive checks warn of
        self._detach.append(self.rules.attach(self.ticket_worker))
        return self.rules

    def _store_and_correlate(self, signals: list[Signal]) -> None:
        """A rule's proactive warnings: stored and correlated like any source's alerts."""
        self.service.store(signals, (), ())
        self.receive(signals, [])

    def receive(self, signals: list[Signal], changes: list[ChangeEvent]) -> None:
        """Signals a source has stored (from its own thread): correlate them, then tell
        the subscribers on the event loop's thread. The webhook receiver's deliveries
        come here through `deferred`, after their answer."""
        incidents = self.correlator.handle(signals, self.clock.now()) if signals else []

        def announce() -> None:
            self.service.announce(tuple(signals), tuple(changes), ())
            self.service.announce_incidents(incidents)

        if self.loop is not None:
            self.loop.call_soon_threadsafe(announce)
        else:
            announce()

    def close(self) -> None:
        self.deferred.stop()  # what is queued stays in the backlog for the next start
        self.deferred.wait_idle(timeout=60)
        self.ticket_worker.flush()
        for detach in self._detach:
            detach()
        self._detach.clear()
        self.ticket_worker.close()
        self.agents.close()  # cancels what is still running, and waits for it
        if self.llm is not None:
            self.llm.close()
        if self.external is not None:
            self.external.close()  # the MCP servers' sessions end, their processes exit
        self.tickets.close_client()
        if self.service.has_engine:
            for executor in self.service.engine.executors.values():
                closer = getattr(executor, "close", None)
                if callable(closer):
                    closer()
        if self.checkpoints is not None:
            self.checkpoints.close()  # what this process appended is anchored before it ends
        self.db.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunTally:
    """What a run saw, gathered from what the driver fed through the service."""

    signals: int = 0
    firing: int = 0
    resolved: int = 0
    by_severity: Counter[str] = field(default_factory=Counter)
    by_service: Counter[str] = field(default_factory=Counter)
    by_name: Counter[str] = field(default_factory=Counter)
    logs: int = 0
    error_logs: int = 0
    changes: list[ChangeEvent] = field(default_factory=list)

    def add(self, signals: tuple[Signal, ...], changes: tuple[ChangeEvent, ...],
            logs: tuple[LogRecord, ...]) -> None:
        for s in signals:
            self.signals += 1
            if s.status is AlertStatus.FIRING:
                self.firing += 1
                self.by_severity[s.severity.value] += 1
                self.by_service[s.service] += 1
                self.by_name[s.name] += 1
            else:
                self.resolved += 1
        self.logs += len(logs)
        self.error_logs += sum(1 for rec in logs if rec.level == "ERROR")
        self.changes.extend(changes)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one step produced, computed off the event loop and published on it."""

    signals: tuple[Signal, ...]
    changes: tuple[ChangeEvent, ...]
    logs: tuple[LogRecord, ...]
    incidents: tuple[IncidentInfo, ...]


class ScenarioDriver:
    """Plays a scenario into the runtime: estate output becomes stored, announced signals."""

    def __init__(self, runtime: Runtime, scenario: str, *, seed: int | None = None,
                 agents: bool = False) -> None:
        """`agents`: put the agent team on the incidents this estate causes (the console
        and headless runs do; a test of one agent builds only that one)."""
        self.runtime = runtime
        self.scenario = load_scenario(scenario)
        self.player = ScenarioPlayer(self.scenario, seed=seed, start=runtime.clock.now())
        self.tally = RunTally()
        # The topology is what a CMDB or service mesh would give a real deployment.
        self.correlator = CorrelatorAgent(runtime.service, self.player.estate.topology())
        runtime.correlator = self.correlator  # webhook signals join the same incidents
        # The console acts on the estate as it would on a real control plane.
        runtime.service.engine.executors["estate"] = EstateExecutor(self.player)
        runtime.start_rules()  # level-1 rules react to what the estate emits
        self.log_miner = StreamMiner()
        self.auto_approver: str | None = None  # who approves everything (`--approve all`)
        self.approve_above = 0  # ...of what was recommended after this id (its own run's)
        self._next_trends = self.player.estate.now
        self.metrics = EstateMetrics(self.player)  # what a Prometheus scraping it would hold
        if runtime.rules is not None:  # the rules' proactive checks read it too
            runtime.rules.metrics = self.metrics
        if agents:
            runtime.start_agents(self.metrics, self.player.estate.topology())
            # Tickets and rules wait for the end of each step, off the agents' path, as
            # the console's worker thread keeps them (console/bus.py OffLoopSubscriber).
            runtime.ticket_worker.deferred = True

    @property
    def finished(self) -> bool:
        return bool(self.player.finished)

    def compute(self, seconds: float) -> Batch:
        """Advance the estate, store what it emitted and correlate it (worker-thread safe)."""
        with self.player.lock:
            out = self.player.advance(seconds)
        # The learner's early warnings (a disk that will fill) travel like any alert; a
        # trend over the last 45 minutes needs looking at every five simulated minutes.
        learner, now = self.runtime.learner, self.player.estate.now
        warnings: list[Signal] = []
        if learner is not None and now >= self._next_trends:
            warnings = learner.trends(now)
            self._next_trends = now + TREND_EVERY
        signals, changes, logs = (*out.signals, *warnings), tuple(out.changes), tuple(out.logs)
        # The estate's log lines are kept with their templates, as a log pipeline would.
        self.runtime.service.store(signals, changes, self.log_miner.mine(logs))
        incidents = self.correlator.handle(signals, self.player.estate.now)
        return Batch(signals, changes, logs, tuple(incidents))

    def publish(self, batch: Batch) -> None:
        """Move the clock and tell subscribers (on the event loop's thread)."""
        self.runtime.clock.set(self.player.estate.now)
        self.tally.add(batch.signals, batch.changes, batch.logs)
        self.runtime.service.announce(batch.signals, batch.changes, batch.logs)
        self.runtime.service.announce_incidents(batch.incidents)
        estate = self.player.estate
        self.runtime.bus.publish(EstateSnapshot(
            estate.now, {name: estate.metrics(name) for name in estate.services}))
        if self.finished:
            self.runtime.bus.publish(ScenarioFinished(self.scenario.name, estate.now))

    def step(self, seconds: float) -> None:
        self.publish(self.compute(seconds))
        if not self.runtime.agents.live:  # on the GUI's loop the runs are its tasks
            self.runtime.agents.run_until_idle()  # the team works what this step opened
        self.runtime.ticket_worker.flush()
        self.runtime.service.engine.poll()
        if self.auto_approver is not None:
            self.approve_pending(self.auto_approver)
        self._review()
        self.runtime.ticket_worker.flush()

    def approve_pending(self, user: str) -> list[int]:
        """A headless stand-in for the person on call (`run --approve all`): approves every
        pending recommendation as previewed; policy still decides (a viewer could not)."""
        from console.operations import Refused

        engine, done = self.runtime.service.engine, []
        for rec in engine.recommendations(("pending",)):
            if rec.id <= self.approve_above:
                continue  # somebody else's pending work: theirs to decide
            try:
                engine.approve(rec.id, as_user=user, preview_hash=rec.preview_hash)
            except Refused:  # expired or its preview changed: the next step sees it anew
                continue
            done.append(rec.id)
        return done

    def run_to_end(self, *, step: float = 15.0, speed: float | None = None,
                   progress: Callable[[float], None] | None = None) -> None:
        """Run on the simulated clock; `speed` (sim s per wall s) paces it, None = flat out."""
        wall_start = time.perf_counter()
        while not self.finished:
            self.step(step)
            if progress is not None:
                progress(self.elapsed / max(self.scenario.duration, 1.0))
            if speed:
                ahead = self.elapsed / speed - (time.perf_counter() - wall_start)
                if ahead > 0:
                    time.sleep(ahead)

    async def run_live(self, *, tick: float = 0.25) -> None:
        """Play on the real-time clock times the clock's speed; estate work runs off-loop."""
        while not self.finished:
            await asyncio.sleep(tick)
            batch = await asyncio.to_thread(self.compute, tick * self.runtime.clock.speed)
            self.publish(batch)  # the team's runs are tasks on this loop
            await asyncio.to_thread(self.runtime.service.engine.poll)
            await asyncio.to_thread(self._review)

    def _review(self) -> None:
        """Fixes that did not stick are flagged once, so they count against the runbook."""
        if self.runtime.learner is not None:
            self.runtime.learner.review(self.player.estate.now)

    @property
    def elapsed(self) -> float:
        return (self.player.estate.now - self.player.start).total_seconds()

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        from console.run_summary import summarize

        return summarize(self, wall_seconds)


def run_headless(scenario: str, *, db_url: str | None = None, seed: int | None = None,
                 speed: float | None = None, step: float = 15.0,
                 progress: Callable[[float], None] | None = None,
                 autonomy: int | None = None, approve: str = "none",
                 owner: str | None = None) -> dict[str, Any]:
    """Run a scenario to its end and return the JSON-ready summary (schema in README).

    `autonomy` N sets the run's ceiling and every action class to level N; `approve`
    "all" has a person on call (role approver) approve every recommendation as it is
    previewed, "none" leaves them waiting. The run acts only as its own identities and
    only on a private database, or on one whose administrator `owner` (proved by the
    caller) gave it to the run: console/run_guard.py (DatabaseInUse otherwise)."""
    from console.run_guard import HEADLESS_ADMIN, HEADLESS_APPROVER, Claim

    if approve not in ("all", "none"):
        raise ValueError(f"approve must be all or none, got {approve!r}")
    # Without --db, a private file in a temporary folder: SQLite's in-memory database is
    # one connection per thread, which neither the worker threads nor nested units of
    # work may share safely.
    scratch = None
    if db_url is None:
        scratch = tempfile.TemporaryDirectory(prefix="watchfloor-run-")
        db_url = f"sqlite:///{Path(scratch.name) / 'run.db'}"
    runtime = Runtime(db_url)
    claim = Claim(owner)
    try:
        service = runtime.service
        claim.begin(service)
        if autonomy is not None:
            from console.policy import Policy

            policy = Policy.model_validate({**service.policy().model_dump(mode="json"),
                                            "default_level": autonomy, "levels": {},
                                            "service_levels": {}})
            service.set_policy(policy, as_user=HEADLESS_ADMIN,
                               reason=f"headless run at {autonomy}")
            service.set_autonomy_ceiling(autonomy, as_user=HEADLESS_ADMIN,
                                         reason="headless run")
        driver = ScenarioDriver(runtime, scenario, seed=seed, agents=True)
        driver.approve_above = claim.first_recommendation
        if approve == "all":
            if service.role_of(HEADLESS_APPROVER) is None:
                service.add_user(HEADLESS_APPROVER, "approver", as_user=HEADLESS_ADMIN)
            driver.auto_approver = HEADLESS_APPROVER
        runtime.service.record(actor="system", action="scenario.start",
                               target=driver.scenario.name,
                               inputs={"seed": driver.player.seed, "speed": speed})
        wall = time.perf_counter()
        driver.run_to_end(step=step, speed=speed, progress=progress)
        wall = time.perf_counter() - wall
        runtime.service.record(actor="system", action="scenario.end",
                               target=driver.scenario.name,
                               outputs={"signals": driver.tally.signals})
        claim.end(service)
        return driver.summary(wall)
    finally:
        runtime.close()
        if scratch is not None:
            scratch.cleanup()

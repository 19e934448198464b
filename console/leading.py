"""What the console that leads the team does, and stops doing the moment it follows.

Only the leader plays the estate, runs the agents and the sources (the webhook receiver,
the Alertmanager poller) and runs the queued actions (console/team_seat.py decides who
leads). The window (console/app.py) and `watchfloor node` hand `lead` and `follow` to
their seat. A follower keeps no estate executor, so an approval given at a follower is
queued and run once, at the leader, which owns the estate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from console.metric_samples import SampleRecorder
    from console.runtime import Runtime, ScenarioDriver
    from console.sources.webhook import WebhookReceiver

log = logging.getLogger(__name__)

Notify = Callable[[str, bool], None]  # (text, is_error)


def _quiet(_text: str, _error: bool) -> None:
    return None


class LeaderDuties:
    """The estate, the agents and the sources of one console, while it leads."""

    def __init__(self, runtime: Runtime, scenario: str, *, user: str, mode: str,
                 seed: int | None = None, listen: tuple[str, int] | None = None,
                 token: str | None = None, mappings: dict[str, Any] | None = None,
                 alertmanager: str | None = None, poll_interval: float = 10.0,
                 notify: Notify = _quiet, held: bool = False,
                 zabbix: tuple[str, str] | None = None) -> None:
        """`held`: the scenario and the sources wait for `release()` (the window first
        lays out its panes, which then hear all they say). `zabbix`: (frontend URL, API
        token) of a Zabbix whose open problems are polled."""
        self.runtime, self.scenario, self.user, self.mode = runtime, scenario, user, mode
        self.seed = seed
        self.listen, self.token, self.mappings = listen, token, mappings
        self.alertmanager, self.poll_interval = alertmanager, poll_interval
        self.zabbix = zabbix
        self.notify = notify
        self.driver: ScenarioDriver | None = None
        self.reconciled: list[tuple[int, str]] = []  # what the last lead settled
        self.pruned = 0
        self.recovered = 0  # stored deliveries the last lead correlated late
        self.receiver: WebhookReceiver | None = None
        self.http: httpx.AsyncClient | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._estate: Any = None
        # The estate's metrics go to the database for the other consoles' panes
        # (console/metric_samples.py), written off this thread while this console leads.
        self.samples: SampleRecorder | None = None
        self._unsubscribe_samples: Callable[[], None] | None = None
        self._go = asyncio.Event()
        if not held:
            self._go.set()

    def release(self) -> None:
        self._go.set()

    async def lead(self) -> None:
        """Settle what was in flight (a dead leader's action, a crash's), then play the
        estate with the agents and start the sources."""
        from console.runtime import ScenarioDriver
        from console.sources.webhook import source_parsers
        from console.team_sync import prune_feed

        runtime = self.runtime
        engine = runtime.service.engine
        # The estate executor must be there before what was in flight is settled: its
        # validation may probe the estate.
        if self.driver is None:
            # On a worker thread: loading the scenario and starting the agent team takes
            # about a tenth of a second, which a window taking over must not freeze for.
            self.driver = await asyncio.to_thread(ScenarioDriver, runtime, self.scenario,
                                                  seed=self.seed, agents=True)
            self._estate = engine.executors["estate"]
            if runtime.rule_error:  # the shipped rules run; the operator's file is named
                self.notify(f"your rules were not loaded: {runtime.rule_error}", True)
        else:
            engine.executors["estate"] = self._estate
        driver = self.driver
        self.reconciled = list(await asyncio.to_thread(engine.reconcile))
        self.pruned = await asyncio.to_thread(prune_feed, runtime.db)
        # Deliveries stored and answered but not correlated (a crash, a lost leader) go
        # before anything new.
        self.recovered = await asyncio.to_thread(runtime.deferred.recover,
                                                 source_parsers(self.mappings))
        await asyncio.to_thread(
            runtime.service.record, actor="system", action="scenario.start",
            target=driver.scenario.name,
            inputs={"seed": driver.player.seed, "speed": runtime.clock.speed,
                    "mode": self.mode, "user": self.user})
        self._record_samples()
        self._spawn(self._play(driver), f"scenario {driver.scenario.name}")

    def _record_samples(self) -> None:
        from console.events import EstateSnapshot
        from console.metric_samples import SampleRecorder

        if self.samples is None:
            self.samples = SampleRecorder(self.runtime.db).start()
            self._unsubscribe_samples = self.runtime.bus.subscribe(EstateSnapshot,
                                                                   self.samples.offer)

    def _stop_samples(self) -> None:
        """What was offered is written before this returns (a few milliseconds)."""
        if self._unsubscribe_samples is not None:
            self._unsubscribe_samples()
            self._unsubscribe_samples = None
        if self.samples is not None:
            self.samples.stop()
            self.samples = None

    def follow(self) -> None:
        """Stop at once: no more estate steps, agents, sources or runs here."""
        self.runtime.service.engine.executors.pop("estate", None)
        for task in list(self.tasks):
            task.cancel()
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        self.runtime.deferred.stop()  # the backlog is the next leader's
        self.runtime.agents.cancel()
        self._stop_samples()

    async def stop(self) -> None:
        """At shutdown: what `lead` started has ended when this returns."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.receiver is not None:  # waits for the deliveries being stored
            await asyncio.to_thread(self.receiver.close)
            self.receiver = None
        await asyncio.to_thread(self._stop_samples)
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    async def _play(self, driver: ScenarioDriver) -> None:
        await self._go.wait()  # the sources too: what they say first is not said to no one
        self._start_sources()
        await driver.run_live()

    def _start_sources(self) -> None:
        runtime = self.runtime
        if self.listen is not None and self.receiver is None:
            from console.sources.webhook import WebhookReceiver

            try:
                self.receiver = WebhookReceiver(
                    runtime.service, host=self.listen[0], port=self.listen[1],
                    token=self.token, on_stored=runtime.deferred.submit,
                    mappings=self.mappings,  # the estate's log lines and theirs: one miner
                    miner=self.driver.log_miner if self.driver is not None else None).start()
            except OSError as exc:
                self.notify(f"webhook receiver not started: {exc}", True)
            else:
                self.notify(f"receiving webhooks at {self.receiver.url}/webhook/...", False)
        if self.alertmanager is not None:
            import httpx

            from console.sources.clients import AlertmanagerPoller
            from console.sources.polling import poll_forever

            if self.http is None:
                self.http = httpx.AsyncClient()  # one client for the whole run (STYLE.md 8)
            poller = AlertmanagerPoller(self.http, self.alertmanager)
            self._spawn(poll_forever(poller, runtime.service, runtime,
                                     interval=self.poll_interval), "alertmanager polling")
        if self.zabbix is not None:
            import httpx

            from console.sources.polling import poll_forever
            from console.sources.providers.zabbix_api import ZabbixPoller

            if self.http is None:
                self.http = httpx.AsyncClient()
            zabbix = ZabbixPoller(self.http, *self.zabbix)
            self._spawn(poll_forever(zabbix, runtime.service, runtime,
                                     interval=self.poll_interval), "zabbix polling")

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        """Every background task's end is shown: a failure as an error, never swallowed."""
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped", task.get_name(), exc_info=exc)
            self.notify(f"{task.get_name()} stopped: {exc!r}", True)

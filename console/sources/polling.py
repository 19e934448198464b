"""Keeps pull sources (Alertmanager's API, Zabbix's) polled while the console runs.

One task per source; each round stores what changed, hands it to the runtime (which
correlates it), and reports the source's health on the bus when it changes, so the
status bar can say "Degraded: alertmanager" while everything else keeps working.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol

from console.domain import ChangeEvent, Signal
from console.events import SourceHealthChanged
from console.service import WatchfloorService
from console.sources.clients import SourceHealth


class Receiver(Protocol):
    def receive(self, signals: list[Signal], changes: list[ChangeEvent]) -> None: ...


class Poller(Protocol):
    """A pull provider's poller (console/sources/clients.py AlertmanagerPoller,
    console/sources/providers/zabbix_api.py ZabbixPoller)."""

    health: SourceHealth

    async def poll(self, now: datetime) -> list[Signal]: ...


async def poll_forever(poller: Poller, service: WatchfloorService,
                       receiver: Receiver, *, interval: float = 10.0) -> None:
    """Poll until cancelled; failures only change the health shown, never stop the loop."""
    state = ""
    while True:
        signals = await poller.poll(datetime.now(UTC))
        if signals:
            await asyncio.to_thread(service.store, signals, ())
            await asyncio.to_thread(receiver.receive, signals, [])
        if poller.health.state != state:
            state = poller.health.state
            service.bus.publish(SourceHealthChanged(poller.health.name, state,
                                                    poller.health.last_error))
        await asyncio.sleep(interval)

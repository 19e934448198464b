"""What a window that follows its engine process opens: the store, the bus, the clock,
the service and what its panes read, without the estate, the agent team, the rules, the
receivers' correlation or the executors.

A client window (console/engine_process.py) only draws, asks and decides; the engine
runs the rest. Opening `Runtime` there would import and build the whole team (about a
second of imports on a loaded two-core machine, and their memory) for nothing, while the
operator waits for the panes. This has the attributes the window's composition
(console/app.py) uses of a `Runtime`, and nothing it would not run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.llm import LLM
from agents.retriever import Answer, Retriever
from agents.runtime import AgentRuntime
from console.audit_checkpointer import start_checkpoints
from console.bus import EventBus
from console.itsm.change import ChangeGate
from console.itsm.config import ConfiguredTickets
from console.llm_config import configured_llm
from console.mcp.client import configured_sources
from console.service import WatchfloorService
from console.steering import SteeringOps
from console.storage.db import Database


class ClientRuntime:
    """Owns the database, the bus and the service of a window whose engine runs apart."""

    def __init__(self, db_url: str | None, *, clock: Any) -> None:
        self.db = Database(db_url)
        self.bus = EventBus()
        self.clock: Any = clock
        self.service = WatchfloorService(self.db, self.bus, self.clock)
        self.service.engine.executors.clear()  # every action runs in the engine
        # What this window appends (approvals, rejections) is checkpointed like any record.
        self.checkpoints = start_checkpoints(self.db, self.bus)
        self.tickets = ConfiguredTickets(self.service)  # an approval may open a change
        self.service.change_gate = ChangeGate(self.tickets)
        self.loop: asyncio.AbstractEventLoop | None = None
        settings = configured_llm()
        self.llm = LLM(settings) if settings is not None else None
        self.external = configured_sources()
        self.retriever = Retriever(self.service, None, self.llm, external=self.external)
        self.agents = AgentRuntime(self.service)  # none run here; the window stops it alike
        self.steering = SteeringOps(self.service)

    def ask(self, question: str, *, user: str, incident_id: int | None = None) -> Answer:
        """A question answered from the store, with citations (off the GUI thread)."""
        return self.retriever.ask(question, user=user, incident_id=incident_id)

    def close(self) -> None:
        self.agents.close()
        if self.llm is not None:
            self.llm.close()
        if self.external is not None:
            self.external.close()
        self.tickets.close_client()
        if self.checkpoints is not None:
            self.checkpoints.close()
        self.db.dispose()

"""Evidence from outside the console (other teams' MCP servers, console/mcp/client.py),
as the retriever and the investigator see it: quoted text with a citation, weightless.

The agents only read it. It is context beside what the console measured, so it never
moves a score or a confidence, and it is never a reason to act.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from console.domain import Evidence, Hypothesis, IncidentInfo


class ExternalLookup(Protocol):
    evidence: tuple[Evidence, ...]  # quoted results, cited `mcp:<server>/<tool>`
    refused: tuple[str, ...]  # tools not called, each with why
    errors: tuple[str, ...]  # servers or calls that failed


class ExternalEvidence(Protocol):
    def lookup(self, question: str, services: Sequence[str] = (),
               incident: int | None = None) -> ExternalLookup: ...


def with_quotes(external: ExternalEvidence, incident: IncidentInfo,
                hypotheses: list[Hypothesis], max_services: int = 3) -> list[Hypothesis]:
    """The investigator's hypotheses, each with what the external sources say of its
    service after its own evidence, weightless (asked once per service, for the first
    `max_services` services): the gate counts only weighted evidence, so a quote never
    adds a witness, a score or a reason to act."""
    if not hypotheses:
        return hypotheses
    said: dict[str, tuple[Evidence, ...]] = {}
    for service in list(dict.fromkeys(h.service for h in hypotheses))[:max_services]:
        found = external.lookup(incident.title, (service,), incident.id)
        said[service] = tuple(replace(e, weight=0.0) for e in found.evidence)
    return [replace(h, evidence=(*h.evidence, *said[h.service])) if said.get(h.service)
            else h for h in hypotheses]

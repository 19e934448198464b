"""What every executor does: preview, execute, validate and roll back one step.

An executor receives a step already rendered from a runbook whose parameters have
passed `check_arguments`, so the values in it are of their declared types. It still
checks the shape it was given (defence in depth): an executor is the last place where
text from an alert or an LLM could reach a command line, a URL or an estate.

Steps are plain dicts (JSON-ready, stored in the intent row before anything runs):
- estate:  {"executor": "estate", "action": str, "args": {"service": str, ...}}
- command: {"executor": "command", "argv": [str, ...], "timeout": float}
- http:    {"executor": "http", "method": str, "url": str, "body": JSON | None,
            "timeout": float}
Probes (validations) are dicts too: {"kind": "check" | "promql" | "command" | "http", ...}.

An executor names what it acts on in `target` (the host a command runs on, the estate
instance, the Prometheus asked). The intent records it, so that after a crash an
execution is validated or rolled back only by an executor that reaches the same thing,
never by one that merely has the same kind (a new estate, another host).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# The executor each kind of probe (a runbook's validation) is made by.
PROBE_EXECUTOR = {"check": "estate", "command": "command", "http": "http", "promql": "prometheus"}


class ExecutorError(Exception):
    """A step was refused or failed; the message says which and why. Nothing is retried."""


@dataclass(frozen=True)
class StepResult:
    ok: bool
    message: str
    output: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    passed: bool
    detail: str
    value: float | None = None


class Executor(Protocol):
    kind: str
    # What it acts on; two executors with the same target act on the same thing.
    target: str

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """What the step will change and the target's observed state now (JSON-ready).

        The preview is hashed and an approval is bound to that hash, so it must be
        deterministic for an unchanged target and differ when the target changed."""
        ...

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        """Run the step once. Raise ExecutorError when it is refused before running."""
        ...

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        """Check once whether the remediation worked (the lifecycle repeats to a deadline)."""
        ...

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        """Run one rollback step (a step of the runbook's rollback list)."""
        ...


def target_of(executor: object | None) -> str | None:
    """The target an executor names; None when there is no executor, or it names none
    (such an executor is taken to reach the same thing wherever it runs)."""
    target = getattr(executor, "target", None) if executor is not None else None
    return target if isinstance(target, str) else None

"""What the team's own recent actions explain: their declared side effects, in time.

A restart drops instances and raises the callers' errors for a minute or two; a
scale-out warms new instances. Read as fresh symptoms, that wake looks like a network
partition or CPU saturation, and the team would "fix" its own fix. Every runbook
declares its side effects (console/actions/runbooks.py, `side_effects`): which metric
moves, on the target or on everything that calls it, for how long from the start of the
action. This module turns the executions the service facade knows of (never the
estate) into those windows, so that the investigator can leave out of its reading what
the team itself caused, and say so in the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from agents.investigator_text import hhmmss
from console.actions.runbooks import Runbook, render
from console.domain import Evidence, Execution, Hypothesis

# An execution refused before it ran changed nothing.
_NO_EFFECT = frozenset({"cancelled", "denied", "refused"})


class ExecutionSource(Protocol):
    """What this reads: the executions (console.execution.ExecutionEngine)."""

    def executions(self, states: tuple[str, ...] | None = None) -> list[Execution]: ...


@dataclass(frozen=True, slots=True)
class OwnEffect:
    """One metric on one service that one execution is expected to move, and until when."""

    service: str
    metric: str
    change: str
    start: datetime
    end: datetime
    execution_id: int
    runbook_id: str
    target: str
    description: str = ""

    def covers(self, service: str, metric: str, at: datetime) -> bool:
        return service == self.service and metric == self.metric and \
            self.start <= at <= self.end

    def summary(self, observed: str = "") -> str:
        """"instances_ready 0 on orders explained by restart-service #3 at 02:14:00,
        within its 180 s window" (the observed value when there is one)."""
        what = f"{self.metric} {observed}".strip()
        via = "" if self.service == self.target else f" (a caller of {self.target})"
        window = (self.end - self.start).total_seconds()
        return (f"{what} on {self.service}{via} explained by {self.runbook_id} "
                f"#{self.execution_id} at {hhmmss(self.start)}, within its {window:g} s "
                "window" + (f": {self.description}" if self.description else ""))

    @property
    def ref(self) -> str:
        return f"execution:{self.execution_id}"


class Wake:
    """The side effects in force over a stretch of time, looked up by service and metric.

    One investigation uses one Wake: what it left out is remembered (`noted`), so the
    hypotheses can say so in their evidence (`annotate`)."""

    def __init__(self, effects: Iterable[OwnEffect] = ()) -> None:
        self.effects = tuple(effects)
        self.noted: dict[tuple[str, str, int], tuple[OwnEffect, float | None]] = {}
        self._by_key: dict[tuple[str, str], list[OwnEffect]] = {}
        for effect in self.effects:
            self._by_key.setdefault((effect.service, effect.metric), []).append(effect)

    def __bool__(self) -> bool:
        return bool(self.effects)

    def explaining(self, service: str, metric: str, at: datetime) -> OwnEffect | None:
        for effect in self._by_key.get((service, metric), ()):
            if effect.start <= at <= effect.end:
                return effect
        return None

    def discount(self, service: str, metric: str, at: datetime,
                 value: float | None = None) -> bool:
        """True (and remembered) when an action of the team explains this reading."""
        effect = self.explaining(service, metric, at)
        if effect is None:
            return False
        key = (service, metric, effect.execution_id)
        self.noted.setdefault(key, (effect, value))
        return True

    def series(self, service: str, metric: str,
               points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
        """The samples no action of the team explains. What was left out is remembered
        when it stands out: beyond every sample kept (lower for a drop, higher for a
        rise), i.e. a reading the series shows nowhere else."""
        kept, explained = self.keep(service, metric, points)
        values = [v for _, v in kept]
        low, high = (min(values), max(values)) if values else (None, None)
        for effect, value in explained:
            below = low is None or value < low
            above = high is None or value > high
            if not (below if effect.change == "drops" else above if effect.change == "rises"
                    else below or above):
                continue
            key = (service, metric, effect.execution_id)
            seen = self.noted.get(key)
            if seen is None or seen[1] is None or (
                    value < seen[1] if effect.change == "drops" else value > seen[1]):
                self.noted[key] = (effect, value)
        return kept

    def annotate(self, hypotheses: Sequence[Hypothesis]) -> list[Hypothesis]:
        """The hypotheses, each with a zero-weight `own_action` item of evidence per
        reading of its service that the team's own action explained and that was left
        out ("instances_ready 0 on orders explained by restart-service #3 ...")."""
        if not self.noted:
            return list(hypotheses)
        out = []
        for h in hypotheses:
            items = tuple(Evidence("own_action", effect.summary(_shown(value)), effect.ref,
                                   0.0)
                          for (service, _m, _e), (effect, value) in sorted(
                              self.noted.items(), key=lambda kv: kv[0])
                          if service == h.service)
            out.append(replace(h, evidence=(*h.evidence, *items)) if items else h)
        return out

    def notes(self) -> list[str]:
        """Every reading left out, in words (for an investigation with no hypothesis)."""
        return [effect.summary(_shown(value)) for _key, (effect, value)
                in sorted(self.noted.items(), key=lambda kv: kv[0])]

    def keep(self, service: str, metric: str,
             points: Sequence[tuple[datetime, float]]
             ) -> tuple[list[tuple[datetime, float]], list[tuple[OwnEffect, float]]]:
        """The samples no action of the team explains, and for each effect that explained
        some of them, the most telling value it explained (lowest for a drop, else
        highest)."""
        effects = self._by_key.get((service, metric))
        if not effects:
            return list(points), []
        kept: list[tuple[datetime, float]] = []
        explained: dict[int, tuple[OwnEffect, float]] = {}
        for at, value in points:
            effect = next((e for e in effects if e.start <= at <= e.end), None)
            if effect is None:
                kept.append((at, value))
                continue
            seen = explained.get(effect.execution_id)
            worse = seen is None or (value < seen[1] if effect.change == "drops"
                                     else value > seen[1])
            if worse:
                explained[effect.execution_id] = (effect, value)
        return kept, list(explained.values())


def _shown(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


class OwnActions:
    """Builds the `Wake` of the team's recent executions.

    `library` is the runbook library the executions ran from (normally the engine's);
    `callers` gives, for a service, every service that calls it (directly or not), for
    the side effects declared with `scope: callers`."""

    def __init__(self, executions: ExecutionSource, library: Mapping[str, Runbook],
                 callers: Callable[[str], Iterable[str]] | None = None, *,
                 horizon: timedelta = timedelta(hours=2)) -> None:
        self.executions = executions
        self.library = library
        self.callers = callers or (lambda _service: ())
        self.horizon = horizon

    def wake(self, now: datetime, since: datetime | None = None, *,
             callers: Callable[[str], Iterable[str]] | None = None) -> Wake:
        """The side effects of the executions started up to `now` whose window reaches
        past `since` (default: the horizon before `now`); `callers` overrides the one
        given at construction (the investigator knows its own graph)."""
        since = since or now - self.horizon
        callers = callers or self.callers
        effects: list[OwnEffect] = []
        for execution in self.executions.executions():
            if execution.state in _NO_EFFECT or execution.started_at > now:
                continue
            book = self.library.get(execution.runbook_id)
            if book is None or not book.side_effects:
                continue
            params = dict(execution.plan.get("params") or {})
            for declared in book.side_effects:
                end = execution.started_at + timedelta(seconds=declared.window)
                if end < since:
                    continue
                try:
                    target = str(render(declared.service, params))
                except (KeyError, ValueError):
                    target = execution.target
                services = [target] if declared.scope == "target" else \
                    sorted(set(callers(target)) - {target})
                effects += [OwnEffect(s, declared.metric, declared.change,
                                      execution.started_at, end, execution.id,
                                      execution.runbook_id, target, declared.description)
                            for s in services]
        return Wake(effects)

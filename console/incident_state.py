"""One live state per cause and per incident, derived from what is stored.

At 3 a.m. an operator reads one word per row: is anyone (or anything) working on this,
is it waiting on me, is it done. Several panes show that word (the incident list, the
decision card of a cause, the wallboard); if each worked it out from the rows it happens
to hold, they would disagree the moment one of them lagged. So the word is decided here,
once, from the incident and its stored causes (`console.storage.repos_causes.Cause`,
whose state already follows its recommendations, their executions and any escalation),
and every pane calls `cause_state` / `incident_state`.

The states, in the order a cause usually passes through them:

new -> diagnosing -> waiting for approval -> running -> validating -> resolved
                                                                  \\-> rolled back
                                                       (any step) -> needs a person

An incident is as urgent as its most urgent cause: a cause that needs a person or an
approval is what the row must say, even while another cause of the same incident is
already resolved. A resolved incident's causes that nobody acted on are closed with it:
they no longer read "diagnosing" (nothing is being diagnosed any more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from console.domain import IncidentInfo

NEW, DIAGNOSING, WAITING, RUNNING, VALIDATING = (
    "new", "diagnosing", "waiting", "running", "validating")
RESOLVED, ROLLED_BACK, NEEDS_PERSON = "resolved", "rolled_back", "needs_person"

STATES = (NEW, DIAGNOSING, WAITING, RUNNING, VALIDATING, RESOLVED, ROLLED_BACK,
          NEEDS_PERSON)

LABELS = {NEW: "new", DIAGNOSING: "diagnosing", WAITING: "waiting for approval",
          RUNNING: "running", VALIDATING: "validating", RESOLVED: "resolved",
          ROLLED_BACK: "rolled back", NEEDS_PERSON: "needs a person"}

TONES = {NEW: "blue", DIAGNOSING: "blue", WAITING: "amber", RUNNING: "blue",
         VALIDATING: "blue", RESOLVED: "green", ROLLED_BACK: "amber", NEEDS_PERSON: "red"}
"""How a pane colours each state (red | amber | green | blue, the themes' names)."""

# What an incident's row says when its causes differ: the first of these any cause is in.
URGENCY = (NEEDS_PERSON, WAITING, RUNNING, VALIDATING, ROLLED_BACK, DIAGNOSING, NEW,
           RESOLVED)

# A recommendation the engine holds for later (policy's queue, another console) is not
# waiting on a person: it is on its way to running.
_QUEUED = frozenset({"queued", "executing"})


class CauseLike(Protocol):
    """What is read of a stored cause (`repos_causes.Cause` has it)."""

    @property
    def ordinal(self) -> int: ...

    @property
    def key(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def note(self) -> str: ...

    @property
    def recommendation(self) -> object | None: ...


@dataclass(frozen=True, slots=True)
class LiveState:
    """One state as shown: `state` (one of STATES), its `label` in words, a `tone`
    for its colour and a `detail` saying why (for a tooltip or a card's subtitle)."""

    state: str
    detail: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.state]

    @property
    def tone(self) -> str:
        return TONES[self.state]

    @property
    def waiting_on_a_person(self) -> bool:
        return self.state in (WAITING, NEEDS_PERSON)

    @property
    def finished(self) -> bool:
        return self.state in (RESOLVED, ROLLED_BACK)


def cause_state(cause: CauseLike, *, incident_open: bool = True) -> LiveState:
    """The live state of one stored cause. `incident_open=False` (its incident resolved)
    closes a cause that nobody acted on instead of leaving it 'diagnosing'."""
    stored = cause.state
    rec = cause.recommendation
    rec_state = str(getattr(rec, "recommendation_state", "") or "")
    target = str(getattr(rec, "target", "") or "")
    runbook = str(getattr(rec, "runbook_id", "") or "")
    action = f"{runbook} on {target}" if runbook and target else runbook or target
    if stored == "needs_person":
        return LiveState(NEEDS_PERSON, cause.note or f"{cause.key}: the team gave up on it")
    if stored == "waiting":
        if rec_state in _QUEUED:
            return LiveState(RUNNING, f"{action}: approved, queued to run")
        return LiveState(WAITING, f"{action} waits for an approval" if action
                         else "a recommendation waits for an approval")
    if stored == "running":
        return LiveState(RUNNING, f"{action} is running" if action else "an action runs")
    if stored == "validating":
        return LiveState(VALIDATING, f"{action} ran; its validation is under way"
                         if action else "checking that the fix held")
    if stored == "resolved":
        return LiveState(RESOLVED, f"{action} fixed it; the validation passed"
                         if action else "fixed")
    if stored == "rolled_back":
        return LiveState(ROLLED_BACK, f"{action} failed or was rolled back"
                         if action else "its fix was rolled back")
    if not incident_open:
        return LiveState(RESOLVED, "the incident resolved without an action on this cause")
    return LiveState(DIAGNOSING, f"{cause.key}: the agents are still working it out")


def incident_state(incident: IncidentInfo, causes: Sequence[CauseLike] = ()) -> LiveState:
    """The live state of an incident: its most urgent cause's (URGENCY), 'new' while
    open with no cause yet, 'resolved' once resolved unless a cause still needs a person
    or an approval."""
    is_open = incident.state == "open"
    states = [(c, cause_state(c, incident_open=is_open)) for c in causes]
    if not states:
        if is_open:
            return LiveState(NEW, "opened; no cause found yet")
        return LiveState(RESOLVED, "resolved")
    cause, worst = min(states, key=lambda pair: URGENCY.index(pair[1].state))
    if not is_open and worst.state not in (NEEDS_PERSON, WAITING):
        return LiveState(RESOLVED, "resolved" if len(states) == 1
                         else f"resolved; {len(states)} causes")
    others = len(states) - 1
    detail = f"cause {cause.ordinal}: {worst.detail}" if others else worst.detail
    if others:
        detail += f" (and {others} other cause{'s' if others > 1 else ''})"
    return LiveState(worst.state, detail)


def states_of(incident: IncidentInfo,
              causes: Sequence[CauseLike]) -> tuple[LiveState, dict[int, LiveState]]:
    """The incident's state and each cause's (by ordinal) in one call, for a pane that
    shows both (the decision card)."""
    is_open = incident.state == "open"
    return incident_state(incident, causes), {
        c.ordinal: cause_state(c, incident_open=is_open) for c in causes}

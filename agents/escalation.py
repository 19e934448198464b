"""The circuit breaker per cause: stop and hand over instead of flailing.

A cause is a diagnosed (service, fault class) of an incident. The same fault on the
same service, acted on from another incident within the policy's window, is the same
cause: the correlator may split one problem's alerts into two incidents, and fixing it
twice is flailing too.

What it does, with the limits of `policy.causes` (console/policy.py):

- after every action on a cause has settled and `observe` has passed (past the
  action's own side effects, agents/own_actions.py), it looks at the cause's symptoms
  (agents/outcome_symptoms.py: the fault class's own metric and the service's error
  rate and latency against their normal before the incident) and records the outcome:
  effective or ineffective; an effective one whose own symptom comes back within
  `recurrence` did not last (ineffective);
- the recommender asks it about each proposal (`review`): nothing new while an action on
  the cause is still being judged; no autonomy after `autonomous_attempts` actions on
  the cause or after any ineffective one; nothing at all once the cause is escalated or
  the incident's budget of actions for the diagnosis's confidence is spent;
- it escalates a cause that has no runbook that ends it (none at all, or only one that
  eases it), whose fixes did not work (`ineffective` of them, or one and nothing untried
  left), or whose incident ran out of budget on actions not all of which worked (a
  budget spent on fixes that worked holds proposals, it pages nobody): "needs a person:
  no safe fix", with what
  was tried and why it did not work, as an audit record, a timeline note, and (through
  the scribe, on the configured ticket system) a page and a note on the incident's
  ticket.

It reads executions, recommendations and metrics through the service facade and the
metrics reader, never the estate.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from agents.breaker_memory import Memory, recall
from agents.breaker_state import Attempt, Cause, Review
from agents.evidence_gate import LOAD_CLASSES
from agents.investigator_metrics import analyse
from agents.investigator_text import hhmmss
from agents.outcome_symptoms import (
    GOLDEN,
    downstream,
    lasting_metrics,
    material,
    recovering,
    rises,
    still_wrong,
    symptom_metrics,
)
from agents.own_actions import OwnActions, Wake
from console.actions.runbooks import Runbook
from console.domain import Execution, TimelineNote
from console.escalations import ESCALATED_ACTION, NEEDS_PERSON, OUTCOME_ACTION, add_note
from console.events import CausesChanged, EstateSnapshot
from console.policy import Causes
from console.service import WatchfloorService
from console.sources.metrics import MetricsReader
from console.storage.repos_causes import CauseRepo
from console.storage.repos_learning import LearningRepo

ACTOR = "agent:escalation"
SETTLED = frozenset({"succeeded", "failed", "rolled_back", "rollback_failed", "interrupted"})
IN_FLIGHT = frozenset({"intent", "running", "validating", "rolling_back"})
# A cause nothing remedies is escalated from a diagnosis this sure (a weaker one is no
# reason to page anyone yet).
ESCALATE_AT = 0.5
_BASELINE = timedelta(hours=1)
_BASELINE_GAP = timedelta(minutes=2)


class CauseBreaker:
    """See the module docstring. `recommender.breaker = CauseBreaker(...)` puts it in
    the path of every proposal; `attach(bus)` lets it judge outcomes as time passes."""

    name = "escalation"

    def __init__(self, service: WatchfloorService, metrics: MetricsReader,
                 library: Mapping[str, Runbook], *, own_actions: OwnActions | None = None,
                 eases: Mapping[str, Mapping[str, str]] | None = None,
                 callers: Callable[[str], list[str]] | None = None,
                 callees: Callable[[str], list[str]] | None = None,
                 check_every: timedelta = timedelta(seconds=30)) -> None:
        self.service = service
        self.metrics = metrics
        self.library = library
        self.own_actions = own_actions
        self.eases = eases or {}  # fault class -> runbook -> why it only eases it
        self.callers = callers
        self.callees = callees  # every service each one calls, directly or not
        self.check_every = check_every
        self._causes: dict[str, Cause] = {}
        self._seen: dict[int, Attempt] = {}  # execution id -> its attempt
        self._unmapped: set[int] = set()  # executions not (yet) tied to a diagnosis
        self._opened: dict[int, datetime] = {}
        self._last_check: datetime | None = None
        self._memory: Memory | None = None  # what it decided before a restart
        self._downstream: dict[int, str] = {}  # execution -> what explains what is left
        self._repo = LearningRepo()
        self._lock = threading.RLock()

    # --- wiring -----------------------------------------------------------------------

    def attach(self, bus: object) -> Callable[[], None]:
        """Judge outcomes on every estate step (at most every `check_every`)."""
        return bus.subscribe(EstateSnapshot,  # type: ignore[attr-defined, no-any-return]
                             lambda event: self.tick(event.at))

    # --- what the recommender asks ------------------------------------------------------

    def review(self, incident_id: int, service: str, fault_class: str, confidence: float,
               runbook_id: str | None, *, eases: bool, no_remedy: bool) -> Review:
        """May the proposal of `runbook_id` (None: nothing could be proposed, and
        `no_remedy` says whether that is because no runbook remedies it) for this cause
        go ahead, and may it run on its own?"""
        with self._lock:
            now = self.service.clock.now()
            self._sync(now)
            policy = self.service.policy().causes
            cause = self._cause(service, fault_class)
            recent = self._recent(cause, now, policy)
            reason = cause.escalated.get(incident_id)
            if reason is None and cause.escalated:
                # the same cause seen from another incident: it says so too, and the
                # person already paged is not paged again
                other, first = next(iter(cause.escalated.items()))
                reason = f"the same cause as incident {other}: {first}"
                self._escalate(incident_id, cause, now, reason, page=False)
            if reason is not None:
                return Review(False, True, f"{NEEDS_PERSON} ({reason}); the team proposes "
                              "nothing more on it")
            busy = [a for a in recent if a.outcome == "pending"]
            if busy:
                a = busy[-1]
                return Review(False, True, f"{a.runbook_id} #{a.execution_id} on {cause.key} "
                              f"is still being judged (since {hhmmss(a.started_at)}); "
                              "nothing new on it until its outcome is known")
            settling = [a for a in self._seen.values() if a.incident_id == incident_id
                        and a.outcome == "pending" and a not in cause.attempts]
            if fault_class in LOAD_CLASSES and runbook_id is not None and settling:
                # A fix elsewhere in the incident moves load while it settles (a cache
                # warms, a pool refills): a load rise now may be its wake.
                a = settling[-1]
                return Review(False, True, f"held: {a.runbook_id} #{a.execution_id} in "
                              f"incident {incident_id} is still being judged; a load rise "
                              "now may be its wake, so nothing is proposed for "
                              f"{cause.key} until its outcome is known")
            failed = [a for a in recent if a.failed]
            if runbook_id is None:
                if no_remedy and not recent:
                    self._escalate(incident_id, cause, now, f"no runbook in the library "
                                   f"remedies {fault_class} on {service}")
                elif failed:
                    self._escalate(incident_id, cause, now, "its fixes did not work and "
                                   "nothing else can be proposed")
                return Review(False)
            if len(failed) >= policy.ineffective:
                return self._stop(incident_id, cause, now, f"{len(failed)} ineffective "
                                  f"action(s) on it (policy allows {policy.ineffective})")
            tried = {a.runbook_id for a in failed}
            if failed and (eases or runbook_id in tried):
                return self._stop(incident_id, cause, now, "its fixes did not work and "
                                  f"{runbook_id} " + ("only eases it" if eases else
                                                      "was tried already"))
            if eases and not recent:
                # Nothing ends it: a person takes it now; the easing step may still be
                # approved by that person (it never runs on its own).
                self._escalate(incident_id, cause, now, f"no runbook ends {fault_class} on "
                               f"{service}; {runbook_id} only eases it")
                return Review(False, False, f"{NEEDS_PERSON}: {runbook_id} only eases it, "
                              "so it waits for a person")
            budget = policy.incident_budget(confidence)
            spent = self._incident_actions(incident_id, now, policy)
            if spent >= budget:
                why = (f"{spent} action(s) on incident {incident_id} in the last "
                       f"{policy.window:g} s (the budget at confidence {confidence:.2f} is "
                       f"{budget})")
                if self._incident_failures(incident_id, now, policy):
                    return self._stop(incident_id, cause, now, why + " and not all of them "
                                      "worked")
                # Spent on fixes that worked: a limit, not a cause without a safe fix.
                return Review(False, True, f"held: {why}; nothing more is proposed on "
                              f"incident {incident_id} until the budget frees or the "
                              "diagnosis is surer")
            if failed:
                return Review(False, False, f"circuit breaker: {failed[-1].line()}; the next "
                              "fix waits for a person")
            alone = sum(1 for a in recent if a.autonomous)
            if alone >= policy.autonomous_attempts:
                return Review(False, False, f"circuit breaker: {alone} action(s) on "
                              f"{cause.key} ran on their own already (policy allows "
                              f"{policy.autonomous_attempts}); the next waits for a person")
            return Review(True)

    def reviewed(self, incident_id: int, choice: Any) -> Any:
        """A recommender's Choice (agents/recommender.py) as the breaker lets it go:
        unchanged, waiting for a person, or not proposed (`skipped` says why)."""
        h = choice.hypothesis
        if choice.runbook_id is None:
            skipped = str(choice.skipped or "")
            if skipped.startswith("no runbook") and h.confidence >= ESCALATE_AT:
                self.review(incident_id, h.service, h.fault_class, h.confidence, None,
                            eases=False, no_remedy=True)
            return choice
        eases = choice.runbook_id in self.eases.get(h.fault_class, {})
        verdict = self.review(incident_id, h.service, h.fault_class, h.confidence,
                              choice.runbook_id, eases=eases, no_remedy=False)
        if verdict.stop:
            return replace(choice, runbook_id=None, autonomous=False, skipped=verdict.why,
                           explanation=f"{choice.explanation}\nNot proposed: {verdict.why}.")
        if choice.autonomous and not verdict.autonomous:
            return replace(choice, autonomous=False,
                           explanation=f"{choice.explanation}\nAutonomy: {verdict.why}.")
        return choice

    def _stop(self, incident_id: int, cause: Cause, now: datetime, reason: str) -> Review:
        self._escalate(incident_id, cause, now, reason)
        return Review(False, True, f"{NEEDS_PERSON}: {reason}")

    # --- what it reads back -------------------------------------------------------------

    def causes(self) -> list[Cause]:
        with self._lock:
            return list(self._causes.values())

    def attempt(self, execution_id: int) -> Attempt | None:
        with self._lock:
            return self._seen.get(execution_id)

    # --- time passes ------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, force: bool = False) -> None:
        """Judge the actions whose observation time has come; escalate what failed."""
        now = now or self.service.clock.now()
        with self._lock:
            if not force and self._last_check is not None and \
                    now - self._last_check < self.check_every:
                return
            self._last_check = now
            self._sync(now)
            policy = self.service.policy().causes
            for cause in list(self._causes.values()):
                for attempt in cause.attempts:
                    self._judge(cause, attempt, now, policy)

    def _judge(self, cause: Cause, attempt: Attempt, now: datetime, policy: Causes) -> None:
        if attempt.outcome == "pending":
            if attempt.state in IN_FLIGHT or attempt.finished_at is None:
                return
            if attempt.state != "succeeded":
                self._outcome(cause, attempt, "ineffective", f"it ended {attempt.state}", now)
            elif now >= attempt.finished_at + timedelta(seconds=policy.observe):
                still = self._symptoms(cause, attempt, now)
                if still is None:
                    return
                # Still there after `observe`: a fix may be slow to show (a backlog
                # drains, a cache warms); it is ineffective when still there after twice.
                late = now >= attempt.finished_at + timedelta(seconds=2 * policy.observe)
                if still and late:
                    self._outcome(cause, attempt, "ineffective", "; ".join(still), now)
                elif still:
                    return
                else:
                    left = self._downstream.get(attempt.execution_id)
                    self._outcome(cause, attempt, "effective",
                                  f"the symptoms of {cause.key} are gone"
                                  + (f"; what is left is {left}" if left else ""), now)
        elif attempt.outcome == "effective" and attempt.finished_at is not None and \
                now <= attempt.finished_at + timedelta(seconds=policy.recurrence):
            # The cause's own metric must be back (errors alone may be anyone's doing),
            # on two checks in a row (not one passing blip).
            still = self._symptoms(cause, attempt, now, primary_only=True)
            attempt.returning = attempt.returning + 1 if still else 0
            if still and attempt.returning >= 2:
                self._outcome(cause, attempt, "did_not_last", "the symptoms came back: "
                              + "; ".join(still), now)
        else:
            return
        if attempt.failed and attempt.judged_at == now:
            self._after_failure(cause, attempt, now, policy)

    def _after_failure(self, cause: Cause, attempt: Attempt, now: datetime,
                       policy: Causes) -> None:
        failed = [a for a in self._recent(cause, now, policy) if a.failed]
        if len(failed) >= policy.ineffective:
            self._escalate(attempt.incident_id, cause, now, f"{len(failed)} ineffective "
                           f"action(s) on it (policy allows {policy.ineffective})")
            return
        tried = {a.runbook_id for a in failed}
        untried = [rb.id for rb in self._fixes(cause) if rb.id not in tried]
        if not untried:
            self._escalate(attempt.incident_id, cause, now, "its fixes did not work and "
                           f"nothing else in the library ends {cause.fault_class}")

    # --- reading the world ------------------------------------------------------------

    def _sync(self, now: datetime) -> None:
        """Take in the executions the engine ran since last time (and their states)."""
        if self._memory is None:
            self._remember(now)
        executions = [e for e in self.service.engine.executions()
                      if e.recommendation_id is not None]
        fresh = [e for e in executions if e.id not in self._seen]
        for execution in executions:
            attempt = self._seen.get(execution.id)
            if attempt is not None:
                attempt.state = execution.state
                attempt.finished_at = execution.finished_at
        if not fresh:
            return
        rec_ids = [e.recommendation_id for e in fresh if e.recommendation_id is not None]
        with self.service.db.sessions() as session:
            diagnoses = self._repo.diagnoses(session, rec_ids)
        for execution in fresh:
            diagnosis = diagnoses.get(execution.recommendation_id or 0)
            if diagnosis is None or diagnosis.incident_id is None:
                continue  # its diagnosis is noted just after it is proposed: next time
            attempt = Attempt(execution.id, diagnosis.incident_id, execution.runbook_id,
                              execution.autonomous, execution.started_at, execution.state,
                              execution.finished_at)
            known = self._memory.judged.get(execution.id) if self._memory else None
            if known is not None:  # judged before the console started again
                attempt.outcome, attempt.why, attempt.judged_at = \
                    known.outcome, known.why, known.at
            self._seen[execution.id] = attempt
            self._cause(diagnosis.service, diagnosis.fault_class).attempts.append(attempt)

    def _remember(self, now: datetime) -> None:
        """Rebuild what was decided within the breaker's windows before this console
        started (agents/breaker_memory.py): causes handed to a person stay so."""
        policy = self.service.policy().causes
        since = now - timedelta(seconds=max(policy.window, policy.recurrence))
        self._memory = recall(self.service.db, since)
        for handover in self._memory.handovers:
            cause = self._cause(handover.service, handover.fault_class)
            cause.escalated.setdefault(handover.incident_id, handover.why)

    def _cause(self, service: str, fault_class: str) -> Cause:
        key = f"{service}/{fault_class}"
        cause = self._causes.get(key)
        if cause is None:
            cause = self._causes[key] = Cause(service, fault_class)
        return cause

    def _recent(self, cause: Cause, now: datetime, policy: Causes) -> list[Attempt]:
        since = now - timedelta(seconds=policy.window)
        return [a for a in cause.attempts if a.started_at >= since]

    def _incident_actions(self, incident_id: int, now: datetime, policy: Causes) -> int:
        since = now - timedelta(seconds=policy.window)
        return sum(1 for a in self._seen.values()
                   if a.incident_id == incident_id and a.started_at >= since)

    def _incident_failures(self, incident_id: int, now: datetime, policy: Causes) -> int:
        since = now - timedelta(seconds=policy.window)
        return sum(1 for a in self._seen.values()
                   if a.incident_id == incident_id and a.started_at >= since and a.failed)

    def _fixes(self, cause: Cause) -> list[Runbook]:
        """The library's runbooks that end this fault class here (not only ease it)."""
        eases = self.eases.get(cause.fault_class, {})
        return [rb for rb in self.library.values()
                if cause.fault_class in rb.applies_to.faults and rb.id not in eases
                and any(fnmatch.fnmatchcase(cause.service, p) for p in rb.applies_to.services)]

    def _symptoms(self, cause: Cause, attempt: Attempt, now: datetime, *,
                  primary_only: bool = False) -> list[str] | None:
        """What of the cause is still wrong now, in words ([] when nothing is); None
        when there is nothing after the action's own side effects to judge by yet."""
        opened = self._opened_at(attempt.incident_id)
        if opened is None:
            return None
        baseline_end = opened - _BASELINE_GAP
        baseline_start = opened - _BASELINE
        wake = self._wake(now, baseline_start)
        after = attempt.finished_at or attempt.started_at
        for effect in wake.effects:
            if effect.execution_id == attempt.execution_id:
                after = max(after, effect.end)
        still: list[str] = []
        judged = False
        metrics = lasting_metrics(cause.fault_class) if primary_only else \
            symptom_metrics(cause.fault_class)
        for metric in metrics:
            points = self.metrics.series(cause.service, metric, baseline_start, now)
            base = [p for p in points if p[0] <= baseline_end]
            # only what came after the latest sample any action of the team explains:
            # older samples are no reading of now
            kept = wake.series(cause.service, metric, points)
            times = {at for at, _ in kept}
            cut = max((at for at, _ in points if at > after and at not in times),
                      default=after)
            later = [p for p in kept if p[0] > cut]
            if not later:
                continue
            stat = analyse(cause.service, metric, [*base, *later], baseline_end,
                           baseline_start)
            if stat is None:
                continue
            judged = True
            before = [v for at, v in points if at < attempt.started_at][-3:]
            was = sum(before) / len(before) if before else None
            if still_wrong(stat, rises(cause.fault_class, metric)) and \
                    not recovering(stat, was) and material(stat):
                still.append(f"{metric} of {cause.service} is still {stat.current:.4g} "
                             f"(normal {stat.reference:.4g})")
        if still and self.callees is not None and all(
                line.split(" ", 1)[0] in GOLDEN for line in still):
            other = downstream(self.metrics.series, self.callees(cause.service),
                               attempt.started_at, now, (baseline_start, baseline_end))
            if other is not None:  # another fault downstream, felt through the call
                self._downstream[attempt.execution_id] = other
                return []
        return still if judged else None

    def _wake(self, now: datetime, since: datetime) -> Wake:
        if self.own_actions is None:
            return Wake()
        return self.own_actions.wake(now, since, callers=self.callers)

    def _opened_at(self, incident_id: int) -> datetime | None:
        opened = self._opened.get(incident_id)
        if opened is None:
            found = self.service.incidents(ids=[incident_id])
            if not found:
                return None
            opened = self._opened[incident_id] = found[0].opened_at
        return opened

    # --- writing it down --------------------------------------------------------------

    def _outcome(self, cause: Cause, attempt: Attempt, outcome: str, why: str,
                 now: datetime) -> None:
        attempt.outcome, attempt.why, attempt.judged_at = outcome, why, now
        self.service.record(actor=ACTOR, action=OUTCOME_ACTION,
                            target=f"execution:{attempt.execution_id}",
                            reason=why[:2000],
                            inputs={"incident": attempt.incident_id,
                                    "service": cause.service,
                                    "fault_class": cause.fault_class,
                                    "runbook": attempt.runbook_id},
                            outputs={"outcome": outcome})
        add_note(self.service.db, attempt.incident_id, TimelineNote(
            now, "outcome", f"{attempt.runbook_id} #{attempt.execution_id} on "
            f"{cause.service} was {outcome.replace('_', ' ')}: {why}",
            f"execution:{attempt.execution_id}",
            {"outcome": outcome, "cause": cause.key}))

    def _escalate(self, incident_id: int, cause: Cause, now: datetime, reason: str, *,
                  page: bool = True) -> None:
        if incident_id in cause.escalated:
            return
        cause.escalated[incident_id] = reason
        tried = [a.line() for a in cause.attempts]
        summary = (f"{NEEDS_PERSON} for {cause.fault_class} on {cause.service}: {reason}"
                   + (f". Tried: {'; '.join(tried)}" if tried else ". Nothing was tried."))
        self.service.record(actor=ACTOR, action=ESCALATED_ACTION,
                            target=f"incident:{incident_id}", reason=summary[:2000],
                            inputs={"service": cause.service,
                                    "fault_class": cause.fault_class},
                            outputs={"tried": tried, "why": reason, "page": page})
        add_note(self.service.db, incident_id, TimelineNote(
            now, "escalation", summary, f"incident:{incident_id}",
            {"cause": cause.key, "reason": reason, "tried": tried}))
        self._mark_stored_cause(incident_id, cause, summary, now)

    def _mark_stored_cause(self, incident_id: int, cause: Cause, summary: str,
                           now: datetime) -> None:
        """The incident's stored cause of that key shows `needs_person`, the summary as
        its note (console/storage/repos_causes.py), where the console lists causes."""
        repo = CauseRepo()
        with self.service.db.sessions() as session:
            stored = [c for c in repo.causes(session, incident_id) if c.key == cause.key]
            if stored:
                repo.set_state(session, incident_id, stored[0].ordinal, "needs_person",
                               summary, now)
                session.commit()
                self.service.bus.publish(CausesChanged(
                    incident_id, tuple(repo.causes(session, incident_id))))


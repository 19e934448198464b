"""The recommender (level 2, and level 3 where policy lets it): from a diagnosis to a
remediation with its preview, its confidence and its reasons.

For the hypothesis it acts on (the best one, an operator's pin, or a second cause on
another service) it ranks the runbooks whose `applies_to` names the fault class and
covers the service: one that fixes it before one that only eases it (the README's fault
table, kept below as `NOT_A_FIX`), then the better record on this fault class (the
learner's Beta mean), then the lower risk tier, then the id.

Parameters come from the diagnosis and its evidence (the service, the flag a change
turned on, the version a deploy replaced, the instance an alert names, a count sized by
the saturation metric), always through `check_arguments`. The explanation says why this
runbook, one sentence per alternative not chosen, and whether it may run on its own:
only a diagnosis corroborated by `policy.corroboration` signals at
`policy.autonomy_threshold` or more is offered to policy to run without approval.
"""

from __future__ import annotations

import fnmatch
import math
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from agents.confidence_basis import BASIS_PREFIX, basis_line
from agents.evidence_gate import Verdict, gate
from agents.learner import Learner, note_diagnosis, success_mean
from console.actions.runbooks import Param, Runbook, check_arguments
from console.domain import ChangeEvent, Hypothesis
from console.execution import ExecutionError
from console.policy import Policy
from console.service import WatchfloorService
from console.sources.metrics import MetricsReader
from console.storage.repos_causes import CauseRepo
from console.storage.repos_learning import (
    Diagnosis,
    IncidentProfile,
    LearningRepo,
    PriorRecommendation,
)

ACTOR = "agent:recommender"
_RISK = {"low": 0, "medium": 1, "high": 2}

# What does not fix a fault class, and why (README, "Scenarios": the fault table). A
# runbook named here for a fault class its applies_to also lists only eases it.
NOT_A_FIX: Mapping[str, Mapping[str, str]] = {
    "bad_deploy": {"restart-service": "instances restart on the same bad version",
                   "scale-out": "new instances start on the bad version and spread it"},
    "config_error": {"restart-service": "a restart reloads the same bad configuration"},
    "memory_leak": {"restart-service": "a restart only delays a leak; memory climbs again "
                                       "on the same version",
                    "scale-out": "more instances only ease it; every one still leaks"},
    "cpu_saturation": {"scale-out": "more capacity only eases it; the expensive code path "
                                    "stays on",
                       "restart-service": "the flag is still on after a restart"},
    "slow_dependency": {"restart-service": "restarting the callers does not make the "
                                           "dependency faster"},
    "connection_pool_exhaustion": {"scale-out": "fresh pools on new instances only ease it; "
                                                "the leak goes on"},
    "disk_filling": {"restart-service": "a restart frees no disk"},
    "queue_backlog": {"clear-queue": "purging loses every waiting message and the backlog "
                                     "returns while the workers stay stuck",
                      "scale-out": "more consumers only ease it; each one is still stuck"},
    "certificate_expiry": {"restart-service": "a restart loads the same certificate"},
    "cache_stampede": {"flush-cache": "an empty cache sends every read to the database "
                                      "and makes it worse"},
    "network_partition": {"restart-service": "a restart cannot reach an unreachable zone"},
    "traffic_surge": {"restart-service": "a restart adds no capacity"},
}
# Flags the fix turns on for a fault class (README: request-coalescing ends a stampede);
# a flag change in the evidence always wins.
PROTECTIVE_FLAGS: Mapping[str, str] = {"cache_stampede": "request-coalescing"}
FLAG_ON_FAULTS = frozenset({"cpu_saturation"})  # fixed by turning the culprit flag off
_FLAG = re.compile(r"\bflag\s+([A-Za-z0-9_.:@/+=,-]+)")
_ON, _OFF = re.compile(r"\b(enable|enabled|on)\b"), re.compile(r"\b(disable|disabled|off)\b")
# A cause with an action under way, or handed to a person, gets no new proposal.
BUSY_CAUSE = frozenset({"running", "validating", "needs_person"})
Stats = Mapping[tuple[str, str], tuple[int, int]]  # (runbook, fault class) -> (wins, losses)


@dataclass(frozen=True)
class RecommenderSettings:
    prior: tuple[float, float] = (1.0, 1.0)  # Beta prior of a runbook's success: neutral
    min_confidence: float = 0.2  # no recommendation for a diagnosis less sure than this
    second_cause: float = 0.5  # another service's hypothesis this sure is acted on too
    pinned_confidence: float = 0.5  # a pin the investigator did not rank
    target_saturation: float = 0.7  # scale out until saturation would be about this
    change_lookback: timedelta = timedelta(hours=6)  # flag/deploy changes searched
    confidence_step: float = 0.1  # a diagnosis this much surer counts as changed


@dataclass(frozen=True, slots=True)
class Alternative:
    runbook_id: str
    why: str


@dataclass(frozen=True)
class Choice:
    """What the recommender decided for one hypothesis (proposed or not, and why)."""

    hypothesis: Hypothesis
    runbook_id: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    autonomous: bool = False
    explanation: str = ""
    alternatives: tuple[Alternative, ...] = ()
    skipped: str | None = None  # why nothing was proposed
    recommendation_id: int | None = None
    state: str | None = None  # the recommendation's state right after it was proposed
    basis: str = ""  # what the confidence rests on, in words (agents/confidence_basis.py)


class _Unfit(Exception):
    """This runbook cannot be proposed here (the message says why)."""


class Recommender:
    name = "recommender"

    def __init__(self, service: WatchfloorService, library: Mapping[str, Runbook], *,
                 learner: Learner | None = None, metrics: MetricsReader | None = None,
                 settings: RecommenderSettings | None = None) -> None:
        self.service = service
        self.library = library  # normally service.engine.library: propose plans from it
        self.learner = learner
        self.metrics = metrics
        self.settings = settings or RecommenderSettings()
        self.last: list[Choice] = []  # the latest decisions, for the coordination view
        # The circuit breaker per cause (agents/escalation.py), when the runtime sets one.
        self.breaker: Any = None
        # Every service one calls (the runtime's topology), for load on what it waits on.
        self.callees: Callable[[str], Sequence[str]] | None = None
        self._repo = LearningRepo()
        self._causes = CauseRepo()
        self._lock = threading.Lock()

    # --- the agent's act ------------------------------------------------------------------

    def recommend(self, incident_id: int, hypotheses: Sequence[Hypothesis], *,
                  excluded_services: Collection[str] = (),
                  pinned: str | None = None) -> list[int]:
        """Propose the remediation of the diagnosis; returns the new recommendation ids
        (none when one is already waiting, or nothing fits). One call at a time, so the
        duplicate check and the proposal cannot interleave within this process."""
        with self._lock:
            choices = self.plan(incident_id, hypotheses,
                                excluded_services=excluded_services, pinned=pinned)
            if self.breaker is not None:
                choices = [self.breaker.reviewed(incident_id, c) for c in choices]
            self.last = [self._propose(c, incident_id) for c in choices]
        return [c.recommendation_id for c in self.last if c.recommendation_id is not None]

    def _propose(self, choice: Choice, incident_id: int) -> Choice:
        if choice.runbook_id is None:
            return choice
        try:
            rec_id = self.service.engine.propose(
                choice.runbook_id, choice.params, requester=ACTOR,
                confidence=choice.confidence, explanation=choice.explanation,
                incident_id=incident_id, autonomous=choice.autonomous)
        except ExecutionError as exc:
            return replace(choice, runbook_id=None, skipped=str(exc))
        note_diagnosis(self.service, rec_id, choice.hypothesis, incident_id, actor=ACTOR)
        rec = self.service.engine.recommendation(rec_id)
        return replace(choice, recommendation_id=rec_id, state=rec.state if rec else None)

    def plan(self, incident_id: int, hypotheses: Sequence[Hypothesis], *,
             excluded_services: Collection[str] = (),
             pinned: str | None = None) -> list[Choice]:
        """What `recommend` would propose, and why, without proposing anything."""
        excluded = set(excluded_services)
        with self.service.db.sessions() as session:
            incident = self._repo.incident(session, incident_id)
            priors = self._repo.recommendations_for(session, incident_id)
            diagnoses = self._repo.diagnoses(session, [p.id for p in priors])
            causes = {c.ordinal: c.state for c in self._causes.causes(session, incident_id)} \
                if any(h.cause for h in hypotheses) else {}
        selected, notes = self._select(hypotheses, excluded, pinned, causes)
        status = self.service.status()
        blocked = None
        if incident is None:
            blocked = f"there is no incident {incident_id}"
        elif incident.state != "open":
            blocked = f"incident {incident_id} is {incident.state}"
        elif status.kill_switch:
            blocked = "the kill switch is on: agents are at level 0 and recommend nothing"
        elif status.autonomy_ceiling < 2:
            blocked = (f"the autonomy ceiling is {status.autonomy_ceiling}: agents recommend "
                       "from level 2")
        if blocked is not None or incident is None:
            return [Choice(h, None, skipped=blocked) for h in selected]
        stats = self.learner.statistics() if self.learner is not None else {}
        # Read once per plan, not once per hypothesis: the same policy decides them all.
        policy = self.service.policy()
        return [self._choose(h, incident, priors, diagnoses, stats, notes, policy,
                             status.effective_ceiling) for h in selected]

    # --- which hypotheses ----------------------------------------------------------------

    def _select(self, hypotheses: Sequence[Hypothesis], excluded: set[str],
                pinned: str | None, causes: Mapping[int, str] | None = None
                ) -> tuple[list[Hypothesis], list[str]]:
        ranked = sorted(hypotheses, key=lambda h: (-h.confidence, h.key))
        notes: list[str] = []
        if pinned:
            chosen = next((h for h in ranked if h.key == pinned), None)
            if chosen is None:
                service, _, fault = pinned.partition("/")
                if not service or not fault:
                    return [], [f"the pin {pinned!r} is not service/fault_class"]
                chosen = Hypothesis(service, fault, self.settings.pinned_confidence)
                notes.append(f"{pinned} was pinned by the operator; the investigator had not "
                             f"ranked it, so it counts as {chosen.confidence:.2f}")
            notes += [f"Not acting on {h.key} ({h.confidence:.2f}): the operator pinned "
                      f"{pinned}" for h in ranked if h.key != pinned]
            if chosen.service in excluded:
                return [], notes
            return [chosen], notes
        if any(h.cause for h in ranked):
            return self._per_cause(ranked, excluded, causes or {})
        picked: list[Hypothesis] = []
        for h in ranked:
            if h.service in excluded:
                notes.append(f"Not acting on {h.key}: the operator excluded {h.service}")
            elif not picked and h.confidence >= self.settings.min_confidence:
                picked.append(h)
            elif picked and h.confidence >= self.settings.second_cause and \
                    h.service not in {p.service for p in picked}:
                picked.append(h)  # two causes at once, on two services
            elif picked:
                notes.append(f"Not acting on {h.key} ({h.confidence:.2f}): {picked[0].key} "
                             f"({picked[0].confidence:.2f}) explains the incident better")
            else:
                notes.append(f"Not acting on {h.key} ({h.confidence:.2f}): below "
                             f"{self.settings.min_confidence:.2f}, too unsure to act on")
        return picked, notes

    def _per_cause(self, ranked: Sequence[Hypothesis], excluded: set[str],
                   causes: Mapping[int, str]) -> tuple[list[Hypothesis], list[str]]:
        """The best hypothesis of each cause of the incident (the investigator grouped
        them: agents/causes.py), unless an action on that cause is under way or it was
        handed to a person. The first cause needs `min_confidence`, a further one
        `second_cause`."""
        first = min((h.cause for h in ranked), default=0)
        best: dict[int, Hypothesis] = {}
        picked: list[Hypothesis] = []
        notes: list[str] = []
        for h in ranked:
            state = causes.get(h.cause, "diagnosing")
            floor = self.settings.min_confidence if h.cause == first else \
                self.settings.second_cause
            if h.service in excluded:
                notes.append(f"Not acting on {h.key}: the operator excluded {h.service}")
            elif h.cause in best:
                lead = best[h.cause]
                notes.append(f"Not acting on {h.key} ({h.confidence:.2f}): {lead.key} "
                             f"({lead.confidence:.2f}) explains the same symptoms better")
            elif state in BUSY_CAUSE:
                best[h.cause] = h
                notes.append(f"Not acting on {h.key}: cause {h.cause} is "
                             f"{state.replace('_', ' ')}")
            elif h.confidence < floor:
                best[h.cause] = h
                notes.append(f"Not acting on {h.key} ({h.confidence:.2f}): below "
                             f"{floor:.2f}, too unsure to act on")
            else:
                best[h.cause] = h
                picked.append(h)
        return picked, notes

    # --- which runbook -------------------------------------------------------------------

    def _mean(self, stats: Stats, runbook_id: str, fault: str) -> tuple[float, int, int]:
        wins, losses = stats.get((runbook_id, fault), (0, 0))
        return success_mean(wins, losses, self.settings.prior), wins, losses

    def _choose(self, h: Hypothesis, incident: IncidentProfile,
                priors: Sequence[PriorRecommendation], diagnoses: Mapping[int, Diagnosis],
                stats: Stats, notes: Sequence[str], policy: Policy, ceiling: int) -> Choice:
        fault = h.fault_class
        eases = NOT_A_FIX.get(fault, {})
        candidates = [rb for rb in self.library.values()
                      if fault in rb.applies_to.faults
                      and any(fnmatch.fnmatchcase(h.service, p) for p in rb.applies_to.services)]
        candidates.sort(key=lambda rb: (rb.id in eases, -self._mean(stats, rb.id, fault)[0],
                                        _RISK[rb.risk], rb.id))
        alternatives: list[Alternative] = []
        chosen: Runbook | None = None
        params: dict[str, Any] = {}
        provenance: list[str] = []
        for rb in candidates:
            if chosen is not None:
                alternatives.append(Alternative(rb.id, self._why_lower(rb, chosen, fault,
                                                                       stats)))
                continue
            level = min(policy.level(rb.action_class, h.service), ceiling)
            if level < 2:
                alternatives.append(Alternative(rb.id, f"{rb.action_class} on {h.service} is "
                                                f"at level {level}; agents recommend from 2"))
                continue
            try:
                params, provenance = self._fill(rb, h)
            except _Unfit as exc:
                alternatives.append(Alternative(rb.id, str(exc)))
                continue
            chosen = rb
        listed = {a.runbook_id for a in alternatives} | {rb.id for rb in candidates}
        for rb_id, why in eases.items():
            if rb_id in self.library and rb_id not in listed:
                alternatives.append(Alternative(rb_id, why + self._record(stats, rb_id, fault)))
                listed.add(rb_id)
        for rb in self.library.values():
            hits = sorted(set(rb.applies_to.alerts) & set(incident.alerts))
            if rb.id not in listed and hits:
                alternatives.append(Alternative(rb.id, f"it answers the alert {hits[0]}, not "
                                                f"the cause: it is no remedy for {fault}"))
                listed.add(rb.id)
        head = self._diagnosis_sentence(h)
        tail = [f"Not {a.runbook_id}: {a.why}." for a in alternatives] + \
            [n if n.endswith(".") else n + "." for n in notes]
        if chosen is None:
            why = (f"no runbook in the library remedies {fault} on {h.service}" if not candidates
                   else f"no runbook for {fault} on {h.service} can be proposed")
            return Choice(h, None, explanation="\n".join([head, why[0].upper() + why[1:] + ".",
                                                          *tail]),
                          alternatives=tuple(alternatives), skipped=why)
        duplicate = self._duplicate(chosen, h, params, priors, diagnoses)
        mean, wins, losses = self._mean(stats, chosen.id, fault)
        confidence = round(min(1.0, max(0.0, h.confidence * mean)), 4)
        fixes = chosen.id not in eases
        verdict = gate(h, chosen.action_class, corroboration=policy.corroboration,
                       min_persistence=policy.min_persistence, opened_at=incident.opened_at,
                       now=self.service.clock.now(),
                       series=self.metrics.series if self.metrics is not None else None,
                       load_persistence=policy.load_persistence,
                       callees=self.callees(h.service) if self.callees else ())
        if not verdict.propose:
            return Choice(h, None, explanation="\n".join([head, *verdict.reasons, *tail]),
                          alternatives=tuple(alternatives), skipped=verdict.reasons[0])
        autonomous, autonomy = self._autonomy(h, chosen, fixes, policy, ceiling, verdict)
        a, b = self.settings.prior
        lines = [head,
                 f"Chose {chosen.id} ({chosen.title}): it "
                 + (f"fixes {fault} on {h.service}." if fixes else
                    f"only eases {fault} ({eases[chosen.id]}), and nothing that fixes it "
                    "can be proposed here."),
                 "Parameters: " + "; ".join(provenance) + ".",
                 f"Confidence {confidence:.2f} = diagnosis {h.confidence:.2f} x {mean:.2f}, the "
                 f"expected success of {chosen.id} on {fault} (Beta({a + wins:g}, "
                 f"{b + losses:g}): {wins} succeeded, {losses} failed before).",
                 BASIS_PREFIX + (basis := basis_line(h, verdict.independent, chosen.id,
                                                     mean, wins, losses)),
                 *tail, f"Autonomy: {autonomy}."]
        explanation = "\n".join(lines)
        if duplicate is not None:
            return Choice(h, None, params, confidence, autonomous, explanation,
                          tuple(alternatives), skipped=duplicate, basis=basis)
        return Choice(h, chosen.id, params, confidence, autonomous, explanation,
                      tuple(alternatives), basis=basis)

    def _why_lower(self, rb: Runbook, chosen: Runbook, fault: str, stats: Stats) -> str:
        eases = NOT_A_FIX.get(fault, {})
        if rb.id in eases:
            return eases[rb.id] + self._record(stats, rb.id, fault)
        mine, theirs = self._mean(stats, rb.id, fault)[0], self._mean(stats, chosen.id, fault)[0]
        if mine < theirs:
            return f"it also remedies {fault} but has the weaker record" + \
                self._record(stats, rb.id, fault)
        if _RISK[rb.risk] > _RISK[chosen.risk]:
            return f"it also remedies {fault} but is {rb.risk} risk against {chosen.risk}"
        return f"it also remedies {fault}; {chosen.id} comes first by name at equal rank"

    def _record(self, stats: Stats, rb_id: str, fault: str) -> str:
        wins, losses = stats.get((rb_id, fault), (0, 0))
        if not wins and not losses:
            return ""
        return f" (on {fault} it succeeded {wins} time(s) and failed or did not stick " \
               f"{losses} time(s))"

    @staticmethod
    def _diagnosis_sentence(h: Hypothesis) -> str:
        top = sorted(h.evidence, key=lambda e: -e.weight)[:3]
        shown = "; ".join(f"{e.summary} [{e.ref}]" for e in top)
        return (f"Diagnosis: {h.key} at {h.confidence:.2f}, corroborated by {h.signals} "
                f"independent signal(s)" + (f"; evidence: {shown}." if shown else "."))

    @staticmethod
    def _autonomy(h: Hypothesis, rb: Runbook, fixes: bool, policy: Policy,
                  ceiling: int, verdict: Verdict) -> tuple[bool, str]:
        if not fixes:
            return False, "a remedy that only eases the fault always waits for a person"
        needed, threshold = policy.corroboration, policy.autonomy_threshold
        gaps = list(verdict.reasons)  # agents/evidence_gate.py: thin evidence waits
        if h.confidence < threshold:
            gaps.append(f"confidence {h.confidence:.2f} is under the autonomy threshold "
                        f"{threshold:.2f}")
        if gaps:
            return False, "waits for a person: " + " and ".join(gaps)
        level = min(policy.level(rb.action_class, h.service), ceiling)
        head = (f"{verdict.independent} independent signals (policy needs {needed}) at "
                f"{h.confidence:.2f} (threshold {threshold:.2f}), so policy decides at once: ")
        stops = [f"{rb.action_class} on {h.service} is at level {level} (it takes 3)"] \
            if level < 3 else []
        # High risk runs alone only where an admin granted it (console/policy.py), never
        # by its tier: say which of the two applies.
        if rb.risk == "high":
            granted = policy.grants_high_risk(rb.action_class, h.service)
            risk = (f"an admin granted high-risk {rb.action_class} on {h.service} level 3 "
                    "(policy high_risk_autonomy)") if granted else \
                (f"high risk needs an approver: no admin granted {rb.action_class} on "
                 f"{h.service} level 3 (policy high_risk_autonomy)")
        else:
            granted = rb.risk in policy.autonomous_risk
            risk = f"{rb.risk} risk is " + ("autonomous" if granted else
                                            "not an autonomous tier")
        if not granted:
            stops.append(risk)
        if stops:
            grant = f" ({risk}, which applies from level 3)" if granted and \
                rb.risk == "high" else ""
            return True, head + " and ".join(stops) + grant + ", so it waits for a person"
        return True, head + (f"{rb.action_class} on {h.service} is at level {level} and "
                             f"{risk}, so it runs on its own unless a freeze, rate limit or "
                             "budget stops it")

    def _duplicate(self, rb: Runbook, h: Hypothesis, params: Mapping[str, Any],
                   priors: Sequence[PriorRecommendation],
                   diagnoses: Mapping[int, Diagnosis]) -> str | None:
        """Why not to propose it again: one like it is waiting, or it was already decided
        for the same diagnosis (rejected, expired, denied, executed)."""
        now = self.service.clock.now()
        target = str(params.get("service", h.service))
        same = [p for p in priors if p.runbook_id == rb.id and p.target == target]
        waiting = [p for p in same if p.open_at(now)]
        if waiting:
            return f"{rb.id} on {target} is already recommendation {waiting[-1].id} " \
                   f"({waiting[-1].state})"
        if not same:
            return None
        last, step = same[-1], self.settings.confidence_step
        old = diagnoses.get(last.id)
        if old is not None and (old.key != h.key or h.signals > old.signals or
                                h.confidence >= old.confidence + step):
            return None  # the diagnosis changed since: worth asking again
        state = "expired" if last.state == "pending" else last.state
        return f"recommendation {last.id} ({rb.id} on {target}) was {state} for the same " \
               "diagnosis; it is proposed again only when the diagnosis changes"

    # --- parameters ------------------------------------------------------------------------

    def _fill(self, rb: Runbook, h: Hypothesis) -> tuple[dict[str, Any], list[str]]:
        params: dict[str, Any] = {}
        why: list[str] = []
        types = {p.type for p in rb.parameters.values()}
        flag = self._flag(h) if "flag" in types else None
        for name, spec in rb.parameters.items():
            value, source = self._value(name, spec, h, flag)
            params[name] = value
            shown = str(value).lower() if isinstance(value, bool) else value
            why.append(f"{name}={shown} ({source})")
        if "instance" not in types:
            instance = self._instance(h)
            if instance is not None:
                why.append(f"the evidence points at instance {instance}; {rb.id} acts on "
                           "every instance of the service")
        services = set(self.metrics.services()) if self.metrics is not None else None
        try:
            checked = check_arguments(rb, params, services or None)
        except ValueError as exc:
            raise _Unfit(f"its parameters do not check: {exc}") from None
        return checked, why

    def _value(self, name: str, spec: Param, h: Hypothesis,
               flag: tuple[str, bool, str] | None) -> tuple[Any, str]:
        if spec.type == "service":
            return h.service, "the diagnosed service"
        if spec.type == "flag" and flag is not None:
            return flag[0], flag[2]
        if spec.type == "bool" and flag is not None:
            return flag[1], "turn it " + ("on" if flag[1] else "off")
        if spec.type == "instance":
            instance = self._instance(h)
            if instance is None:
                raise _Unfit(f"no alert or metric in the evidence names the instance ({name})")
            return instance, "the instance the evidence names"
        if spec.type == "version":
            version = self._version(h)
            if version is None:
                raise _Unfit(f"no deploy in the evidence says which version to go back to "
                             f"({name})")
            return version[0], version[1]
        if spec.type == "int" and name == "count":
            return self._count(spec, h.service)
        if spec.default is not None:
            return spec.default, "the runbook's default"
        raise _Unfit(f"nothing in the diagnosis gives its parameter {name}")

    def _count(self, spec: Param, service: str) -> tuple[int, str]:
        latest = self.metrics.latest(service) if self.metrics is not None else {}
        sat, ready = latest.get("saturation"), latest.get("instances_ready")
        default = spec.default if isinstance(spec.default, int) else 1
        if not sat or not ready:
            return default, "the runbook's default; no saturation metric to size it by"
        target = self.settings.target_saturation
        need = math.ceil(ready * sat / target) - int(ready)
        count = max(spec.min or 1, min(need, spec.max if spec.max is not None else need))
        return count, (f"{ready:.0f} instance(s) ready at saturation {sat:.2f}; adding {count} "
                       f"brings it to about {ready * sat / (ready + count):.2f}")

    def _changes(self, h: Hypothesis, kinds: tuple[str, ...]) -> list[ChangeEvent]:
        """Changes of these kinds on the service: the evidence's first, then the feed's."""
        since = self.service.clock.now() - self.settings.change_lookback
        with self.service.db.sessions() as session:
            cited = [self._repo.change(session, e.ref.removeprefix("change:"))
                     for e in sorted(h.evidence, key=lambda e: -e.weight)
                     if e.ref.startswith("change:")]
            feed = self._repo.changes(session, h.service, kinds, since)
        own = [c for c in cited if c is not None and c.service == h.service and c.kind in kinds]
        return [*own, *(c for c in feed if c not in own)]

    def _flag(self, h: Hypothesis) -> tuple[str, bool, str] | None:
        for change in self._changes(h, ("feature_flag",)):
            match = _FLAG.search(change.description)
            if match is None:
                continue
            # "turn feature flag x on on payments": the trailing "on <service>" and the
            # flag's own name say nothing about which way it went
            text = re.sub(rf"\s+on\s+{re.escape(change.service)}\s*$", "",
                          change.description.replace(match.group(1), "")).lower()
            turned_off = bool(_OFF.search(text))
            turned_on = bool(_ON.search(text)) and not turned_off
            if h.fault_class in FLAG_ON_FAULTS:
                if turned_off:
                    continue  # the culprit is a flag that was turned on
                enabled = False
            elif turned_on or turned_off:
                enabled = not turned_on
            else:
                continue
            return match.group(1), enabled, (f"the {change.kind} change {change.id} at "
                                             f"{change.at:%H:%M} changed it")
        if h.fault_class in PROTECTIVE_FLAGS:
            return PROTECTIVE_FLAGS[h.fault_class], True, \
                f"the flag that ends a {h.fault_class}"
        return None

    def _version(self, h: Hypothesis) -> tuple[str, str] | None:
        for change in self._changes(h, ("deploy", "rollback")):
            if change.version_from:
                return change.version_from, (f"the version before the {change.kind} "
                                             f"{change.id} to {change.version_to}")
        return None

    def _instance(self, h: Hypothesis) -> str | None:
        for evidence in sorted(h.evidence, key=lambda e: -e.weight):
            kind, _, rest = evidence.ref.partition(":")
            if kind == "metric":
                subject = rest.split("/", 1)[0]
                if subject != h.service and subject.startswith(h.service + "-"):
                    return subject
            elif kind == "signal":
                with self.service.db.sessions() as session:
                    signal = self._repo.signal(session, rest)
                if signal is not None and signal.service == h.service and \
                        signal.labels.get("instance"):
                    return str(signal.labels["instance"])
        return None

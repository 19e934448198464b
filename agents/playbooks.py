"""The playbook agent: find the runbook for a diagnosis, or draft one where none fits.

Discovery classifies the issue (the hypothesis' fault class, the incident's alert names)
and picks the runbook the way the recommender does: `Recommender.plan` when there is an
open incident to plan for, and always the same ranking over `applies_to` (a fix before a
remedy that only eases it, per `NOT_A_FIX`, then the lower risk, then the id).

Where no runbook remedies the fault class, `draft` writes one in the library's YAML
format from the estate's action catalog: typed parameters, an estate check with a
deadline as its validation, and a rollback (or `rollback: none` and risk high). The
catalog is not re-exported by `console.actions.runbooks` and agents may not import the
estate, so which action remedies which fault class is the fixed table `REMEDIES` below;
`load_runbook_text` then checks every step against the catalog (an action the estate
does not publish, or an argument it does not take, and the draft is stored rejected
with the loader's error).

A draft never runs unreviewed. It passes, in order: `lint` (the policy lint), `dry_run`
(rendered against the live estate through `ExecutionEngine.plan` in a sandbox engine
that holds only the draft; nothing executes), `sign_off` (an operation needing role
approver; an agent can never sign off), and only then `adopt` puts it into the engine's
library (in memory), where the recommender and `engine.propose` can see it. Every step
is audited (actor `agent:playbook`, or the person's operation).
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from agents.recommender import NOT_A_FIX, Recommender
from console.actions.runbooks import (
    PARAM_TYPES,
    Runbook,
    RunbookError,
    load_runbook_text,
)
from console.domain import AuditEntry, Hypothesis
from console.events import AuditAppended, OpChanges
from console.execution import ExecutionEngine, ExecutionError
from console.operations import Operation, Refused
from console.storage.repos_learning import LearningRepo
from console.storage.repos_playbooks import PlaybookDraft, PlaybookDraftRepo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from console.service import WatchfloorService

ACTOR = "agent:playbook"
_RISK = {"low": 0, "medium": 1, "high": 2}
_NOT_PEOPLE = ("agent:", "rule:", "system")


class PlaybookError(ValueError):
    """A review step that cannot go ahead (the message says why; it is audited)."""


@dataclass(frozen=True, slots=True)
class Remedy:
    """What the catalog offers against one fault class, as a generated runbook uses it."""

    action: str
    action_class: str
    title: str
    check: tuple[str, str, float]  # validation: metric, op, threshold (of the service)
    deadline: str = "5m"
    rollback: str | None = None  # the estate action that undoes it; None: irreversible
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # beyond service
    args: Mapping[str, str] = field(default_factory=dict)  # step args beyond service
    rollback_args: Mapping[str, str] | None = None  # None: the same as args


_FLAG_PARAMS = {"flag": {"type": "flag", "description": "the feature flag to switch"},
                "enabled": {"type": "bool", "description": "true turns it on, false off"}}
_FLAG_ARGS = {"flag": "{flag}", "enabled": "{enabled}"}
_ERRORS = ("error_rate", "<", 0.02)

# Fault class -> the estate action that remedies it (the README's fault table). Each is
# checked against the estate's published catalog when the draft is loaded.
REMEDIES: Mapping[str, Remedy] = {
    "bad_deploy": Remedy("rollback", "deploy_rollback", "Roll back the last deploy of a "
                         "service", _ERRORS, "10m"),
    "config_error": Remedy("rollback", "deploy_rollback", "Roll back the last configuration "
                           "change of a service", _ERRORS, "10m"),
    "memory_leak": Remedy("rollback", "deploy_rollback", "Roll back the leaking version of "
                          "a service", _ERRORS, "10m"),
    "cpu_saturation": Remedy("toggle_feature_flag", "feature_flag", "Switch off the flag "
                             "behind a CPU-bound code path", _ERRORS, "5m",
                             "toggle_feature_flag", _FLAG_PARAMS, _FLAG_ARGS,
                             {"flag": "{flag}", "enabled": "{enabled!not}"}),
    "cache_stampede": Remedy("toggle_feature_flag", "feature_flag", "Switch on request "
                             "coalescing in front of a stampeding cache", _ERRORS, "5m",
                             "toggle_feature_flag", _FLAG_PARAMS, _FLAG_ARGS,
                             {"flag": "{flag}", "enabled": "{enabled!not}"}),
    "slow_dependency": Remedy("failover", "failover", "Fail a slow dependency over to its "
                              "replica", _ERRORS, "5m", "failover"),
    "network_partition": Remedy("failover", "failover", "Drain the unreachable zone of a "
                                "service", _ERRORS, "5m", "failover"),
    "connection_pool_exhaustion": Remedy("restart", "restart", "Restart a service to free "
                                         "its connection pools", _ERRORS, "5m"),
    "queue_backlog": Remedy("restart", "restart", "Restart the stuck consumers of a queue",
                            ("queue_depth", "<", 1000.0), "10m"),
    "disk_filling": Remedy("free_disk", "disk_hygiene", "Free disk space on a service's "
                           "instances", ("disk", "<", 85.0), "2m"),
    "certificate_expiry": Remedy("rotate_certificate", "certificate", "Install a new TLS "
                                 "certificate", ("cert_expiry_hours", ">", 720.0), "2m"),
    "traffic_surge": Remedy("scale_out", "scale", "Add instances to a service under a "
                            "traffic surge", ("saturation", "<", 0.8), "5m", "scale_in",
                            {"count": {"type": "int", "default": 2, "min": 1, "max": 10,
                                       "description": "instances to add"}},
                            {"count": "{count}"}),
}


@dataclass(frozen=True)
class Discovery:
    """What the issue is and which runbook of the library answers it (or why none)."""

    service: str
    fault_class: str
    alerts: tuple[str, ...]
    runbook_id: str | None
    reason: str
    candidates: tuple[str, ...] = ()  # runbooks whose applies_to names the fault class
    alert_matches: tuple[str, ...] = ()  # runbooks that only answer an alert


@dataclass(frozen=True)
class LintResult:
    ok: bool
    checks: tuple[tuple[str, bool, str], ...]  # (rule, passed, detail)

    def stored(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [{"rule": r, "passed": p, "detail": d}
                                          for r, p, d in self.checks]}


def matching_runbooks(library: Mapping[str, Runbook], fault_class: str,
                      service: str) -> list[Runbook]:
    """The runbooks whose applies_to names the fault class and covers the service, in the
    recommender's order (no learning record here): a fix before one that only eases it,
    then the lower risk, then the id."""
    eases = NOT_A_FIX.get(fault_class, {})
    found = [rb for rb in library.values() if fault_class in rb.applies_to.faults
             and any(fnmatch.fnmatchcase(service, p) for p in rb.applies_to.services)]
    return sorted(found, key=lambda rb: (rb.id in eases, _RISK[rb.risk], rb.id))


def placeholders(runbook: Runbook) -> set[str]:
    """Every `{name}` a runbook uses anywhere (steps, rollback, preview, checks, probes)."""
    return {name for text in _template_texts(runbook) for name in _names(text)}


def _template_texts(rb: Runbook) -> Iterator[str]:
    yield rb.preview
    for step in (*rb.steps, *(() if rb.rollback == "none" else rb.rollback)):
        yield from step.args.values()
        yield from step.argv
        yield step.url
        yield from _strings(step.body)
    v = rb.validation
    for check in (*rb.preconditions, *((v.check,) if v.check else ())):
        yield check.service
    if v.promql:
        yield v.promql
    if v.command:
        yield from v.command.argv
    if v.http:
        yield v.http.url


def _strings(body: Any) -> Iterator[str]:
    if isinstance(body, str):
        yield body
    elif isinstance(body, dict):
        for value in body.values():
            yield from _strings(value)
    elif isinstance(body, list):
        for value in body:
            yield from _strings(value)


def _names(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:  # an unbalanced brace is literal text (as the loader reads it)
        return set()


def draft_yaml(runbook_id: str, fault_class: str, remedy: Remedy) -> str:
    """A runbook for `fault_class` in the library's YAML format: typed parameters, an
    estate check with a deadline, a rollback or `none` (then risk high)."""
    args = {"service": "{service}", **remedy.args}
    metric, op, threshold = remedy.check
    extra = "".join(f" {name}={{{name}}}" for name in remedy.params)
    doc: dict[str, Any] = {
        "id": runbook_id,
        "title": remedy.title,
        "description": f"Drafted by the playbook agent for {fault_class}: no runbook of the "
                       "library remedied it. Reviewed (lint, dry run, sign-off) before use.",
        "action_class": remedy.action_class,
        "applies_to": {"faults": [fault_class], "services": ["*"]},
        "parameters": {"service": {"type": "service", "description": "the diagnosed service"},
                       **{k: dict(v) for k, v in remedy.params.items()}},
        "preconditions": [],
        "steps": [{"executor": "estate", "action": remedy.action, "args": args}],
        "preview": f"Run {remedy.action} on {{service}}{extra} (drafted for {fault_class})",
        "validation": {"check": {"service": "{service}", "metric": metric, "op": op,
                                 "threshold": threshold},
                       "deadline": remedy.deadline},
        "rollback": "none" if remedy.rollback is None else [
            {"executor": "estate", "action": remedy.rollback,
             "args": {"service": "{service}",
                      **(remedy.args if remedy.rollback_args is None
                         else remedy.rollback_args)}}],
        # generated: never low; irreversible: high
        "risk": "medium" if remedy.rollback is not None else "high",
        "blast_radius": 1,
        "owner": "playbook-agent",
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


class PlaybookAgent:
    name = "playbook"

    def __init__(self, service: WatchfloorService,
                 library: Mapping[str, Runbook] | None = None, *,
                 remedies: Mapping[str, Remedy] | None = None) -> None:
        self.service = service
        self.library = service.engine.library if library is None else library
        self.remedies = REMEDIES if remedies is None else remedies
        self._drafts = PlaybookDraftRepo()
        self._learning = LearningRepo()

    # --- discovery ------------------------------------------------------------------

    def discover(self, hypothesis: Hypothesis, incident_id: int | None = None) -> Discovery:
        h = hypothesis
        alerts: tuple[str, ...] = ()
        incident_open = False
        if incident_id is not None:
            with self.service.db.sessions() as session:
                incident = self._learning.incident(session, incident_id)
            if incident is not None:
                alerts, incident_open = incident.alerts, incident.state == "open"
        ranked = matching_runbooks(self.library, h.fault_class, h.service)
        candidates = tuple(rb.id for rb in ranked)
        alert_only = tuple(sorted(rb.id for rb in self.library.values()
                                  if rb.id not in candidates
                                  and set(rb.applies_to.alerts) & set(alerts)))
        chosen: str | None = None
        if not ranked:
            reason = (f"no runbook in the library remedies {h.fault_class} on {h.service}"
                      + (f"; {', '.join(alert_only)} only answer the alerts"
                         if alert_only else ""))
        else:
            reason = ""
            if incident_open and incident_id is not None:
                recommender = Recommender(self.service, self.library)
                choices = recommender.plan(incident_id, [h], pinned=h.key)
                choice = choices[0] if choices else None
                if choice is not None and choice.runbook_id is not None:
                    chosen = choice.runbook_id
                    reason = f"the recommender chooses {chosen} for {h.key}"
                elif choice is not None and choice.skipped:
                    reason = f"the recommender proposes nothing now ({choice.skipped})"
            if chosen is None:
                chosen = ranked[0].id
                eases = NOT_A_FIX.get(h.fault_class, {})
                how = "only eases" if chosen in eases else "remedies"
                reason = "; ".join(filter(None, [
                    f"{chosen} {how} {h.fault_class} on {h.service}", reason]))
        found = Discovery(h.service, h.fault_class, alerts, chosen, reason, candidates,
                          alert_only)
        self.service.record(actor=ACTOR, action="playbook.discover", target=h.key,
                            reason=reason[:2000],
                            inputs={"incident": incident_id, "alerts": list(alerts)},
                            outputs={"runbook": chosen, "candidates": list(candidates),
                                     "alert_matches": list(alert_only)})
        return found

    # --- generation -----------------------------------------------------------------

    def draft(self, hypothesis: Hypothesis, incident_id: int | None = None) -> int:
        """Write a runbook for the hypothesis' fault class from the action catalog and
        store it (state draft), or store it rejected with the reason it cannot be used."""
        fault = hypothesis.fault_class
        remedy = self.remedies.get(fault)
        runbook_id = self._new_id(fault)
        if remedy is None:
            return self._store(runbook_id, fault, "", incident_id, error=(
                f"no action of the estate's catalog is known to remedy {fault}"))
        return self._store(runbook_id, fault, draft_yaml(runbook_id, fault, remedy),
                           incident_id)

    def submit(self, text: str, fault_class: str, incident_id: int | None = None) -> int:
        """Store a playbook written elsewhere (an LLM, a person) as a draft: the same
        loading and review as one the agent drafted."""
        try:
            runbook_id = str(yaml.safe_load(text).get("id") or "")[:200]
        except Exception:
            runbook_id = ""
        return self._store(runbook_id or self._new_id(fault_class), fault_class, text,
                           incident_id)

    def _new_id(self, fault: str) -> str:
        base = "gen-" + (re.sub(r"[^a-z0-9]+", "-", fault.lower()).strip("-") or "fault")
        base = base[:54]
        with self.service.db.sessions() as session:
            taken = self._drafts.runbook_ids(session)
        taken |= set(self.library) | set(self.service.engine.library)
        n, candidate = 1, base
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _store(self, runbook_id: str, fault: str, text: str, incident_id: int | None, *,
               error: str | None = None) -> int:
        if error is None:
            try:
                load_runbook_text(text, f"playbook_drafts/{runbook_id}")
            except RunbookError as exc:
                error = str(exc)
        state = "draft" if error is None else "rejected"
        lint = {} if error is None else {"ok": False, "error": error[:4000]}
        now = self.service.clock.now()
        with self.service.db.sessions() as session:
            draft_id = self._drafts.add(session, incident_id=incident_id,
                                        runbook_id=runbook_id, fault_class=fault, yaml=text,
                                        state=state, lint=lint, at=now)
            entry = self.service.audit.append(
                session, actor=ACTOR, action="playbook.draft",
                target=f"playbook_draft:{draft_id}", reason=(error or "")[:2000],
                decision="allow" if error is None else "deny",
                inputs={"fault_class": fault, "incident": incident_id},
                outputs={"runbook": runbook_id, "state": state, "yaml": text[:8000]}, at=now)
            session.commit()
        self._announce(entry)
        return draft_id

    # --- review ---------------------------------------------------------------------

    def get(self, draft_id: int) -> PlaybookDraft:
        with self.service.db.sessions() as session:
            found = self._drafts.get(session, draft_id)
        if found is None:
            raise PlaybookError(f"no playbook draft {draft_id}")
        return found

    def lint(self, draft_id: int) -> LintResult:
        """The policy lint: it loads, its action class is in policy (or takes the default
        level), risk at least medium, blast radius 1, a rollback path or risk high, every
        placeholder a typed parameter, and its id shadows no runbook in use."""
        found = self.get(draft_id)
        if found.state != "draft":
            return self._deny("playbook.lint", draft_id, f"draft {draft_id} is "
                              f"{found.state}; only a new draft is linted")
        checks: list[tuple[str, bool, str]] = []
        try:
            rb: Runbook | None = load_runbook_text(found.yaml,
                                                   f"playbook_drafts/{found.runbook_id}")
            checks.append(("loads", True, "it loads with the runbook loader"))
        except RunbookError as exc:
            rb = None
            checks.append(("loads", False, str(exc)[:2000]))
        if rb is not None:
            checks.extend(self._rules(rb))
        result = LintResult(all(passed for _, passed, _ in checks), tuple(checks))
        state = "linted" if result.ok else "rejected"
        failed = "; ".join(f"{r}: {d}" for r, p, d in checks if not p)
        self._update("playbook.lint", draft_id, {"state": state, "lint": result.stored()},
                     "allow" if result.ok else "deny", failed, result.stored())
        return result

    def _rules(self, rb: Runbook) -> list[tuple[str, bool, str]]:
        policy = self.service.policy()
        level = policy.levels.get(rb.action_class)
        typed = {n: p.type for n, p in rb.parameters.items() if p.type in PARAM_TYPES}
        untyped = sorted(placeholders(rb) - set(typed))
        in_use = rb.id in self.service.engine.library or rb.id in self.library
        return [
            ("action_class", True,
             f"{rb.action_class} is at level {level} in policy" if level is not None else
             f"{rb.action_class} is not in policy: it takes the default level "
             f"{policy.default_level}"),
            ("risk", rb.risk != "low", f"risk {rb.risk}" + (
                "" if rb.risk != "low" else ": a generated playbook is never low risk")),
            ("blast_radius", rb.blast_radius == 1, f"blast radius {rb.blast_radius}" + (
                "" if rb.blast_radius == 1 else ": a generated playbook touches one target")),
            ("rollback", rb.reversible or rb.risk == "high",
             "it has a rollback path" if rb.reversible else
             "rollback: none with risk high" if rb.risk == "high" else
             "rollback: none needs risk high"),
            ("placeholders", not untyped, "every placeholder is a typed parameter"
             if not untyped else f"untyped placeholder(s) {untyped}"),
            ("id", not in_use, f"{rb.id} is new" if not in_use
             else f"{rb.id} would shadow a runbook in use"),
        ]

    def dry_run(self, draft_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Render the draft against the live estate (`ExecutionEngine.plan` in a sandbox
        holding only the draft, with the engine's executors); nothing is executed. The
        preview is recorded; returns it with its hash."""
        found = self.get(draft_id)
        if found.state not in ("linted", "dry_run_passed"):
            return self._deny("playbook.dry_run", draft_id, f"draft {draft_id} is "
                              f"{found.state}; a dry run needs a passed lint")
        rb = load_runbook_text(found.yaml, f"playbook_drafts/{found.runbook_id}")
        sandbox = ExecutionEngine(self.service, {rb.id: rb}, self.service.engine.executors)
        try:
            plan = sandbox.plan(rb.id, params)
            blind = [s["step"]["executor"] for s in plan.preview["steps"]
                     if s.get("effect") is None]
            if blind:
                raise ExecutionError(f"no {blind[0]} executor here: it cannot be rendered "
                                     "against the live estate")
        except ExecutionError as exc:
            record = {"ok": False, "params": dict(params), "error": str(exc)[:2000]}
            self._update("playbook.dry_run", draft_id, {"dry_run": record, "state": "linted"},
                         "deny", str(exc), record)
            raise PlaybookError(f"dry run of draft {draft_id} failed: {exc}") from None
        record = {"ok": True, "params": plan.params, "preview": plan.preview,
                  "preview_hash": plan.hash}
        self._update("playbook.dry_run", draft_id,
                     {"dry_run": record, "state": "dry_run_passed"}, "allow", "",
                     {"ok": True, "preview_hash": plan.hash, "summary":
                      plan.preview.get("summary")})
        return record

    def sign_off(self, draft_id: int, as_user: str) -> None:
        """A person (approver or above, never an agent) accepts a draft that passed the
        lint and a dry run. An operation: denials and refusals are audited."""

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            if as_user.startswith(_NOT_PEOPLE):
                raise Refused(f"{as_user} is not a person: only a person signs a playbook off")
            row = self._drafts.row(session, draft_id)
            if row is None:
                raise Refused(f"no playbook draft {draft_id}")
            if row.state != "dry_run_passed" or not (row.lint or {}).get("ok") or \
                    not (row.dry_run or {}).get("ok"):
                raise Refused(f"draft {draft_id} is {row.state}: it is signed off only after "
                              "the lint and a dry run passed")
            self._drafts.update(session, draft_id, at=self.service.clock.now(),
                                state="signed_off", signed_off_by=as_user)
            return OpChanges(ids=(str(draft_id),)), {"state": "signed_off",
                                                     "runbook": row.runbook_id}

        self.service.runner.run(Operation("playbook.sign_off", f"playbook_draft:{draft_id}",
                                          "approver", apply), as_user)

    def adopt(self, draft_id: int) -> Runbook:
        """Add a signed-off draft to the engine's library (in memory): from now on the
        recommender can choose it and the engine can propose it."""
        found = self.get(draft_id)
        if found.state != "signed_off" or not found.signed_off_by:
            return self._deny("playbook.adopt", draft_id, f"draft {draft_id} is "
                              f"{found.state}: only a signed-off draft is adopted")
        rb = load_runbook_text(found.yaml, f"playbook_drafts/{found.runbook_id}")
        library = self.service.engine.library
        if library.get(rb.id, rb) != rb:
            return self._deny("playbook.adopt", draft_id,
                              f"{rb.id} is already a different runbook of the library")
        library[rb.id] = rb
        if self.library is not library and isinstance(self.library, MutableMapping):
            self.library[rb.id] = rb
        self.service.record(actor=ACTOR, action="playbook.adopt",
                            target=f"playbook_draft:{draft_id}",
                            reason=f"signed off by {found.signed_off_by}",
                            outputs={"runbook": rb.id, "fault_class": found.fault_class})
        return rb

    # --- helpers --------------------------------------------------------------------

    def _update(self, action: str, draft_id: int, fields: Mapping[str, Any], decision: str,
                reason: str, outputs: Mapping[str, Any]) -> None:
        now = self.service.clock.now()
        with self.service.db.sessions() as session:
            self._drafts.update(session, draft_id, at=now, **fields)
            entry = self.service.audit.append(
                session, actor=ACTOR, action=action, target=f"playbook_draft:{draft_id}",
                reason=reason[:2000], decision=decision, outputs=outputs, at=now)
            session.commit()
        self._announce(entry)

    def _deny(self, action: str, draft_id: int, why: str) -> Any:
        with self.service.db.sessions() as session:
            entry = self.service.audit.append(
                session, actor=ACTOR, action=action, target=f"playbook_draft:{draft_id}",
                reason=why[:2000], decision="deny", outputs={"denied": why[:2000]},
                at=self.service.clock.now())
            session.commit()
        self._announce(entry)
        raise PlaybookError(why)

    def _announce(self, entry: AuditEntry) -> None:
        self.service.bus.publish(AuditAppended(entry))

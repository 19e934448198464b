"""Where errors start, read from log templates: what each service writes now that it did
not write while things were normal.

A fault changes what the faulty code does, so the faulty service writes kinds of lines
it did not write before (an exception, an early return's warning): new templates. Its
callers then write their own new lines about the failed calls, so new templates spread
*up* the call graph from the origin, never down. Three readings follow (after Nezha,
which compares event patterns of a faulty window with a fault-free one, and the PetShop
authors' walk over the call graph from the symptom):

- new: a WARN/ERROR template of the service not seen in the reference windows (the
  fault-free history and the minutes just before the symptom). A template older than
  the symptom is the service's normal, however alarming its words;
- surging: a template it did write, now at SURGE times its rate of the minutes just
  before (when anything at all was written, or kept, then) and significantly so (the
  Poisson log-likelihood ratio of the two counts): an error burst;
- origin: a service with such templates none of whose (transitive) callees has any is
  where the trouble entered; one whose callees do may only be reporting theirs, and
  keeps ONWARD of its strength.

A kind of line counts, not how many of it: a chatty service writing one new warning
many times says no more than a quiet one writing it a few times (each template counts
1 + ln(lines), a warning's half as much as an error's). Only the templates' shape and
level are read, never a service's name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from agents.investigator_gaps import Gap
from agents.investigator_lexicon import classify_log
from agents.investigator_scoring import Candidate, Part, ServiceView
from agents.investigator_text import hhmmss
from console.storage.repos_evidence import TemplateStat

class LogTemplates(Protocol):
    """The part of the investigator's evidence source read here."""

    def log_templates(self, start: datetime, end: datetime,
                      services: Iterable[str] | None = None, *,
                      history_from: datetime | None = None) -> list[TemplateStat]: ...


LEVELS = frozenset({"WARN", "ERROR"})
SURGE = 4.0  # a template at this many times its recent rate is surging...
SURGE_G = 10.0  # ...when the counts' log-likelihood ratio says it is no chance (p ~ 1e-5)
HALF = 3.0  # the raw score at which the strength is one half: one new template, 7 lines
# A WARN line is its writer saying it coped (a retry, a default answer), an ERROR that it
# failed: a new kind of warning counts this much of a new kind of error.
WARNED = 0.5
ALL_ALONG = 0.05  # the chance below which a silence says a template had not begun
ONWARD = 0.3  # what a service keeps whose callees wrote new templates too
CODE_FAULTS = ("bad_deploy", "config_error")  # the classes a new kind of error reads as


@dataclass(frozen=True, slots=True)
class LogFinding:
    """A service whose logs changed: `strength` in [0, 1), the templates that did, and a
    sentence saying why."""

    service: str
    strength: float
    summary: str
    ref: str
    fault: str | None  # the class its templates name, if any
    templates: tuple[TemplateStat, ...]
    origin: bool


def _g(now: float, expected: float) -> float:
    """Poisson log-likelihood ratio of `now` lines where `expected` were due."""
    if now <= expected or expected <= 0:
        return 0.0
    return now * math.log(now / expected) - (now - expected)


def log_findings(reference: Iterable[TemplateStat], recent: Sequence[TemplateStat],
                 current: Iterable[TemplateStat], recent_minutes: float,
                 current_minutes: float,
                 descendants: Mapping[str, frozenset[str]]) -> dict[str, LogFinding]:
    """The services whose logs changed (see the module docstring). `reference`: the
    templates of the fault-free history; `recent`: of the minutes just before the
    symptom (`recent_minutes` long); `current`: since then (`current_minutes`)."""
    normal = {(t.service, t.template_id) for t in reference}
    before = {(t.service, t.template_id): t.lines for t in recent}
    normal |= set(before)
    current = list(current)
    # Where nothing was written (or kept) just before the symptom, the log is looked at
    # again only from its first line after it: a kind of line that was there as soon as
    # the looking began may be older than the fault (see _all_along).
    looking = None if before or not current else min(t.first_at for t in current)
    raw: dict[str, float] = {}
    kept: dict[str, list[tuple[TemplateStat, str]]] = {}
    for t in current:
        if t.level not in LEVELS:
            continue
        key = (t.service, t.template_id)
        weight = (1.0 + math.log(max(1, t.lines))) * (1.0 if t.level == "ERROR" else WARNED)
        if key not in normal:
            if looking is not None and _all_along(t, looking, current_minutes):
                continue  # it may have been written all along: not known to be new
            how = "new"
        elif not before:
            continue  # nothing was written (or kept) just before: no rate to surge from
        else:
            # rates per minute; half a line over the recent minutes is the prior of a
            # template seen only in the older history
            expected = (before.get(key, 0) + 0.5) * current_minutes / max(recent_minutes,
                                                                          1.0)
            if t.lines < SURGE * expected or _g(t.lines, expected) < SURGE_G:
                continue
            how = "surging"
            weight *= 0.5
        raw[t.service] = raw.get(t.service, 0.0) + weight
        kept.setdefault(t.service, []).append((t, how))
    out: dict[str, LogFinding] = {}
    for service, score in raw.items():
        below = sorted(s for s in descendants.get(service, frozenset()) if s in raw)
        origin = not below
        value = score if origin else score * ONWARD
        templates = sorted(kept[service], key=lambda pair: -pair[0].lines)
        first, how = templates[0]
        pattern = classify_log(" ".join((first.template, *first.examples)))
        summary = (f"{service} writes {len(templates)} kind(s) of WARN/ERROR line it did "
                   f"not write while normal, e.g. {how} since {hhmmss(first.first_at)}: "
                   f"'{first.template[:120]}' ({first.lines} lines)")
        if not origin:
            summary += f"; so do {', '.join(below[:3])}, which it calls"
        out[service] = LogFinding(service, value / (value + HALF), summary,
                                  f"log:{service}/{first.template_id}",
                                  pattern.fault_class if pattern is not None else None,
                                  tuple(t for t, _ in templates), origin)
    return out


def _all_along(t: TemplateStat, looking: datetime, current_minutes: float) -> bool:
    """Whether a template may have been written all along before `looking` began: a
    template written at its rate since then would have shown within the silence before
    its first line with a chance of exp(-rate x silence); only a silence that chance
    makes unlikely (below ALL_ALONG) says it began later, with the fault."""
    rate = t.lines / max(current_minutes, 1.0)  # lines a minute since the symptom
    silence = max(0.0, (t.first_at - looking).total_seconds() / 60.0)
    return math.exp(-rate * silence) >= ALL_ALONG


def with_logs(ranked: list[Candidate], views: Mapping[str, ServiceView],
              findings: Mapping[str, LogFinding], fault_classes: Sequence[str],
              weight: float) -> list[Candidate]:
    """The ranking with the logs' findings as evidence: on the service's best-scored
    candidate of the finding's class (else its best-scored one), or on a new candidate
    when the metrics scored none (a code fault's exception moves no resource metric).
    Best first again."""
    if not findings or not fault_classes:
        return ranked
    for service, finding in sorted(findings.items()):
        if service not in views:
            continue  # not a candidate of this incident
        mine = [c for c in ranked if c.service == service]
        same = [c for c in mine if c.fault_class == finding.fault]
        if same or mine:
            target = max(same or mine, key=lambda c: c.score)
        else:
            target = Candidate(service, _class_for(finding, fault_classes), 0.0)
            ranked.append(target)
        target.parts.append(Part("log", finding.summary, finding.ref,
                                 weight * finding.strength))
        target.add("log_change", weight, finding.strength)
    ranked.sort(key=lambda c: (-c.score, c.service, c.fault_class))
    return ranked


def _class_for(finding: LogFinding, fault_classes: Sequence[str]) -> str:
    if finding.fault in fault_classes:
        return str(finding.fault)
    return next((f for f in CODE_FAULTS if f in fault_classes), fault_classes[0])


def read_log_findings(evidence: LogTemplates, services: Sequence[str],
                      reference: tuple[datetime, datetime], symptom: datetime,
                      now: datetime, recent: timedelta,
                      descendants: Mapping[str, frozenset[str]],
                      ) -> tuple[dict[str, LogFinding], list[Gap]]:
    """The findings of one investigation, and what the logs could not tell (its gaps).

    `reference` is the fault-free history (live, the baseline before the symptom; a
    recording may hold a fault-free window of its own before its start), `recent` the
    minutes before `symptom` that count as normal too (a recording's window often
    begins inside an earlier fault's trouble, so only its last minutes before the
    symptom are taken as normal). With lines after the symptom but none at all before
    it, every kind of line would look new: nothing is read as new then, and the gap
    says so (a source that holds no logs has nothing to say, and no gap)."""
    start, end = reference
    end = min(end, symptom)
    before = evidence.log_templates(symptom - recent, symptom, services)
    if end >= symptom - recent:
        # The history runs up to the recent minutes (live): whether a template was seen
        # in it comes with the templates since the symptom, in one read, and the whole
        # history is read only when none of them was and nothing was written just before.
        now_ = evidence.log_templates(symptom, now, services, history_from=start)
        normal = [t for t in now_ if t.first_seen < symptom]
        if not normal and not before and start < end:
            normal = evidence.log_templates(start, end, services)
    else:
        normal = evidence.log_templates(start, end, services) if start < end else []
        now_ = evidence.log_templates(symptom, now, services)
    if now_ and not normal and not before:
        return {}, [Gap("", "logs", "short_baseline",
                        f"logs: no line of the incident's services before "
                        f"{symptom.isoformat()} to compare with, so no kind of line "
                        "after it could be told new")]
    return log_findings(normal, before, now_, _minutes(symptom - recent, symptom),
                        _minutes(symptom, now), descendants), []


def _minutes(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 60.0)

"""Several causes behind one incident: which candidates compete to explain the same
symptoms, and which stand for a cause of their own.

The correlator groups symptoms by topology and time, so one incident may hold two
faults at once (a bad deploy of one service and, minutes later, a slow database in
another branch of the graph). A single softmax over every candidate assumes exactly one
cause: the second fault is then shown at 0.01 beside the first at 0.99, and nothing acts
on it. Here the candidates are split by explain-away instead:

- a candidate joins a cause when that cause's leader explains its symptoms: its service
  is the leader's own, or one of its callers or where the leader's fault class reaches
  (a surge's callees, a stampede's sibling datastores) and what the candidate reads is
  what the leader's fault can do there (errors and slowness travel up; load travels
  where a surge or a stampede's misses go; a leak, a full disk, an expiring certificate
  or lost instances belong to their own service alone); or when the candidate
  would explain the leader's service and its anomaly began no later than the leader's:
  it competes for the same symptoms;
- one that explains the leader's service but began clearly later cannot be what the
  earlier symptoms came from: a second fault that joined the incident; nor can a leader
  explain symptoms that were there clearly before its own began;
- one whose evidence holds a change on its own service, made clearly after the leader's
  trouble began and followed by its own signature, is a fault of its own too, even
  where the leader's symptoms reach (a deploy on an already unwell service);
- a candidate related to no cause starts one of its own when it stands out by itself
  (its signature is clear and its score beats "none of these"); a faint one stays an
  alternative of the first cause, as before;
- a zone's partition is one cause, whichever services lost instances there.

Each cause's candidates then get a softmax of their own against "none of these", so the
probabilities of one cause no longer take from another's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from agents.investigator_scoring import ADDS_LOAD, LOAD_BORNE, TRAVELS, Candidate, calibrate

# A candidate whose anomaly began this much after the cause's leader's (seconds) is not
# what the leader's earlier symptoms came from.
ONSET_SLACK_S = 90.0
# What a candidate needs to stand for a cause of its own: a clear signature...
MIN_OWN_SIGNATURE = 0.3


@dataclass
class CauseGroup:
    """The candidates of one cause, best first (the first is its leader)."""

    members: list[Candidate] = field(default_factory=list)

    @property
    def leader(self) -> Candidate:
        return self.members[0]


def group_causes(ranked: Sequence[Candidate], *,
                 explains: Callable[[Candidate, str], bool],
                 onset: Callable[[Candidate], float | None],
                 same_zone: Callable[[Candidate, Candidate], bool],
                 null_score: float,
                 loads: Callable[[Candidate, str], bool] | None = None) -> list[CauseGroup]:
    """Split `ranked` (best score first) into causes; the first group holds the best
    candidate. `explains(c, service)`: c's fault would explain that service's symptoms.
    `onset(c)`: when c's anomaly began (epoch seconds, None when unseen). `loads(c,
    service)`: c's fault puts extra load on that service (default: wherever it
    explains)."""
    groups: list[CauseGroup] = []
    loads = loads or explains
    for cand in ranked:
        home = next((g for g in groups
                     if _related(cand, g.leader, explains, onset, same_zone, loads)), None)
        if home is None and groups and not _stands_alone(cand, null_score):
            home = groups[0]  # too faint for a cause of its own: an alternative, as before
        if home is None:
            groups.append(CauseGroup([cand]))
        else:
            home.members.append(cand)
    return groups


def transmits(leader_class: str, cand_class: str, loaded: bool = True) -> bool:
    """Whether a fault of `leader_class` on one service can show as `cand_class` on
    another service within its reach; `loaded`: that service is where the leader's
    extra load lands (a surge's own service and everything it calls, a stampede's
    sibling datastores), not merely one of its callers."""
    return cand_class in TRAVELS or (cand_class in LOAD_BORNE and loaded
                                     and leader_class in ADDS_LOAD)


def _related(cand: Candidate, leader: Candidate,
             explains: Callable[[Candidate, str], bool],
             onset: Callable[[Candidate], float | None],
             same_zone: Callable[[Candidate, Candidate], bool],
             loads: Callable[[Candidate, str], bool]) -> bool:
    if cand.service == leader.service:
        return True  # two readings of the same service's symptoms
    theirs = onset(leader)
    if cand.changed_at is not None and theirs is not None and \
            cand.changed_at > theirs + ONSET_SLACK_S:
        return False  # its own change, made after the leader's trouble began, made it worse
    began = onset(cand)
    if explains(leader, cand.service) and transmits(leader.fault_class, cand.fault_class,
                                                   loads(leader, cand.service)):
        # the leader explains its symptoms away, unless they were there well before it
        return began is None or theirs is None or began >= theirs - ONSET_SLACK_S
    if same_zone(cand, leader):
        return True
    if not explains(cand, leader.service) or not transmits(
            cand.fault_class, leader.fault_class, loads(cand, leader.service)):
        return False
    if leader.changed_at is not None and began is not None and \
            leader.changed_at > began + ONSET_SLACK_S:
        return False  # the leader's own later change made it worse, not this
    # It would explain the leader's symptoms, unless those were there well before it.
    return began is None or theirs is None or began <= theirs + ONSET_SLACK_S


def _stands_alone(cand: Candidate, null_score: float) -> bool:
    return cand.signature >= MIN_OWN_SIGNATURE and cand.score >= null_score


def posteriors(groups: Sequence[CauseGroup], temperature: float, null_score: float,
               later: tuple[float, float] | None = None
               ) -> list[list[tuple[Candidate, float]]]:
    """Per cause, its candidates with their probability among themselves and "none of
    these". The first cause has the calibration of one cause; `later` (temperature,
    null score) is that of every further one, fitted apart: a cause that stands beside a
    stronger one is more often a reading of that one's wake than a fault of its own."""
    out = []
    for index, g in enumerate(groups):
        t, null = (temperature, null_score) if index == 0 or later is None else later
        out.append(list(zip(g.members, calibrate([c.score for c in g.members], t, null),
                            strict=True)))
    return out


def by_service_zone(zones: Mapping[str, frozenset[str]]
                    ) -> Callable[[Candidate, Candidate], bool]:
    """Two partition candidates in a zone where both lost instances are one cause."""
    def same(a: Candidate, b: Candidate) -> bool:
        if a.fault_class != "network_partition" or b.fault_class != "network_partition":
            return False
        return bool(zones.get(a.service, frozenset()) & zones.get(b.service, frozenset()))

    return same

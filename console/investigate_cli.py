"""`watchfloor investigate --recording DIR [--json]`: the investigator, unchanged, on a
recorded incident (console/recording.py) instead of a live estate.

The agents are not imported here (the core does not reach into agents/): the command
line's composition root hands the investigator's class and settings in, as the runtime
does for the live console. The recording decides only what a live source would: what
the history holds. The baseline is everything the recording holds before the symptom,
and every candidate is read (a recording costs nothing to read; see
`InvestigatorSettings.screen`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli_args import parse_moment

if TYPE_CHECKING:  # imported by the functions that need it: `watchfloor` (the console)
    # builds this command's parser on its way to the window
    from console.recording import Recording

COMMANDS = ("investigate",)
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MIN_HISTORY = 6  # samples a series needs before the symptom (the investigator's minimum)


def add_parser(sub: Any) -> None:
    inv = sub.add_parser(
        "investigate", help="rank the likely root causes of a recorded incident",
        description="Run the investigator on a recorded incident window (README, "
                    "\"Recorded incidents\"; the PetShop and Nezha dataset layouts are read "
                    "too) and print its ranked candidates with evidence and confidence. "
                    "Nothing is stored. Exit 2 on a recording that cannot be read.")
    inv.add_argument("--recording", type=Path, required=True, metavar="DIR")
    inv.add_argument("--service", action="append", default=None, metavar="NAME",
                     help="the service in trouble (default: the manifest's symptom)")
    inv.add_argument("--at", type=parse_moment, default=None, metavar="T",
                     help="when the trouble was first seen (default: the manifest's)")
    inv.add_argument("--top", type=int, default=5, help="hypotheses to show (default 5)")
    inv.add_argument("--json", action="store_true", help="print one JSON object")


def settings_for(recording: Recording, opened_at: datetime, settings_class: Any,
                 max_hypotheses: int = 5, rank_all: bool = False) -> Any:
    """The investigator's settings for a recording: its whole history before the symptom
    is the baseline, which ends two samples before it at most (live, two minutes); a log
    template is new when first seen after the baseline ended (what the baseline holds
    is the service's normal, and the recording holds nothing older to tell). `rank_all`:
    every candidate is listed, the ones no signature scored last (a settings class
    without that setting ignores it)."""
    default = settings_class()
    step = timedelta(seconds=recording.step)
    history = recording.history_before(opened_at) + step
    gap = min(default.baseline_gap, 2 * step)
    extra = {"rank_all": rank_all} if rank_all and hasattr(default, "rank_all") else {}
    if hasattr(default, "early_baseline"):  # the symptom's time is given: nothing after it
        extra["early_baseline"] = False    # is the service's normal
    if hasattr(default, "log_quiet_until"):  # what lies before the window is the
        extra["log_quiet_until"] = recording.start  # recording's fault-free history
    return dataclasses.replace(default, baseline=max(default.baseline, history),
                               baseline_gap=gap, new_logs=gap, screen=False,
                               max_hypotheses=max_hypotheses, **extra)


def investigate(recording: Recording, investigator_class: Any, settings_class: Any, *,
                services: Sequence[str] | None = None, at: datetime | None = None,
                max_hypotheses: int = 5) -> tuple[Any, list[Any]]:
    """(incident, hypotheses best first) for a recording."""
    found = investigation(recording, investigator_class, settings_class, services=services,
                          at=at, max_hypotheses=max_hypotheses)
    return found.incident, found.hypotheses


@dataclasses.dataclass(frozen=True)
class Investigation:
    """One recording's investigation: the incident given, the hypotheses best first,
    and what could not be checked (the investigator's `last_gaps`, as dicts)."""

    incident: Any
    hypotheses: list[Any]
    gaps: list[dict[str, str]]


def investigation(recording: Recording, investigator_class: Any, settings_class: Any, *,
                  services: Sequence[str] | None = None, at: datetime | None = None,
                  max_hypotheses: int = 5, rank_all: bool = False) -> Investigation:
    """The investigation of a recording; `rank_all` lists every candidate service (the
    unscored last, at confidence 0), so that a symptom always gets an answer."""
    from console.actions.runbooks import load_library
    from console.recording_evidence import RecordedEvidence

    incident = recording.incident(services, at)
    classes = sorted({f for book in load_library().values() for f in book.applies_to.faults})
    investigator = investigator_class(
        recording.metrics(), recording.topology, classes, RecordedEvidence(recording),
        settings_for(recording, incident.opened_at, settings_class, max_hypotheses,
                     rank_all))
    found = investigator.investigate(incident, recording.end)
    gaps = [g.as_dict() for g in getattr(investigator, "last_gaps", [])]
    return Investigation(incident, found, gaps)


def dispatch(args: argparse.Namespace, investigator_class: Any, settings_class: Any) -> int:
    from console.recording import RecordingError
    from console.recording_adapters import open_recording

    try:
        recording = open_recording(args.recording)
        done = investigation(recording, investigator_class, settings_class,
                             services=args.service, at=args.at,
                             max_hypotheses=max(1, args.top), rank_all=True)
    except RecordingError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    incident, found = done.incident, done.hypotheses[:max(1, args.top)]
    if args.json:
        sys.stdout.write(json.dumps(report(recording, incident, found, done.gaps)) + "\n")
        return EXIT_OK
    out = [f"recording {recording.name}: {recording.start.isoformat()} .. "
           f"{recording.end.isoformat()}, {len(recording.services())} services, step "
           f"{recording.step:g}s",
           f"symptom: {', '.join(incident.services)} since {incident.opened_at.isoformat()}"]
    out += [f"note: {note}" for note in recording.notes]
    if not any(h.confidence > 0 for h in found):  # at most the unscored candidates
        before = recording.samples_before(incident.opened_at)
        out.append("no likely cause: " + (
            f"the recording holds at most {before} sample(s) of a series before the "
            "symptom, too few to know any service's normal (give it a baseline)"
            if before < MIN_HISTORY else
            "nothing the recording holds stands out from its own normal before the symptom"))
    for rank, h in enumerate(found, 1):
        out.append(f"{rank}. {h.service} / {h.fault_class}  confidence {h.confidence:.2f}  "
                   f"(score {h.score:.2f}, {h.signals} kind(s) of evidence)")
        out += [f"     - [{e.kind}] {e.summary}  <{e.ref}>" for e in h.evidence]
    if done.gaps:
        out.append("investigation gaps (not checked):")
        out += [f"  - {g['detail']}" for g in done.gaps]
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def report(recording: Recording, incident: Any, found: Sequence[Any],
           gaps: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    return {
        "schema": "watchfloor.investigation/1",
        "recording": recording.name,
        "window": {"start": recording.start.isoformat(), "end": recording.end.isoformat(),
                   "step": recording.step},
        "symptom": {"services": list(incident.services),
                    "at": incident.opened_at.isoformat()},
        "notes": list(recording.notes),
        "candidates": [{"service": h.service, "fault_class": h.fault_class,
                        "confidence": h.confidence, "score": h.score, "signals": h.signals,
                        "evidence": [{"kind": e.kind, "summary": e.summary, "ref": e.ref,
                                      "weight": e.weight} for e in h.evidence]}
                       for h in found],
        "investigation_gaps": [dict(g) for g in gaps],
    }

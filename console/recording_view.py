"""A recorded incident as the console's panes show one: the incident, its timeline, the
metrics of the services it implicates and the investigator's ranked hypotheses.

`File -> Open recording` (widgets/recording_window.py) shows a recording folder
(console/recording.py, or a PetShop/Nezha case) read-only, in the usual panes. What it
shows is worked out here, without Qt, so that it runs on a worker thread (a big
recording takes seconds to read and investigate) and is tested headless. The
investigation is `investigate_cli.investigate`, the path `watchfloor investigate`
takes: the same investigator the live agents use, handed in by the caller (the core
does not import agents/), on the same settings, so the window and the command line
never disagree about a recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from console.domain import Hypothesis, IncidentInfo, Severity
from console.recording import Recording, Truth
from console.sources.metrics import Point

AGENT = "investigator"
MAX_PLOTTED = 6  # services on the plot: the symptom's and the likely causes'
PLOT_METRICS = ("error_rate", "latency_p99_ms", "latency_p50_ms", "request_rate",
                "saturation", "cpu", "memory", "disk", "pool_usage", "queue_depth")
"""The order the plot offers a recording's metrics in (the rest follow by name)."""

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ViewEvent:
    """One timeline row (the fields of widgets.incident_models.TimelineEntry)."""

    key: str
    at: datetime
    kind: str  # signal | change | agent | note
    actor: str
    summary: str
    ref: str = ""
    detail: str = ""
    tone: str = ""  # red | amber | green | blue | ""
    mark: str = ""  # a label where the plot marks it with a line ("" = no line)


@dataclass(frozen=True)
class RecordingView:
    """Everything the recording window shows; `incident.state` is "recorded"."""

    name: str
    folder: Path
    start: datetime
    end: datetime
    step: float
    service_count: int
    symptom: tuple[str, ...]  # the services the trouble was seen on
    symptom_at: datetime
    incident: IncidentInfo
    hypotheses: tuple[Hypothesis, ...]
    timeline: tuple[ViewEvent, ...]
    # (service, metric) -> samples, for the implicated services, from one window's
    # length before the window (their normal) to its end
    series: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    plotted: tuple[str, ...] = ()  # services whose series are there, the most implicated first
    metrics: tuple[str, ...] = ()  # metrics those series hold, in PLOT_METRICS order
    focus_metric: str = ""  # the metric the leading hypothesis rests on
    notes: tuple[str, ...] = ()
    truth: Truth | None = None  # the recording's own label (never shown to the investigator)
    took_ms: float = 0.0

    @property
    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None


def open_view(folder: Path, investigator_class: Any, settings_class: Any, *,
              progress: Progress | None = None, max_hypotheses: int = 5) -> RecordingView:
    """Read the recording at `folder` (any layout `open_recording` knows), investigate
    it and return its view. RecordingError (naming the file and the field or line)
    when it cannot be read. Slow on a big recording: call it off the GUI thread."""
    from console.investigate_cli import investigate, settings_for
    from console.recording_adapters import open_recording

    say = progress or (lambda _text: None)
    say(f"Reading {Path(folder).name}\u2026")
    recording = open_recording(Path(folder))
    say(f"Investigating {len(recording.services())} services of {recording.name}\u2026")
    started = time.perf_counter()
    incident, found = investigate(recording, investigator_class, settings_class,
                                  max_hypotheses=max_hypotheses)
    took_ms = (time.perf_counter() - started) * 1000.0
    settings = settings_for(recording, incident.opened_at, settings_class, max_hypotheses)
    return view_of(recording, incident, found, folder=Path(folder),
                   new_logs=settings.new_logs, took_ms=took_ms)


def implicated(symptom: Sequence[str], hypotheses: Sequence[Hypothesis]) -> list[str]:
    """The anomalous nodes: the symptom's services, then each hypothesis's service whose
    own metrics departed from its normal (metric evidence), best ranked first."""
    out = list(dict.fromkeys(symptom))
    for h in hypotheses:
        if h.service not in out and any(e.kind == "metric" for e in h.evidence):
            out.append(h.service)
    return out


def view_of(recording: Recording, incident: IncidentInfo, hypotheses: Sequence[Hypothesis],
            *, folder: Path, new_logs: timedelta, took_ms: float = 0.0) -> RecordingView:
    """The view of an investigated recording; `incident` is what the investigator was
    given (the symptom), `new_logs` how recent a log template must be to be new."""
    services = implicated(incident.services, hypotheses)
    shown = IncidentInfo(1, _title(recording, incident), Severity.CRITICAL, "recorded",
                         tuple(services), recording.start, recording.end)
    plotted = tuple(services[:MAX_PLOTTED])
    since = recording.start - (recording.end - recording.start)
    series = {key: [p for p in points if since <= p[0] <= recording.end]
              for key, points in recording.series.items() if key[0] in plotted}
    series = {key: points for key, points in series.items() if points}
    present = {metric for _s, metric in series}
    metrics = tuple(m for m in PLOT_METRICS if m in present) + \
        tuple(sorted(present - set(PLOT_METRICS)))
    return RecordingView(
        name=recording.name, folder=folder, start=recording.start, end=recording.end,
        step=recording.step, service_count=len(recording.services()),
        symptom=tuple(incident.services), symptom_at=incident.opened_at, incident=shown,
        hypotheses=tuple(hypotheses),
        timeline=tuple(timeline_of(recording, incident, hypotheses, new_logs, took_ms)),
        series=series, plotted=plotted, metrics=metrics,
        focus_metric=_focus_metric(hypotheses, metrics), notes=tuple(recording.notes),
        truth=recording.truth, took_ms=took_ms)


def _title(recording: Recording, incident: IncidentInfo) -> str:
    what = recording.symptom.description if recording.symptom is not None else ""
    return f"{what or 'trouble on ' + ', '.join(incident.services)} (recording " \
           f"{recording.name})"


def _focus_metric(hypotheses: Sequence[Hypothesis], metrics: Sequence[str]) -> str:
    """The metric of the leading hypothesis's first metric evidence (its ref is
    `metric:<service>/<metric>@<time>`), else the first the plot has."""
    for h in hypotheses[:1]:
        for e in h.evidence:
            if e.kind == "metric" and e.ref.startswith("metric:"):
                metric = e.ref.removeprefix("metric:").partition("@")[0].rpartition("/")[2]
                if metric in metrics:
                    return metric
    return metrics[0] if metrics else ""


def timeline_of(recording: Recording, incident: IncidentInfo,
                hypotheses: Sequence[Hypothesis], new_logs: timedelta,
                took_ms: float = 0.0) -> list[ViewEvent]:
    """The recording's story in time order: the window, its alerts and changes, the log
    templates new at the symptom, the symptom, and the investigation's steps and
    hypotheses (the investigation looks as of the window's end)."""
    from console.recording_evidence import RecordedEvidence

    out = [ViewEvent("note:0", recording.start, "note", "recording",
                     f"recording window opens ({len(recording.services())} services, one "
                     f"sample every {recording.step:g} s)", detail=recording.name)]
    for i, alert in enumerate(sorted(recording.alerts, key=lambda a: a.at)):
        tone = "red" if alert.severity is Severity.CRITICAL else "amber"
        out.append(ViewEvent(f"sig:{i}", alert.at, "signal", alert.source,
                             f"{alert.name} firing on {alert.service}",
                             f"signal:{alert.fingerprint}", tone=tone))
    for chg in sorted(recording.changes, key=lambda c: c.at):
        version = f" {chg.version_from} \u2192 {chg.version_to}" if chg.version_to else ""
        out.append(ViewEvent(f"chg:{chg.id}", chg.at, "change", chg.author,
                             f"{chg.kind} of {chg.service}{version}: {chg.description}",
                             f"change:{chg.id}", tone="blue", mark=chg.kind.replace("_", " ")))
    fresh = incident.opened_at - new_logs
    for t in RecordedEvidence(recording).log_templates(recording.start, recording.end,
                                                       history_from=recording.start):
        if t.level in ("WARN", "ERROR") and t.first_seen >= fresh:
            out.append(ViewEvent(
                f"sig:log:{t.service}/{t.template_id}", t.first_seen, "signal", t.service,
                f"new log template on {t.service} ({t.level}, {t.lines} line(s)): "
                f"{t.template}", f"log:{t.service}/{t.template_id}",
                detail="\n".join(t.examples[:2]), tone="red" if t.level == "ERROR" else "amber"))
    out.append(ViewEvent("note:1", incident.opened_at, "signal", "recording",
                         f"symptom first seen on {', '.join(incident.services)}",
                         detail=recording.symptom.description if recording.symptom else "",
                         tone="red", mark="symptom"))
    out.append(ViewEvent("note:2", recording.end, "note", "recording",
                         "recording window ends"))
    took = f" in {took_ms / 1000.0:.1f} s" if took_ms else ""
    out.append(ViewEvent("ev:0", recording.end, "agent", AGENT,
                         f"investigated the symptom and every service it calls or is "
                         f"called by, against their normal before "
                         f"{incident.opened_at:%H:%M:%S}{took}"))
    if not hypotheses:
        out.append(ViewEvent("ev:1", recording.end, "agent", AGENT,
                             "no likely cause: nothing the recording holds stands out from "
                             "its own normal before the symptom", tone="amber"))
    for rank, h in enumerate(hypotheses, 1):
        out.append(ViewEvent(
            f"ev:{rank}", recording.end, "agent", AGENT,
            f"hypothesis {rank}: {h.key}, confidence {h.confidence:.2f} ({h.signals} "
            f"kind(s) of evidence)", f"hypothesis:{h.key}",
            detail="\n".join(f"[{e.kind}] {e.summary}" for e in h.evidence),
            tone="green" if rank == 1 else ""))
    out.sort(key=timeline_order)
    return out


def timeline_order(event: ViewEvent) -> tuple[float, int, int, str]:
    """Time first; within one instant alerts and new logs (`sig:`), changes (`chg:`),
    the recording's own notes (`note:`), then the investigation (`ev:`), each in its
    number's order: the order the console's timeline keeps its keys in."""
    head, _, tail = event.key.partition(":")
    number = tail.partition(":")[0]
    return (event.at.timestamp(), _KEY_RANK.get(head, 5),
            int(number) if number.isdigit() else 0, event.key)


_KEY_RANK = {"sig": 0, "chg": 1, "note": 2, "ev": 3}

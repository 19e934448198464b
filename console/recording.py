"""Recorded incidents: a folder that holds one incident window, read back as the same
sources the investigator reads live (a `MetricsReader`, a topology, an `EvidenceSource`).

The folder (README, "Recorded incidents"): `manifest.json`, metrics as Prometheus
`query_range` bodies (`metrics/*.json`) and/or long CSV (`metrics/*.csv`), a dependency
graph (edge list or adjacency matrix CSV), and optional changes, logs, alerts and a
fault-free baseline. The manifest maps the recording's metric names onto the
investigator's (METRIC_NAMES), with a scale, an offset and how pods add up to a service.

Real telemetry is untidy, and each untidiness gets a rule rather than a crash: missing
and non-finite samples are dropped; samples are snapped to the window's step grid, so
series whose clocks disagree by less than a step line up (the skew is reported); a
service with metrics but absent from the graph joins it as an isolated node (reported);
a window that holds no sample at all is refused with a clear message.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from console.domain import ChangeEvent, IncidentInfo, Severity, Signal
from console.sources.metrics import METRIC_NAMES, Point

FORMAT = "watchfloor.recording/1"
MAX_FILE = 512 * 1024 * 1024


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file and the line or field."""


# --- the manifest ----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    start: datetime
    end: datetime
    step: float = Field(60.0, gt=0, description="seconds between samples")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a timezone (or are unix seconds)")
        if self.end <= self.start:
            raise ValueError("the window is empty: end must be after start")
        return self


class Symptom(_Strict):
    services: list[str] = Field(min_length=1)
    at: datetime | None = None  # when it was first seen; default: from the alerts
    metric: str = ""
    description: str = ""


class MetricMap(_Strict):
    source: str = Field(min_length=1, description="metric name in the recording")
    scale: float = 1.0
    offset: float = 0.0
    aggregate: Literal["mean", "max", "min", "sum"] = "mean"  # pods of one service


class Graph(_Strict):
    file: str
    format: Literal["edges", "matrix"] = "edges"
    # edges: the first column calls the second; matrix: the row calls the column
    direction: Literal["caller_callee", "callee_caller"] = "caller_callee"


class Baseline(_Strict):
    dir: str  # a folder with its own metrics/ (relative to the recording)
    # none: at its own timestamps; time_of_day: moved by whole days to end just before
    # the window, so that a fault-free day compares like with like
    align: Literal["none", "time_of_day"] = "none"
    span_hours: float = Field(2.0, gt=0, le=48)  # how much of it (time_of_day only)


class Truth(_Strict):
    services: list[str] = Field(min_length=1)
    fault_class: str | None = None
    note: str = ""


class Traces(_Strict):
    """What `watchfloor record` found of trace-derived series (console/record_traces.py):
    the span metrics' backend (None: none), whether a service graph was there, the
    series recorded, and what was missing."""

    span_metrics: str | None = None
    service_graph: bool = False
    series: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)


class Manifest(_Strict):
    format: Literal["watchfloor.recording/1"]
    name: str = Field(min_length=1, max_length=200)
    window: Window
    symptom: Symptom | None = None
    service_label: str = "service"
    metrics: str = "metrics"  # folder of *.json (query_range bodies) and *.csv files
    mapping: dict[str, MetricMap] = Field(default_factory=dict)
    graph: Graph | None = None
    baseline: Baseline | None = None
    changes: str | None = None  # JSON list or JSON lines, as `watchfloor ingest --format changes`
    logs: str | None = None  # JSON lines, as `watchfloor ingest --format logs`
    alerts: str | None = None  # a query_range body of ALERTS{alertstate="firing"}
    truth: Truth | None = None  # for evaluation only; never shown to the investigator
    traces: Traces | None = None  # trace-derived series, as recorded (README, traces)
    source: dict[str, Any] = Field(default_factory=dict)  # provenance, informational

    @model_validator(mode="after")
    def _known_metrics(self) -> Manifest:
        unknown = sorted(set(self.mapping) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(f"mapping: unknown investigator metric(s) {', '.join(unknown)}; "
                             f"known: {', '.join(METRIC_NAMES)}")
        return self


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def read_manifest(folder: Path) -> Manifest:
    path = folder / "manifest.json"
    data = _read_json(path)
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise RecordingError(f"{path}: {_explain(exc)}") from None


# --- raw series ------------------------------------------------------------------------

RawSeries = tuple[dict[str, str], list[tuple[float, float]]]  # labels, (unix ts, value)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE:
            raise RecordingError(f"{path}: larger than {MAX_FILE} bytes")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{path}: not UTF-8 (byte {exc.start})") from None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _number(text: Any) -> float:
    """A sample value: Prometheus writes them as strings ("NaN", "+Inf" included)."""
    if isinstance(text, bool):
        raise ValueError("a boolean is not a sample value")
    if isinstance(text, int | float):
        return float(text)
    if isinstance(text, str):
        return float(text.strip()) if text.strip() else math.nan
    raise ValueError(f"not a number: {text!r}")


def parse_query_range(body: Any, where: str) -> list[RawSeries]:
    """A `query_range` body as Prometheus returns it -> labelled series."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise RecordingError(f"{where}: not a successful Prometheus answer "
                             f"(status {body.get('status') if isinstance(body, dict) else '?'!r}"
                             f"{', ' + str(error) if error else ''})")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise RecordingError(f"{where}: data.resultType: expected 'matrix' (a query_range "
                             f"answer)")
    result = data.get("result")
    if not isinstance(result, list):
        raise RecordingError(f"{where}: data.result: expected a list")
    out: list[RawSeries] = []
    for i, item in enumerate(result):
        spot = f"{where}: data.result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
            raise RecordingError(f"{spot}: expected {{'metric': {{...}}, 'values': [...]}}")
        values = item.get("values")
        if not isinstance(values, list):
            raise RecordingError(f"{spot}.values: expected a list of [timestamp, value]")
        points = []
        for j, pair in enumerate(values):
            try:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise ValueError("expected [timestamp, \"value\"]")
                points.append((_number(pair[0]), _number(pair[1])))
            except ValueError as exc:
                raise RecordingError(f"{spot}.values[{j}]: {exc}") from None
        out.append(({str(k): str(v) for k, v in item.get("metric", {}).items()}, points))
    return out


CSV_COLUMNS = ("timestamp", "service", "metric", "value")


def parse_metrics_csv(text: str, where: str) -> dict[str, list[RawSeries]]:
    """Long CSV: `timestamp,service,metric,value` (+ any label columns, e.g. `pod`)."""
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None or not set(CSV_COLUMNS) <= {h.strip() for h in header}:
        raise RecordingError(f"{where}: line 1: the header must name "
                             f"{', '.join(CSV_COLUMNS)} (got {header})")
    names = [h.strip() for h in header]
    series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    for number, row in enumerate(rows, 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise RecordingError(f"{where}: line {number}: {len(row)} cells, the header has "
                                 f"{len(names)}")
        cells = dict(zip(names, row, strict=True))
        try:
            at, value = _number(cells["timestamp"]), _number(cells["value"])
        except ValueError as exc:
            raise RecordingError(f"{where}: line {number}: {exc}") from None
        labels = tuple(sorted((k, v) for k, v in cells.items()
                              if k not in ("timestamp", "metric", "value")))
        series.setdefault((cells["metric"], labels), []).append((at, value))
    out: dict[str, list[RawSeries]] = {}
    for (metric, labels), points in series.items():
        out.setdefault(metric, []).append((dict(labels), sorted(points)))
    return out


def read_metrics_folder(folder: Path) -> dict[str, list[RawSeries]]:
    """{metric name: series} from every *.json (named by the file) and *.csv in it."""
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder (the recording's metrics)")
    out: dict[str, list[RawSeries]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".json":
            out.setdefault(path.stem, []).extend(parse_query_range(_read_json(path), str(path)))
        elif path.suffix == ".csv":
            for name, series in parse_metrics_csv(_read_text(path), str(path)).items():
                out.setdefault(name, []).extend(series)
    return out


def read_graph(path: Path, spec: Graph) -> dict[str, list[str]]:
    rows = [row for row in csv.reader(_read_text(path).splitlines()) if any(row)]
    if not rows:
        raise RecordingError(f"{path}: the graph file is empty")
    pairs: list[tuple[str, str]] = []
    if spec.format == "edges":
        start = 1 if [c.strip() for c in rows[0][:2]] in (["source", "target"],
                                                         ["caller", "callee"]) else 0
        for number, row in enumerate(rows[start:], start + 1):
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise RecordingError(f"{path}: line {number}: expected 'caller,callee'")
            pairs.append((row[0].strip(), row[1].strip()))
    else:
        columns = [c.strip() for c in rows[0][1:]]
        for number, row in enumerate(rows[1:], 2):
            if len(row) != len(columns) + 1:
                raise RecordingError(f"{path}: line {number}: {len(row)} cells, the header "
                                     f"has {len(columns) + 1}")
            for callee, cell in zip(columns, row[1:], strict=True):
                try:
                    linked = _number(cell) != 0
                except ValueError as exc:
                    raise RecordingError(f"{path}: line {number}: {exc}") from None
                if linked and row[0].strip() != callee:
                    pairs.append((row[0].strip(), callee))
    topology: dict[str, list[str]] = {}
    for a, b in pairs:
        caller, callee = (a, b) if spec.direction == "caller_callee" else (b, a)
        topology.setdefault(caller, [])
        topology.setdefault(callee, [])
        if callee not in topology[caller]:
            topology[caller].append(callee)
    return topology


# --- the recording ---------------------------------------------------------------------


@dataclass
class Recording:
    """One incident window, in memory, as the investigator's sources see it."""

    name: str
    start: datetime
    end: datetime
    step: float
    series: dict[tuple[str, str], list[Point]]  # (service, investigator metric) -> samples
    topology: dict[str, list[str]]
    symptom: Symptom | None = None
    changes: list[ChangeEvent] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)  # console.sources.logs.MinedLog
    alerts: list[Signal] = field(default_factory=list)
    truth: Truth | None = None
    notes: list[str] = field(default_factory=list)  # what was tidied up, for the operator

    def services(self) -> list[str]:
        return sorted({s for s, _ in self.series})

    def samples_in_window(self) -> int:
        return sum(1 for points in self.series.values() for at, _ in points
                   if self.start <= at <= self.end)

    def metrics(self) -> RecordedMetrics:
        return RecordedMetrics(self.series, self.end)

    def incident(self, services: Sequence[str] | None = None,
                 at: datetime | None = None) -> IncidentInfo:
        """The incident to investigate: the symptom (or the given services and moment)."""
        chosen = list(services or (self.symptom.services if self.symptom else []))
        if not chosen:
            chosen = sorted({a.service for a in self.alerts})
        if not chosen:
            raise RecordingError(f"{self.name}: the recording names no symptom and holds no "
                                 "alerts: say which service is in trouble")
        moment = at or (self.symptom.at if self.symptom else None)
        if moment is None:
            fired = [a.at for a in self.alerts if a.service in chosen]
            moment = min(fired) if fired else self.start + (self.end - self.start) / 2
        if not self.start <= moment <= self.end:
            raise RecordingError(f"{self.name}: the symptom's moment {moment.isoformat()} is "
                                 f"outside the window {self.start.isoformat()} .. "
                                 f"{self.end.isoformat()}")
        return IncidentInfo(0, f"recorded incident {self.name}", Severity.CRITICAL, "open",
                            tuple(chosen), moment)

    def samples_before(self, moment: datetime) -> int:
        """The most samples any one series holds before `moment`."""
        return max((sum(1 for at, _ in p if at < moment) for p in self.series.values()),
                   default=0)

    def history_before(self, moment: datetime) -> timedelta:
        """How far back the samples reach from `moment` (the baseline the data allows)."""
        first = min((p[0][0] for p in self.series.values() if p), default=moment)
        return max(moment - first, timedelta(0))


class RecordedMetrics:
    """A `MetricsReader` over a recording; `latest` answers as of the window's end."""

    def __init__(self, series: Mapping[tuple[str, str], list[Point]], now: datetime) -> None:
        self._series = {key: sorted(points) for key, points in series.items() if points}
        self._times = {key: [at for at, _ in points] for key, points in self._series.items()}
        self._now = now

    def services(self) -> Sequence[str]:
        return sorted({s for s, _ in self._series})

    def series(self, service: str, metric: str, start: datetime,
               end: datetime) -> list[Point]:
        points = self._series.get((service, metric))
        if not points:
            return []
        times = self._times[(service, metric)]
        return points[bisect_left(times, start):bisect_right(times, end)]

    def latest(self, service: str) -> Mapping[str, float]:
        out = {}
        for (s, metric), points in self._series.items():
            if s != service:
                continue
            upto = bisect_right(self._times[(s, metric)], self._now)
            if upto:
                out[metric] = points[upto - 1][1]
        return out


_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "mean": statistics.fmean, "max": max, "min": min, "sum": math.fsum}


def map_series(raw: Mapping[str, list[RawSeries]], mapping: Mapping[str, MetricMap],
               service_label: str, grid_start: float, step: float,
               notes: list[str], where: str) -> dict[tuple[str, str], list[Point]]:
    """Raw series -> (service, investigator metric) samples on the step grid.

    Without a mapping, a recorded name that is an investigator metric (or ends in
    `_<metric>`, as the embedded estate's `watchfloor_service_<metric>` do) maps to it."""
    rules = dict(mapping)
    if not rules:
        for name in raw:
            metric = next((m for m in METRIC_NAMES if name == m or name.endswith("_" + m)),
                          None)
            if metric is not None and "baseline" not in name and metric not in rules:
                rules[metric] = MetricMap(source=name)
    missing = sorted(m.source for m in rules.values() if m.source not in raw)
    if missing:
        notes.append(f"{where}: no samples of {', '.join(missing)}")
    out: dict[tuple[str, str], list[Point]] = {}
    skewed: set[str] = set()
    dropped = 0
    for metric, rule in sorted(rules.items()):
        cells: dict[tuple[str, int], list[float]] = {}
        for labels, points in raw.get(rule.source, []):
            service = labels.get(service_label)
            if not service:
                continue
            for ts, value in points:
                if not math.isfinite(value):
                    dropped += 1
                    continue
                slot = round((ts - grid_start) / step)
                if abs(ts - (grid_start + slot * step)) > 1e-6:
                    skewed.add(f"{service}/{rule.source}")
                cells.setdefault((service, slot), []).append(value)
        for (service, slot), values in sorted(cells.items()):
            value = rule.offset + rule.scale * _AGGREGATE[rule.aggregate](values)
            at = datetime.fromtimestamp(grid_start + slot * step, UTC)
            out.setdefault((service, metric), []).append((at, value))
    if dropped:
        notes.append(f"{where}: dropped {dropped} missing or non-finite sample(s)")
    if skewed:
        names = sorted(skewed)
        notes.append(f"{where}: {len(names)} series off the {step:g}s grid (clock skew) were "
                     f"snapped to it: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    return out


def align_baseline(series: dict[tuple[str, str], list[Point]], start: datetime,
                   spec: Baseline) -> dict[tuple[str, str], list[Point]]:
    """Keep the baseline at its own times, or move it by whole days to end before `start`."""
    if spec.align == "none":
        return series
    last = max((p[-1][0] for p in series.values() if p), default=None)
    if last is None:
        return series
    days = math.ceil((start - last).total_seconds() / 86400.0 - 1e-9)
    shift = timedelta(days=days)
    lo = start - timedelta(hours=spec.span_hours)
    out = {}
    for key, points in series.items():
        moved = [(at + shift, v) for at, v in points if lo <= at + shift < start]
        if moved:
            out[key] = moved
    return out


def assemble(name: str, window: Window, series: dict[tuple[str, str], list[Point]],
             topology: dict[str, list[str]], *, symptom: Symptom | None = None,
             baseline: dict[tuple[str, str], list[Point]] | None = None,
             changes: Iterable[ChangeEvent] = (), logs: Iterable[Any] = (),
             alerts: Iterable[Signal] = (), truth: Truth | None = None,
             notes: list[str] | None = None) -> Recording:
    """Put a recording together (adapters build one in memory through this too)."""
    notes = list(notes or [])
    merged = {key: list(points) for key, points in series.items()}
    for key, points in (baseline or {}).items():
        have = {at for at, _ in merged.get(key, [])}
        merged.setdefault(key, []).extend(p for p in points if p[0] not in have)
    for points in merged.values():
        points.sort()
    recording = Recording(name, window.start, window.end, window.step, merged,
                          {k: list(v) for k, v in topology.items()}, symptom, list(changes),
                          list(logs), list(alerts), truth, notes)
    absent = sorted(set(recording.services()) - set(recording.topology))
    if absent:
        for service in absent:
            recording.topology[service] = []
        notes.append(f"{len(absent)} service(s) with metrics are not in the graph and join it "
                     f"without edges: {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}")
    if recording.samples_in_window() == 0:
        raise RecordingError(f"{name}: no usable sample inside the window "
                             f"{window.start.isoformat()} .. {window.end.isoformat()}")
    if symptom is not None:
        unknown = [s for s in symptom.services
                   if s not in recording.topology and s not in recording.services()]
        if unknown:
            raise RecordingError(f"{name}: symptom.services: {', '.join(unknown)} has no "
                                 "metrics and is not in the graph")
    return recording


def load_recording(folder: Path) -> Recording:
    """Read a recording folder (see the module docstring); RecordingError when it is bad."""
    from console.recording_evidence import read_alerts, read_changes, read_logs
    from console.recording_traces import trace_series

    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder")
    manifest = read_manifest(folder)
    window = manifest.window
    notes: list[str] = []
    grid = window.start.timestamp()
    raw = read_metrics_folder(folder / manifest.metrics)
    series = map_series(raw, manifest.mapping, manifest.service_label, grid, window.step,
                        notes, manifest.metrics)
    series.update(trace_series(raw, grid, window.step))  # {} without trace-derived series
    if manifest.traces is not None:
        notes += [f"traces: {gap}" for gap in manifest.traces.gaps]
    baseline = None
    if manifest.baseline is not None:
        base_dir = folder / manifest.baseline.dir
        base_raw = read_metrics_folder(base_dir / "metrics")
        base = map_series(base_raw, manifest.mapping, manifest.service_label, grid,
                          window.step, notes, f"{manifest.baseline.dir}/metrics")
        base.update(trace_series(base_raw, grid, window.step))
        baseline = align_baseline(base, window.start, manifest.baseline)
    topology: dict[str, list[str]] = {}
    if manifest.graph is not None:
        topology = read_graph(folder / manifest.graph.file, manifest.graph)
    else:
        notes.append("no dependency graph: every service is investigated on its own")
    return assemble(
        manifest.name, window, series, topology, symptom=manifest.symptom, baseline=baseline,
        changes=read_changes(folder / manifest.changes) if manifest.changes else (),
        logs=read_logs(folder / manifest.logs) if manifest.logs else (),
        alerts=read_alerts(folder / manifest.alerts, manifest.service_label)
        if manifest.alerts else (),
        truth=manifest.truth, notes=notes)

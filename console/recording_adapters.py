"""Public root-cause datasets read as recordings, in place (they are never copied into
the project): PetShop (arXiv 2311.04806) and Nezha (IntelligentDDS/Nezha) as laid out
in ../shared/datasets, plus `open_recording`, which recognises a folder's layout.

How each presents its data to the investigator (general rules, the same for every case):
- PetShop: CloudWatch-style metrics per component at 5-minute steps. The investigator's
  tail-latency signal (latency_p99_ms) is fed the `latency` Average, the statistic the
  dataset states its symptoms on (target.json `agg`): a p99 of the few requests some
  components see in five minutes is mostly noise. `latency` p50 becomes
  latency_p50_ms, `requests` Sum per step request_rate per second, and `availability`
  (percent) error_rate. The graph
  is its adjacency matrix (row calls column). The baseline is the scenario's
  fault-free recording (`noissue/`), moved by whole days to the same time of day just
  before the window; without one (the temporal scenarios) only the window is there.
- Nezha: per-pod metrics at 1-minute steps; pods add up to their service (success rate
  and CPU/memory use averaged, the p99 latency at its worst pod, workload summed). A
  success rate or a latency percentile of a pod that served no request in that minute
  is undefined (Nezha writes 0 % success, and seconds of latency from empty histogram
  buckets), so those samples are dropped. The symptom is the entry service at the
  incident minute; the baseline is the recording's own history plus its `baseline/`.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.recording_logs import nezha_logs
from console.recording_traces import trace_series
from console.recording import (
    Baseline,
    MetricMap,
    RawSeries,
    Recording,
    RecordingError,
    Symptom,
    Truth,
    Window,
    _number,
    _read_json,
    _read_text,
    align_baseline,
    assemble,
    load_recording,
    map_series,
    parse_query_range,
    read_graph,
)

PETSHOP_STEP = 300.0
PETSHOP_MAPPING = {
    "latency_p99_ms": MetricMap(source="latency:Average", scale=1000.0),
    "latency_p50_ms": MetricMap(source="latency:p50", scale=1000.0),
    "request_rate": MetricMap(source="requests:Sum", scale=1.0 / PETSHOP_STEP),
    "error_rate": MetricMap(source="availability:Average", scale=-0.01, offset=1.0),
}
NEZHA_MAPPING = {
    "error_rate": MetricMap(source="pod_success_rate_percent", scale=-0.01, offset=1.0),
    "latency_p99_ms": MetricMap(source="pod_server_latency_p99_seconds", scale=1000.0,
                                aggregate="max"),
    "cpu": MetricMap(source="cpu_usage_rate_percent"),
    "memory": MetricMap(source="memory_usage_rate_percent"),
    "request_rate": MetricMap(source="pod_workload_ops", aggregate="sum"),
}
_PER_REQUEST = ("pod_success_rate_percent", "pod_server_latency_p99_seconds")


def open_recording(folder: Path) -> Recording:
    """A recording folder of any known layout: Watchfloor's, a Nezha case, a PetShop issue."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        data = _read_json(manifest)
        if isinstance(data, dict) and "format" not in data and "incident_minute" in data:
            return nezha_recording(folder)
        return load_recording(folder)
    if (folder / "metrics.csv").is_file() and (folder / "target.json").is_file():
        return petshop_recording(folder)
    raise RecordingError(f"{folder}: not a recording (no manifest.json, nor a PetShop "
                         "issue's metrics.csv and target.json)")


# --- PetShop -------------------------------------------------------------------------


def petshop_metrics(path: Path) -> dict[str, list[RawSeries]]:
    """The wide CSV (header rows microservice, metric, statistic; then unix_timestamp
    rows) -> {"metric:statistic": series labelled by service}."""
    rows = list(csv.reader(_read_text(path).splitlines()))
    if len(rows) < 4 or [r[0] for r in rows[:4]] != ["microservice", "metric", "statistic",
                                                     "unix_timestamp"]:
        raise RecordingError(f"{path}: lines 1-4: expected the header rows microservice, "
                             "metric, statistic, unix_timestamp")
    columns = list(zip(rows[0][1:], rows[1][1:], rows[2][1:], strict=False))
    series: list[RawSeries] = [({"service": svc}, []) for svc, _, _ in columns]
    for number, row in enumerate(rows[4:], 5):
        if len(row) != len(columns) + 1:
            raise RecordingError(f"{path}: line {number}: {len(row)} cells, the header has "
                                 f"{len(columns) + 1}")
        try:
            at = _number(row[0])
            for i, cell in enumerate(row[1:]):
                if cell.strip():
                    series[i][1].append((at, _number(cell)))
        except ValueError as exc:
            raise RecordingError(f"{path}: line {number}: {exc}") from None
    out: dict[str, list[RawSeries]] = {}
    for (_, metric, statistic), one in zip(columns, series, strict=True):
        out.setdefault(f"{metric}:{statistic}", []).append(one)
    return out


def petshop_recording(issue: Path, *, baseline_hours: float = 2.0) -> Recording:
    """One PetShop issue folder (`<scenario>/<split>/issue_N`) as a recording."""
    issue = Path(issue)
    scenario = issue.parent.parent
    target = _read_json(issue / "target.json")
    try:
        node = str(target["target"]["node"])
        at = datetime.fromtimestamp(float(target["target"]["timestamp"]), UTC)
        cause = target.get("root_cause", {}).get("node")
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{issue / 'target.json'}: target.node and target.timestamp "
                             f"are needed ({exc})") from None
    raw = petshop_metrics(issue / "metrics.csv")
    times = sorted({ts for series in raw.values() for _, points in series for ts, _ in points})
    if not times:
        raise RecordingError(f"{issue / 'metrics.csv'}: no samples")
    window = Window(start=datetime.fromtimestamp(times[0], UTC),
                    end=datetime.fromtimestamp(times[-1], UTC), step=PETSHOP_STEP)
    notes: list[str] = []
    series = map_series(raw, PETSHOP_MAPPING, "service", times[0], PETSHOP_STEP, notes,
                        "metrics.csv")
    baseline = None
    normal = scenario / "noissue" / "metrics.csv"
    if normal.is_file():
        base = map_series(petshop_metrics(normal), PETSHOP_MAPPING, "service", times[0],
                          PETSHOP_STEP, notes, "noissue/metrics.csv")
        baseline = align_baseline(base, window.start, Baseline(
            dir="../../noissue", align="time_of_day", span_hours=baseline_hours))
    else:
        notes.append("no fault-free recording of this scenario: the baseline is the part "
                     "of the window before the symptom")
    topology = read_graph(scenario / "graph.csv", _matrix())
    name = f"petshop/{scenario.name}/{issue.parent.name}/{issue.name}"
    return assemble(name, window, series, topology,
                    symptom=Symptom(services=[node], at=at,
                                    metric=str(target["target"].get("metric", ""))),
                    baseline=baseline, notes=notes,
                    truth=Truth(services=[str(cause)]) if cause else None)


def _matrix() -> Any:
    from console.recording import Graph

    return Graph(file="graph.csv", format="matrix", direction="caller_callee")


def petshop_issues(root: Path) -> list[Path]:
    """Every issue folder of a PetShop dataset root (or of one scenario folder)."""
    root = Path(root)
    return sorted(p for p in root.glob("**/issue_*")
                  if (p / "metrics.csv").is_file() and (p / "target.json").is_file())


# --- Nezha ---------------------------------------------------------------------------


def _nezha_raw(folder: Path) -> dict[str, list[RawSeries]]:
    if not folder.is_dir():
        return {}
    raw = {path.stem: parse_query_range(_read_json(path), str(path))
           for path in sorted(folder.glob("*.json"))}
    served: dict[str, set[float]] = {}  # pod -> the minutes it served requests
    for labels, points in raw.get("pod_workload_ops", []):
        served[labels.get("pod", "")] = {ts for ts, v in points if v > 0}
    for name in _PER_REQUEST:
        raw[name] = [(labels, [(ts, v) for ts, v in points
                               if ts in served.get(labels.get("pod", ""), set())])
                     for labels, points in raw.get(name, [])]
    return raw


def nezha_recording(folder: Path) -> Recording:
    """One Nezha case folder (`nezha-<day>/fNN`) as a recording."""
    folder = Path(folder)
    spec = _read_json(folder / "manifest.json")
    try:
        w = spec["window"]
        window = Window(start=datetime.fromtimestamp(w["start"], UTC),
                        end=datetime.fromtimestamp(w["end"], UTC), step=float(w["step"]))
        at = datetime.fromtimestamp(float(spec["incident_minute"]), UTC)
        entry = str(spec["entry_service"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{folder / 'manifest.json'}: window, incident_minute and "
                             f"entry_service are needed ({exc})") from None
    notes: list[str] = []
    grid = window.start.timestamp()
    raw, base_raw = _nezha_raw(folder / "metrics"), _nezha_raw(folder / "baseline" / "metrics")
    series = map_series(raw, NEZHA_MAPPING, "service", grid, window.step, notes, "metrics")
    series.update(trace_series(raw, grid, window.step))  # console/recording_traces.py
    baseline = map_series(base_raw, NEZHA_MAPPING, "service", grid, window.step, notes,
                          "baseline/metrics")
    baseline.update(trace_series(base_raw, grid, window.step))
    topology = read_graph(folder / "edges.csv", _edges())
    for service in spec.get("services", []):
        topology.setdefault(str(service), [])
    return assemble(f"nezha/{folder.parent.name}/{folder.name}", window, series, topology,
                    symptom=Symptom(services=[entry], at=at), baseline=baseline,
                    logs=nezha_logs(folder, window.start, window.step), notes=notes,
                    truth=_nezha_truth(folder))


def _edges() -> Any:
    from console.recording import Graph

    return Graph(file="edges.csv", format="edges", direction="caller_callee")


def _nezha_truth(folder: Path) -> Truth | None:
    path = folder.parent.parent / "truth.json"
    if not path.is_file():
        return None
    day = _read_json(path).get(folder.parent.name, {})
    for case in day.get("cases", []) if isinstance(day, dict) else []:
        if case.get("id") == folder.name:
            return Truth(services=[str(case["root_cause_service"])],
                         note=str(case.get("fault_type", "")))
    return None


def nezha_cases(root: Path) -> list[Path]:
    root = Path(root)
    return sorted(p.parent for p in root.glob("**/f*/manifest.json"))


def dataset_cases(root: Path) -> list[Path]:
    """Every case under a dataset folder: PetShop issues, Nezha cases, recordings."""
    root = Path(root)
    if (root / "manifest.json").is_file() or (root / "target.json").is_file():
        return [root]
    found = set(petshop_issues(root)) | set(nezha_cases(root))
    found |= {p.parent for p in root.glob("**/manifest.json")}
    return sorted(found)


def write_recording(recording: Recording, out: Path) -> Path:
    """Write an in-memory recording as a Watchfloor recording folder (investigator
    metric names, one long CSV; the graph as an edge list)."""
    out = Path(out)
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    with (out / "metrics" / "metrics.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "service", "metric", "value"])
        for (service, metric), points in sorted(recording.series.items()):
            for at, value in points:
                writer.writerow([f"{at.timestamp():.3f}", service, metric, repr(value)])
    with (out / "edges.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "target"])
        for caller, callees in sorted(recording.topology.items()):
            for callee in callees:
                writer.writerow([caller, callee])
    manifest: dict[str, Any] = {
        "format": "watchfloor.recording/1", "name": recording.name,
        "window": {"start": recording.start.isoformat(), "end": recording.end.isoformat(),
                   "step": recording.step},
        "graph": {"file": "edges.csv", "format": "edges"},
    }
    if recording.symptom is not None:
        manifest["symptom"] = recording.symptom.model_dump(mode="json", exclude_defaults=True)
    if recording.truth is not None:
        manifest["truth"] = recording.truth.model_dump(mode="json", exclude_defaults=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out

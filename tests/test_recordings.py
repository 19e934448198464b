"""Recorded incidents: the folder format, its reader's errors and robustness rules, the
`investigate` command on recordings, the dataset adapters and the dataset benchmark.

The dataset tests read ../shared/datasets (beside the repository) when it is there and
are skipped, saying why, when it is not."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.recording import RecordingError, load_recording

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
PETSHOP, NEZHA = DATASETS / "petshop", DATASETS / "nezha"
needs_petshop = pytest.mark.skipif(not PETSHOP.is_dir(),
                                   reason="the PetShop dataset is not at ../shared/datasets")
needs_nezha = pytest.mark.skipif(not NEZHA.is_dir(),
                                 reason="the Nezha dataset is not at ../shared/datasets")

T0 = 1_700_000_000  # window start (unix seconds)
STEP = 15
POINTS = 80  # 20 minutes
FAULT_AT = 60  # sample index where the fault begins (15 min in)
EDGES = [("frontend", "checkout"), ("checkout", "payments"), ("frontend", "catalog")]
SERVICES = ("frontend", "checkout", "payments", "catalog")

Series = dict[str, dict[str, list[tuple[float, float]]]]  # metric -> service -> points


def telemetry(*, fault: str = "payments", seed: int = 7) -> Series:
    """Error rate and latency of four services; `fault` starts failing at FAULT_AT and
    its callers feel it (a little less at each hop)."""
    rnd = random.Random(seed)
    callers = {"payments": ["checkout", "frontend"], "checkout": ["frontend"],
               "catalog": ["frontend"], "frontend": []}
    out: Series = {"error_rate": {}, "latency_p99_ms": {}, "request_rate": {}}
    for service in (*SERVICES, *(() if fault in SERVICES else (fault,))):
        hurt = 1.0 if service == fault else (0.6 if service in callers.get(fault, ()) else 0.0)
        for metric, normal, bad in (("error_rate", 0.002, 0.3), ("latency_p99_ms", 80.0, 90.0),
                                    ("request_rate", 50.0, 50.0)):
            points = []
            for i in range(POINTS):
                value = normal * (1 + 0.05 * rnd.uniform(-1, 1))
                if i >= FAULT_AT:
                    value += (bad - normal) * hurt
                points.append((float(T0 + i * STEP), value))
            out[metric][service] = points
    return out


def prom_body(name: str, series: dict[str, list[tuple[float, float]]],
              value: Callable[[float], str] = repr) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": name, "service": svc, "pod": f"{svc}-0"},
         "values": [[ts, value(v)] for ts, v in points]}
        for svc, points in series.items()]}}


def write(folder: Path, data: Series | None = None, *, manifest: dict[str, Any] | None = None,
          csv_metrics: bool = False) -> Path:
    data = telemetry() if data is None else data
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    if csv_metrics:
        lines = ["timestamp,service,metric,value"]
        lines += [f"{ts},{svc},{metric},{v}" for metric, by in data.items()
                  for svc, points in by.items() for ts, v in points]
        (folder / "metrics" / "all.csv").write_text("\n".join(lines) + "\n")
    else:
        for metric, by in data.items():
            (folder / "metrics" / f"{metric}.json").write_text(
                json.dumps(prom_body(metric, by)))
    (folder / "edges.csv").write_text("source,target\n" +
                                      "".join(f"{a},{b}\n" for a, b in EDGES))
    body = {"format": "watchfloor.recording/1", "name": folder.name,
            "window": {"start": T0, "end": T0 + (POINTS - 1) * STEP, "step": STEP},
            "symptom": {"services": ["frontend"], "at": T0 + FAULT_AT * STEP + 30},
            "graph": {"file": "edges.csv", "format": "edges"}}
    body.update(manifest or {})
    (folder / "manifest.json").write_text(json.dumps(body, indent=1))
    return folder


def investigate_json(folder: Path, capsys: pytest.CaptureFixture[str],
                     *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["investigate", "--recording", str(folder), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def top(report: dict[str, Any]) -> str | None:
    return report["candidates"][0]["service"] if report["candidates"] else None


# --- the format and the command --------------------------------------------------------


def test_investigate_a_recording_names_the_failing_dependency(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = investigate_json(write(tmp_path / "rec"), capsys)
    assert report["schema"] == "watchfloor.investigation/1"
    assert top(report) == "payments"
    best = report["candidates"][0]
    assert 0 < best["confidence"] <= 1
    assert any(e["kind"] == "metric" and e["ref"].startswith("metric:payments/")
               for e in best["evidence"])
    assert main(["investigate", "--recording", str(tmp_path / "rec")]) == 0
    text = capsys.readouterr().out
    assert "1. payments /" in text
    assert "confidence" in text


def test_csv_metrics_read_like_prometheus_json(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    report = investigate_json(write(tmp_path / "rec", csv_metrics=True), capsys)
    assert top(report) == "payments"


def test_the_mapping_renames_and_rescales_recorded_metrics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = telemetry()
    success = {svc: [(ts, 100.0 * (1 - v)) for ts, v in pts]
               for svc, pts in data["error_rate"].items()}
    seconds = {svc: [(ts, v / 1000.0) for ts, v in pts]
               for svc, pts in data["latency_p99_ms"].items()}
    recorded: Series = {"success_percent": success, "p99_seconds": seconds}
    mapping = {"error_rate": {"source": "success_percent", "scale": -0.01, "offset": 1.0},
               "latency_p99_ms": {"source": "p99_seconds", "scale": 1000, "aggregate": "max"}}
    report = investigate_json(write(tmp_path / "rec", recorded,
                                    manifest={"mapping": mapping}), capsys)
    assert top(report) == "payments"
    recording = load_recording(tmp_path / "rec")
    first = recording.series[("payments", "error_rate")][0][1]
    assert first == pytest.approx(data["error_rate"]["payments"][0][1])


def test_alerts_name_the_symptom_when_the_manifest_does_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "rec", manifest={"symptom": None, "alerts": "alerts.json"})
    at = float(T0 + FAULT_AT * STEP + 30)
    alerts = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "ALERTS", "alertname": "HighErrorRate", "alertstate": "firing",
                    "service": "frontend", "severity": "critical"},
         "values": [[at + STEP * i, "1"] for i in range(5)]}]}}
    (folder / "alerts.json").write_text(json.dumps(alerts))
    report = investigate_json(folder, capsys)
    assert report["symptom"]["services"] == ["frontend"]
    assert report["symptom"]["at"].startswith("2023-11-14T22:")
    assert top(report) == "payments"


def test_changes_and_logs_are_evidence(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    folder = write(tmp_path / "rec", manifest={"changes": "changes.json", "logs": "logs.jsonl"})
    deploy = datetime.fromtimestamp(T0 + (FAULT_AT - 4) * STEP, UTC).isoformat()
    (folder / "changes.json").write_text(json.dumps([
        {"service": "payments", "kind": "deploy", "description": "payments v42",
         "at": deploy, "version_from": "v41", "version_to": "v42"}]))
    lines = [json.dumps({"service": "payments", "level": "ERROR", "at": datetime.fromtimestamp(
        T0 + (FAULT_AT + i) * STEP, UTC).isoformat(),
        "message": f"Unhandled exception in charge: KeyError card-{i}"}) for i in range(5)]
    (folder / "logs.jsonl").write_text("\n".join(lines) + "\n")
    report = investigate_json(folder, capsys)
    best = report["candidates"][0]
    assert (best["service"], best["fault_class"]) == ("payments", "bad_deploy")
    assert {"change", "log"} <= {e["kind"] for e in best["evidence"]}


def test_a_matrix_graph_in_either_direction(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "rec")
    names = list(SERVICES)
    rows = [",".join(["", *names])]
    for callee in names:  # callee_caller: the row is called by the column
        rows.append(",".join([callee, *("1" if (c, callee) in EDGES else "0" for c in names)]))
    (folder / "graph.csv").write_text("\n".join(rows) + "\n")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["graph"] = {"file": "graph.csv", "format": "matrix", "direction": "callee_caller"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert load_recording(folder).topology["checkout"] == ["payments"]
    assert top(investigate_json(folder, capsys)) == "payments"


# --- errors name the file and the line or field ----------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"window": {"start": T0, "end": T0, "step": STEP}}, "window: .*empty"),
    ({"window": {"start": T0}}, r"window\.end: Field required"),
    ({"format": "something/2"}, "format: Input should be 'watchfloor.recording/1'"),
    ({"mapping": {"errors": {"source": "x"}}}, "unknown investigator metric.*errors"),
    ({"graph": {"file": "nope.csv"}}, r"nope\.csv: no such file"),
    ({"symptom": {"services": ["ghost"]}}, "ghost has no metrics and is not in the graph"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
])
def test_a_bad_manifest_is_refused_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any],
        message: str) -> None:
    folder = write(tmp_path / "rec", manifest=change)
    with pytest.raises(RecordingError, match=message):
        load_recording(folder)
    assert main(["investigate", "--recording", str(folder)]) == 2
    assert "watchfloor: " in capsys.readouterr().err


def test_broken_files_are_refused_naming_file_and_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "rec")
    (folder / "manifest.json").write_text('{\n "format": "watchfloor.recording/1",\n oops\n}')
    with pytest.raises(RecordingError, match=r"manifest\.json: line 3: not valid JSON"):
        load_recording(folder)
    folder = write(tmp_path / "rec2", csv_metrics=True)
    with (folder / "metrics" / "all.csv").open("a") as fh:
        fh.write("12,payments,error_rate\n")
    with pytest.raises(RecordingError, match=r"all\.csv: line \d+: 3 cells"):
        load_recording(folder)
    folder = write(tmp_path / "rec3")
    body = json.loads((folder / "metrics" / "error_rate.json").read_text())
    body["data"]["result"][1]["values"][4] = [T0, "fast"]
    (folder / "metrics" / "error_rate.json").write_text(json.dumps(body))
    with pytest.raises(RecordingError, match=r"error_rate\.json: data\.result\[1\]\.values\[4\]"):
        load_recording(folder)
    (folder / "metrics" / "error_rate.json").write_text(json.dumps(
        {"status": "error", "error": "bad query"}))
    with pytest.raises(RecordingError, match=r"not a successful Prometheus answer.*bad query"):
        load_recording(folder)


# --- robustness ------------------------------------------------------------------------


def test_missing_values_are_dropped_and_reported(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = telemetry()
    for metric in data:
        for points in data[metric].values():
            for i in range(0, POINTS, 7):
                points[i] = (points[i][0], math.nan)
    folder = write(tmp_path / "rec", data)
    body = json.loads((folder / "metrics" / "latency_p99_ms.json").read_text())
    body["data"]["result"][0]["values"][3][1] = ""  # an empty cell
    (folder / "metrics" / "latency_p99_ms.json").write_text(json.dumps(body))
    report = investigate_json(folder, capsys)
    assert any("missing or non-finite" in note for note in report["notes"])
    assert top(report) == "payments"


def test_constant_series_give_no_cause_and_say_so(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    flat: Series = {metric: {svc: [(float(T0 + i * STEP), 1.0) for i in range(POINTS)]
                             for svc in SERVICES}
                    for metric in ("error_rate", "latency_p99_ms", "cpu")}
    folder = write(tmp_path / "rec", flat)
    # every service is still listed (where to look), none with a confidence
    assert [c["confidence"] for c in investigate_json(folder, capsys)["candidates"]] == \
        [0.0] * len(SERVICES)
    assert main(["investigate", "--recording", str(folder)]) == 0
    assert "no likely cause: nothing the recording holds stands out" in capsys.readouterr().out


def test_services_absent_from_the_graph_join_it(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = telemetry(fault="search")  # it has metrics, but the graph does not know it
    folder = write(tmp_path / "rec", data, manifest={"symptom": {"services": ["search"]}})
    report = investigate_json(folder, capsys)
    assert any("not in the graph" in note and "search" in note for note in report["notes"])
    assert top(report) == "search"


def test_clock_skew_between_series_is_snapped_to_the_grid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = telemetry()
    for metric in data:  # payments' exporter clock runs 6 s ahead, checkout's 4 s behind
        data[metric]["payments"] = [(ts + 6, v) for ts, v in data[metric]["payments"]]
        data[metric]["checkout"] = [(ts - 4, v) for ts, v in data[metric]["checkout"]]
    report = investigate_json(write(tmp_path / "rec", data), capsys)
    assert any("clock skew" in note for note in report["notes"])
    assert top(report) == "payments"
    recording = load_recording(tmp_path / "rec")
    assert recording.series[("payments", "error_rate")][0][0].timestamp() == T0


def test_an_empty_window_is_refused_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late = {m: {s: [(ts + 10 * 86400, v) for ts, v in pts] for s, pts in by.items()}
            for m, by in telemetry().items()}
    folder = write(tmp_path / "rec", late)
    assert main(["investigate", "--recording", str(folder)]) == 2
    assert "no usable sample inside the window" in capsys.readouterr().err
    empty = write(tmp_path / "rec2", {"error_rate": {}})
    assert main(["investigate", "--recording", str(empty)]) == 2
    assert "no usable sample inside the window" in capsys.readouterr().err


def test_too_little_history_before_the_symptom_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "rec", manifest={"symptom": {"services": ["frontend"],
                                                           "at": T0 + 2 * STEP}})
    assert main(["investigate", "--recording", str(folder)]) == 0
    assert "too few to know any service's normal" in capsys.readouterr().out


def test_a_symptom_outside_the_window_or_no_recording(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "rec")
    assert main(["investigate", "--recording", str(folder), "--at", str(T0 - 3600)]) == 2
    assert "outside the window" in capsys.readouterr().err
    assert main(["investigate", "--recording", str(tmp_path / "nothing")]) == 2
    assert "not a recording" in capsys.readouterr().err


def test_a_baseline_from_another_day_is_aligned_by_time_of_day(tmp_path: Path) -> None:
    from console.recording import Baseline, align_baseline

    day = 86400
    moved = align_baseline(
        {("a", "cpu"): [(_at(T0 - 3 * day + i * 300), float(i)) for i in range(2 * 288)]},
        _at(T0), Baseline(dir="x", align="time_of_day", span_hours=1))
    points = moved[("a", "cpu")]
    assert len(points) == 12
    assert all(T0 - 3600 <= at.timestamp() < T0 for at, _ in points)
    assert all((at.timestamp() - T0) % 300 == 0 for at, _ in points)


def _at(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


# --- the datasets ----------------------------------------------------------------------


@needs_petshop
@pytest.mark.slow
def test_investigate_works_on_every_petshop_recording(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.recording_adapters import petshop_issues, petshop_recording, write_recording

    issues = petshop_issues(PETSHOP)
    assert len(issues) >= 20
    for issue in issues:
        recording = petshop_recording(issue)
        assert recording.truth is not None
        folder = write_recording(recording, tmp_path / recording.name.replace("/", "_"))
        report = investigate_json(folder, capsys)
        assert report["symptom"]["services"] == [recording.symptom.services[0]]
        if recording.samples_before(recording.incident().opened_at) >= 6:
            assert report["candidates"], recording.name
        assert main(["investigate", "--recording", str(issue)]) == 0  # the layout as it is
        assert "symptom: PetSite" in capsys.readouterr().out


@needs_nezha
def test_investigate_reads_nezha_cases_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    from console.recording_adapters import nezha_cases

    cases = nezha_cases(NEZHA)
    assert len(cases) >= 50
    for case in (cases[1], cases[6], cases[-1]):
        report = investigate_json(case, capsys)
        assert report["candidates"], case
        assert report["symptom"]["services"][0] in ("frontend", "ts-gateway-service")


def test_the_dataset_benchmark_ranks_three_methods(tmp_path: Path) -> None:
    from benchmarks.bench_rca import METHODS, run_datasets

    for i, fault in enumerate(("payments", "checkout", "catalog")):
        write(tmp_path / f"case{i}", telemetry(fault=fault, seed=i),
              manifest={"truth": {"services": [fault]}})
    result = run_datasets(str(tmp_path))
    assert set(result["overall"]) == set(METHODS)
    ours = result["overall"]["watchfloor"]
    assert ours["cases"] == 3
    assert ours["ac_at_1"] == 1.0
    assert 0 <= result["overall"]["zscore"]["avg_at_5"] <= 1


# --- recordings in `watchfloor eval` ---------------------------------------------------


def test_eval_scores_saved_recordings_and_given_ones_against_their_truth(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make_db_url: Any) -> None:
    from console.storage.db import data_dir

    saved = data_dir() / "recordings"  # the operator's own: always included
    write(saved / "payments-night", telemetry(fault="payments"),
          manifest={"truth": {"services": ["payments"]}})
    given = write(tmp_path / "wrong-truth", telemetry(fault="payments"),
                  manifest={"truth": {"services": ["frontend"], "fault_class": "bad_deploy"}})
    db = make_db_url(tmp_path, "eval")
    capsys.readouterr()
    assert main(["eval", "--recording", str(given), "--json", "--db", db]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scope"]["scenarios"] == []  # only recordings: no scenario replayed
    cases = {c["scenario"]: c for c in report["cases"]}
    assert cases["recording:payments-night"]["correct_top1"] is True
    assert cases["recording:payments-night"]["top1"].startswith("payments/")
    assert cases["recording:wrong-truth"]["correct_top1"] is False
    assert report["scores"]["recordings"] == 2
    assert report["scores"]["accuracy"]["top1"] == 0.5
    assert report["scores"]["unresolved_incidents"] == 0  # a recording resolves nothing


def test_eval_refuses_a_recording_it_cannot_read(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 make_db_url: Any) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    db = make_db_url(tmp_path, "eval")
    assert main(["eval", "--recording", str(bad), "--db", db]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert main(["eval", "--recording", str(tmp_path / "absent"), "--db", db]) == 2

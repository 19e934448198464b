"""console/recording_view.py, headless: a recording folder and its investigation turned
into what the recording window shows (incident, timeline, series, ranked hypotheses),
through the same investigator path as `watchfloor investigate`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.investigator import Investigator, InvestigatorSettings
from console.recording import RecordingError
from console.recording_view import RecordingView, open_view, timeline_order
from tests.test_recordings import FAULT_AT, PETSHOP, STEP, T0, needs_petshop, telemetry, write

DEPLOY_AT = datetime.fromtimestamp(T0 + (FAULT_AT - 4) * STEP, UTC)


def clear_recording(folder: Path) -> Path:
    """payments fails after a deploy (its callers feel it), with new error logs: the
    cause is plain from every kind of evidence."""
    write(folder, manifest={"changes": "changes.json", "logs": "logs.jsonl",
                            "truth": {"services": ["payments"], "fault_class": "bad_deploy"}})
    (folder / "changes.json").write_text(json.dumps([
        {"service": "payments", "kind": "deploy", "description": "payments v42",
         "at": DEPLOY_AT.isoformat(), "version_from": "v41", "version_to": "v42"}]))
    lines = [json.dumps({"service": "payments", "level": "ERROR",
                         "at": datetime.fromtimestamp(T0 + (FAULT_AT + i) * STEP,
                                                      UTC).isoformat(),
                         "message": f"Unhandled exception in charge: KeyError card-{i}"})
             for i in range(5)]
    (folder / "logs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def view(folder: Path, **kwargs: object) -> RecordingView:
    return open_view(folder, Investigator, InvestigatorSettings, **kwargs)  # type: ignore[arg-type]


def test_a_clear_recording_gives_incident_timeline_series_and_ranked_causes(
        tmp_path: Path) -> None:
    said: list[str] = []
    v = view(clear_recording(tmp_path / "rec"), progress=said.append)
    assert said[0].startswith("Reading rec")
    assert said[1].startswith("Investigating 4 services")

    info = v.incident
    assert info.state == "recorded"
    assert (info.opened_at, info.resolved_at) == (v.start, v.end)
    assert info.services[0] == "frontend"  # the symptom first, then the anomalous nodes
    assert "payments" in info.services
    assert v.symptom == ("frontend",)

    assert v.top is not None
    assert (v.top.service, v.top.fault_class) == ("payments", "bad_deploy")
    assert 0 < v.top.confidence <= 1
    assert {"metric", "change", "log"} <= {e.kind for e in v.top.evidence}
    assert [h.confidence for h in v.hypotheses] == sorted(
        (h.confidence for h in v.hypotheses), reverse=True)
    assert v.truth is not None
    assert v.truth.services == ["payments"]

    kinds = [(e.kind, e.summary) for e in v.timeline]
    assert list(v.timeline) == sorted(v.timeline, key=timeline_order)
    assert kinds[0] == ("note", "recording window opens (4 services, one sample every 15 s)")
    change = next(e for e in v.timeline if e.kind == "change")
    assert change.at == DEPLOY_AT
    assert change.mark == "deploy"
    assert "v41 \u2192 v42" in change.summary
    assert any(e.summary.startswith("new log template on payments (ERROR") for e in v.timeline)
    symptom = next(e for e in v.timeline if e.mark == "symptom")
    assert symptom.at == v.symptom_at
    steps = [e for e in v.timeline if e.actor == "investigator"]
    assert steps[0].summary.startswith("investigated the symptom")
    assert steps[1].summary.startswith("hypothesis 1: payments/bad_deploy")
    assert len(steps) == 1 + len(v.hypotheses)

    assert "payments" in v.plotted
    assert "frontend" in v.plotted
    assert "catalog" not in v.plotted  # not implicated
    assert v.metrics[:2] == ("error_rate", "latency_p99_ms")
    assert v.focus_metric == "error_rate"
    points = v.series[("payments", "error_rate")]
    assert len(points) == len(telemetry()["error_rate"]["payments"])
    assert points[-1][1] > 0.2  # failing at the end
    assert all(v.start - (v.end - v.start) <= at <= v.end for at, _ in points)


def test_the_view_ranks_what_watchfloor_investigate_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    folder = clear_recording(tmp_path / "rec")
    assert main(["investigate", "--recording", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the command lists the unscored candidates too (confidence 0), after these
    assert [(c["service"], c["fault_class"], c["confidence"]) for c in
            report["candidates"] if c["confidence"] > 0] == \
        [(h.service, h.fault_class, h.confidence) for h in view(folder).hypotheses]


def test_nothing_standing_out_says_so(tmp_path: Path) -> None:
    flat = {metric: {svc: [(ts, 1.0) for ts, _ in points] for svc, points in by.items()}
            for metric, by in telemetry().items()}
    v = view(write(tmp_path / "rec", flat))
    assert v.hypotheses == ()
    assert v.top is None
    assert v.incident.services == ("frontend",)
    assert any(e.summary.startswith("no likely cause") for e in v.timeline)


def test_a_bad_folder_names_the_file_and_the_field(tmp_path: Path) -> None:
    folder = write(tmp_path / "rec", manifest={"window": {"start": T0}})
    with pytest.raises(RecordingError, match=r"manifest\.json: window\.end: Field required"):
        view(folder)
    with pytest.raises(RecordingError, match="not a recording"):
        view(tmp_path)  # a folder without a manifest
    with pytest.raises(RecordingError, match="nowhere: not a recording"):
        view(tmp_path / "nowhere")


def test_the_view_module_does_not_import_qt() -> None:
    code = ("import sys, console.recording_view; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'qasync', 'widgets')], 'Qt imported'")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[1], timeout=60)


@needs_petshop
def test_a_petshop_issue_shows_its_labelled_cause() -> None:
    issue = PETSHOP / "low_traffic" / "train" / "issue_0"
    v = view(issue)
    assert v.name == "petshop/low_traffic/train/issue_0"
    assert v.symptom == ("PetSite",)
    assert v.truth is not None
    assert v.hypotheses
    assert v.plotted[0] == "PetSite"
    assert ("PetSite", "latency_p99_ms") in v.series
    assert v.end - v.start >= timedelta(minutes=10)

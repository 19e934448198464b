"""Every recorded symptom gets a ranked answer, and what could not be checked is said.

A fault can match none of the investigator's signatures (a move of a metric no fault
class reads), and a recording can lack a series or hold too little of it before the
symptom: the ranking must still name where to look, and the result must list the gaps
rather than stay silent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from tests.test_recordings import (
    FAULT_AT,
    POINTS,
    SERVICES,
    STEP,
    T0,
    Series,
    investigate_json,
    telemetry,
    write,
)


def quiet(seed: int = 3) -> Series:
    """Four services whose error rate and p99 stay normal throughout."""
    data = telemetry(fault="nobody", seed=seed)
    for metric in data:
        data[metric].pop("nobody", None)
    return data


def p50_only(service: str = "payments", seed: int = 3) -> Series:
    """Only `service`'s median latency rises at FAULT_AT (no signature reads a p50)."""
    data = quiet(seed)
    data["latency_p50_ms"] = {
        svc: [(float(T0 + i * STEP),
               20.0 + (0.4 * (i % 3)) + (60.0 if svc == service and i >= FAULT_AT else 0.0))
              for i in range(POINTS)]
        for svc in SERVICES}
    return data


def test_a_fault_no_signature_reads_still_gets_a_ranked_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = investigate_json(write(tmp_path / "rec", p50_only()), capsys, "--top", "10")
    ranked = [c["service"] for c in report["candidates"]]
    assert ranked[0] == "payments"
    assert set(ranked) == set(SERVICES)  # every candidate of the symptom is listed
    first = report["candidates"][0]
    assert first["confidence"] == 0.0  # nothing was scored: no confidence is claimed
    assert "no fault signature matched" in first["evidence"][0]["summary"]
    assert "latency_p50_ms" in first["evidence"][0]["ref"]


def test_the_symptom_service_itself_is_a_candidate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = investigate_json(write(tmp_path / "rec", p50_only("frontend")), capsys)
    assert report["candidates"][0]["service"] == "frontend"


def test_scored_hypotheses_come_before_the_unscored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = investigate_json(write(tmp_path / "rec"), capsys, "--top", "10")
    confidences = [c["confidence"] for c in report["candidates"]]
    assert report["candidates"][0]["service"] == "payments"
    assert confidences[0] > 0
    assert confidences == sorted(confidences, reverse=True)
    assert {c["service"] for c in report["candidates"]} == set(SERVICES)


def test_a_missing_series_and_a_short_history_are_investigation_gaps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = telemetry()
    del data["latency_p99_ms"]["checkout"]  # checkout reports no p99 at all
    late = T0 + (POINTS - 4) * STEP  # catalog's errors were recorded only lately
    data["error_rate"]["catalog"] = [(ts, v) for ts, v in data["error_rate"]["catalog"]
                                     if ts >= late]
    report = investigate_json(write(tmp_path / "rec", data), capsys)
    gaps = {(g["service"], g["metric"]): g for g in report["investigation_gaps"]}
    assert gaps[("checkout", "latency_p99_ms")]["kind"] == "missing"
    short = gaps[("catalog", "error_rate")]
    assert short["kind"] == "short_baseline"
    assert "needed to know its normal" in short["detail"]
    assert report["candidates"][0]["service"] == "payments"  # the rest is still read
    assert main(["investigate", "--recording", str(tmp_path / "rec")]) == 0
    text = capsys.readouterr().out
    assert "investigation gaps (not checked):" in text
    assert "checkout: no latency_p99_ms series" in text


def test_a_complete_recording_has_no_gaps(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert investigate_json(write(tmp_path / "rec"), capsys)["investigation_gaps"] == []


def test_the_benchmark_reports_families_gaps_and_no_empty_answer(tmp_path: Path) -> None:
    from benchmarks.bench_rca import METHODS, run_datasets

    cases = [("lab/east/c0", p50_only("payments", 1), "payments"),
             ("lab/east/c1", p50_only("catalog", 2), "catalog"),
             ("lab/west/c2", telemetry(fault="checkout", seed=4), "checkout")]
    for i, (name, data, cause) in enumerate(cases):
        write(tmp_path / f"case{i}", data,
              manifest={"name": name, "truth": {"services": [cause]}})
    result = run_datasets(str(tmp_path))
    assert set(result["per_family"]) == {"lab/east", "lab/west"}
    east = result["per_family"]["lab/east"]
    assert set(METHODS) <= set(east)
    assert east["watchfloor"]["cases"] == 2
    assert east["watchfloor"]["ac_at_1"] == 1.0  # the unscored ranking still names them
    assert east["without_candidates"] == 0
    assert east["best_baseline"] in set(METHODS) - {"watchfloor"}
    assert east["at_least_best_baseline"] is True  # 1.0 is at least anything
    assert result["without_candidates"] == 0
    assert all("investigation_gaps" in row and row["family"] for row in result["cases"])


def test_families_follow_the_cases_own_data(tmp_path: Path) -> None:
    from benchmarks.rca_families import family

    case = tmp_path / "nezha-2099-01-01" / "f07"
    case.mkdir(parents=True)
    (case / "manifest.json").write_text(json.dumps({"system": "OnlineBoutique"}))
    assert family(case, "nezha/nezha-2099-01-01/f07") == "nezha/OnlineBoutique"
    assert family(tmp_path, "petshop/temporal_traffic2/test/issue_3") == \
        "petshop/temporal_traffic"
    assert family(tmp_path, "petshop/low_traffic/train/issue_0") == "petshop/low_traffic"

"""Trace error counts (span status codes, the service graph's failed requests) point at
the deepest service that fails, not at the callers its failures travel up to.

Recordings are laid out as the Nezha cases are (tests/test_investigator_traces.py), with
Tempo's series names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.investigator_trace_errors import error_findings
from tests.test_investigator_traces import (
    EDGES,
    INCIDENT,
    SERVICES,
    STEP,
    T0,
    TRACED,
    _body,
    investigate,
    nezha_case,
)

CALLEES = {s: [b for a, b in EDGES if a == s] for s in SERVICES}
AT = {m: datetime.fromtimestamp(T0 + m * STEP, UTC) for m in range(30)}
END = AT[INCIDENT] - timedelta(minutes=2)


def _findings(own: dict[str, float], edges: dict[tuple[str, str], float] | None = None,
              before: float = 0.01) -> dict[str, Any]:
    """error_findings where, from INCIDENT on, `own`'s services fail that share of their
    spans and `edges`' calls fail that share (`before` everywhere until then)."""
    series: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for service, share in own.items():
        series[(service, "trace_error_rate")] = [
            (AT[m], share if m >= INCIDENT else before) for m in TRACED]
    for (a, b), share in (edges or {}).items():
        series[(a, f"trace_call_error_rate:{b}")] = [
            (AT[m], share if m >= INCIDENT else before) for m in TRACED]
    latest: dict[str, dict[str, float]] = {}
    for (service, metric), points in series.items():
        latest.setdefault(service, {})[metric] = points[-1][1]
    return error_findings(latest, lambda s, m: series.get((s, m), []), END, CALLEES)


def test_the_deepest_failing_service_is_the_origin_and_its_callers_only_report_it() -> None:
    found = _findings({"payment": 0.30, "checkout": 0.25, "frontend": 0.20})
    assert set(found) == {"payment"}
    assert found["payment"].waiting == ("checkout",)
    assert "the failures start there" in found["payment"].summary


def test_a_caller_failing_far_more_than_its_callee_is_an_origin_itself() -> None:
    found = _findings({"payment": 0.03, "checkout": 0.40})
    assert "checkout" in found


def test_failed_calls_into_a_service_name_it_even_without_its_own_spans() -> None:
    # payment's spans carry no status: its one caller's calls into it fail
    found = _findings({}, {("checkout", "payment"): 0.5})
    assert set(found) == {"payment"}
    assert found["payment"].ref.startswith("metric:checkout/trace_call_error_rate:payment@")


def test_a_small_or_unreadable_change_is_no_finding() -> None:
    assert _findings({"payment": 0.02}) == {}  # 1% more failing: noise
    assert error_findings({"payment": {"latency_p99_ms": 1.0}}, lambda s, m: [], END,
                          CALLEES) == {}


def test_the_service_graph_failed_requests_become_a_share_of_each_edge() -> None:
    from console.recording_traces import trace_series

    def counter(points: list[tuple[int, float]]) -> Any:
        return ({"client": "checkout", "server": "payment"},
                [(float(T0 + m * STEP), v) for m, v in points])

    raw = {"traces_service_graph_request_total": [counter([(3, 100.0), (4, 200.0)])],
           "traces_service_graph_request_failed_total": [counter([(3, 0.0), (4, 25.0)])]}
    out = trace_series(raw, float(T0), float(STEP))
    assert out[("checkout", "trace_call_error_rate:payment")] == [(AT[4], 0.25)]


def test_a_recording_whose_spans_fail_below_the_symptom_names_that_service(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = nezha_case(tmp_path / "f01", client_slow={})
    shares = {"payment": 0.4, "checkout": 0.3, "frontend": 0.2}
    calls: dict[str, list[tuple[int, float]]] = {}
    errors: dict[str, list[tuple[int, float]]] = {}
    for s in SERVICES:
        total = failed = 0.0
        for m in TRACED:
            total += 100.0
            failed += 100.0 * (shares.get(s, 0.0) if m >= INCIDENT else 0.01)
            calls.setdefault(s, []).append((m, total))
            errors.setdefault(s, []).append((m, failed))
    for name, by in (("traces_spanmetrics_calls_total", calls),
                     ("traces_spanmetrics_errors_total", errors)):
        (case / "metrics" / f"{name}.json").write_text(_body(name, [
            ({"service": s}, points) for s, points in by.items()]))
    report = investigate(case, capsys)
    assert report["candidates"][0]["service"] == "payment"
    trace = [e for e in report["candidates"][0]["evidence"] if e["kind"] == "trace"]
    assert trace and "the failures start there" in trace[0]["summary"]
    assert json.dumps(report)  # the evidence is plain data

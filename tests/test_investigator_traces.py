"""Trace-derived series (span metrics, service graph) tell a delay on the way to a
service, and a caller too starved to make its calls, from trouble inside the callee.

Recordings are laid out as the Nezha cases are (manifest with the incident minute,
Prometheus query_range bodies, an edge list), with Tempo's series names.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.investigator_traces import trace_findings
from console.cli import main

T0 = 1_700_000_040  # a whole minute
STEP = 60
MINUTES = 30
INCIDENT = 20  # the incident minute
EDGES = [("frontend", "cart"), ("frontend", "catalog"), ("frontend", "checkout"),
         ("checkout", "cart"), ("checkout", "payment"), ("checkout", "email")]
SERVICES = sorted({s for edge in EDGES for s in edge})
TRACED = (3, 4, 11, 12, 21, 22)  # the minutes whose traces were kept


def _body(name: str, rows: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> str:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": name, **labels},
         "values": [[T0 + m * STEP, repr(v)] for m, v in points]} for labels, points in rows]}})


def nezha_case(folder: Path, *, client_slow: dict[tuple[str, str], float],
               server_slow: dict[str, float] | None = None,
               pod_latency: dict[str, float] | None = None) -> Path:
    """A case where, from INCIDENT on, the calls on `client_slow`'s edges take that many
    ms more on the client side, `server_slow`'s services that many more in their own
    spans (and so on every call into them), and `pod_latency`'s services report that much
    more p99 in their pod metrics (what the metrics-only view sees)."""
    server_slow = server_slow or {}
    pod_latency = pod_latency or {}
    metrics = folder / "metrics"
    metrics.mkdir(parents=True)
    base = {"frontend": 20.0, "cart": 4.0, "catalog": 6.0, "checkout": 12.0,
            "payment": 3.0, "email": 2.0}

    def wobble(m: int) -> float:
        return 1.0 + 0.03 * math.sin(m * 1.7)

    def after(m: int, extra: float) -> float:
        return extra if m >= INCIDENT else 0.0

    pods = {
        "pod_server_latency_p99_seconds": lambda s, m: (
            base[s] * 3 * wobble(m) + after(m, pod_latency.get(s, 0.0))) / 1000.0,
        "pod_success_rate_percent": lambda s, m: 100.0,
        "pod_workload_ops": lambda s, m: 50.0 * wobble(m),
        "cpu_usage_rate_percent": lambda s, m: 20.0 * wobble(m),
        "memory_usage_rate_percent": lambda s, m: 30.0,
    }
    for name, value in pods.items():
        (metrics / f"{name}.json").write_text(_body(name, [
            ({"service": s, "pod": f"{s}-0"}, [(m, value(s, m)) for m in range(MINUTES)])
            for s in SERVICES]))
    server = {(a, b): [(m, (base[b] * wobble(m) + after(m, server_slow.get(b, 0.0))) / 1000)
                       for m in TRACED] for a, b in EDGES}
    client = {(a, b): [(m, v + (1.0 + after(m, client_slow.get((a, b), 0.0))) / 1000)
                       for m, v in server[(a, b)]] for a, b in EDGES}
    for name, by in (("traces_service_graph_request_server_p99_seconds", server),
                     ("traces_service_graph_request_client_p50_seconds", client)):
        (metrics / f"{name}.json").write_text(_body(name, [
            ({"client": a, "server": b}, points) for (a, b), points in by.items()]))
    (folder / "edges.csv").write_text("source,target\n" +
                                      "".join(f"{a},{b}\n" for a, b in EDGES))
    (folder / "manifest.json").write_text(json.dumps({
        "system": "Shop", "window": {"start": T0, "end": T0 + (MINUTES - 1) * STEP,
                                     "step": STEP},
        "incident_minute": T0 + INCIDENT * STEP, "entry_service": "frontend",
        "services": SERVICES}))
    return folder


def investigate(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["investigate", "--recording", str(folder), "--json", "--top", "10"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_delay_on_the_way_to_a_service_names_that_service(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # cart's network is slow: both its callers wait 240 ms more, its own spans do not;
    # the pod metrics show its callers slower (they wait), not cart
    case = nezha_case(tmp_path / "f01", client_slow={("frontend", "cart"): 240.0,
                                                     ("checkout", "cart"): 240.0},
                      pod_latency={"frontend": 240.0, "checkout": 240.0})
    report = investigate(case, capsys)
    best = report["candidates"][0]
    assert best["service"] == "cart"
    trace = [e for e in best["evidence"] if e["kind"] == "trace"]
    assert trace and "on the way to it" in trace[0]["summary"]
    assert trace[0]["ref"].startswith("metric:")


def test_a_starved_caller_is_named_not_each_of_its_callees() -> None:
    # checkout's calls to all three of its callees slow on the client side only
    slow = {("checkout", "cart"): 200.0, ("checkout", "payment"): 200.0,
            ("checkout", "email"): 200.0}
    found = _findings(slow, {})
    assert max(found.values(), key=lambda f: f.strength).service == "checkout"
    assert found["checkout"].fault == "cpu_saturation"
    assert all(found[s].strength < found["checkout"].strength
               for s in ("payment", "email") if s in found)


def test_trouble_inside_a_callee_shows_on_both_sides() -> None:
    found = _findings({}, {"payment": 300.0})
    assert max(found.values(), key=lambda f: f.strength).service == "payment"
    assert "its own spans slowed as much" in found["payment"].summary
    assert "checkout" not in found  # it only waits for payment


def test_without_trace_series_nothing_is_read() -> None:
    calls: list[tuple[str, str]] = []
    latest = {s: {"latency_p99_ms": 1.0} for s in SERVICES}
    assert trace_findings(latest, lambda s, m: calls.append((s, m)) or [],
                          datetime.fromtimestamp(T0, UTC)) == {}
    assert calls == []


def test_one_sample_before_the_symptom_is_no_normal() -> None:
    found = _findings({("frontend", "cart"): 240.0, ("checkout", "cart"): 240.0}, {},
                      traced=(19, 21, 22))
    assert found == {}


def test_an_earlier_fault_in_the_minutes_before_does_not_hide_a_new_delay() -> None:
    # the traces kept before the symptom are mostly an earlier fault's, slower throughout
    found = _findings({("frontend", "cart"): 240.0, ("checkout", "cart"): 240.0}, {},
                      earlier={4: 400.0, 11: 400.0, 12: 400.0})
    assert max(found.values(), key=lambda f: f.strength).service == "cart"


def test_an_edge_with_a_handful_of_calls_a_minute_is_not_read() -> None:
    slow = {("frontend", "cart"): 240.0, ("checkout", "cart"): 240.0}
    assert _findings(slow, {}, rate=3.0) == {}
    assert "cart" in _findings(slow, {}, rate=300.0)


def test_own_spans_slowing_is_not_blamed_while_a_call_it_makes_was_not_read() -> None:
    # checkout's own spans slow; its call to email carries too few calls to be read,
    # so checkout may be waiting on email: no finding on checkout
    assert "checkout" in _findings({}, {"checkout": 300.0})
    assert "checkout" not in _findings({}, {"checkout": 300.0},
                                       rates={("checkout", "email"): 2.0})


def _findings(client_slow: dict[tuple[str, str], float], server_slow: dict[str, float],
              traced: tuple[int, ...] = TRACED, *, earlier: dict[int, float] | None = None,
              rate: float | None = None,
              rates: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """trace_findings over the series nezha_case would write (in memory); `earlier`:
    minutes before the incident when every call took that much longer (an earlier
    fault); `rate`: calls per minute on every edge (none written when None)."""
    at = {m: datetime.fromtimestamp(T0 + m * STEP, UTC) for m in range(MINUTES)}
    earlier = earlier or {}
    series: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for a, b in EDGES:
        own = [(at[m], 5.0 + (server_slow.get(b, 0.0) if m >= INCIDENT else 0.0))
               for m in traced]
        series[(a, f"trace_call_server_p99_ms:{b}")] = own
        series[(a, f"trace_call_p50_ms:{b}")] = [
            (t, v + 1.0 + earlier.get(m, 0.0) +
             (client_slow.get((a, b), 0.0) if t >= at[INCIDENT] else 0.0))
            for m, (t, v) in zip(traced, own, strict=True)]
        per_minute = (rates or {}).get((a, b), rate)
        if per_minute is not None:
            series[(a, f"trace_call_rate_per_min:{b}")] = [(at[m], per_minute)
                                                            for m in traced]
    latest: dict[str, dict[str, float]] = {}
    for (service, metric), points in series.items():
        latest.setdefault(service, {})[metric] = points[-1][1]
    end = at[INCIDENT] - timedelta(minutes=2)
    return trace_findings(latest, lambda s, m: series.get((s, m), []), end)


def test_span_counters_become_per_minute_rates_and_a_reset_gives_none() -> None:
    from console.recording_traces import trace_series

    def counter(service: str, points: list[tuple[int, float]]) -> Any:
        return ({"service": service}, [(float(T0 + m * STEP), v) for m, v in points])

    raw = {"traces_spanmetrics_calls_total": [counter("cart", [(3, 100.0), (4, 160.0),
                                                               (12, 560.0), (13, 20.0)])],
           "traces_spanmetrics_errors_total": [counter("cart", [(3, 0.0), (4, 6.0),
                                                                (12, 6.0), (13, 6.0)])]}
    out = trace_series(raw, float(T0), float(STEP))
    calls = [(int((at.timestamp() - T0) // STEP), v)
             for at, v in out[("cart", "trace_calls_per_min")]]
    assert calls == [(4, 60.0), (12, 50.0)]  # 400 calls over 8 minutes; 13 was a reset
    errors = [(int((at.timestamp() - T0) // STEP), v)
              for at, v in out[("cart", "trace_error_rate")]]
    assert errors == [(4, 0.1), (12, 0.0)]

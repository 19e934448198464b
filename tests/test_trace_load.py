"""The traces blame a service that slows or fails on its own, not one that was handed
more calls (a surge upstream, a cache's misses): both look alike in its spans, only the
call counts tell them apart. And each trace finding links a sample, as metrics' do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.investigator_trace_errors import error_findings
from agents.investigator_traces import trace_findings
from console.sources.metrics import Point

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=20)  # the baseline's end
CALLERS = ("checkout", "frontend")


def _steps(before: float, after: float) -> list[Point]:
    return [(T0 + timedelta(minutes=m), before if m < 21 else after) for m in range(30)]


def _slow_db(calls_after: float) -> tuple[dict[str, dict[str, float]],
                                          dict[tuple[str, str], list[Point]]]:
    """Both callers' calls into `db` go from 10 to 60 ms (its own spans too) while
    their count a minute goes from 1000 to `calls_after`."""
    series: dict[tuple[str, str], list[Point]] = {}
    for caller in CALLERS:
        series[(caller, "trace_call_p50_ms:db")] = _steps(10.0, 60.0)
        series[(caller, "trace_call_server_p99_ms:db")] = _steps(30.0, 180.0)
        series[(caller, "trace_call_rate_per_min:db")] = _steps(1000.0, calls_after)
    latest = {caller: {m: v[-1][1] for (s, m), v in series.items() if s == caller}
              for caller in CALLERS}
    return latest, series


def test_a_database_slow_at_steady_traffic_is_found_and_linked() -> None:
    latest, series = _slow_db(calls_after=1000.0)
    found = trace_findings(latest, lambda s, m: series.get((s, m), []), END)
    assert set(found) == {"db"}
    assert found["db"].ref == (f"metric:checkout/trace_call_p50_ms:db@"
                               f"{(T0 + timedelta(minutes=29)).isoformat()}")


def test_a_database_handed_three_times_the_calls_is_not_blamed_by_traces() -> None:
    latest, series = _slow_db(calls_after=3000.0)
    assert trace_findings(latest, lambda s, m: series.get((s, m), []), END) == {}


def _failing(calls_after: float) -> dict[str, dict[str, list[Point]]]:
    return {"search": {"trace_error_rate": _steps(0.001, 0.3),
                       "trace_calls_per_min": _steps(1000.0, calls_after)},
            "frontend": {"trace_error_rate": _steps(0.001, 0.001),
                         "trace_calls_per_min": _steps(1000.0, 1000.0)}}


def _errors(data: dict[str, dict[str, list[Point]]]) -> dict[str, object]:
    latest = {s: {m: p[-1][1] for m, p in metrics.items()} for s, metrics in data.items()}
    return dict(error_findings(latest, lambda s, m: data.get(s, {}).get(m, []), END,
                               {"frontend": ["search"], "search": []}))


def test_a_service_failing_at_steady_traffic_is_found_and_linked() -> None:
    found = _errors(_failing(calls_after=1000.0))
    assert set(found) == {"search"}
    ref = found["search"].ref  # type: ignore[attr-defined]
    assert ref.startswith("metric:search/trace_error_rate@")


def test_a_service_shedding_a_surge_is_not_blamed_by_traces() -> None:
    assert _errors(_failing(calls_after=2500.0)) == {}

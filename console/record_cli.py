"""`watchfloor record --from-prometheus URL --start T --end T --out DIR`: write a
recorded incident window (console/recording.py) from a live Prometheus.

Each query's `query_range` answer is written as Prometheus sent it (`metrics/NAME.json`);
the firing alerts of the window (`ALERTS{alertstate="firing"}`) go to `alerts.json`.
Without `--query`, the series the embedded estate's exporter publishes
(`watchfloor_service_<metric>`) are recorded, and map onto the investigator's names by
themselves. The trace-derived series of a tracing backend are recorded beside them when
the Prometheus holds them (console/record_traces.py), and the manifest says which. The
graph (`--graph`, an edge list `caller,callee`) is copied in: Prometheus does not know it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from console.cli_args import parse_moment, positive_float

COMMANDS = ("record",)
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MAX_POINTS = 11_000  # Prometheus refuses a range query of more points per series
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _query(text: str) -> tuple[str, str]:
    name, sep, expr = text.partition("=")
    if sep and _NAME.match(name.strip()) and expr.strip():
        return name.strip(), expr.strip()
    if _NAME.match(text.strip()):
        return text.strip(), text.strip()
    raise argparse.ArgumentTypeError(f"expected NAME=PROMQL or a bare metric name, got "
                                     f"{text!r}")


def add_parser(sub: Any) -> None:
    rec = sub.add_parser(
        "record", help="write a recorded incident window from a live Prometheus",
        description="Query a Prometheus over [start, end] and write a recording folder "
                    "(README, \"Recorded incidents\") that `watchfloor investigate` reads.")
    rec.add_argument("--from-prometheus", dest="prometheus", required=True, metavar="URL")
    rec.add_argument("--start", required=True, type=parse_moment, metavar="T",
                     help="unix seconds, ISO 8601, or now-30m")
    rec.add_argument("--end", required=True, type=parse_moment, metavar="T")
    rec.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="the folder to write (must not exist, or be empty)")
    rec.add_argument("--step", type=positive_float, default=60.0, help="seconds (default 60)")
    rec.add_argument("--query", action="append", type=_query, default=None,
                     metavar="NAME=PROMQL", help="a series to record as metrics/NAME.json "
                     "(repeatable; default: the watchfloor_service_* series)")
    rec.add_argument("--graph", type=Path, default=None, metavar="FILE",
                     help="the dependency graph, an edge list CSV caller,callee")
    rec.add_argument("--service", action="append", default=None, metavar="NAME",
                     help="the service in trouble (default: the services of the alerts)")
    rec.add_argument("--at", type=parse_moment, default=None, metavar="T",
                     help="when the trouble was first seen (default: the first alert)")
    rec.add_argument("--name", default=None, help="the recording's name (default: DIR's)")
    rec.add_argument("--timeout", type=positive_float, default=30.0, help="seconds per query")
    rec.add_argument("--rate-window", type=positive_float, default=None, metavar="SECONDS",
                     help="the rate window of the trace-derived latency percentiles "
                     "(default: twice --step, at least 60)")


def dispatch(args: argparse.Namespace) -> int:
    from console.recording import RecordingError  # not on the console's start path

    try:
        written = record(args)
    except RecordingError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    except SourceDown as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f"wrote {written}\n")
    return EXIT_OK


class SourceDown(RuntimeError):
    """Prometheus could not be reached or refused a query."""


def _fetch(client: Any, url: str, params: dict[str, Any], what: str) -> tuple[bytes, Any]:
    import httpx

    from console.recording import RecordingError

    try:
        answer = client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise SourceDown(f"prometheus {what}: {type(exc).__name__}: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        raise SourceDown(f"prometheus {what}: answer is not JSON (HTTP "
                         f"{answer.status_code})") from None
    if answer.status_code >= 400 or not isinstance(body, dict) or \
            body.get("status") != "success":
        detail = body.get("error", "") if isinstance(body, dict) else ""
        problem = RecordingError if answer.status_code == 400 else SourceDown
        raise problem(f"prometheus {what}: HTTP {answer.status_code} {detail}".rstrip())
    return answer.content, body


def _traces(client: Any, args: argparse.Namespace, window: dict[str, float]) -> Any:
    """Which trace-derived series the Prometheus holds over the window (the metric names
    it has then), as the queries that record them."""
    from console.record_traces import trace_queries

    url = args.prometheus.rstrip("/") + "/api/v1/label/__name__/values"
    _, body = _fetch(client, url, {"start": window["start"], "end": window["end"]},
                     "metric names")
    names = body.get("data")
    if not isinstance(names, list):
        raise SourceDown("prometheus metric names: data: expected a list of names")
    rate_window = args.rate_window or max(2 * args.step, 60.0)
    return trace_queries((str(n) for n in names), rate_window)


def record(args: argparse.Namespace) -> Path:
    import httpx

    from console.recording import (
        FORMAT,
        Graph,
        Manifest,
        RecordingError,
        parse_query_range,
        read_graph,
    )
    from console.sources.metrics import METRIC_NAMES

    start, end, step = args.start, args.end, args.step
    if end <= start:
        raise RecordingError(f"--end {end.isoformat()} is not after --start "
                             f"{start.isoformat()}: the window is empty")
    points = (end - start).total_seconds() / step
    if points > MAX_POINTS:
        raise RecordingError(f"{points:.0f} samples per series; Prometheus answers at most "
                             f"{MAX_POINTS}: use a larger --step")
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RecordingError(f"{out}: exists and is not an empty folder")
    graph = None
    if args.graph is not None:
        graph = Graph(file="edges.csv", format="edges")
        read_graph(args.graph, graph)  # fails early, naming the line
    queries = args.query or [(f"watchfloor_service_{m}", f"watchfloor_service_{m}")
                             for m in METRIC_NAMES]
    url = args.prometheus.rstrip("/") + "/api/v1/query_range"
    window = {"start": start.timestamp(), "end": end.timestamp(), "step": step}
    files: dict[str, bytes] = {}
    series = 0
    with httpx.Client(timeout=args.timeout) as client:
        for name, expr in queries:
            raw, body = _fetch(client, url, {"query": expr, **window}, f"query {expr!r}")
            series += len(parse_query_range(body, f"{name}.json"))
            files[f"metrics/{name}.json"] = raw
        raw, _ = _fetch(client, url, {"query": 'ALERTS{alertstate="firing"}', **window},
                        "ALERTS")
        files["alerts.json"] = raw
        traces = _traces(client, args, window)  # console/record_traces.py
        for name, expr in traces.queries:
            raw, body = _fetch(client, url, {"query": expr, **window}, f"query {expr!r}")
            parse_query_range(body, f"{name}.json")
            files[f"metrics/{name}.json"] = raw
    if series == 0:
        raise RecordingError(f"no series in the window {start.isoformat()} .. "
                             f"{end.isoformat()} for {', '.join(n for n, _ in queries)}")
    manifest: dict[str, Any] = {
        "format": FORMAT, "name": args.name or out.name,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "step": step},
        "source": {"prometheus": args.prometheus,
                   "queries": {**dict(queries), **dict(traces.queries)}},
        "alerts": "alerts.json",
        "traces": traces.manifest(),
    }
    if graph is not None:
        manifest["graph"] = graph.model_dump()
    if args.service:
        manifest["symptom"] = {"services": args.service,
                               **({"at": args.at.isoformat()} if args.at else {})}
    Manifest.model_validate(manifest)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics").mkdir(exist_ok=True)
    for rel, content in files.items():
        (out / rel).write_bytes(content)
    if args.graph is not None:
        shutil.copyfile(args.graph, out / "edges.csv")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n",
                                       encoding="utf-8")
    return out

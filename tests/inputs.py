"""Bodies and files for the input tests: one well-formed delivery per receiver route and
one file per import format, each with its time field and an extra field left open, and
the counts of what a database holds, to say what a delivery stored."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from console.cli import main
from console.runtime import Runtime
from console.sources.mapping import load_mappings
from console.sources.webhook import WebhookReceiver
from console.storage.models import (
    ChangeRow,
    DeadLetterRow,
    InboundPayloadRow,
    LogRow,
    SignalRow,
)

GOOD_TIME = "2026-01-05T02:12:00Z"
NEST = "__NEST__"  # a string replaced by raw JSON text (a nest too deep to serialize)

MAPPING_YAML = """\
mappings:
  grafana:
    items: alerts
    fields: {name: labels.alertname, service: labels.service, status: status,
             at: startsAt, summary: annotations.summary}
"""


def alertmanager_body(marker: str, *, starts: Any = GOOD_TIME, ends: Any = None,
                      status: str = "firing", extra: Any = None) -> dict[str, Any]:
    alert: dict[str, Any] = {"status": status,
                             "labels": {"alertname": "HighErrorRate", "service": "payments",
                                        "severity": "critical"},
                             "annotations": {"summary": marker}, "startsAt": starts}
    if ends is not None:
        alert["endsAt"] = ends
    body: dict[str, Any] = {"version": "4", "groupKey": f"g-{marker}", "status": status,
                            "receiver": "watchfloor", "externalURL": "http://am:9093",
                            "alerts": [alert]}
    if extra is not None:
        body["extra"] = extra
    return body


def change_body(marker: str, *, at: Any = GOOD_TIME, extra: Any = None,
                **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"service": "payments", "kind": "deploy", "description": marker,
                            "at": at, **fields}
    if extra is not None:
        body["extra"] = extra
    return body


def generic_body(marker: str, *, at: Any = GOOD_TIME, name: str = "HighErrorRate",
                 extra: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"alerts": [{"labels": {"alertname": name, "service": "payments"},
                                        "status": "firing", "startsAt": at,
                                        "annotations": {"summary": marker}}]}
    if extra is not None:
        body["extra"] = extra
    return body


def prometheus_doc(marker: str, *, at: Any = GOOD_TIME, extra: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "HighLatencyP99", "service": "checkout"},
         "annotations": {"summary": marker}, "state": "firing", "activeAt": at,
         "value": "1"}]}}
    if extra is not None:
        doc["extra"] = extra
    return doc


def pagerduty_doc(marker: str, *, at: Any = GOOD_TIME, extra: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"event": {"event_type": "incident.triggered", "occurred_at": at,
                                     "data": {"id": "PABC", "title": marker,
                                              "service": {"summary": "checkout"},
                                              "created_at": GOOD_TIME}}}
    if extra is not None:
        doc["extra"] = extra
    return doc


def log_doc(marker: str, *, at: Any = GOOD_TIME, extra: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"service": "payments", "level": "ERROR", "at": at,
                           "message": f"upstream returned 503 {marker}"}
    if extra is not None:
        doc["extra"] = extra
    return doc


# What each import format's file holds, made with the time in its time field.
FILE_DOCS = {"alertmanager": lambda m, at, extra: alertmanager_body(m, starts=at, extra=extra),
             "prometheus-alerts": lambda m, at, extra: prometheus_doc(m, at=at, extra=extra),
             "pagerduty": lambda m, at, extra: pagerduty_doc(m, at=at, extra=extra),
             "changes": lambda m, at, extra: change_body(m, at=at, extra=extra),
             "logs": lambda m, at, extra: log_doc(m, at=at, extra=extra)}
TIME_FIELD = {"alertmanager": "startsAt", "prometheus-alerts": "activeAt",
              "pagerduty": "occurred_at", "changes": "at", "logs": "at"}


def raw_json(body: Any, nest: str | None = None) -> bytes:
    """The body as JSON text, with the `NEST` placeholder replaced by `nest` (raw text)."""
    text = json.dumps(body)
    if nest is not None:
        text = text.replace(json.dumps(NEST), nest)
    return text.encode("utf-8", "surrogatepass")


def nest_text(depth: int, kind: str) -> str:
    """`depth` containers one inside another, as JSON text: lists or objects."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"k":' * depth + "1" + "}" * depth


@dataclass(frozen=True)
class Counts:
    signals: int
    changes: int
    payloads: int
    logs: int
    dead_letters: int


def counts(rt: Runtime) -> Counts:
    with rt.service.db.sessions() as session:
        def count(model: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return Counts(count(SignalRow), count(ChangeRow), count(InboundPayloadRow),
                      count(LogRow), count(DeadLetterRow))


def stored_times(rt: Runtime, marker: str) -> list[Any]:
    """The stored times of the signals, changes or log lines a delivery marked with
    `marker` (in a summary, a description or a message) was normalized to."""
    with rt.service.db.sessions() as session:
        times = [row.at for row in session.scalars(select(SignalRow))
                 if marker in json.dumps(row.annotations)]
        times += list(session.scalars(select(ChangeRow.at).where(
            ChangeRow.description == marker)))
        times += list(session.scalars(select(LogRow.at).where(
            LogRow.message.contains(marker))))
        return times


def ingest(path: Path, fmt: str, db_url: str) -> tuple[int, str, str]:
    """`watchfloor ingest` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["ingest", "--format", fmt, str(path), "--db", db_url])
    return code, out.getvalue(), err.getvalue()


# --- fixtures both the regression and the property tests use --------------------------


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


@pytest.fixture
def receiver(rt: Runtime, tmp_path: Path) -> WebhookReceiver:
    """The receiver with the generic mapping of MAPPING_YAML."""
    path = tmp_path / "mappings.yaml"
    path.write_text(MAPPING_YAML)
    return WebhookReceiver(rt.service, mappings=load_mappings(path))

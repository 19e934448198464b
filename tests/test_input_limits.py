"""Times, nesting, numbers and NUL at every way in: each case answered 400 (with a dead
letter) by the receiver and refused with exit 2 by `ingest`, the place named, nothing
stored. Each case here once reached the database and failed there (500 "not stored",
retried forever by Alertmanager; or a traceback and exit 1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.runtime import Runtime
from console.sources.alertmanager import PayloadError
from console.sources.feeds import parse_changes
from console.sources.mapping import load_mappings
from console.sources.webhook import WebhookReceiver
from console.yamlpos import ScenarioError
from tests.inputs import (  # rt and receiver are the shared fixtures
    receiver,
    rt,
    FILE_DOCS,
    MAPPING_YAML,
    TIME_FIELD,
    alertmanager_body,
    change_body,
    counts,
    generic_body,
    ingest,
    nest_text,
    raw_json,
    stored_times,
)

BAD_TIMES = {"year 1 east of UTC": "0001-01-01T00:00:00+05:00",
             "year 9999 west of UTC": "9999-12-31T23:59:59-05:00",
             "naive": "2026-01-05T02:12:00"}



def refused(rx: WebhookReceiver, rt: Runtime, route: str, raw: bytes, *where: str) -> str:
    """Post one body; assert 400 naming every `where`, one dead letter, nothing stored."""
    before = counts(rt)
    status, answer = rx.handle(route, {}, raw)
    after = counts(rt)
    assert status == 400, answer
    for text in where:
        assert text in answer["error"]
    assert after.dead_letters == before.dead_letters + 1
    assert (after.signals, after.changes, after.payloads) == (
        before.signals, before.changes, before.payloads)
    return str(answer["error"])


@pytest.mark.parametrize("time", BAD_TIMES.values(), ids=BAD_TIMES.keys())
@pytest.mark.parametrize(("route", "body", "where"), [
    ("/webhook/alertmanager", lambda t: alertmanager_body("m", starts=t), "alerts.0.startsAt"),
    ("/webhook/alertmanager",
     lambda t: alertmanager_body("m", status="resolved", ends=t), "alerts.0.endsAt"),
    ("/webhook/changes", lambda t: change_body("m", at=t), "change 0"),
    ("/webhook/generic/grafana", lambda t: generic_body("m", at=t), "alerts.0.startsAt"),
], ids=["startsAt", "endsAt", "changes", "generic"])
def test_the_receiver_refuses_a_time_it_cannot_store(receiver: WebhookReceiver, rt: Runtime,
                                                     time: str, route: str, body: Any,
                                                     where: str) -> None:
    error = refused(receiver, rt, route, raw_json(body(time)), where)
    assert "timezone" in error or "out of range" in error


@pytest.mark.parametrize("time", BAD_TIMES.values(), ids=BAD_TIMES.keys())
@pytest.mark.parametrize("fmt", sorted(FILE_DOCS))
def test_ingest_refuses_a_time_it_cannot_store(tmp_path: Path, db_url: str, fmt: str,
                                               time: str) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(raw_json(FILE_DOCS[fmt]("m", time, None)))
    code, _, err = ingest(path, fmt, db_url)
    assert code == 2, err
    assert str(path) in err
    assert TIME_FIELD[fmt] in err
    assert "timezone" in err or "out of range" in err
    with Runtime(db_url) as rt:
        assert counts(rt).payloads == 0


def test_a_plain_log_line_with_a_time_out_of_range_is_refused(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "app.log"
    path.write_text("2026-01-05T02:12:00Z ERROR payments: fine\n"
                    "9999-12-31T23:59:59-05:00 ERROR payments: too late\n")
    code, _, err = ingest(path, "logs", db_url)
    assert code == 2
    assert "line 2" in err
    assert "out of range" in err


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("fmt", sorted(FILE_DOCS))
def test_ingest_refuses_a_10000_deep_nest(tmp_path: Path, db_url: str, fmt: str,
                                         kind: str) -> None:
    # A log line is at most 16 KiB: 2,000 levels fit, far past what the JSON parser's own
    # recursion allows (about 1,000).
    depth = 2_000 if fmt == "logs" else 10_000
    path = tmp_path / "deep.json"
    path.write_bytes(raw_json(FILE_DOCS[fmt]("m", "__NEST__", None), nest_text(depth, kind)))
    code, _, err = ingest(path, fmt, db_url)
    assert code == 2, err
    assert "nested deeper than 32 levels" in err
    assert "line 1 column" in err
    assert "Traceback" not in err


def test_the_receiver_refuses_a_10000_deep_nest_and_names_where(receiver: WebhookReceiver,
                                                                rt: Runtime) -> None:
    body = alertmanager_body("m", extra="__NEST__")
    refused(receiver, rt, "/webhook/alertmanager", raw_json(body, nest_text(10_000, "object")),
            "nested deeper than 32 levels", "line 1 column")
    refused(receiver, rt, "/webhook/alertmanager", raw_json(body, nest_text(40, "list")),
            "body: extra.0.0", "nested deeper than 32 levels")


@pytest.mark.parametrize(("number", "reason"), [("1e400", "too large"),
                                                ("9" * 5000, "more than 4300 digits")])
def test_numbers_python_cannot_hold_are_refused(receiver: WebhookReceiver, rt: Runtime,
                                                tmp_path: Path, db_url: str, number: str,
                                                reason: str) -> None:
    raw = raw_json(alertmanager_body("m", extra="__NEST__"), number)
    refused(receiver, rt, "/webhook/alertmanager", raw, reason)
    path = tmp_path / "n.json"
    path.write_bytes(raw)
    code, _, err = ingest(path, "alertmanager", db_url)
    assert code == 2
    assert reason in err


@pytest.mark.parametrize(("fields", "where"), [
    ({"description": "deploy\x00 v42"}, "description"), ({"author": "ops\x00"}, "author"),
    ({"version_to": "v42\x00"}, "version_to")])
def test_nul_in_a_change_is_refused(receiver: WebhookReceiver, rt: Runtime, tmp_path: Path,
                                    db_url: str, fields: dict[str, str], where: str) -> None:
    body = change_body("m", **fields)
    refused(receiver, rt, "/webhook/changes", raw_json(body), where, "NUL")
    with pytest.raises(PayloadError, match=rf"change 0: .*{where}: contains a NUL"):
        parse_changes([body])
    path = tmp_path / "c.json"
    path.write_bytes(raw_json(body))
    code, _, err = ingest(path, "changes", db_url)
    assert code == 2
    assert where in err
    assert "NUL" in err


@pytest.mark.parametrize("field", ["receiver", "externalURL"])
def test_nul_in_an_alertmanager_payload_is_refused(receiver: WebhookReceiver, rt: Runtime,
                                                   field: str) -> None:
    body = alertmanager_body("m")
    body[field] = "watch\x00floor"
    refused(receiver, rt, "/webhook/alertmanager", raw_json(body), field, "NUL")


def test_nul_in_a_json_log_line_is_refused(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text(json.dumps({"service": "payments", "level": "ERROR", "at": "2026-01-05T"
                                "02:12:00Z", "message": "upstream\x00 503"}) + "\n")
    code, _, err = ingest(path, "logs", db_url)
    assert code == 2
    assert "line 1: message: contains a NUL" in err


def test_a_name_longer_than_stored_is_refused_through_a_mapping(receiver: WebhookReceiver,
                                                                  rt: Runtime) -> None:
    error = refused(receiver, rt, "/webhook/generic/grafana",
                    raw_json(generic_body("m", name="A" * 400)), "alerts.0.labels.alertname")
    assert "at most 200" in error


def test_a_mapping_name_longer_than_its_source_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING_YAML.replace("grafana", "g" * 57))
    with pytest.raises(ScenarioError, match="at most 56 characters"):
        load_mappings(path)


def test_a_prometheus_document_whose_data_is_not_an_object_exits_2(tmp_path: Path,
                                                                    db_url: str) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"status": "success", "data": [1, 2]}')
    code, _, err = ingest(path, "prometheus-alerts", db_url)
    assert code == 2
    assert "document 0" in err


def test_alertmanager_zero_end_time_means_the_alert_start(receiver: WebhookReceiver,
                                                          rt: Runtime) -> None:
    body = alertmanager_body("zero-end", status="resolved", starts="2026-01-05T07:12:00+05:00",
                             ends="0001-01-01T00:00:00Z")
    status, answer = receiver.handle("/webhook/alertmanager", {}, raw_json(body))
    assert status == 200, answer
    [at] = stored_times(rt, "zero-end")
    assert at == datetime(2026, 1, 5, 2, 12, tzinfo=UTC)
    assert at.utcoffset().total_seconds() == 0


def test_over_http_a_bad_time_or_nest_is_400_with_a_dead_letter(rt: Runtime) -> None:
    rx = WebhookReceiver(rt.service).start()
    try:
        bodies = [raw_json(alertmanager_body("m", starts=t)) for t in BAD_TIMES.values()]
        bodies.append(raw_json(alertmanager_body("m", extra="__NEST__"),
                               nest_text(10_000, "list")))
        for raw in bodies:
            answer = httpx.post(rx.url + "/webhook/alertmanager", content=raw, timeout=10)
            assert answer.status_code == 400, answer.text
        assert counts(rt).dead_letters == len(bodies)
        assert counts(rt).payloads == 0
    finally:
        rx.close()

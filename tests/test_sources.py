"""Signals in: the webhook receiver over real HTTP on loopback, and `watchfloor ingest`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.cli import main
from console.runtime import Runtime
from console.sources.webhook import MAX_BODY, WebhookReceiver
from tests.helpers import readme_yaml

AM_PAYLOAD: dict[str, Any] = {
    "version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "truncatedAlerts": 0,
    "status": "firing", "receiver": "watchfloor",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
    "alerts": [{"status": "firing",
                "labels": {"alertname": "HighErrorRate", "service": "payments",
                           "severity": "critical", "instance": "payments-0"},
                "annotations": {"summary": "payments failing 30% of requests"},
                "startsAt": "2026-01-05T02:12:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3"}],
}


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


@pytest.fixture
def receiver(rt: Runtime) -> Iterator[WebhookReceiver]:
    rx = WebhookReceiver(rt.service, token="s3cret").start()
    yield rx
    rx.close()


def post(rx: WebhookReceiver, body: Any, *, token: str | None = "s3cret",
         path: str = "/webhook/alertmanager") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(rx.url + path, content=content, headers=headers, timeout=10)


def test_receiver_listens_on_loopback_and_stores_before_answering(
        receiver: WebhookReceiver, rt: Runtime) -> None:
    assert receiver.url.startswith("http://127.0.0.1:")
    answer = post(receiver, AM_PAYLOAD)
    assert answer.status_code == 200
    assert answer.json()["status"] == "stored"
    (sig,) = rt.service.recent_signals()  # stored by the time the sender got its 200
    assert (sig.name, sig.service, sig.severity.value) == ("HighErrorRate", "payments",
                                                           "critical")
    assert sig.source == "alertmanager"


def test_duplicate_delivery_is_idempotent(receiver: WebhookReceiver, rt: Runtime) -> None:
    assert post(receiver, AM_PAYLOAD).json()["status"] == "stored"
    again = post(receiver, AM_PAYLOAD)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert rt.service.signal_count() == 1
    assert rt.service.payload_count() == 1


def test_resolved_alert_is_a_resolved_signal(receiver: WebhookReceiver, rt: Runtime) -> None:
    resolved = copy.deepcopy(AM_PAYLOAD)
    resolved["status"] = "resolved"
    resolved["alerts"][0] |= {"status": "resolved", "endsAt": "2026-01-05T02:30:00Z"}
    post(receiver, resolved)
    (sig,) = rt.service.recent_signals()
    assert sig.status.value == "resolved"
    assert sig.at.minute == 30


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 401)])
def test_token_is_required_when_set(receiver: WebhookReceiver, rt: Runtime,
                                    token: str | None, status: int) -> None:
    assert post(receiver, AM_PAYLOAD, token=token).status_code == status
    assert rt.service.signal_count() == 0


def test_malformed_payload_gets_400_with_reason_and_a_dead_letter(
        receiver: WebhookReceiver, rt: Runtime) -> None:
    broken = copy.deepcopy(AM_PAYLOAD)
    del broken["alerts"][0]["labels"]["alertname"]
    del broken["commonLabels"]["alertname"]
    answer = post(receiver, broken)
    assert answer.status_code == 400
    assert "alertname" in answer.json()["error"]
    garbage = post(receiver, b"{not json")
    assert garbage.status_code == 400
    assert "not valid JSON" in garbage.json()["error"]
    letters = rt.service.dead_letters()
    assert len(letters) == 2
    assert letters[0][2] == "{not json"  # the rejected body is kept for review
    assert rt.service.signal_count() == 0


def test_oversized_and_unknown_paths_are_refused(receiver: WebhookReceiver) -> None:
    big = b"[" + b"0," * (MAX_BODY // 2) + b"0]"
    assert post(receiver, big).status_code == 413
    assert post(receiver, AM_PAYLOAD, path="/elsewhere").status_code == 404


def test_change_feed_over_webhook(receiver: WebhookReceiver, rt: Runtime) -> None:
    change = {"service": "payments", "kind": "deploy", "description": "payments v42",
              "at": "2026-01-05T02:10:00Z", "author": "ci", "version_from": "v41",
              "version_to": "v42"}
    assert post(receiver, [change], path="/webhook/changes").status_code == 200
    (stored,) = rt.service.recent_changes()
    assert stored.version_to == "v42"


# --- hostile input -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=30)
hostile_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60) | \
    st.sampled_from(["$(rm -rf /)", "`reboot`", "; shutdown -h now", "\x00", "\u202e", "\ud800",
                     "a" * 5000, "{{7*7}}", "' OR 1=1 --", "../../etc/passwd"])


def _mutated(label_key: str, label_value: str, top: Any) -> Any:
    body = copy.deepcopy(AM_PAYLOAD)
    body["alerts"][0]["labels"][label_key] = label_value
    return top if top is not None else body


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.builds(_mutated, hostile_text, hostile_text, st.none()))
def test_any_json_is_answered_and_never_half_stored(rt: Runtime, body: Any) -> None:
    rx = WebhookReceiver(rt.service)  # handle() is the whole decision; no socket needed
    before = (rt.service.signal_count(), rt.service.payload_count())
    try:
        raw = json.dumps(body).encode()
    except (UnicodeEncodeError, ValueError):
        raw = repr(body).encode("utf-8", "surrogatepass")
    status, answer = rx.handle("/webhook/alertmanager", {}, raw)
    after = (rt.service.signal_count(), rt.service.payload_count())
    if status == 200:
        assert after[1] in (before[1], before[1] + 1)
    else:
        assert status == 400
        assert answer["error"]
        assert after == before


def test_deep_nesting_is_refused(rt: Runtime) -> None:
    rx = WebhookReceiver(rt.service)
    status, answer = rx.handle("/webhook/alertmanager", {}, b"[" * 5000 + b"]" * 5000)
    assert status == 400
    assert "nested" in answer["error"] or "JSON" in answer["error"]


# --- offline import --------------------------------------------------------------------------

GOOD = {
    "alertmanager": [AM_PAYLOAD],
    "prometheus-alerts": {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "HighLatencyP99", "service": "checkout",
                    "severity": "warning"}, "annotations": {"summary": "slow"},
         "state": "firing", "activeAt": "2026-01-05T02:14:00Z", "value": "4.1e+03"},
        {"labels": {"alertname": "Pending", "service": "cart"}, "annotations": {},
         "state": "pending", "activeAt": "2026-01-05T02:14:00Z", "value": "1"}]}},
    "pagerduty": {"event": {"event_type": "incident.triggered",
                            "occurred_at": "2026-01-05T02:15:00Z",
                            "data": {"id": "PABC", "title": "Checkout down",
                                     "service": {"summary": "checkout"}, "urgency": "high",
                                     "created_at": "2026-01-05T02:15:00Z"}}},
    "changes": [{"service": "payments", "kind": "deploy", "description": "v42",
                 "at": "2026-01-05T02:10:00Z"},
                {"service": "search", "kind": "config", "description": "ttl 120s",
                 "at": "2026-01-05T02:04:00Z"}],
}
EXPECTED = {"alertmanager": (1, 0), "prometheus-alerts": (1, 0), "pagerduty": (1, 0),
            "changes": (0, 2)}


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_ingest_stores_each_format_once(tmp_path: Path, db_url: str, fmt: str,
                                        capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / f"{fmt}.json"
    path.write_text(json.dumps(GOOD[fmt]))
    assert main(["ingest", "--format", fmt, str(path), "--db", db_url]) == 0
    signals, changes = EXPECTED[fmt]
    assert f"stored {signals} signal(s)" in capsys.readouterr().out
    assert main(["ingest", "--format", fmt, str(path), "--db", db_url]) == 0
    assert "imported before" in capsys.readouterr().out
    with Runtime(db_url) as rt:
        assert rt.service.signal_count() == signals
        assert len(rt.service.recent_changes()) == changes


@pytest.mark.parametrize(("fmt", "content", "reason"), [
    ("alertmanager", "", "empty"),
    ("alertmanager", '{"version": "4"}', "groupKey"),
    ("changes", '{"service": "a", "kind": "deploy", "description": "x", '
                '"at": "2026-01-05T02:10:00Z"}\n{"service": "b", "kind": "nuke", '
                '"description": "y", "at": "2026-01-05T02:11:00Z"}', "change 1"),
    ("changes", '{"service": "a", "kind": "deploy", "description": "x", '
                '"at": "2026-01-05T02:10:00"}', "timezone"),
    ("prometheus-alerts", "[1, 2]", "api/v1/alerts"),
    ("pagerduty", '{"event": {"event_type": "rm -rf", "occurred_at": "x"}}', "event 0"),
    ("changes", "\xff\xfe", "UTF-8"),
    # a name longer than the 200 characters stored (PostgreSQL refuses it; SQLite did not)
    ("alertmanager", '{"version": "4", "groupKey": "g", "status": "firing", "alerts": [{'
                     '"status": "firing", "labels": {"alertname": "' + "A" * 300 + '"}, '
                     '"startsAt": "2026-01-05T02:10:00Z"}]}', "alertname label is 300"),
    ("prometheus-alerts", '{"status": "success", "data": {"alerts": [{"labels": {'
                          '"alertname": "Hot", "service": "' + "s" * 201 + '"}, '
                          '"state": "firing", "activeAt": "2026-01-05T02:10:00Z"}]}}',
     "service (or job/instance) label is 201"),
])
def test_ingest_refuses_bad_files_storing_nothing(tmp_path: Path, db_url: str, fmt: str,
                                                  content: str, reason: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode("latin-1") if fmt == "changes" and "\xff" in content
                     else content.encode())
    assert main(["ingest", "--format", fmt, str(path), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert reason in err
    with Runtime(db_url) as rt:
        assert rt.service.signal_count() == 0
        assert rt.service.recent_changes() == []
        assert rt.service.payload_count() == 0


def test_ingest_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["ingest", "--format", "changes", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


# --- the estate as a scrape target, and the Prometheus client ------------------------------

def test_shipped_prometheus_rules_match_the_estate_and_pass_promtool(tmp_path: Path) -> None:
    import subprocess
    from importlib import resources

    from console.estate import load_estate_spec
    from console.estate.exporter import prometheus_rules

    shipped = resources.files("resources").joinpath("prometheus", "estate-rules.yml")
    assert shipped.read_text() == prometheus_rules(load_estate_spec())
    path = tmp_path / "rules.yml"
    path.write_text(shipped.read_text())
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 13 rules found" in check.stdout


def test_estate_metrics_in_exposition_format() -> None:
    from console.estate import ScenarioPlayer, load_scenario
    from console.estate.exporter import serve

    player = ScenarioPlayer(load_scenario("zone-partition"))
    while player.estate.elapsed < 15 * 60:
        player.advance(60.0)
    server, port = serve(player.estate)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
    assert 'watchfloor_service_error_rate{kind="api",service="cart"}' in text
    assert 'watchfloor_instance_up{instance="cart-2",service="cart",zone="c"} 0.0' in text
    # an unreachable instance has no cpu series, as Prometheus would see it
    assert 'watchfloor_instance_cpu{instance="cart-2"' not in text
    assert 'watchfloor_instance_cpu{instance="cart-0",service="cart",zone="a"}' in text


def test_prometheus_client_keeps_warnings_and_reports_errors() -> None:
    import asyncio

    from console.sources.clients import PrometheusClient, SourceError

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query":
            return httpx.Response(200, json={
                "status": "success", "warnings": ["partial: one store timed out"],
                "data": {"resultType": "vector", "result": [
                    {"metric": {"service": "cart"}, "value": [1, "0.25"]}]}})
        if request.url.path == "/api/v1/rules":
            return httpx.Response(400, json={"status": "error", "error": "bad_data"})
        return httpx.Response(503, text="down for maintenance")

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            prom = PrometheusClient(client, "http://prometheus")
            result = await prom.query("x")
            assert result.warnings == ("partial: one store timed out",)
            assert result.scalars() == {"service=cart": 0.25}
            assert prom.health.state == "ok"
            with pytest.raises(SourceError, match="HTTP 400 bad_data"):
                await prom.rules()
            with pytest.raises(SourceError, match="HTTP 503"):
                await prom.alerts()
            assert prom.health.state == "degraded"
            assert prom.health.failures == 2

    asyncio.run(run())


LOG_FILE = "\n".join([
    "2026-01-05T02:12:00Z ERROR frontend/frontend-1: upstream payments returned 503 for "
    "request 1a2b",
    "2026-01-05T02:12:01Z ERROR frontend/frontend-2: upstream payments returned 503 for "
    "request 9f9f",
    json.dumps({"service": "checkout", "level": "warning", "at": "2026-01-05T02:12:02Z",
                "message": "upstream payments returned 503 for request 77aa"}),
    "2026-01-05T02:12:03Z INFO payments: handled GET /v1/cart status=200 duration_ms=12", ""])


def test_ingest_logs_mines_templates(tmp_path: Path, db_url: str,
                                     capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "app.log"
    path.write_text(LOG_FILE)
    assert main(["ingest", "--format", "logs", str(path), "--db", db_url]) == 0
    assert "stored 4 log line(s) in 2 template(s)" in capsys.readouterr().out
    with Runtime(db_url) as rt:
        templates = dict(rt.service.log_templates())
        assert templates["upstream payments returned 503 for request <*>"] == 3


@pytest.mark.parametrize(("line", "reason"), [
    ("2026-01-05T02:12:00Z LOUD frontend: hi", "unknown level"),
    ("no structure here at all", "line 2: expected JSON or"),
    ('{"service": "x", "message": "m", "at": "2026-01-05T02:12:00"}', "timezone"),
    ('{"service": "x; rm -rf /", "message": "m", "at": "2026-01-05T02:12:00Z"}', "service"),
    ("2026-01-05T02:12:00Z INFO a: \x00", "NUL"),
])
def test_ingest_logs_refuses_a_bad_line_storing_nothing(tmp_path: Path, db_url: str, line: str,
                                                        reason: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "app.log"
    path.write_text("2026-01-05T02:11:00Z INFO frontend: fine\n" + line + "\n")
    assert main(["ingest", "--format", "logs", str(path), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err
    assert reason in err
    with Runtime(db_url) as rt:
        assert rt.service.log_templates() == []
        assert rt.service.payload_count() == 0


# --- generic JSON webhook with a declared mapping ---------------------------------------------

MAPPING_YAML = """\
mappings:
  grafana:
    items: alerts
    fields: {name: labels.alertname, service: labels.service, severity: labels.severity,
             status: status, at: startsAt, summary: annotations.summary}
    firing: [firing, alerting]
"""


def test_generic_mapping_webhook(tmp_path: Path, rt: Runtime) -> None:
    from console.sources.mapping import load_mappings

    path = tmp_path / "mappings.yaml"
    path.write_text(MAPPING_YAML)
    rx = WebhookReceiver(rt.service, mappings=load_mappings(path)).start()
    try:
        body = {"alerts": [
            {"status": "alerting", "startsAt": "2026-01-05T02:20:00Z",
             "labels": {"alertname": "SlowQueries", "service": "orders-db",
                        "severity": "critical"}, "annotations": {"summary": "p99 2.6s"}},
            {"status": "ok", "startsAt": "2026-01-05T02:21:00Z",
             "labels": {"alertname": "CpuHigh", "service": "search"}}]}
        assert post(rx, body, token=None, path="/webhook/generic/grafana").status_code == 200
        bad = post(rx, {"alerts": [{"labels": {}}]}, token=None,
                   path="/webhook/generic/grafana")
        assert bad.status_code == 400
        assert "alerts.0.labels.alertname" in bad.json()["error"]
    finally:
        rx.close()
    signals = {s.name: s for s in rt.service.recent_signals()}
    assert signals["SlowQueries"].status.value == "firing"
    assert signals["SlowQueries"].severity.value == "critical"
    assert signals["SlowQueries"].annotations["summary"] == "p99 2.6s"
    assert signals["CpuHigh"].status.value == "resolved"
    assert signals["CpuHigh"].source == "webhook:grafana"


def test_bad_mapping_file_names_line_and_field(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text(MAPPING_YAML.replace("at: startsAt", "at: 'starts At!'"))
    assert main(["--webhook-mappings", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:5:" in err
    assert "mappings.grafana.fields.at" in err


def test_listen_argument_is_checked(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--listen", "localhost:99999"])
    assert caught.value.code == 2
    assert "port must be 1-65535" in capsys.readouterr().err


def test_the_readme_mapping_example_loads(tmp_path: Path) -> None:
    from console.sources.mapping import load_mappings

    block = readme_yaml("mappings:")
    path = tmp_path / "m.yaml"
    path.write_text(block)
    assert set(load_mappings(path)) == {"grafana"}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, route=st.sampled_from(["/webhook/changes", "/webhook/generic/grafana"]))
def test_every_receiver_answers_any_json_without_half_storing(tmp_path_factory: Any, rt: Runtime,
                                                              body: Any, route: str) -> None:
    from console.sources.mapping import load_mappings

    path = tmp_path_factory.mktemp("m") / "m.yaml"
    path.write_text(MAPPING_YAML)
    rx = WebhookReceiver(rt.service, mappings=load_mappings(path))
    before = (rt.service.signal_count(), len(rt.service.recent_changes()),
              rt.service.payload_count())
    status, answer = rx.handle(route, {}, json.dumps(body).encode())
    after = (rt.service.signal_count(), len(rt.service.recent_changes()),
             rt.service.payload_count())
    assert status in (200, 400)
    if status == 400:
        assert answer["error"]
        assert after == before


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()),
       fmt=st.sampled_from(["alertmanager", "prometheus-alerts", "pagerduty", "changes",
                            "logs"]))
def test_every_importer_refuses_garbage_with_exit_2(tmp_path_factory: Any, content: bytes,
                                                    fmt: str, make_db_url: Any) -> None:
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("ingest")
    path = folder / "in.dat"
    path.write_bytes(content)
    url = make_db_url(folder)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["ingest", "--format", fmt, str(path), "--db", url])
    assert code in (0, 2)
    if code == 2:
        assert str(path) in err.getvalue()
        with Runtime(url) as rt:
            assert rt.service.payload_count() == 0
            assert rt.service.signal_count() == 0


@pytest.mark.parametrize("url", ["localhost:9093", "ftp://am", "http://", "http://am:99999"])
def test_alertmanager_url_is_checked(url: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--alertmanager", url])
    assert caught.value.code == 2
    assert "--alertmanager" in capsys.readouterr().err

"""Each new provider end to end: the system's payload, in the shape it really sends,
posted over HTTP to the running receiver, stored before the answer, then correlated by
the runtime into an incident about the right service with the right signals. Bad input
is answered 400 with the place named, and nothing of it is stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.domain import AlertStatus, Severity, SignalKind
from console.runtime import Runtime
from console.sources.webhook import WebhookReceiver
from tests.provider_payloads import DATADOG, GRAFANA, OTLP_LOGS, ZABBIX_WEBHOOK


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


@pytest.fixture
def receiver(rt: Runtime) -> Iterator[WebhookReceiver]:
    """The receiver as the leading console runs it: correlation after the answer."""
    rx = WebhookReceiver(rt.service, on_stored=rt.deferred.submit).start()
    yield rx
    rx.close()


def post(rx: WebhookReceiver, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(rx.url + path, content=content, timeout=20,
                      headers={"Content-Type": "application/json", **headers})


def incident_for(rt: Runtime, service: str) -> Any:
    """The one incident about `service`, and the stored signals its timeline names (the
    correlator's decision notes refer to each signal by its fingerprint)."""
    assert rt.deferred.wait_idle(30)
    (incident,) = [i for i in rt.service.incidents() if service in i.services]
    refs = {note.ref for note in rt.service.incident_timeline(incident.id)}
    return incident, [s for s in rt.service.recent_signals() if s.fingerprint in refs]


def assert_refused(rt: Runtime, answer: httpx.Response, source: str, *reasons: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    for reason in reasons:
        assert reason in error
    assert rt.service.payload_count() == 0
    assert rt.service.signal_count() == 0
    assert rt.service.incidents() == []
    ((kept_source, kept_reason, _),) = rt.service.dead_letters()
    assert (kept_source, kept_reason) == (source, error)


def test_grafana_alerting_webhook_opens_an_incident(receiver: WebhookReceiver,
                                                     rt: Runtime) -> None:
    answer = post(receiver, "/providers/grafana", GRAFANA)
    assert answer.json() == {"status": "stored", "signals": 1, "changes": 0}
    incident, (sig,) = incident_for(rt, "checkout")
    assert incident.services == ("checkout",)
    assert (sig.source, sig.name, sig.status) == ("grafana", "High memory usage",
                                                  AlertStatus.FIRING)
    assert sig.at.isoformat() == "2026-01-05T02:12:00.157076+00:00"  # +01:00 read as such
    assert sig.annotations["values"] == "B=44.2394, C=1"
    assert sig.annotations["silenceURL"].startswith("https://grafana.example/alerting/")
    resolved = copy.deepcopy(GRAFANA)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-01-05T03:20:00+01:00"
    assert post(receiver, "/providers/grafana", resolved).status_code == 200
    assert rt.deferred.wait_idle(30)
    (latest,) = [s for s in rt.service.recent_signals() if s.status == AlertStatus.RESOLVED]
    assert latest.fingerprint == sig.fingerprint


def test_grafana_bad_input_is_refused_and_nothing_stored(receiver: WebhookReceiver,
                                                         rt: Runtime) -> None:
    bad = copy.deepcopy(GRAFANA)
    bad["alerts"][0]["startsAt"] = "yesterday"
    assert_refused(rt, post(receiver, "/providers/grafana", bad), "grafana",
                   "Grafana Alerting webhook payload", "alerts.0.startsAt")


def test_zabbix_webhook_media_type_opens_and_resolves(receiver: WebhookReceiver,
                                                       rt: Runtime) -> None:
    answer = post(receiver, "/providers/zabbix", ZABBIX_WEBHOOK)
    assert answer.json() == {"status": "stored", "signals": 1, "changes": 0}
    incident, (sig,) = incident_for(rt, "payments")  # the service tag, not the host
    assert incident.services == ("payments",)
    assert (sig.source, sig.name, sig.severity) == (
        "zabbix", "High CPU utilization (over 90% for 5m)", Severity.CRITICAL)
    assert sig.labels["host"] == "payments-db-1"
    assert sig.at.isoformat() == "2026-01-05T02:12:00+00:00"
    recovery = {**ZABBIX_WEBHOOK, "event_value": "0", "event_recovery_date": "2026.01.05",
                "event_recovery_time": "03:31:30", "timezone": "Europe/Berlin"}
    assert post(receiver, "/providers/zabbix", recovery).status_code == 200
    assert rt.deferred.wait_idle(30)
    (latest,) = [s for s in rt.service.recent_signals() if s.status == AlertStatus.RESOLVED]
    assert latest.fingerprint == sig.fingerprint  # the problem and its recovery: one series
    assert latest.at.isoformat() == "2026-01-05T02:31:30+00:00"  # Berlin is UTC+1 in January


def test_zabbix_bad_input_is_refused_and_nothing_stored(receiver: WebhookReceiver,
                                                        rt: Runtime) -> None:
    bad = {**ZABBIX_WEBHOOK, "event_tags": '[{"tag": "service", "value": 7}]'}
    assert_refused(rt, post(receiver, "/providers/zabbix", bad), "zabbix",
                   "event_tags: 0:", "value: Input should be a valid string")


def test_zabbix_names_a_missing_parameter(receiver: WebhookReceiver, rt: Runtime) -> None:
    bad = {k: v for k, v in ZABBIX_WEBHOOK.items() if k != "event_value"}
    assert_refused(rt, post(receiver, "/providers/zabbix", bad), "zabbix",
                   "Zabbix webhook message", "event_value")


def test_datadog_webhook_opens_an_incident(receiver: WebhookReceiver, rt: Runtime) -> None:
    answer = post(receiver, "/providers/datadog", DATADOG)
    assert answer.json() == {"status": "stored", "signals": 1, "changes": 0}
    incident, (sig,) = incident_for(rt, "cart")
    assert incident.services == ("cart",)
    assert (sig.source, sig.name, sig.severity, sig.status) == (
        "datadog", "Error rate is high", Severity.CRITICAL, AlertStatus.FIRING)
    assert sig.at.isoformat() == "2026-01-05T02:12:00+00:00"
    assert sig.labels["datadog_monitor"] == "98765432"


def test_datadog_default_payload_takes_the_service_from_a_multi_alert_title(
        receiver: WebhookReceiver, rt: Runtime) -> None:
    default = {key: DATADOG[key] for key in ("body", "last_updated", "event_type", "title",
                                             "date", "org", "id")}
    default["title"] = "[Recovered on {service:cart,env:prod}] Error rate is high"
    assert post(receiver, "/providers/datadog", default).status_code == 200
    (sig,) = rt.service.recent_signals()
    assert (sig.service, sig.name, sig.status) == ("cart", "Error rate is high",
                                                   AlertStatus.RESOLVED)


def test_datadog_bad_input_is_refused_and_nothing_stored(receiver: WebhookReceiver,
                                                         rt: Runtime) -> None:
    bad = {**DATADOG, "date": "$DATE"}
    assert_refused(rt, post(receiver, "/providers/datadog", bad), "datadog",
                   "date: not Unix time in milliseconds")


def test_datadog_without_any_service_says_what_to_add(receiver: WebhookReceiver,
                                                      rt: Runtime) -> None:
    bad = {**DATADOG, "tags": "env:prod", "title": "[Triggered] Error rate is high"}
    assert_refused(rt, post(receiver, "/providers/datadog", bad), "datadog",
                   "no service", "$TAGS")


def test_otlp_http_json_logs_open_an_incident(receiver: WebhookReceiver, rt: Runtime) -> None:
    answer = post(receiver, "/v1/logs", OTLP_LOGS)
    assert answer.status_code == 200
    assert answer.json() == {}  # ExportLogsServiceResponse: everything accepted
    incident, (sig,) = incident_for(rt, "search")  # the ERROR record; INFO is no signal
    assert incident.services == ("search",)
    assert (sig.source, sig.kind, sig.name, sig.severity) == (
        "otlp", SignalKind.LOG, "DiskFullError", Severity.WARNING)
    assert sig.labels["instance"] == "search-2"
    assert sig.annotations["summary"] == "shard 3 unavailable: disk full"
    assert sig.annotations["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert sig.at.isoformat() == "2026-01-05T02:12:05+00:00"
    assert rt.service.payloads("otlp") == [OTLP_LOGS]


def test_otlp_bad_input_names_the_record_and_stores_nothing(receiver: WebhookReceiver,
                                                            rt: Runtime) -> None:
    bad = copy.deepcopy(OTLP_LOGS)
    bad["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["timeUnixNano"] = "soon"
    assert_refused(rt, post(receiver, "/providers/otlp/v1/logs", bad), "otlp",
                   "resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano: not an integer")


def test_otlp_protobuf_is_refused_with_what_to_send(receiver: WebhookReceiver,
                                                    rt: Runtime) -> None:
    answer = httpx.post(receiver.url + "/v1/logs", content=b"\x0a\x02\x08\x01", timeout=20,
                        headers={"Content-Type": "application/x-protobuf"})
    assert answer.status_code == 415
    assert "application/json" in answer.json()["error"]
    assert rt.service.payload_count() == 0
    assert rt.service.signal_count() == 0


def test_pagerduty_events_are_received_as_a_provider(receiver: WebhookReceiver,
                                                     rt: Runtime) -> None:
    event = {"event": {"id": "01DEN4HPBQAAAG05V5QQYBRZMF", "event_type": "incident.triggered",
                       "resource_type": "incident", "occurred_at": "2026-01-05T02:12:00Z",
                       "agent": None, "client": None,
                       "data": {"id": "PGR0VU2", "type": "incident", "title": "Ledger down",
                                "service": {"id": "PF9KMXH", "summary": "ledger"},
                                "urgency": "high", "status": "triggered",
                                "created_at": "2026-01-05T02:12:00Z"}}}
    assert post(receiver, "/providers/pagerduty", event).json()["status"] == "stored"
    _incident, (sig,) = incident_for(rt, "ledger")
    assert (sig.source, sig.severity) == ("pagerduty", Severity.CRITICAL)


def test_stored_provider_deliveries_are_read_back_after_a_crash(
        receiver: WebhookReceiver, rt: Runtime) -> None:
    """What a new leader correlates late is parsed by the same provider again."""
    from console.correlation import _read_back
    from console.sources.webhook import source_parsers

    parsers = source_parsers()
    for source, body in (("grafana", GRAFANA), ("zabbix", ZABBIX_WEBHOOK),
                         ("datadog", DATADOG), ("otlp", OTLP_LOGS)):
        read = _read_back(parsers[source], body, 1)
        assert read is not None, source
        assert len(read[0]) == 1


def test_otlp_takes_the_collectors_gzip_and_holds_the_limit_unpacked(
        rt: Runtime) -> None:
    """The Collector's otlphttp exporter gzips by default; the size limit holds for the
    unpacked body too, so a small bomb is refused and nothing stored."""
    import gzip

    from console.sources.http_intake import IntakeLimits

    rx = WebhookReceiver(rt.service, on_stored=rt.deferred.submit,
                         limits=IntakeLimits(max_body=64 * 1024)).start()
    try:
        packed = gzip.compress(json.dumps(OTLP_LOGS).encode())
        answer = post(rx, "/v1/logs", packed, **{"Content-Encoding": "gzip"})
        assert (answer.status_code, answer.json()) == (200, {})
        _incident, (sig,) = incident_for(rt, "search")
        assert sig.name == "DiskFullError"
        bomb = gzip.compress(b" " * (1024 * 1024) + json.dumps(OTLP_LOGS).encode())
        assert len(bomb) < 64 * 1024
        refused = post(rx, "/v1/logs", bomb, **{"Content-Encoding": "gzip"})
        assert refused.status_code == 400
        assert refused.json()["error"] == "body: more than the 65536-byte limit once unpacked"
        brotli = post(rx, "/v1/logs", packed, **{"Content-Encoding": "br"})
        assert brotli.status_code == 415
        assert rt.service.payload_count() == 1
    finally:
        rx.close()


def test_otlp_records_are_kept_as_log_lines_with_templates(receiver: WebhookReceiver,
                                                           rt: Runtime) -> None:
    """Every record, INFO too, is evidence for the investigator, as imported logs are."""
    assert post(receiver, "/v1/logs", OTLP_LOGS).status_code == 200
    templates = dict(rt.service.log_templates())
    assert templates == {"index refreshed": 1, "shard 3 unavailable: disk full": 1}


def test_provider_paths_keep_the_receivers_token_and_limits(rt: Runtime) -> None:
    """The same door as the Alertmanager webhook: the bearer token, and the body limit
    answered before parsing, the refused body kept under the provider's name."""
    from console.sources.http_intake import IntakeLimits

    rx = WebhookReceiver(rt.service, token="s3cret",
                         limits=IntakeLimits(max_body=16 * 1024)).start()
    try:
        assert post(rx, "/providers/grafana", GRAFANA).status_code == 401
        big = {**DATADOG, "body": "x" * (32 * 1024)}
        answer = post(rx, "/providers/datadog", big, Authorization="Bearer s3cret")
        assert answer.status_code == 413
        assert rt.service.payload_count() == 0
        assert rt.service.signal_count() == 0
        ((source, reason, _),) = rt.service.dead_letters()
        assert source == "datadog"
        assert "over the 16384-byte limit" in reason
        ok = post(rx, "/providers/grafana", GRAFANA, Authorization="Bearer s3cret")
        assert ok.json()["status"] == "stored"
    finally:
        rx.close()

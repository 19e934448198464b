"""Payloads in the shapes the real systems send, for the provider tests.

Grafana's is its webhook contact point's body (Grafana's documentation's example, with
the `service` label teams add and the `grafana_folder` label Grafana adds); Zabbix's is
the object a webhook media type's script posts (its parameters, filled from macros:
unresolved recovery macros arrive as their own text); Datadog's is the Webhooks
integration's default payload with the monitor variables $TAGS, $HOSTNAME, $ALERT_ID,
$ALERT_TRANSITION and $ALERT_TYPE added; the OTLP one is an ExportLogsServiceRequest in
OTLP/HTTP's JSON encoding (int64 as text, AnyValue attributes).
"""

from __future__ import annotations

import json
from typing import Any

GRAFANA: dict[str, Any] = {
    "receiver": "watchfloor", "status": "firing", "orgId": 1,
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1",
                   "service": "checkout", "grafana_folder": "Checkout"},
        "annotations": {"description": "The system has high memory usage",
                        "runbook_url": "https://runbooks.example/1234",
                        "summary": "This alert was triggered for zone us-1"},
        "startsAt": "2026-01-05T03:12:00.157076+01:00", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://grafana.example/alerting/1afz29v7z/edit",
        "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "https://grafana.example/alerting/silence/new?alertmanager=grafana",
        "dashboardURL": "", "panelURL": "", "values": {"B": 44.23943737541908, "C": 1},
    }],
    "groupLabels": {"alertname": "High memory usage"},
    "commonLabels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1",
                     "service": "checkout", "grafana_folder": "Checkout"},
    "commonAnnotations": {}, "externalURL": "https://grafana.example/", "version": "1",
    "groupKey": '{}:{alertname="High memory usage"}', "truncatedAlerts": 0,
    "title": "[FIRING:1] High memory usage (blue us-1 checkout)", "state": "alerting",
    "message": "**Firing**\n\nValue: B=44.239, C=1\nLabels:\n - alertname = High memory usage",
}

ZABBIX_WEBHOOK: dict[str, Any] = {
    "URL": "http://127.0.0.1/providers/zabbix", "HTTPProxy": "",
    "alert_subject": "Problem: High CPU utilization (over 90% for 5m)",
    "alert_message": "Problem started at 02:12:00 on 2026.01.05\nHost: payments-db-1",
    "event_id": "8821", "event_name": "High CPU utilization (over 90% for 5m)",
    "event_value": "1", "event_date": "2026.01.05", "event_time": "02:12:00",
    "event_nseverity": "4", "event_severity": "High",
    "event_recovery_date": "{EVENT.RECOVERY.DATE}",
    "event_recovery_time": "{EVENT.RECOVERY.TIME}",
    "event_tags": json.dumps([{"tag": "service", "value": "payments"},
                              {"tag": "scope", "value": "performance"}]),
    "host_name": "payments-db-1", "host_host": "payments-db-1", "trigger_id": "23310",
}

DATADOG: dict[str, Any] = {
    "body": "%%%\nerror rate is above 5% on service:cart\n%%%",
    "last_updated": "1767579120000", "event_type": "query_alert_monitor",
    "title": "[Triggered on {service:cart}] Error rate is high",
    "date": "1767579120000", "org": {"id": "123456", "name": "Example Org"},
    "id": "7412385092634928401", "alert_id": "98765432",
    "alert_transition": "Triggered", "alert_type": "error", "host_name": "",
    "tags": "env:prod,service:cart,team:web",
}

OTLP_LOGS: dict[str, Any] = {"resourceLogs": [{
    "resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "search"}},
        {"key": "service.instance.id", "value": {"stringValue": "search-2"}},
        {"key": "host.name", "value": {"stringValue": "node-7"}}]},
    "scopeLogs": [{
        "scope": {"name": "search.index", "version": "1.4.0"},
        "logRecords": [
            {"timeUnixNano": "1767579120000000000",
             "observedTimeUnixNano": "1767579120100000000", "severityNumber": 9,
             "severityText": "INFO", "body": {"stringValue": "index refreshed"},
             "attributes": [{"key": "shard", "value": {"intValue": "3"}}]},
            {"timeUnixNano": "1767579125000000000", "severityNumber": 17,
             "severityText": "ERROR",
             "body": {"stringValue": "shard 3 unavailable: disk full"},
             "attributes": [
                 {"key": "exception.type", "value": {"stringValue": "DiskFullError"}},
                 {"key": "retry", "value": {"boolValue": False}},
                 {"key": "free_ratio", "value": {"doubleValue": 0.001}},
                 {"key": "paths", "value": {"arrayValue": {"values": [
                     {"stringValue": "/data/3"}]}}}],
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"},
        ]}],
}]}

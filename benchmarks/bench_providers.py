"""Providers: finding them, and each new one's mapping of a big delivery, then one big
OTLP delivery through the running receiver.

  discover     `registry.discover()` (reads every installed package's entry points and
               builds each provider), median of 20 runs, in ms
  parse_*      the provider's `parse` of one body of 1,000 alerts (Grafana, 1,000 alerts
               in one notification), 1,000 Datadog and Zabbix webhooks one by one, and
               one OTLP request of 10,000 records (a tenth at ERROR): signals per second
  otlp_receive one gzipped OTLP request of 10,000 records posted to the receiver wired
               as the leader wires it (a fresh SQLite database): the answer's seconds,
               its size on the wire, and the log lines and signals stored with it
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from console.sources.providers.datadog import parse_datadog
from console.sources.providers.grafana import parse_grafana
from console.sources.providers.otlp import parse_logs
from console.sources.providers.registry import discover
from console.sources.providers.zabbix import parse_webhook
from tests.provider_payloads import DATADOG, GRAFANA, OTLP_LOGS, ZABBIX_WEBHOOK

COUNT, RECORDS = 1000, 10_000


def _grafana() -> dict[str, Any]:
    body = copy.deepcopy(GRAFANA)
    alert = body["alerts"][0]
    body["alerts"] = [{**alert, "labels": {**alert["labels"], "instance": f"checkout-{n}"},
                       "fingerprint": f"{n:016x}"} for n in range(COUNT)]
    return body


def _otlp() -> dict[str, Any]:
    body = copy.deepcopy(OTLP_LOGS)
    info, error = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    records = []
    for n in range(RECORDS):
        record = copy.deepcopy(error if n % 10 == 0 else info)
        record["timeUnixNano"] = str(1767579120000000000 + n * 1_000_000)
        record["body"] = {"stringValue": f"request {n} served in {n % 97} ms"
                          if n % 10 else f"shard {n % 7} unavailable: disk full"}
        records.append(record)
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = records
    return body


def _rate(parse: Any, bodies: list[Any]) -> float:
    start = time.perf_counter()
    signals = sum(len(parse(body)[0]) for body in bodies)
    return round(signals / (time.perf_counter() - start))


def _receive(body: dict[str, Any]) -> dict[str, Any]:
    from console.runtime import Runtime
    from console.sources.webhook import WebhookReceiver

    packed = gzip.compress(json.dumps(body).encode())
    with tempfile.TemporaryDirectory() as tmp, \
            Runtime(f"sqlite:///{Path(tmp) / 'bench.db'}") as runtime:
        rx = WebhookReceiver(runtime.service, on_stored=runtime.deferred.submit).start()
        try:
            start = time.perf_counter()
            answer = httpx.post(rx.url + "/v1/logs", content=packed, timeout=120,
                                headers={"Content-Type": "application/json",
                                         "Content-Encoding": "gzip"})
            seconds = time.perf_counter() - start
            answer.raise_for_status()
            runtime.deferred.wait_idle(300)
            lines = sum(count for _t, count in runtime.service.log_templates(1000))
            return {"otlp_receive_s": round(seconds, 3), "otlp_gzip_bytes": len(packed),
                    "otlp_log_lines_stored": lines,
                    "otlp_signals_stored": runtime.service.signal_count()}
        finally:
            rx.close()


def run(_args: argparse.Namespace) -> dict[str, Any]:
    times = []
    for _ in range(20):
        start = time.perf_counter()
        found = discover()
        times.append((time.perf_counter() - start) * 1000)
    otlp = _otlp()
    datadog = [{**DATADOG, "id": str(n), "tags": f"service:cart-{n % 20}"}
               for n in range(COUNT)]
    zabbix = [{**ZABBIX_WEBHOOK, "event_id": str(n), "trigger_id": str(n)}
              for n in range(COUNT)]
    return {"providers": len(found), "discover_ms": round(statistics.median(times), 1),
            "parse_grafana_signals_per_s": _rate(parse_grafana, [_grafana()]),
            "parse_datadog_signals_per_s": _rate(parse_datadog, datadog),
            "parse_zabbix_signals_per_s": _rate(parse_webhook, zabbix),
            "parse_otlp_records_per_s": round(RECORDS / (_timed(parse_logs, otlp))),
            **_receive(otlp)}


def _timed(parse: Any, body: Any) -> float:
    start = time.perf_counter()
    parse(body)
    return time.perf_counter() - start

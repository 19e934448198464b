"""OpenTelemetry logs from the real sender: the OpenTelemetry Python SDK with its OTLP/HTTP
JSON log exporter (opentelemetry-exporter-otlp-json-http), its logger emitting as an
instrumented service's does (an exception attached), exports to the running receiver's
/v1/logs, gzipped and not; the ERROR record opens an incident about the resource's
service, named for its exception, and every record is kept as a log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.common.http import Compression
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from console.domain import SignalKind
from console.runtime import Runtime
from console.sources.webhook import WebhookReceiver


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.NONE])
def test_the_sdks_otlp_json_exporter_opens_an_incident(rt: Runtime,
                                                       compression: Compression) -> None:
    rx = WebhookReceiver(rt.service, on_stored=rt.deferred.submit).start()
    provider = LoggerProvider(resource=Resource.create(
        {"service.name": "search", "service.instance.id": "search-2"}))
    exporter = OTLPLogExporter(endpoint=rx.url + "/v1/logs", compression=compression,
                               timeout=20)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("search.index", "1.4.0")
    try:
        logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO",
                    body="index refreshed")
        try:
            raise OSError("no space left on device")
        except OSError as exc:
            logger.emit(severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                        body="shard 3 unavailable", exception=exc)
    finally:
        provider.shutdown()
        assert rt.deferred.wait_idle(30)
        rx.close()
    (incident,) = rt.service.incidents()
    assert incident.services == ("search",)
    (sig,) = rt.service.recent_signals()
    assert (sig.source, sig.kind, sig.name, sig.service) == ("otlp", SignalKind.LOG,
                                                             "OSError", "search")
    assert sig.labels["instance"] == "search-2"
    assert sig.annotations["summary"] == "shard 3 unavailable"
    assert sig.annotations["exception.message"] == "no space left on device"
    assert dict(rt.service.log_templates()) == {"index refreshed": 1,
                                                "shard 3 unavailable": 1}
    assert rt.service.payload_count() == 2  # one export per record (the simple processor)

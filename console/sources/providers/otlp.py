"""OpenTelemetry logs in: OTLP/HTTP with JSON encoding (`POST /v1/logs`).

An OpenTelemetry Collector's `otlphttp` exporter with `encoding: json`, or an SDK's
OTLP/HTTP exporter, posts an ExportLogsServiceRequest: resourceLogs, each with its
resource's attributes and scopeLogs, each with logRecords. OTLP's JSON is protobuf's
JSON mapping: 64-bit integers (timeUnixNano, intValue) may come as decimal text,
severityNumber is the enum's number, attribute values are AnyValue objects. Checked here
by hand so a refusal names the exact place ("resourceLogs[0].scopeLogs[1].logRecords[3]
.timeUnixNano: not an integer"); the whole request is refused (400, which OTLP senders
do not retry) and nothing of it is stored.

Which records are signals: those at ERROR and above (severityNumber 17 and up), about
the service its resource names (`service.name`); FATAL (21 and up) ones are critical.
Every record, whatever its level, is also kept as a log line with its drain3 template,
as `watchfloor ingest --format logs` keeps a file's, for the investigator and retrieval.
The signal is named for what the record is (its eventName, or the `event.name` or
`exception.type` attribute), else "ErrorLog"/"FatalLog", so repeats fold into one series.
A sender is answered OTLP's own way: `{}` (everything accepted). Bodies may come gzipped
(the Collector's default), and are held to the receiver's size limit once unpacked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from console.domain import AlertStatus, LogRecord, Severity, Signal, SignalKind
from console.sources.alertmanager import MAX_NAME, MAX_VALUE, PayloadError
from console.sources.providers.base import Endpoint, Kind, Parsed, Provider
from console.sources.timestamps import to_utc

MAX_RECORDS = 10_000
# severityNumber 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL
_LEVELS = ("DEBUG", "DEBUG", "INFO", "WARN", "ERROR", "ERROR")
MAX_ATTRIBUTES = 128
ERROR, FATAL = 17, 21
_SCALARS = {"stringValue": str, "boolValue": bool}


def _int(value: Any, where: str) -> int:
    """An int64 in protobuf's JSON: a number or its decimal text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PayloadError(f"{where}: not an integer")
    if isinstance(value, str):
        text = value.strip()
        if not (text.lstrip("-").isdigit() and len(text) <= 20):
            raise PayloadError(f"{where}: not an integer")
        value = int(text)
    if not -(2**63) <= value < 2**64:
        raise PayloadError(f"{where}: out of the 64-bit range")
    return value


def _list(body: Any, key: str, where: str, limit: int) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key}: expected a list")
    if len(value) > limit:
        raise PayloadError(f"{where}.{key}: more than {limit} entries")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object")
    return value


def any_value(value: Any, where: str, depth: int = 0) -> str:
    """An AnyValue as text (what is stored and shown)."""
    obj = _object(value, where)
    if not obj:
        return ""
    if len(obj) != 1:
        raise PayloadError(f"{where}: an AnyValue holds one of stringValue, boolValue, "
                           "intValue, doubleValue, arrayValue, kvlistValue, bytesValue")
    ((kind, inner),) = obj.items()
    here = f"{where}.{kind}"
    if kind in _SCALARS:
        if not isinstance(inner, _SCALARS[kind]):
            raise PayloadError(f"{here}: not a {_SCALARS[kind].__name__}")
        return str(inner).lower() if kind == "boolValue" else str(inner)
    if kind == "intValue":
        return str(_int(inner, here))
    if kind == "doubleValue":
        if isinstance(inner, bool) or not isinstance(inner, int | float | str):
            raise PayloadError(f"{here}: not a number")
        try:
            return f"{float(inner):g}"
        except ValueError:
            raise PayloadError(f"{here}: not a number") from None
    if kind == "bytesValue":
        if not isinstance(inner, str):
            raise PayloadError(f"{here}: not base64 text")
        return inner
    if depth >= 4:
        raise PayloadError(f"{here}: nested deeper than 4 levels")
    if kind == "arrayValue":
        items = _list(_object(inner, here), "values", here, MAX_ATTRIBUTES)
        return "[" + ", ".join(any_value(v, f"{here}.values[{n}]", depth + 1)
                               for n, v in enumerate(items)) + "]"
    if kind == "kvlistValue":
        pairs = attributes(_object(inner, here), here, depth + 1, key="values")
        return "{" + ", ".join(f"{k}={v}" for k, v in pairs.items()) + "}"
    raise PayloadError(f"{where}: unknown AnyValue kind {kind[:40]!r}")


def attributes(body: dict[str, Any], where: str, depth: int = 0, *,
               key: str = "attributes") -> dict[str, str]:
    out = {}
    for n, item in enumerate(_list(body, key, where, MAX_ATTRIBUTES)):
        here = f"{where}.{key}[{n}]"
        pair = _object(item, here)
        name = pair.get("key")
        if not isinstance(name, str) or not name or len(name) > 256:
            raise PayloadError(f"{here}.key: expected a name of 1 to 256 characters")
        out[name] = any_value(pair.get("value", {}), f"{here}.value", depth)[:MAX_VALUE]
    return out


def _time(record: dict[str, Any], where: str) -> datetime:
    nanos = 0
    for key in ("timeUnixNano", "observedTimeUnixNano"):
        if key in record:
            nanos = _int(record[key], f"{where}.{key}")
            if nanos:
                break
    if nanos <= 0:
        raise PayloadError(f"{where}: neither timeUnixNano nor observedTimeUnixNano is set")
    try:
        return to_utc(datetime.fromtimestamp(nanos / 1e9, UTC))
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"{where}.timeUnixNano: out of range ({exc})") from None


def _record(record: dict[str, Any], where: str, service: str,
            resource: dict[str, str], scope: str) -> Signal | None:
    level = _int(record.get("severityNumber", 0), f"{where}.severityNumber")
    if not 0 <= level <= 24:
        raise PayloadError(f"{where}.severityNumber: {level} is not 0 to 24")
    at = _time(record, where)
    body = any_value(record.get("body", {}), f"{where}.body")
    attrs = attributes(record, where)
    text = record.get("severityText", "")
    event = record.get("eventName", "")
    for key, value in (("severityText", text), ("eventName", event)):
        if not isinstance(value, str) or len(value) > MAX_NAME or "\x00" in value:
            raise PayloadError(f"{where}.{key}: expected text of at most {MAX_NAME} "
                               "characters")
    if level < ERROR:
        return None
    fatal = level >= FATAL
    name = (event or attrs.get("event.name") or attrs.get("exception.type")
            or ("FatalLog" if fatal else "ErrorLog"))[:MAX_NAME]
    labels = {"alertname": name, "service": service,
              "severity": text.lower() or ("fatal" if fatal else "error")}
    instance = resource.get("service.instance.id") or resource.get("host.name")
    if instance:
        labels["instance"] = instance[:MAX_NAME]
    notes = {"summary": body[:4000], "otel_scope": scope}
    for key in ("trace_id", "span_id"):
        value = record.get(key.replace("_id", "Id"))
        if isinstance(value, str) and value:
            notes[key] = value[:64]
    for key in ("exception.message", "code.function"):
        if key in attrs:
            notes[key] = attrs[key]
    return Signal("otlp", SignalKind.LOG, name, service,
                  Severity.CRITICAL if fatal else Severity.WARNING, AlertStatus.FIRING, at,
                  labels, {k: v for k, v in notes.items() if v})


def _records(body: Any) -> Iterator[tuple[dict[str, Any], str, str, dict[str, str], str]]:
    """Every log record with its place, its resource's service and attributes, and its
    scope's name; PayloadError at the first thing that is not OTLP."""
    request = _object(body, "body")
    seen = 0
    for r, resource_logs in enumerate(_list(request, "resourceLogs", "body", MAX_RECORDS)):
        rwhere = f"resourceLogs[{r}]"
        rl = _object(resource_logs, rwhere)
        resource = attributes(_object(rl.get("resource", {}), f"{rwhere}.resource"),
                              f"{rwhere}.resource")
        service = resource.get("service.name", "")
        if not service or len(service) > MAX_NAME:
            raise PayloadError(f"{rwhere}.resource.attributes: no service.name (of at most "
                               f"{MAX_NAME} characters)")
        for s, scope_logs in enumerate(_list(rl, "scopeLogs", rwhere, MAX_RECORDS)):
            swhere = f"{rwhere}.scopeLogs[{s}]"
            sl = _object(scope_logs, swhere)
            scope = _object(sl.get("scope", {}), f"{swhere}.scope").get("name", "")
            if not isinstance(scope, str):
                raise PayloadError(f"{swhere}.scope.name: not text")
            for n, record in enumerate(_list(sl, "logRecords", swhere, MAX_RECORDS)):
                seen += 1
                if seen > MAX_RECORDS:
                    raise PayloadError(f"more than {MAX_RECORDS} log records in one request")
                where = f"{swhere}.logRecords[{n}]"
                yield _object(record, where), where, service, resource, scope[:256]


def parse_logs(body: Any) -> Parsed:
    signals = []
    for record, where, service, resource, scope in _records(body):
        signal = _record(record, where, service, resource, scope)
        if signal is not None:
            signals.append(signal)
    return signals, []


def log_lines(body: Any) -> list[LogRecord]:
    """Every record as a log line (all levels: the investigator reads the INFO before
    an ERROR too), for a body `parse_logs` accepted."""
    out = []
    for record, _where, service, resource, _scope in _records(body):
        level = int(record.get("severityNumber", 0) or 0)
        message = any_value(record.get("body", {}), "body")
        if not message:
            continue
        out.append(LogRecord(service, _LEVELS[(level - 1) // 4] if level > 0 else "INFO",
                             message[:16 * 1024], _time(record, ""),
                             (resource.get("service.instance.id")
                              or resource.get("host.name") or "")[:MAX_NAME]))
    return out


def _answer(_signals: int, _changes: int, _duplicate: bool) -> dict[str, Any]:
    return {}  # ExportLogsServiceResponse with no partial success: all accepted


class OtlpLogsProvider(Provider):
    name: ClassVar[str] = "otlp"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = "OpenTelemetry logs: OTLP/HTTP JSON (POST .../v1/logs)"

    def parse(self, body: Any) -> Parsed:
        return parse_logs(body)

    def endpoints(self) -> list[Endpoint]:
        # the Collector's otlphttp exporter gzips by default
        return [Endpoint(path, "otlp", self.parse, media_types=("application/json",),
                         answer=_answer, encodings=("gzip",), logs=log_lines)
                for path in ("/providers/otlp/v1/logs", "/v1/logs")]

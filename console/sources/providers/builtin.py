"""The sources the console always spoke, as providers: Alertmanager, Prometheus, PagerDuty
events, the change feed, the generic JSON mappings and log files.

Their parsing stays where it was (console/sources/alertmanager.py, feeds.py, mapping.py,
logs.py); these classes only say how each is reached. The receiver paths the console had
before providers (/webhook/alertmanager, /webhook/changes, /webhook/generic/<name>) stay,
beside /providers/<name>, and each delivery is stored under the source name it always
was, so a delivery stored before this change is read back the same after a crash.
"""

from __future__ import annotations

from typing import Any, ClassVar

from console.sources.alertmanager import PayloadError, parse_webhook
from console.sources.feeds import _pagerduty, _prometheus, parse_changes
from console.sources.logs import parse_logs
from console.sources.mapping import Mapping, apply_mapping
from console.sources.providers.base import Endpoint, Health, Kind, Parsed, Parser, Provider


class AlertmanagerProvider(Provider):
    name: ClassVar[str] = "alertmanager"
    kind: ClassVar[Kind] = "both"
    summary: ClassVar[str] = ("Alertmanager: webhook payloads (version 4) pushed, and the "
                              "API v2 alert list polled (--alertmanager)")
    health_path: ClassVar[str | None] = "/-/healthy"

    def parse(self, body: Any) -> Parsed:
        return parse_webhook(body)[1], []

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(path, "alertmanager", self.parse)
                for path in ("/webhook/alertmanager", "/providers/alertmanager")]

    def configured(self) -> bool:
        return True  # it is pushed to even when nothing is polled


class PrometheusProvider(Provider):
    name: ClassVar[str] = "prometheus"
    kind: ClassVar[Kind] = "pull"
    summary: ClassVar[str] = ("Prometheus: GET /api/v1/alerts answers (ingest --format "
                              "prometheus-alerts) and range queries for evidence")
    health_path: ClassVar[str | None] = "/-/healthy"

    def parse(self, body: Any) -> Parsed:
        return _prometheus([body]), []


class PagerDutyProvider(Provider):
    name: ClassVar[str] = "pagerduty"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = "PagerDuty: v3 webhook events (incident.triggered, .resolved...)"

    def parse(self, body: Any) -> Parsed:
        return _pagerduty([body]), []


class ChangesProvider(Provider):
    name: ClassVar[str] = "changes"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = "Change feed: deploys, config changes, flags, scaling, rollbacks"

    def parse(self, body: Any) -> Parsed:
        items = body if isinstance(body, list) else [body]
        return [], parse_changes(items)

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(path, "changes", self.parse)
                for path in ("/webhook/changes", "/providers/changes")]


class GenericWebhookProvider(Provider):
    """One receiver path per declared mapping (`--webhook-mappings FILE`)."""

    name: ClassVar[str] = "webhook"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = ("Generic JSON: any sender, mapped by a declared field mapping "
                              "(--webhook-mappings)")

    def parse(self, body: Any) -> Parsed:
        raise PayloadError("a generic webhook is read by one of its mappings: post to "
                           "/webhook/generic/<mapping>")

    def endpoints(self) -> list[Endpoint]:
        out = []
        for name, mapping in self.config.mappings.items():
            parse = _mapped(name, mapping)
            out += [Endpoint(f"/webhook/generic/{name}", f"webhook:{name}", parse),
                    Endpoint(f"/providers/webhook/{name}", f"webhook:{name}", parse)]
        return out

    def configured(self) -> bool:
        return bool(self.config.mappings)

    def health(self) -> Health:
        if not self.config.mappings:
            return Health("not configured", "no --webhook-mappings file was given")
        return super().health()


class LogsProvider(Provider):
    """Log lines are evidence, not signals: read from files (`ingest --format logs`), each
    line given its template; `parse` validates a text of lines and yields no signals."""

    name: ClassVar[str] = "logs"
    kind: ClassVar[Kind] = "pull"
    summary: ClassVar[str] = "Log files: JSON lines or 'TIME LEVEL service: message' text"

    def parse(self, body: Any) -> Parsed:
        if not isinstance(body, str):
            raise PayloadError("log lines are read as text")
        parse_logs(body)
        return [], []

    def configured(self) -> bool:
        return True  # files are named when imported

    def health(self) -> Health:
        return Health("ready", "reads files: watchfloor ingest --format logs FILE")


def _mapped(name: str, mapping: Mapping) -> Parser:
    def parse(body: Any) -> Parsed:
        return apply_mapping(name, mapping, body), []

    return parse

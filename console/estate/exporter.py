"""The estate as a real scrape target: its metrics in the Prometheus exposition format,
and its alert rules as a Prometheus rule file.

`serve(estate)` starts prometheus-client's HTTP server on loopback; a real Prometheus
scrapes it and evaluates `prometheus_rules(spec)` (shipped as
resources/prometheus/estate-rules.yml), so the same faults fire the same alerts through
Prometheus and Alertmanager as they do in-process. Beside its own metrics it exposes the
series a tracing backend derives from its spans (console/estate/span_exposition.py), so
that what records and reads Tempo's series is exercised on the estate too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import yaml
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from console.estate.model import Estate
from console.estate.span_exposition import SpanCounters
from console.estate.spec import METRICS, AlertRule, EstateSpec

PREFIX = "watchfloor"
INSTANCE_METRICS = ("up", "cpu", "memory", "disk")
BASELINE_METRICS = ("error_rate", "latency_p50_ms", "latency_p99_ms", "cpu", "memory", "disk")


class EstateCollector(Collector):
    """Reads the estate at scrape time; `lock` is held by whoever advances the estate."""

    def __init__(self, estate: Estate, lock: threading.Lock | None = None) -> None:
        self.estate = estate
        self.lock = lock or threading.Lock()
        # its spans as Tempo's metrics generator would count them (span_exposition.py)
        self.spans = SpanCounters()
        self._folding = threading.Lock()  # two scrapes at once fold one after the other
        estate.spans.counting = True  # from now on the ticks are kept for the next scrape

    def collect(self) -> Iterator[Any]:
        with self.lock:
            services = [(name, svc.kind, dict(svc.metrics), svc.base)
                        for name, svc in self.estate.services.items()]
            instances = [(name, self.estate.instance_metrics(name))
                         for name in self.estate.services]
            ticks = self.estate.spans.take_pending()
        for metric in METRICS:
            family = GaugeMetricFamily(f"{PREFIX}_service_{metric}",
                                       f"estate service {metric}", labels=["service", "kind"])
            for name, kind, values, _ in services:
                family.add_metric([name, kind], float(values.get(metric, 0.0)))
            yield family
        for metric in BASELINE_METRICS:
            family = GaugeMetricFamily(f"{PREFIX}_service_baseline_{metric}",
                                       f"baseline {metric}", labels=["service", "kind"])
            for name, kind, _, base in services:
                family.add_metric([name, kind], float(getattr(base, metric)))
            yield family
        for metric in INSTANCE_METRICS:
            family = GaugeMetricFamily(f"{PREFIX}_instance_{metric}", f"estate instance {metric}",
                                       labels=["service", "instance", "zone"])
            for name, rows in instances:
                for row in rows:
                    if metric != "up" and row["up"] == 0.0:
                        continue  # an unreachable instance has no series, as in real life
                    family.add_metric([name, row["instance"], row["zone"]], float(row[metric]))
            yield family
        with self._folding:  # the estate's own lock is not held for this
            for tick in ticks:
                self.spans.fold(tick)
            families = list(self.spans.families())
        yield from families


def serve(estate: Estate, *, port: int = 0, addr: str = "127.0.0.1",
          lock: threading.Lock | None = None) -> tuple[Any, int]:
    """Start the /metrics endpoint; returns (server, port). Stop with server.shutdown()."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(EstateCollector(estate, lock))
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server, server.server_address[1]


def _expr(rule: AlertRule) -> str:
    if rule.scope == "instance":
        series = f"{PREFIX}_instance_{rule.metric}"
        return f"{series} {rule.op} {rule.threshold:g}"
    kinds = "|".join(rule.kinds)
    series = f'{PREFIX}_service_{rule.metric}{{kind=~"{kinds}"}}'
    if rule.relative_to_baseline:
        base = f"{PREFIX}_service_baseline_{rule.metric}"
        return f"{series} {rule.op} on(service, kind) ({rule.threshold:g} * {base})"
    return f"{series} {rule.op} {rule.threshold:g}"


def _template(rule: AlertRule) -> str:
    """The rule's summary in Prometheus's template language."""
    text = rule.summary.replace("{service}", "{{ $labels.service }}")
    text = text.replace("{instance}", "{{ $labels.instance }}")

    def value(match: re.Match[str]) -> str:
        spec = match.group(1) or ""
        return "{{ $value | humanizePercentage }}" if spec.endswith("%") else \
            "{{ $value | printf \"%.0f\" }}"

    def threshold(match: re.Match[str]) -> str:
        if rule.relative_to_baseline:
            return f"{rule.threshold:g}x baseline"
        return format(rule.threshold, (match.group(1) or ":g")[1:])

    text = re.sub(r"\{value(:[^}]*)?\}", value, text)
    return re.sub(r"\{threshold(:[^}]*)?\}", threshold, text)


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def prometheus_rules(spec: EstateSpec, *, for_scale: float = 1.0) -> str:
    """The estate's alert rules as a Prometheus rule file (YAML text)."""
    rules = []
    for rule in spec.alert_rules:
        entry: dict[str, Any] = {"alert": rule.alert, "expr": _expr(rule)}
        if rule.for_ > 0:
            entry["for"] = _duration(rule.for_ * for_scale)
        entry["labels"] = {"severity": rule.severity}
        entry["annotations"] = {"summary": _template(rule)}
        rules.append(entry)
    doc = {"groups": [{"name": f"{PREFIX}-estate-{spec.name}", "rules": rules}]}
    header = ("# Alerting rules for the embedded estate's /metrics (generated from\n"
              f"# resources/estates/{spec.name}.yaml by console.estate.exporter).\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=120)

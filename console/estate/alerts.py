"""Alert rules over the estate's metrics, evaluated as Prometheus does.

A rule's condition must hold for its whole `for:` duration before the alert fires
(pending -> firing); it resolves when the condition stops holding or its series
disappears (an unreachable instance has no cpu/memory/disk series, only `up == 0`).
The output is normalized `Signal`s, the same type every other source produces.
"""

from __future__ import annotations

from typing import Any

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.estate.model import Estate, Service
from console.estate.spec import AlertRule

SOURCE = "estate"


class AlertEvaluator:
    def __init__(self, rules: tuple[AlertRule, ...]) -> None:
        self.rules = rules
        self._pending: dict[tuple[str, str, str], float] = {}
        self._firing: dict[tuple[str, str, str], Signal] = {}

    @property
    def firing(self) -> list[Signal]:
        return list(self._firing.values())

    def evaluate(self, estate: Estate) -> list[Signal]:
        out: list[Signal] = []
        t = estate.elapsed
        for rule in self.rules:
            for svc in estate.services.values():
                if svc.kind not in rule.kinds:
                    continue
                if rule.scope == "service":
                    self._check(rule, svc, "", svc.metrics.get(rule.metric), t, estate, out)
                else:
                    for inst in svc.instances:
                        reachable = not inst.unreachable and inst.up(t)
                        if rule.metric == "up":
                            value: float | None = 1.0 if reachable else 0.0
                        else:
                            value = getattr(inst, rule.metric) if reachable else None
                        self._check(rule, svc, inst.id, value, t, estate, out,
                                    zone=inst.zone)
        return out

    def _check(self, rule: AlertRule, svc: Service, instance: str, value: float | None,
               t: float, estate: Estate, out: list[Signal], zone: str = "") -> None:
        key = (rule.alert, svc.name, instance)
        threshold = rule.threshold
        if rule.relative_to_baseline:
            threshold *= float(getattr(svc.base, rule.metric))
        holds = value is not None and (value > threshold if rule.op == ">" else value < threshold)
        if holds:
            since = self._pending.setdefault(key, t)
            if key not in self._firing and t - since >= rule.for_:
                sig = self._signal(rule, svc, instance, zone, value, threshold, estate,
                                   AlertStatus.FIRING)
                self._firing[key] = sig
                out.append(sig)
            return
        self._pending.pop(key, None)
        fired = self._firing.pop(key, None)
        if fired is not None:
            out.append(Signal(SOURCE, SignalKind.ALERT, fired.name, fired.service,
                              fired.severity, AlertStatus.RESOLVED, estate.now,
                              fired.labels, fired.annotations, fired.fingerprint))

    def _signal(self, rule: AlertRule, svc: Service, instance: str, zone: str,
                value: float | None, threshold: float, estate: Estate,
                status: AlertStatus) -> Signal:
        labels = {"alertname": rule.alert, "service": svc.name, "severity": rule.severity,
                  "team": svc.spec.team, "kind": svc.kind}
        if instance:
            labels["instance"] = instance
            labels["zone"] = zone
        fields: dict[str, Any] = {"service": svc.name, "instance": instance or svc.name,
                                  "value": value or 0.0, "threshold": threshold}
        try:
            summary = rule.summary.format(**fields)
        except (KeyError, ValueError, IndexError):
            summary = rule.summary
        return Signal(SOURCE, SignalKind.ALERT, rule.alert, svc.name, Severity(rule.severity),
                      status, estate.now, labels,
                      {"summary": summary, "value": f"{value:.4g}" if value is not None else "",
                       "threshold": f"{threshold:.4g}", "metric": rule.metric})

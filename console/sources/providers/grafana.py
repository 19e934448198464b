"""Grafana Alerting (unified alerting) in: the webhook contact point's JSON body.

Grafana's notifier is an Alertmanager of its own, so its body is Alertmanager's webhook
payload with Grafana's additions (`orgId`, `version` "1", `title`, `state`, `message`, and
per alert `values`, `valueString`, `silenceURL`, `dashboardURL`, `panelURL`). Its alerts
become signals by the same rule as Alertmanager's (the service is the `service` label, or
`job`, or `instance`); the links and the values that fired the rule go with each signal
as evidence. Point a contact point of type Webhook at /providers/grafana.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from console.sources.alertmanager import (
    MAX_ALERTS,
    MAX_VALUE,
    Annotations,
    Labels,
    PayloadError,
    Text,
    _Model,
    _signal,
    explain,
)
from console.sources.providers.base import Kind, Parsed, Provider
from console.sources.timestamps import OptionalEnd, Timestamp

_LINKS = ("generatorURL", "silenceURL", "dashboardURL", "panelURL", "imageURL")


class GrafanaAlert(_Model):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: OptionalEnd = None
    generatorURL: Text = Field("", max_length=MAX_VALUE)
    fingerprint: Text = Field("", max_length=64)
    silenceURL: Text = Field("", max_length=MAX_VALUE)
    dashboardURL: Text = Field("", max_length=MAX_VALUE)
    panelURL: Text = Field("", max_length=MAX_VALUE)
    imageURL: Text = Field("", max_length=MAX_VALUE)
    values: dict[str, float | None] | None = Field(None, max_length=64)
    valueString: Text = Field("", max_length=4 * MAX_VALUE)


class GrafanaPayload(_Model):
    """The body a Grafana webhook contact point posts (Grafana 8 and later)."""

    receiver: Text = Field("", max_length=256)
    status: Literal["firing", "resolved"]
    orgId: int = Field(ge=0)
    alerts: list[GrafanaAlert] = Field(max_length=MAX_ALERTS)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Text = Field("", max_length=MAX_VALUE)
    version: Literal["1"]
    groupKey: Text = Field("", max_length=MAX_VALUE)
    truncatedAlerts: int = Field(0, ge=0)
    title: Text = Field("", max_length=MAX_VALUE)
    state: Text = Field("", max_length=32)
    message: Text = Field("", max_length=16 * MAX_VALUE)


def parse_grafana(body: Any) -> Parsed:
    try:
        payload = GrafanaPayload.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(explain(exc, "Grafana Alerting webhook payload")) from None
    signals = []
    for index, alert in enumerate(payload.alerts):
        labels = {**payload.commonLabels, **alert.labels}
        notes = {**payload.commonAnnotations, **alert.annotations}
        firing = alert.status == "firing"
        at = alert.startsAt if firing or alert.endsAt is None else alert.endsAt
        extra = {"grafana_org": str(payload.orgId)}
        extra.update({name: getattr(alert, name) for name in _LINKS if getattr(alert, name)})
        if alert.values:
            extra["values"] = ", ".join(f"{k}={v:g}" if v is not None else f"{k}=none"
                                        for k, v in sorted(alert.values.items()))[:MAX_VALUE]
        elif alert.valueString:
            extra["values"] = alert.valueString[:MAX_VALUE]
        try:
            signals.append(_signal("grafana", labels, notes, firing, at, extra))
        except PayloadError as exc:
            raise PayloadError(f"alerts.{index}: {exc}") from None
    return signals, []


class GrafanaProvider(Provider):
    name: ClassVar[str] = "grafana"
    kind: ClassVar[Kind] = "push"
    summary: ClassVar[str] = "Grafana Alerting: the webhook contact point's payload"

    def parse(self, body: Any) -> Parsed:
        return parse_grafana(body)

"""HTTP clients for the monitoring stack: Prometheus's query API and Alertmanager's v2 API.

Both share one `httpx.AsyncClient` (made once at start; STYLE.md 8) and report their
health: a source that fails is marked degraded and retried with exponential backoff,
while the rest of the console keeps working. Errors are typed (`SourceError`) and
carry what failed and why; a Prometheus answer with warnings (a partial response) is
returned with those warnings, not dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from console.domain import AlertStatus, Signal
from console.sources.alertmanager import PayloadError, parse_api_alerts


class SourceError(RuntimeError):
    """A source could not answer: down, timed out, or answered something unusable."""


@dataclass
class SourceHealth:
    """ok, or degraded with the last error and when the next attempt is due."""

    name: str
    base_delay: float = 1.0
    max_delay: float = 60.0
    failures: int = 0
    last_error: str = ""
    next_attempt: float = 0.0
    last_ok: float | None = None

    @property
    def state(self) -> str:
        return "ok" if self.failures == 0 else "degraded"

    def due(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) >= self.next_attempt

    def succeeded(self) -> None:
        self.failures, self.last_error = 0, ""
        self.last_ok = time.monotonic()
        self.next_attempt = 0.0

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        delay = min(self.max_delay, self.base_delay * 2 ** (self.failures - 1))
        self.next_attempt = time.monotonic() + delay


async def _get_json(client: httpx.AsyncClient, url: str, params: dict[str, Any] | None,
                    limit: float, what: str) -> Any:
    try:
        answer = await client.get(url, params=params, timeout=limit)
    except httpx.TimeoutException:
        raise SourceError(f"{what}: no answer within {limit:g}s") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{what}: {type(exc).__name__}: {exc}") from None
    if answer.status_code >= 500:
        raise SourceError(f"{what}: HTTP {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise SourceError(f"{what}: answer is not JSON (HTTP {answer.status_code})") from None
    if answer.status_code >= 400:
        detail = body.get("error", "") if isinstance(body, dict) else ""
        raise SourceError(f"{what}: HTTP {answer.status_code} {detail}".rstrip())
    return body


@dataclass(frozen=True)
class QueryResult:
    result_type: str
    result: list[dict[str, Any]]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def scalars(self) -> dict[str, float]:
        """{label-set text: value} for an instant vector (the latest sample)."""
        out = {}
        for item in self.result:
            labels = ",".join(f"{k}={v}" for k, v in sorted(item.get("metric", {}).items()))
            value = item.get("value") or (item.get("values") or [[0, "nan"]])[-1]
            out[labels] = float(value[1])
        return out


class PrometheusClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, *,
                 timeout: float = 10.0) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.health = SourceHealth("prometheus")

    async def _api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        what = f"prometheus {path}"
        try:
            body = await _get_json(self.client, self.base_url + path, params, self.timeout, what)
            if not isinstance(body, dict) or body.get("status") != "success":
                error = body.get("error", "unexpected answer") if isinstance(body, dict) else \
                    "unexpected answer"
                raise SourceError(f"{what}: {error}")
        except SourceError as exc:
            self.health.failed(str(exc))
            raise
        self.health.succeeded()
        return body

    async def query(self, expr: str, at: datetime | None = None) -> QueryResult:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at.timestamp()
        return _result(await self._api("/api/v1/query", params))

    async def query_range(self, expr: str, start: datetime, end: datetime,
                          step: float) -> QueryResult:
        if step <= 0 or end < start:
            raise ValueError("query_range needs start <= end and a positive step")
        return _result(await self._api("/api/v1/query_range", {
            "query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": step}))

    async def rules(self) -> list[dict[str, Any]]:
        body = await self._api("/api/v1/rules")
        return [rule for group in body.get("data", {}).get("groups", [])
                for rule in group.get("rules", [])]

    async def alerts(self) -> list[dict[str, Any]]:
        body = await self._api("/api/v1/alerts")
        alerts = body.get("data", {}).get("alerts", [])
        return alerts if isinstance(alerts, list) else []


def _result(body: dict[str, Any]) -> QueryResult:
    data = body.get("data") or {}
    result = data.get("result")
    if not isinstance(result, list):
        result = [] if data.get("resultType") != "scalar" else [{"value": result}]
    return QueryResult(str(data.get("resultType", "")), result,
                       tuple(str(w) for w in body.get("warnings", [])))


class AlertmanagerPoller:
    """Polls GET /api/v2/alerts and turns what changed into firing/resolved signals.

    Silenced and inhibited alerts are reported with their state in the annotations
    (`am_state`), so the correlator sees them without paging anyone twice.
    """

    def __init__(self, client: httpx.AsyncClient, base_url: str, *,
                 timeout: float = 10.0) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.health = SourceHealth("alertmanager")
        self._active: dict[str, Signal] = {}

    async def poll(self, now: datetime) -> list[Signal]:
        """New firing alerts and alerts that disappeared (resolved); [] while not due."""
        if not self.health.due():
            return []
        try:
            body = await _get_json(self.client, self.base_url + "/api/v2/alerts", None,
                                   self.timeout, "alertmanager /api/v2/alerts")
            current = parse_api_alerts(body)
        except (SourceError, PayloadError) as exc:
            self.health.failed(str(exc))
            return []
        self.health.succeeded()
        seen: dict[str, Signal] = {sig.fingerprint: sig for sig, _ in current}
        out = [sig for fp, sig in seen.items() if fp not in self._active]
        for fp, old in self._active.items():
            if fp not in seen:
                out.append(Signal(old.source, old.kind, old.name, old.service, old.severity,
                                  AlertStatus.RESOLVED, now, old.labels, old.annotations,
                                  old.fingerprint))
        self._active = seen
        return out

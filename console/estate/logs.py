"""Log lines the estate's services write: routine traffic and, when things go wrong,
the error lines a real service would print for that cause.

The volume is sampled (a few lines per service per tick), not one per request: enough
for template mining and retrieval, cheap enough for the storm scenario.
"""

from __future__ import annotations

import random
from typing import Any

from console.estate.model import Estate, Service

ROUTINE: dict[str, tuple[str, ...]] = {
    "web": ("GET /{path} 200 {ms}ms", "GET /static/app.{n}.js 304 {ms}ms",
            "session {sid} renewed for user {uid}"),
    "api": ("handled {method} /v1/{path} status=200 duration_ms={ms}",
            "cache lookup key={path}:{n} hit=true", "request {rid} completed in {ms}ms"),
    "worker": ("processed message {rid} in {ms}ms", "committed offset {n} on partition {p}"),
    "database": ("checkpoint complete: wrote {n} buffers ({p}.0%)",
                 "automatic vacuum of table \"{path}\": index scans: 1"),
    "cache": ("DB saved on disk", "{n} changes in 300 seconds. Saving..."),
    "queue": ("partition {p} leader epoch {n}", "consumer group {path}-workers rebalanced"),
}

FAILURES: dict[str, tuple[str, ...]] = {
    "upstream_error": ("upstream {dep} returned 503 Service Unavailable for request {rid}",
                       "call to {dep} failed: HTTP 500 after {ms}ms (request {rid})"),
    "timeout": ("timeout after 3000ms calling {dep} (request {rid})",
                "context deadline exceeded while waiting for {dep}"),
    "tls": ("x509: certificate has expired or is not yet valid: calling {dep}",
            "TLS handshake with {dep} failed: certificate expired"),
    "defect": ("NullPointerException at PriceCalculator.apply({path}.java:{n}) [{version}]",
               "unhandled error in handler /v1/{path}: KeyError 'currency' [{version}]"),
    "config": ("invalid configuration {key}: request aborted (request {rid})",
               "config {key} rejected by upstream client: value out of range"),
    "pool": ("HikariPool-1 - Connection is not available, request timed out after 30000ms",
             "could not obtain database connection: pool exhausted (20/20 in use)"),
    "disk_full": ("write failed on {instance}: No space left on device (ENOSPC)",
                  "could not extend file \"base/{n}\": No space left on device"),
    "overload": ("rejecting request {rid}: server overloaded (queue full)",
                 "load shedding: {n} requests dropped in the last second"),
    "unreachable": ("no route to host for {n} backend(s); retrying another zone",),
    "no_instances": ("no healthy upstream",),
    "cpu": ("slow request {rid}: {ms}ms spent in pricing engine",),
    "slow": ("duration: {ms} ms  statement: SELECT * FROM orders WHERE customer_id = ${n}",),
    "stuck": ("message {rid} redelivered {n} times; handler still failing",),
}


def _fill(template: str, rng: random.Random, extra: dict[str, Any]) -> str:
    fields = {"path": rng.choice(("cart", "checkout", "products", "orders", "users", "search")),
              "ms": rng.randint(3, 90), "n": rng.randint(1, 9999), "p": rng.randint(0, 11),
              "rid": f"{rng.getrandbits(48):012x}", "sid": f"{rng.getrandbits(32):08x}",
              "uid": rng.randint(1000, 99999), "method": rng.choice(("GET", "POST", "PUT")),
              "dep": "?", "version": "?", "key": "?", "instance": "?"}
    fields.update(extra)
    if "ms" in extra:
        fields["ms"] = int(extra["ms"])
    return template.format(**fields)


def emit_logs(estate: Estate, dt: float) -> None:
    rng = estate.rng
    for svc in estate.services.values():
        _routine(estate, svc, rng, dt)
        _failures(estate, svc, rng, dt)


def _instance(svc: Service, rng: random.Random) -> str:
    return rng.choice(svc.instances).id


def _routine(estate: Estate, svc: Service, rng: random.Random, dt: float) -> None:
    if rng.random() < dt / 30.0:
        estate.log(svc.name, "INFO", _fill(rng.choice(ROUTINE[svc.kind]), rng, {}),
                   _instance(svc, rng))


def _failures(estate: Estate, svc: Service, rng: random.Random, dt: float) -> None:
    causes = svc.effects.causes
    rate = svc.metrics.get("error_rate", 0.0)
    if not causes:
        return
    expected = min(4.0, max(rate * dt * 0.4, 0.3))
    count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    total = sum(w for w, _, _ in causes)
    for _ in range(count):
        cause, extra = _pick(causes, rng.random() * total)
        level = "WARN" if cause in ("cpu", "slow", "unreachable") else "ERROR"
        text = _fill(rng.choice(FAILURES[cause]), rng, extra)
        estate.log(svc.name, level, text, _instance(svc, rng))


def _pick(causes: list[tuple[float, str, dict[str, Any]]],
          point: float) -> tuple[str, dict[str, Any]]:
    acc = 0.0
    for weight, cause, extra in causes:
        acc += weight
        if point <= acc:
            return cause, extra
    return causes[-1][1], causes[-1][2]

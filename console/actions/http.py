"""Call an HTTP endpoint for a runbook step (a control plane's API, a webhook).

The runbook renders the URL with every placeholder percent-encoded and the body as a
JSON value (see `runbooks.render_url` and `render_body`); this executor checks what it
was given once more before anything leaves the machine: http(s) only, no credentials
in the URL, a host on the allow-list when one is configured, fixed headers without
CR/LF, a body that is valid JSON. Redirects are not followed (a 3xx is a failed step:
the runbook named the endpoint it meant), the environment's proxy and .netrc settings
are ignored (a runbook's request goes where it says, with the credentials it names),
and an answer is read only up to a limit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from console.actions.base import ExecutorError, ProbeResult, StepResult

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
PROBE_METHODS = ("GET", "HEAD")  # a validation observes; it never changes the target
BODY_LIMIT = 16 * 1024  # bytes of an answer kept in the step result
MAX_TIMEOUT = 300.0
_RESERVED = {"host", "content-length", "transfer-encoding", "connection"}
_TOKEN = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class _Request:
    method: str
    url: httpx.URL
    body: Any
    headers: dict[str, str]
    timeout: float

    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, ensure_ascii=False, allow_nan=False).encode()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _allowed(entries: Iterable[str]) -> frozenset[str]:
    out = set()
    for entry in entries:
        host, sep, port = entry.strip().lower().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"allowed_hosts entry {entry!r} is not host:port")
        out.add(f"{host}:{int(port)}")
    return frozenset(out)


class HttpExecutor:
    """Steps {"executor": "http", "method", "url", "body", "headers", "timeout"}; probes
    {"kind": "http", "method": "GET", "url", "expect_status": 200}."""

    kind = "http"
    target = "http"  # every step and probe names its own URL: the same from any console

    def __init__(self, *, allowed_hosts: Iterable[str] | None = None,
                 timeout: float = 10.0, follow_redirects: bool = False,
                 body_limit: int = BODY_LIMIT) -> None:
        self.allowed_hosts = None if allowed_hosts is None else _allowed(allowed_hosts)
        self.default_timeout = timeout
        self.body_limit = body_limit
        # One client for the executor's life: creating one costs tens of milliseconds
        # and it pools connections (STYLE.md).
        self._client = httpx.Client(follow_redirects=follow_redirects, timeout=timeout,
                                    trust_env=False)

    def close(self) -> None:
        self._client.close()

    # --- checks -----------------------------------------------------------------------

    def _request(self, spec: Mapping[str, Any], methods: tuple[str, ...]) -> _Request:
        method = spec.get("method")
        if method not in methods:
            raise ExecutorError(f"http: method {method!r} is not one of {', '.join(methods)}")
        raw = spec.get("url")
        if not isinstance(raw, str) or any(ch.isspace() or ord(ch) < 32 for ch in raw):
            raise ExecutorError("http: the url must be text without whitespace or controls")
        try:
            url = httpx.URL(raw)
        except httpx.InvalidURL as exc:
            raise ExecutorError(f"http: invalid url {raw!r}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ExecutorError(f"http: only http(s) urls with a host, not {raw!r}")
        if url.userinfo:
            raise ExecutorError("http: no credentials in the url; use a fixed header")
        where = _host_port(url.host.lower(), url.port or (443 if url.scheme == "https" else 80))
        if self.allowed_hosts is not None and where not in self.allowed_hosts:
            raise ExecutorError(f"http: host {where} is not on the allow-list")
        body = spec.get("body")
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ExecutorError(f"http: the body is not JSON: {exc}") from None
        return _Request(str(method), url, body, self._headers(spec.get("headers")),
                        self._timeout(spec))

    @staticmethod
    def _headers(given: Any) -> dict[str, str]:
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise ExecutorError("http: headers must be a mapping of name to text")
        out: dict[str, str] = {}
        for name, value in given.items():
            if not isinstance(name, str) or not name or set(name) - _TOKEN or \
                    name.lower() in _RESERVED:
                raise ExecutorError(f"http: header name {name!r} is not allowed")
            if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
                raise ExecutorError(f"http: header {name}: text without CR, LF or NUL")
            out[name] = value
        return out

    def _timeout(self, spec: Mapping[str, Any]) -> float:
        timeout = spec.get("timeout", self.default_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
                not 0 < timeout <= MAX_TIMEOUT:
            raise ExecutorError(f"http: timeout must be 0 < s <= {MAX_TIMEOUT:g}")
        return float(timeout)

    @staticmethod
    def _expect(spec: Mapping[str, Any], key: str, value: str) -> None:
        if spec.get(key, value) != value:
            raise ExecutorError(f"the http executor cannot run {key} {spec.get(key)!r}")

    # --- the Executor protocol ----------------------------------------------------------

    def preview(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """The request as it will be sent; header values are left out (they may be
        tokens), their names are not."""
        self._expect(step, "executor", "http")
        request = self._request(step, METHODS)
        return {"executor": "http", "method": request.method, "url": str(request.url),
                "body": request.body, "headers": sorted(request.headers),
                "timeout": request.timeout}

    def execute(self, step: Mapping[str, Any]) -> StepResult:
        self._expect(step, "executor", "http")
        request = self._request(step, METHODS)
        try:
            status, text, truncated, took = self._send(request)
        except httpx.TimeoutException:
            return StepResult(False, f"{request.method} {request.url}: no answer within "
                              f"{request.timeout:g}s (it may have been applied)")
        except httpx.HTTPError as exc:
            return StepResult(False, f"{request.method} {request.url}: "
                              f"{type(exc).__name__}: {exc}")
        ok = 200 <= status < 300
        message = f"HTTP {status} in {took:.2f}s" + ("" if ok else f": {text[:200]}")
        return StepResult(ok, message, {"status": status, "body": text,
                                        "body_truncated": truncated,
                                        "duration_s": round(took, 3)})

    def rollback(self, step: Mapping[str, Any]) -> StepResult:
        return self.execute(step)

    def validate(self, probe: Mapping[str, Any]) -> ProbeResult:
        self._expect(probe, "kind", "http")
        request = self._request({**probe, "body": None}, PROBE_METHODS)
        expected = probe.get("expect_status", 200)
        if isinstance(expected, bool) or not isinstance(expected, int):
            raise ExecutorError(f"http: expect_status must be an integer, got {expected!r}")
        try:
            status, text, _, _ = self._send(request)
        except httpx.HTTPError as exc:
            return ProbeResult(False, f"{request.method} {request.url}: "
                               f"{type(exc).__name__}: {exc}")
        passed = status == expected
        detail = f"{request.method} {request.url}: HTTP {status}" + (
            "" if passed else f", expected {expected}: {text[:200]}")
        return ProbeResult(passed, detail, float(status))

    def _send(self, request: _Request) -> tuple[int, str, bool, float]:
        """Status, the answer's first `body_limit` bytes as text, whether it was cut, time."""
        started = time.monotonic()
        headers = dict(request.headers)
        content = request.content()
        if content is not None:
            headers.setdefault("Content-Type", "application/json")
        with self._client.stream(request.method, request.url, content=content,
                                 headers=headers, timeout=request.timeout) as answer:
            kept = bytearray()
            truncated = False
            for chunk in answer.iter_bytes():
                room = self.body_limit - len(kept)
                kept += chunk[:room]
                if len(chunk) > room:
                    truncated = True
                    break
            return (answer.status_code, kept.decode("utf-8", errors="replace"), truncated,
                    time.monotonic() - started)

"""What every HTTP ticket adapter shares: one reused httpx.Client, timeouts, and retries.

A ticketing system that is slow or briefly down must not lose a ticket, and one that
says no must not be asked again: connection errors, 429 (after its Retry-After) and 5xx
are retried with exponential backoff; any other 4xx is final at once. After the last
attempt a TicketError names the system, the request and what went wrong.

A retried create is only safe if the first attempt cannot have made a ticket already
(the server may have processed it and lost the response). So creates are retried as a
whole `look up by idempotency token, else create` unit with `retrying(...)`; each step
inside it uses `once(...)`, which never retries by itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from console.itsm.base import RetryPolicy, TicketError, TicketRef

T = TypeVar("T")
SEVERITIES = ("critical", "error", "warning", "info")  # PagerDuty's four; ours are a subset
AUTH_STATUSES = (401, 403)


def idempotency_token(key: str) -> str:
    """A short, URL-, JQL- and label-safe token for one of our idempotency keys."""
    return "wf-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def check_severity(system: str, severity: str) -> str:
    """The severity as a plain string (a StrEnum such as domain.Severity is welcome)."""
    if severity not in SEVERITIES:
        raise TicketError(f"{system}: unknown severity {str(severity)!r} "
                          f"(known: {', '.join(SEVERITIES)})")
    return str(severity)


def check_ref(system: str, ref: TicketRef) -> None:
    if ref.system != system:
        raise TicketError(f"{system}: ticket {ref.id!r} belongs to {ref.system!r}, "
                          f"not to {system!r}")


class Retryable(Exception):
    """One attempt failed in a way that may pass if tried again."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


ErrorText = Callable[[httpx.Response], str]


def default_error_text(response: httpx.Response) -> str:
    return response.text[:300].strip()


class HttpApi:
    """One system's HTTP endpoint. `secret` is asked for on each request (from the OS
    keyring, by the caller), so it is never kept in this object or in a config."""

    def __init__(self, system: str, base_url: str, *, retry: RetryPolicy | None = None,
                 username: str | None = None, secret: Callable[[], str] | None = None,
                 error_text: ErrorText = default_error_text, auth_hint: str = "") -> None:
        self.system = system
        self.retry = retry or RetryPolicy()
        self._username = username
        self._secret = secret
        self._error_text = error_text
        self._auth_hint = auth_hint
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(self.retry.timeout),
            headers={"Accept": "application/json", "User-Agent": "watchfloor"},
            follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def once(self, method: str, path: str, *, body: Any = None,
             params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """One attempt. Raises Retryable for what may pass next time, TicketError for a
        refusal, and returns the response when its status is 2xx."""
        auth: Any = httpx.USE_CLIENT_DEFAULT
        if self._username is not None and self._secret is not None:
            auth = httpx.BasicAuth(self._username, self._secret())
        try:
            response = self.client.request(method, path, json=body, params=params, auth=auth)
        except httpx.TimeoutException as exc:
            raise Retryable(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(f"could not reach {self.client.base_url} "
                            f"({type(exc).__name__}: {exc})") from None
        if response.is_success:
            return response
        status = response.status_code
        detail = self._error_text(response)
        if status == 429 or status >= 500:
            raise Retryable(f"HTTP {status} {response.reason_phrase}"
                            f"{': ' + detail if detail else ''}",
                            parse_retry_after(response.headers.get("Retry-After"))
                            if status == 429 else None)
        what = f"{method} {path}"
        if status in AUTH_STATUSES:
            raise TicketError(f"{self.system}: {what}: authentication failed (HTTP {status})"
                              f"{': ' + detail if detail else ''}. {self._auth_hint}".rstrip())
        raise TicketError(f"{self.system}: {what} was refused (HTTP {status})"
                          f"{': ' + detail if detail else ''}")

    def retrying(self, attempt: Callable[[], T], what: str) -> T:
        """Run `attempt` until it returns, retrying what Retryable says may pass."""
        last = ""
        for number in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except Retryable as exc:
                last = exc.reason
                if number < self.retry.attempts:
                    self.retry.sleep(self.retry.delay(number, exc.retry_after))
        raise TicketError(f"{self.system}: {what} failed after {self.retry.attempts} "
                          f"attempt(s): {last}")

    def request(self, method: str, path: str, *, body: Any = None,
                params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """A request that is safe to repeat (a read, a PUT/PATCH, a deduplicated event)."""
        return self.retrying(lambda: self.once(method, path, body=body, params=params),
                             f"{method} {path}")


def json_of(system: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TicketError(f"{system}: {response.request.method} {response.request.url.path} "
                          f"answered {response.status_code} with no JSON body") from None

"""Alertmanager silences (API v2), made alongside a maintenance window.

A window keeps Watchfloor from opening incidents; a silence keeps Alertmanager from
paging anyone else (its other receivers) about the same services for the same time. The
silence matches the `service` label, the label the estate's alert rules carry (and the
label Watchfloor reads a signal's service from).

Alertmanager may answer an update with a new silence id (it replaces a silence whose
change it cannot apply in place, and expires the old one): the caller keeps whatever id
comes back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:  # loaded when a silence is made: the engine carries no HTTP client
    import httpx

SERVICE_LABEL = "service"
TIMEOUT = 10.0


class SilenceError(RuntimeError):
    """Alertmanager refused or could not be reached; the message names which and why."""


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str


class _Gettable(BaseModel):
    """The part of API v2's gettableSilence Watchfloor reads."""

    model_config = ConfigDict(extra="ignore")
    id: str
    status: _Status
    startsAt: datetime  # camelCase: the API v2 field names
    endsAt: datetime
    createdBy: str
    comment: str
    matchers: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    state: str  # active | pending | expired
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    matchers: tuple[dict[str, Any], ...]


def service_matchers(services: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """One equality matcher for one service; an anchored alternation for several (the
    API ANDs its matchers, so several services need one regular expression)."""
    if len(services) == 1:
        return [{"name": SERVICE_LABEL, "value": services[0], "isRegex": False,
                 "isEqual": True}]
    pattern = "|".join(re.escape(s) for s in sorted(services))
    return [{"name": SERVICE_LABEL, "value": pattern, "isRegex": True, "isEqual": True}]


def _stamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r} given where UTC is required")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Silences:
    """A client of one Alertmanager's silences; `client` may be shared (one per process)."""

    def __init__(self, url: str, client: httpx.Client | None = None,
                 timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        if client is None:
            import httpx

            client = httpx.Client(timeout=timeout)
        self._client = client
        self._own = client is None

    def close(self) -> None:
        if self._own:
            self._client.close()

    def create(self, services: list[str] | tuple[str, ...], *, starts_at: datetime,
               ends_at: datetime, created_by: str, comment: str,
               replaces: str | None = None) -> str:
        """The id of the silence now in force (a new one when Alertmanager replaced
        `replaces` rather than updating it)."""
        body: dict[str, Any] = {"matchers": service_matchers(services),
                                "startsAt": _stamp(starts_at), "endsAt": _stamp(ends_at),
                                "createdBy": created_by, "comment": comment}
        if replaces:
            body["id"] = replaces
        data = self._call("POST", "/api/v2/silences", json=body)
        silence_id = data.get("silenceID") if isinstance(data, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise SilenceError(f"alertmanager {self.url}: the answer to a new silence has "
                               f"no silenceID: {str(data)[:200]}")
        return silence_id

    def get(self, silence_id: str) -> Silence:
        data = self._call("GET", f"/api/v2/silence/{silence_id}")
        try:
            got = _Gettable.model_validate(data)
        except ValidationError as exc:
            raise SilenceError(f"alertmanager {self.url}: silence {silence_id} is not in "
                               f"the API v2 shape: {exc.errors()[0]['msg']}") from None
        return Silence(got.id, got.status.state, got.startsAt, got.endsAt, got.createdBy,
                       got.comment, tuple(got.matchers))

    def expire(self, silence_id: str) -> None:
        """Expire now; a silence already expired is left as it is (nothing to undo)."""
        self._call("DELETE", f"/api/v2/silence/{silence_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, self.url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise SilenceError(f"alertmanager {self.url}: {method} {path}: "
                               f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise SilenceError(f"alertmanager {self.url}: {method} {path}: HTTP "
                               f"{response.status_code}: {response.text[:300].strip()}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise SilenceError(f"alertmanager {self.url}: {method} {path}: the answer is "
                               "not JSON") from None

"""The provider contract: what every monitoring system plugged into the console offers.

Why one contract: the receiver, the correlation read-back, `watchfloor providers` and the
Settings dialog each used to know the sources by name. Now each asks the providers. A
provider says whether the system pushes to the console (a receiver path), is pulled from
(an API the console polls), or both; how it is doing; and how one of its payloads
becomes signals and changes, refusing bad input with a `PayloadError` that names what
and where. The receiver keeps what it always did (limits, store first, correlation after
the answer): a provider only maps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from console.domain import ChangeEvent, LogRecord, Signal

if TYPE_CHECKING:  # only `check` talks HTTP: reading payloads loads no client
    import httpx

Kind = Literal["push", "pull", "both"]
Parsed = tuple[list[Signal], list[ChangeEvent]]
Parser = Callable[[Any], Parsed]
# a parsed body -> its log lines (called only on a body `parse` accepted)
LogLines = Callable[[Any], list[LogRecord]]
# (signals stored, changes stored, duplicate) -> the body of a 200 answer
Answer = Callable[[int, int, bool], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Health:
    """`state`: ok, degraded, or "not configured" (a pull provider with no address);
    `detail` says why, for a person."""

    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One receiver path. `source` is the name its deliveries are stored under (and read
    back by after a crash); `media_types`, when given, are the only Content-Types taken
    (the rest are answered 415 with the reason); `answer` shapes a 200's body when the
    sender expects its own protocol's answer; `encodings` are the compressions its
    senders use by default (an endpoint that declares none reads bodies as they come)."""

    path: str
    source: str
    parse: Parser
    media_types: tuple[str, ...] = ()
    answer: Answer | None = None
    encodings: tuple[str, ...] = ()  # Content-Encodings taken besides none (only "gzip")
    logs: LogLines | None = None  # the log lines a body holds, kept as evidence


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """What the console was told at start: the generic mappings (`--webhook-mappings`)
    and, per provider name, the address of its API for pulling (`urls`)."""

    mappings: Mapping[str, Any] = field(default_factory=dict)
    urls: Mapping[str, str] = field(default_factory=dict)


class Provider(ABC):
    """A monitoring system. Subclasses set `name`, `kind` and `summary`; a push provider
    implements `parse` (its receiver path is /providers/<name> unless it says more in
    `endpoints`); a pull provider answers `health` from its last poll."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    summary: ClassVar[str] = ""
    health_path: ClassVar[str | None] = None  # GET on the pulled API that says it is up

    def __init__(self, config: ProviderConfig | None = None) -> None:
        self.config = config or ProviderConfig()

    @abstractmethod
    def parse(self, body: Any) -> Parsed:
        """The system's payload (parsed JSON) as signals and changes; PayloadError, naming
        the place, for anything that cannot be used. Must not store anything."""

    def endpoints(self) -> list[Endpoint]:
        if self.kind == "pull":
            return []
        return [Endpoint(f"/providers/{self.name}", self.name, self.parse)]

    def configured(self) -> bool:
        """A pull provider is configured when it has an address; push ones always are."""
        return self.kind != "pull" or self.name in self.config.urls

    def health(self) -> Health:
        """What is known without asking the system: `check` asks it."""
        if not self.configured():
            return Health("not configured", f"no address for {self.name} was given")
        url = self.config.urls.get(self.name)
        paths = ", ".join(e.path for e in self.endpoints())
        detail = "; ".join(part for part in (f"receives at {paths}" if paths else "",
                                             f"pulls from {url}" if url else "") if part)
        return Health("ready", detail)

    async def check(self, client: httpx.AsyncClient) -> Health:
        """Ask the system how it is (a pull provider with an address); the others answer
        `health()`. Never raises: a failure is a degraded health with the reason."""
        import httpx

        url = self.config.urls.get(self.name)
        if url is None or self.health_path is None:
            return self.health()
        try:
            answer = await client.get(url.rstrip("/") + self.health_path, timeout=5.0)
        except httpx.HTTPError as exc:
            return Health("degraded", f"{url}: {type(exc).__name__}: {exc}")
        if answer.status_code >= 400:
            return Health("degraded", f"{url}{self.health_path}: HTTP {answer.status_code}")
        return Health("ok", f"{url} answers")

    def sources(self) -> dict[str, Parser]:
        """Each stored source name's parser (what a stored delivery is read back with)."""
        return {endpoint.source: endpoint.parse for endpoint in self.endpoints()}

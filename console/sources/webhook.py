"""The webhook receiver: Alertmanager, the change feed and every push provider post to it.

Its paths are the providers' (console/sources/providers): /webhook/alertmanager,
/webhook/changes, /webhook/generic/<mapping> as always, and /providers/<name> for each.

It listens on loopback unless told otherwise, can require a bearer token, stores each
delivery (and the signals it normalizes to) before it answers 200, answers a malformed
delivery with 400 and the reason, and keeps the rejected body in the dead-letter table.
A delivery seen before is answered 200 and stored once. It runs in its own threads
(console/sources/http_intake.py: one loop reads every connection within a deadline, a
fixed pool parses and stores), so a slow sender never blocks the GUI nor another sender.
What happens to the signals next (correlation) happens after the answer, elsewhere.
"""

from __future__ import annotations

import hmac
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from console.domain import ChangeEvent, LogRecord, Signal
from console.service import WatchfloorService
from console.sources import jsonbody
from console.sources.alertmanager import PayloadError
from console.sources.http_intake import IntakeLimits, IntakeServer
from console.sources.logs import MinedLog, StreamMiner
from console.sources.mapping import Mapping
from console.sources.providers import registry
from console.sources.providers.base import Endpoint, Parser, ProviderConfig

MAX_BODY = 4 * 1024 * 1024
MAX_DEPTH = 32


def load_json(raw: bytes) -> Any:
    """Parse a body as JSON; refuse what cannot be stored as-is (bad UTF-8, NaN, nesting,
    NUL...) with the place named (console/sources/jsonbody.py)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return jsonbody.parse(text, max_depth=MAX_DEPTH)
    except PayloadError as exc:
        raise PayloadError(f"body: {exc}") from None


def gunzip(raw: bytes, limit: int) -> bytes:
    """A gzipped body, unpacked to at most `limit` bytes: the receiver's size limit holds
    for what is parsed, not only for what crossed the wire (a small bomb stays small)."""
    unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = unpack.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise PayloadError(f"body: not gzip data ({exc})") from None
    if len(out) > limit or unpack.unconsumed_tail:
        raise PayloadError(f"body: more than the {limit}-byte limit once unpacked")
    if not unpack.eof:
        raise PayloadError("body: the gzip data is cut short")
    return out


def _config(mappings: dict[str, Mapping] | None) -> ProviderConfig:
    return ProviderConfig(mappings=dict(mappings or {}))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as stored: `id` is its stored payload's, which stays in the correlation
    backlog until its signals are correlated (console/correlation.py)."""

    id: int
    source: str
    signals: tuple[Signal, ...]
    changes: tuple[ChangeEvent, ...]


def source_parsers(mappings: dict[str, Mapping] | None = None) -> dict[str, Parser]:
    """Each source's parser, by the name its deliveries are stored under: what a stored
    delivery is read back with (every provider's receiver paths, keyed by source)."""
    return registry.parsers(_config(mappings))


class WebhookReceiver:
    """Start with `start()`, stop with `close()`; `url` is where senders post.

    `on_stored` hears each stored delivery on a receiver worker, before its answer: it
    must hand the work on, not do it (Runtime.receive_later queues it), or the sender
    waits for it. Such deliveries are stored with a correlation backlog row (`defer`).
    The HTTP side and its limits are console/sources/http_intake.py."""

    def __init__(self, service: WatchfloorService, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None,
                 on_stored: Callable[[Delivery], None] | None = None,
                 mappings: dict[str, Mapping] | None = None,
                 limits: IntakeLimits | None = None,
                 miner: StreamMiner | None = None) -> None:
        self.service = service
        # every provider's paths (console/sources/providers), read once at start
        self.endpoints: dict[str, Endpoint] = registry.endpoints(_config(mappings))
        self.routes = {path: (e.source, e.parse) for path, e in self.endpoints.items()}
        self.token = token
        self.on_stored = on_stored
        # templates for the log lines a provider sends (made on first need: drain3)
        self.miner = miner
        self._miner_lock = threading.Lock()
        self.server = IntakeServer(host, port, self.handle, reject=self._reject,
                                   limits=limits or IntakeLimits(max_body=MAX_BODY))

    @property
    def url(self) -> str:
        host, port = self.server.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> WebhookReceiver:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Decide the answer to one delivery (the HTTP layer only reads and writes)."""
        endpoint = self.endpoints.get(path.split("?", 1)[0])
        if endpoint is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no receiver at {path[:100]}",
                                          "receivers": sorted(self.routes)}
        source, parse = endpoint.source, endpoint.parse
        if self.token is not None:
            given = headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"}
        if endpoint.media_types:
            media = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if media not in endpoint.media_types:
                reason = (f"Content-Type {media[:60] or '(none)'!r} is not taken at "
                          f"{endpoint.path}: send {' or '.join(endpoint.media_types)}")
                self.service.dead_letter(source, reason, raw)
                return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": reason}
        encoding = headers.get("Content-Encoding", "").strip().lower()
        if endpoint.encodings and encoding not in ("", "identity", *endpoint.encodings):
            reason = (f"Content-Encoding {encoding[:40]!r} is not taken at {endpoint.path}: "
                      f"send {' or '.join(endpoint.encodings)}, or none")
            self.service.dead_letter(source, reason, raw)
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": reason}
        try:
            text = raw
            if endpoint.encodings and encoding == "gzip":
                text = gunzip(raw, self.server.limits.max_body)
            body = load_json(text)
            signals, changes = parse(body)
        except PayloadError as exc:
            self.service.dead_letter(source, str(exc), raw)
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        lines = self._mine(endpoint.logs(body)) if endpoint.logs is not None else []
        defer = self.on_stored is not None
        stored = self.service.accept_payload(source, body, signals, changes, lines,
                                             defer=defer)
        if stored and self.on_stored is not None:
            self.on_stored(Delivery(stored, source, tuple(signals), tuple(changes)))
        if endpoint.answer is not None:  # the sender's own protocol's answer
            return HTTPStatus.OK, endpoint.answer(len(signals), len(changes), not stored)
        return HTTPStatus.OK, {"status": "stored" if stored else "duplicate",
                               "signals": len(signals), "changes": len(changes)}

    def _mine(self, records: list[LogRecord]) -> list[MinedLog]:
        with self._miner_lock:
            if self.miner is None:
                self.miner = StreamMiner()
        return self.miner.mine(records)

    def _reject(self, path: str, reason: str, kept: bytes) -> None:
        """A request refused before it was decided (too big, cut short) is kept too."""
        route = self.routes.get(path.split("?", 1)[0])
        self.service.dead_letter(route[0] if route is not None else "webhook", reason, kept)

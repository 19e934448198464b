"""The webhook receiver: Alertmanager (and change feeds) push to it over HTTP.

It listens on loopback unless told otherwise, can require a bearer token, stores each
delivery (and the signals it normalizes to) before it answers 200, answers a malformed
delivery with 400 and the reason, and keeps the rejected body in the dead-letter table.
A delivery seen before is answered 200 and stored once. It runs in its own threads
(the standard library's ThreadingHTTPServer), so a slow sender never blocks the GUI.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from console.domain import ChangeEvent, Signal
from console.service import WatchfloorService
from console.sources import jsonbody
from console.sources.alertmanager import PayloadError, parse_webhook
from console.sources.feeds import parse_changes
from console.sources.mapping import Mapping, apply_mapping

log = logging.getLogger(__name__)
MAX_BODY = 4 * 1024 * 1024
MAX_DEPTH = 32

Parser = Callable[[Any], tuple[list[Signal], list[ChangeEvent]]]


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


def _alertmanager(body: Any) -> tuple[list[Signal], list[ChangeEvent]]:
    _, signals = parse_webhook(body)
    return signals, []


def _changes(body: Any) -> tuple[list[Signal], list[ChangeEvent]]:
    items = body if isinstance(body, list) else [body]
    return [], parse_changes(items)


def _generic(name: str, mapping: Mapping) -> Parser:
    def parse(body: Any) -> tuple[list[Signal], list[ChangeEvent]]:
        return apply_mapping(name, mapping, body), []

    return parse


ROUTES: dict[str, tuple[str, Parser]] = {
    "/webhook/alertmanager": ("alertmanager", _alertmanager),
    "/webhook/changes": ("changes", _changes),
}


class WebhookReceiver:
    """Start with `start()`, stop with `close()`; `url` is where senders post."""

    def __init__(self, service: WatchfloorService, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None,
                 on_stored: Callable[[list[Signal], list[ChangeEvent]], None] | None = None,
                 mappings: dict[str, Mapping] | None = None) -> None:
        self.service = service
        self.routes = dict(ROUTES)
        for name, mapping in (mappings or {}).items():
            self.routes[f"/webhook/generic/{name}"] = (f"webhook:{name}",
                                                      _generic(name, mapping))
        self.token = token
        self.on_stored = on_stored
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Decide the answer to one delivery (the HTTP layer only reads and writes)."""
        route = self.routes.get(path.split("?", 1)[0])
        if route is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no receiver at {path[:100]}",
                                          "receivers": sorted(self.routes)}
        source, parse = route
        if self.token is not None:
            given = headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"}
        try:
            body = load_json(raw)
            signals, changes = parse(body)
        except PayloadError as exc:
            self.service.dead_letter(source, str(exc), raw)
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        stored = self.service.accept_payload(source, body, signals, changes)
        if stored and self.on_stored is not None:
            self.on_stored(signals, changes)
        return HTTPStatus.OK, {"status": "stored" if stored else "duplicate",
                               "signals": len(signals), "changes": len(changes)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "watchfloor-receiver"

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length needed"})
                    return
                if length < 0 or length > MAX_BODY:
                    receiver.service.dead_letter("webhook", f"body of {length} bytes is over "
                                                 f"the {MAX_BODY}-byte limit", b"")
                    self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 {"error": f"body over {MAX_BODY} bytes"})
                    return
                raw = self.rfile.read(length)
                try:
                    status, answer = receiver.handle(self.path, self.headers, raw)
                except Exception:  # never lose the sender's retry: 500 makes it try again
                    log.exception("webhook delivery failed")
                    status, answer = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "not stored"}
                self._answer(status, answer)

            def do_GET(self) -> None:
                if self.path == "/-/healthy":
                    self._answer(HTTPStatus.OK, {"status": "ok"})
                else:
                    self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST deliveries"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook: " + format, *args)

        return Handler

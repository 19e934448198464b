"""A loopback stand-in for an OpenAI-compatible chat server (/v1/chat/completions).

It speaks the request/response shape of the real thing and can be scripted:
- `replies`: texts (or functions of the request body) handed out in order; the last one
  is repeated once the list runs out;
- `mode`: "normal", "slow" (waits `delay` seconds before answering, to hit a client's
  time limit), "garbage" (200 with a body that is not JSON), "wrong_shape" (JSON without
  choices), "error" (HTTP 500);
- `requests`: every request body received, and `headers` the headers of each.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | Callable[[dict[str, Any]], str]


class FakeLLMServer:
    def __init__(self, replies: list[Reply] | None = None, *, mode: str = "normal",
                 delay: float = 2.0) -> None:
        self.replies: list[Reply] = list(replies or ["Nothing to add [1]."])
        self.mode = mode
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._served = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # a slow reply gives up at once
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one request ------------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> str:
        with self._lock:
            index = min(self._served, len(self.replies) - 1)
            self._served += 1
        reply = self.replies[index]
        return reply(body) if callable(reply) else reply

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.path != "/v1/chat/completions":
            self._send(handler, 404, b'{"error": "not found"}')
            return
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(handler, 400, b'{"error": "bad json"}')
            return
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
        if self.mode == "slow" and self._stop.wait(self.delay):
            return
        if self.mode == "garbage":
            self._send(handler, 200, b"{this is not json")
            return
        if self.mode == "wrong_shape":
            self._send(handler, 200, b'{"choices": []}')
            return
        if self.mode == "error":
            self._send(handler, 500, b'{"error": {"message": "model crashed"}}')
            return
        text = self._next_reply(body)
        reply = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
                 "created": 0, "model": body.get("model", ""),
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": text}}],
                 "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
        self._send(handler, 200, json.dumps(reply).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first
            pass

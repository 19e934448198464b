"""A loopback Zabbix frontend's API: JSON-RPC 2.0 at /api_jsonrpc.php, answering
`apiinfo.version`, `problem.get` and `trigger.get` in the shapes Zabbix's API reference
gives (ids, clocks and severities as text), checking the bearer token as Zabbix 6.4+
does, and answering what it does not know with a JSON-RPC error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "a1b2c3d4e5f6"


class ZabbixState:
    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self.hosts: dict[str, dict[str, str]] = {}  # trigger id -> host
        self.calls: list[str] = []


def _error(code: int, message: str, data: str, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data},
            "id": request_id}


def _answer(state: ZabbixState, request: dict[str, Any], auth: str) -> dict[str, Any]:
    method, request_id = request.get("method"), request.get("id")
    state.calls.append(str(method))
    params = request.get("params") or {}
    if method == "apiinfo.version":
        if auth:
            return _error(-32602, "Invalid params.", "API method \"apiinfo.version\" cannot "
                          "be called with an authorization token.", request_id)
        return {"jsonrpc": "2.0", "result": "7.0.5", "id": request_id}
    if auth != f"Bearer {TOKEN}":
        return _error(-32602, "Invalid params.", "Not authorized.", request_id)
    if method == "problem.get":
        return {"jsonrpc": "2.0", "result": list(state.problems), "id": request_id}
    if method == "trigger.get":
        result = [{"triggerid": tid, "hosts": [state.hosts[tid]]}
                  for tid in params.get("triggerids", []) if tid in state.hosts]
        return {"jsonrpc": "2.0", "result": result, "id": request_id}
    return _error(-32601, "Method not found.", f"Incorrect API \"{method}\".", request_id)


@contextmanager
def zabbix_api(state: ZabbixState) -> Iterator[str]:
    """Serves until the block ends; yields the frontend's base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length))
            if self.path != "/zabbix/api_jsonrpc.php":
                self.send_error(404)
                return
            body = json.dumps(_answer(state, request,
                                      self.headers.get("Authorization", ""))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/zabbix"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def problem(eventid: str, trigger: str, name: str, *, severity: str = "4",
            clock: str = "1767579120", tags: list[dict[str, str]] | None = None
            ) -> dict[str, Any]:
    """One element of problem.get's result with output "extend" and selectTags."""
    return {"eventid": eventid, "source": "0", "object": "0", "objectid": trigger,
            "clock": clock, "ns": "209442442", "r_eventid": "0", "r_clock": "0",
            "r_ns": "0", "correlationid": "0", "userid": "0", "name": name,
            "acknowledged": "0", "severity": severity, "cause_eventid": "0", "opdata": "",
            "suppressed": "0", "urls": [], "tags": tags or []}

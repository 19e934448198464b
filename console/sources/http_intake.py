"""The receiver's HTTP side: reads requests within limits, hands whole ones to a fixed pool.

Why not the standard library's ThreadingHTTPServer: it starts a thread per connection
and that thread waits, without a deadline, for whatever the sender has not sent yet, so
900 half-sent requests held 900 threads, and a body cut short by a disconnect was parsed
as if it were whole. Here one asyncio loop (its own thread) reads every connection, each
within one deadline for its whole request (head and body), and only a request that has
arrived whole goes to one of `workers` threads, where parsing and storing happen. A
slow or silent sender costs a socket and a coroutine, never a worker; a sender that
stops short gets 400 after the deadline (or nothing, if it has gone), and its partial
body is never parsed. Connections beyond `max_connections`, or bodies beyond
`max_buffered` bytes held at once, are answered 503 at once (senders such as
Alertmanager retry it). Answers are HTTP/1.1 with `Connection: close`: one request per
connection, as the receiver always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.client
import io
import json
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024  # request line and headers
SERVER = "watchfloor-receiver"

Answer = tuple[int, dict[str, Any]]
# (path, headers, body) -> answer; runs on a pool thread
Decide = Callable[[str, http.client.HTTPMessage, bytes], Answer]
# (path, reason, what arrived) for a request refused before it could be decided
Reject = Callable[[str, str, bytes], None]


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """`read_timeout`: seconds a request may take to arrive whole, head and body."""

    max_body: int = 4 * 1024 * 1024
    read_timeout: float = 10.0
    workers: int = 4
    max_connections: int = 256
    max_buffered: int = 64 * 1024 * 1024


class _Refused(Exception):
    """A request answered before it reached a worker: status, reason, what to keep."""

    def __init__(self, status: int, reason: str, *, kept: bytes | None = None,
                 headers: tuple[tuple[str, str], ...] = (), unread: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.kept, self.headers = status, reason, kept, headers
        self.unread = unread  # a body follows that was not read: read it off after answering


class IntakeServer:
    """Binds at once (so a busy port is an error of the constructor); `start()` serves
    on a thread of its own; `close()` stops, and waits for the deliveries being stored."""

    def __init__(self, host: str, port: int, decide: Decide, *, reject: Reject,
                 limits: IntakeLimits | None = None, health_path: str = "/-/healthy") -> None:
        self.limits = limits or IntakeLimits()
        self.decide, self.reject, self.health_path = decide, reject, health_path
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=128)
        self.pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="webhook-worker")
        self.connections = 0  # open now (read by tests and the benchmark)
        self._buffered = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name="webhook-receiver", daemon=True)
        self._thread.start()
        ready.wait()

    def close(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.socket.close()
        self.pool.shutdown(wait=True)

    # --- the loop's thread ------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        try:
            server = await asyncio.start_server(self._accepted, sock=self.socket,
                                                limit=HEAD_LIMIT)
        finally:
            ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            if self.connections > self.limits.max_connections:
                await self._answer(writer, HTTPStatus.SERVICE_UNAVAILABLE,
                                   {"error": "receiver busy: too many connections, retry"},
                                   (("Retry-After", "1"),))
                return
            await self._request(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the sender went away, or stopped reading our answer
        finally:
            self.connections -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _request(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.read_timeout
        path = ""
        try:
            method, path, version, headers = await _read_head(reader, deadline,
                                                              self.limits.read_timeout)
            if method == "GET" and path == self.health_path:
                await self._answer(writer, HTTPStatus.OK, {"status": "ok"})
                return
            if method != "POST":
                raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, "POST deliveries",
                               headers=(("Allow", "POST"),))
            length = self._length(headers)
            if version == "HTTP/1.1" and headers.get("Expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            raw = await self._body(reader, length, deadline)
        except _Refused as refused:
            if refused.kept is not None:
                await loop.run_in_executor(self.pool, self._reject, path, refused.reason,
                                           refused.kept)
            await self._answer(writer, refused.status, {"error": refused.reason},
                               refused.headers)
            if refused.unread:  # a sender still writing it would not see the answer
                await _discard(reader, deadline)
            return
        try:
            status, answer = await loop.run_in_executor(self.pool, self._decide, path,
                                                        headers, raw)
        finally:
            self._buffered -= len(raw)
        await self._answer(writer, status, answer)

    def _length(self, headers: http.client.HTTPMessage) -> int:
        if headers.get("Transfer-Encoding") is not None:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length needed (no chunked "
                           "bodies)")
        try:
            length = int(headers.get("Content-Length", ""))
        except ValueError:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length needed") from None
        if length < 0 or length > self.limits.max_body:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"body of {length} bytes is over the {self.limits.max_body}-byte "
                           "limit", kept=b"", unread=True)
        if self._buffered + length > self.limits.max_buffered:
            raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, "receiver busy: too many bodies "
                           "arriving at once, retry", headers=(("Retry-After", "1"),),
                           unread=True)
        return length

    async def _body(self, reader: asyncio.StreamReader, length: int, deadline: float) -> bytes:
        """The whole body, or _Refused naming how much of it arrived: a partial body is
        never parsed, whatever it looks like."""
        self._buffered += length
        raw = bytearray()
        timed_out = False
        try:
            async with asyncio.timeout_at(deadline):
                while len(raw) < length:
                    chunk = await reader.read(min(256 * 1024, length - len(raw)))
                    if not chunk:
                        break
                    raw += chunk
        except TimeoutError:
            timed_out = True
        if len(raw) < length:
            self._buffered -= length  # the caller releases a whole body once decided
            why = (f"within the {self.limits.read_timeout:g} s read timeout" if timed_out
                   else "before the sender closed the connection")
            raise _Refused(HTTPStatus.BAD_REQUEST, f"body cut short: {len(raw)} of the "
                           f"{length} bytes Content-Length announced arrived {why}; "
                           "nothing was parsed or stored", kept=bytes(raw))
        return bytes(raw)

    def _reject(self, path: str, reason: str, kept: bytes) -> None:
        try:
            self.reject(path, reason, kept)
        except Exception:  # the sender is still answered; the log keeps why it was not kept
            log.exception("a refused delivery could not be kept for review")

    def _decide(self, path: str, headers: http.client.HTTPMessage, raw: bytes) -> Answer:
        try:
            return self.decide(path, headers, raw)
        except Exception:  # never lose the sender's retry: 500 makes it try again
            log.exception("webhook delivery failed")
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "not stored"}

    async def _answer(self, writer: asyncio.StreamWriter, status: int, body: dict[str, Any],
                      extra: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(body).encode()
        phrase = HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {int(status)} {phrase}", f"Server: {SERVER}",
                 f"Date: {email.utils.formatdate(usegmt=True)}",
                 "Content-Type: application/json", f"Content-Length: {len(data)}",
                 "Connection: close", *(f"{name}: {value}" for name, value in extra)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        async with asyncio.timeout(self.limits.read_timeout):
            await writer.drain()


async def _read_head(reader: asyncio.StreamReader, deadline: float,
                     allowed_s: float) -> tuple[str, str, str, http.client.HTTPMessage]:
    """Request line and headers, parsed by the standard library's header parser."""
    try:
        async with asyncio.timeout_at(deadline):
            head = await reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        raise _Refused(HTTPStatus.REQUEST_TIMEOUT, f"request head not complete within the "
                       f"{allowed_s:g} s read timeout") from None
    except asyncio.IncompleteReadError:
        raise ConnectionResetError("the sender closed before its request head") from None
    except asyncio.LimitOverrunError:
        raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                       f"request head over {HEAD_LIMIT} bytes") from None
    line, _, rest = head.partition(b"\r\n")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Refused(HTTPStatus.BAD_REQUEST, f"bad request line {line[:100]!r}")
    try:
        headers = http.client.parse_headers(io.BytesIO(rest))
    except http.client.HTTPException as exc:
        raise _Refused(HTTPStatus.BAD_REQUEST, f"bad request headers: {exc}") from None
    return parts[0], parts[1], parts[2], headers


async def _discard(reader: asyncio.StreamReader, deadline: float) -> None:
    """Read and drop what the sender still sends, until it stops or the deadline."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout_at(deadline):
            while await reader.read(256 * 1024):
                pass

"""The receiver's limits over real sockets: a request that does not arrive whole within
the read timeout is answered (400 for a short body, 408 for a short head) and nothing of
it is parsed or stored; a body cut short by a disconnect is never parsed; slow senders
hold no thread; a fixed pool of threads parses and stores; connections beyond the limit
are refused with 503. The HTTP side is console/sources/http_intake.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.runtime import Runtime
from console.sources.http_intake import IntakeLimits
from console.sources.webhook import WebhookReceiver
from tests.test_sources import AM_PAYLOAD
from tests.waiting import wait_for

PATH = "/webhook/alertmanager"


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = Runtime(db_url)
    yield runtime
    runtime.close()


def _receiver(service: Any, **limits: Any) -> WebhookReceiver:
    return WebhookReceiver(service, limits=IntakeLimits(**limits)).start()


def _connect(rx: WebhookReceiver, head: bytes, body: bytes = b"") -> socket.socket:
    host, port = rx.server.address
    sock = socket.create_connection((host, port), timeout=15)
    sock.sendall(head + body)
    return sock


def _head(length: int, *, extra: str = "") -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Read the answer to its end (the receiver closes after one); status and body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _stored(rt: Runtime) -> tuple[int, int]:
    return rt.service.signal_count(), rt.service.payload_count()


def test_a_half_sent_body_is_answered_400_after_the_read_timeout(rt: Runtime) -> None:
    rx = _receiver(rt.service, read_timeout=0.5)
    try:
        body = json.dumps(AM_PAYLOAD).encode()
        sock = _connect(rx, _head(len(body)), body[:100])  # ...and then nothing more
        status, answer = _answer(sock)
    finally:
        rx.close()
    assert status == 400
    assert f"cut short: 100 of the {len(body)} bytes" in answer["error"]
    assert "read timeout" in answer["error"]
    assert _stored(rt) == (0, 0)
    [(source, reason, kept)] = rt.service.dead_letters()
    assert source == "alertmanager"
    assert "cut short" in reason
    assert kept == body[:100].decode()


def test_a_body_cut_short_by_a_disconnect_is_never_parsed(rt: Runtime) -> None:
    """What did arrive is a whole JSON delivery; the announced length says it is not all."""
    whole = json.dumps(AM_PAYLOAD).encode()
    rx = _receiver(rt.service, read_timeout=10)
    try:
        sock = _connect(rx, _head(len(whole) + 40), whole)
        sock.shutdown(socket.SHUT_WR)  # the sender is gone (it can still read)
        status, answer = _answer(sock)
    finally:
        rx.close()
    assert status == 400
    assert "before the sender closed the connection" in answer["error"]
    assert _stored(rt) == (0, 0)


def test_a_request_head_that_never_ends_is_answered_408(rt: Runtime) -> None:
    rx = _receiver(rt.service, read_timeout=0.5)
    try:
        sock = _connect(rx, f"POST {PATH} HTTP/1.1\r\nHost: x\r\n".encode())
        status, answer = _answer(sock)
    finally:
        rx.close()
    assert status == 408
    assert "request head" in answer["error"]


def test_slow_senders_hold_no_thread_and_do_not_delay_others(rt: Runtime) -> None:
    before = threading.active_count()
    rx = _receiver(rt.service, read_timeout=60, workers=2)
    slow = [_connect(rx, _head(1000), b"{") for _ in range(30)]
    try:
        # Answered after the 30 were accepted (one loop accepts in order).
        assert httpx.get(rx.url + "/-/healthy", timeout=10).status_code == 200
        answer = httpx.post(rx.url + PATH, content=json.dumps(AM_PAYLOAD).encode(),
                            timeout=10)
        assert answer.status_code == 200
        # the receiver's loop and at most its two workers; no thread per slow sender
        assert threading.active_count() - before <= 3
        # the slow ones are still held, each by a coroutine
        wait_for(lambda: rx.server.connections == 30, 10, "the answered ones closed")
    finally:
        for sock in slow:
            sock.close()
        rx.close()
    assert _stored(rt) == (1, 1)


class _Watched:
    """The service, with the threads that stored through it noted."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.threads: set[int] = set()

    def accept_payload(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.add(threading.get_ident())
        return self._service.accept_payload(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


def test_a_fixed_pool_of_threads_parses_and_stores(rt: Runtime) -> None:
    watched = _Watched(rt.service)
    rx = _receiver(watched, workers=2)
    try:
        def send(n: int) -> int:
            body = json.loads(json.dumps(AM_PAYLOAD))
            body["alerts"][0]["fingerprint"] = f"fp-{n}"
            return httpx.post(rx.url + PATH, json=body, timeout=30).status_code

        threads = [threading.Thread(target=send, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        rx.close()
    assert rt.service.payload_count() == 12
    assert 1 <= len(watched.threads) <= 2


def test_connections_beyond_the_limit_are_refused_503(rt: Runtime) -> None:
    rx = _receiver(rt.service, read_timeout=60, max_connections=3)
    held = [_connect(rx, _head(1000), b"{") for _ in range(3)]
    try:
        wait_for(lambda: rx.server.connections == 3, 10, "three connections held")
        answer = httpx.post(rx.url + PATH, content=json.dumps(AM_PAYLOAD).encode(),
                            timeout=10)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
    finally:
        for sock in held:
            sock.close()
    try:
        wait_for(lambda: rx.server.connections == 0, 10, "the held connections closed")
        answer = httpx.post(rx.url + PATH, content=json.dumps(AM_PAYLOAD).encode(),
                            timeout=10)
        assert answer.status_code == 200  # the retry gets through
    finally:
        rx.close()


def test_a_sender_that_waits_for_100_continue_gets_it(rt: Runtime) -> None:
    body = json.dumps(AM_PAYLOAD).encode()
    rx = _receiver(rt.service)
    try:
        sock = _connect(rx, _head(len(body), extra="Expect: 100-continue\r\n"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        status, answer = _answer(sock)
    finally:
        rx.close()
    assert (status, answer["status"]) == (200, "stored")


@pytest.mark.parametrize(("head", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (f"POST {PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 411),
    (f"POST {PATH} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode(), 411),
    (f"PUT {PATH} HTTP/1.1\r\nContent-Length: 2\r\n\r\n{{}}".encode(), 405),
])
def test_malformed_requests_get_a_clear_answer(rt: Runtime, head: bytes, status: int) -> None:
    rx = _receiver(rt.service, read_timeout=2)
    try:
        got, answer = _answer(_connect(rx, head))
    finally:
        rx.close()
    assert got == status
    assert answer["error"]
    assert _stored(rt) == (0, 0)

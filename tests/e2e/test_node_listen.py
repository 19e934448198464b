"""`watchfloor node --listen`: the engine process owns the webhook receiver. The member
that leads receives, stores, answers and then correlates; it says where it listens."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx

from console.runtime import Runtime
from tests.e2e.nodes import NodeProcess
from tests.test_deferred_correlation import PATH, _delivery
from tests.waiting import wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_leading_node_receives_stores_and_correlates(tmp_path: Path,
                                                         make_db_url: Any) -> None:
    url = make_db_url(tmp_path, "node")
    port = _free_port()
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    node = NodeProcess(url, "engine", tmp_path / "engine", runbooks,
                       extra=("--listen", f"127.0.0.1:{port}", "--webhook-token", "s3cret"))
    try:
        node.wait(lambda e: e["event"] == "leader", 90, "the lead")
        notice = node.wait(lambda e: e["event"] == "notice"
                           and "receiving webhooks" in e["text"], 60, "the receiver")
        receiver = f"http://127.0.0.1:{port}"
        assert receiver in notice["text"]
        assert httpx.post(receiver + PATH, json=_delivery(3), timeout=20).status_code == 401
        answer = httpx.post(receiver + PATH, json=_delivery(3), timeout=20,
                            headers={"Authorization": "Bearer s3cret"})
        assert answer.json() == {"status": "stored", "signals": 3, "changes": 0}
        with Runtime(url) as reader:
            wait_for(lambda: any(i.services == ("ledger",)
                                 for i in reader.service.incidents()), 60,
                     "the node's incident for the delivery")
    finally:
        assert node.stop() == 0

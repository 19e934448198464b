"""`watchfloor mcp` end to end: the official SDK's client starts `python -m console mcp`
over stdio (and reaches it over streamable HTTP on loopback), lists its tools, calls
them, and every call is on the audit log with the person and the client that made it.
No tool approves, executes or rolls back anything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client import Client
from mcp.types import Implementation

from console.mcp.server import NEVER
from console.runtime import Runtime, ScenarioDriver
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLIENT = Implementation(name="night-assistant", version="3.1")
PASSWORD = "night shift keeps the lights on"
READ_TOOLS = {"ask", "incidents", "incident", "causes", "recommendations", "audit_verify"}


@pytest.fixture
def night_db(tmp_path: Path, make_db_url: Any) -> Iterator[str]:
    """bad-deploy played with the team to 02:25: incident 1 with its cause and a pending
    rollback recommendation; bob is an operator, victor a viewer."""
    url = make_db_url(tmp_path, "night")
    runtime = Runtime(url)
    try:
        runtime.service.bootstrap_admin("alice")
        runtime.service.add_user("bob", "operator", as_user="alice")
        runtime.service.add_user("victor", "viewer", as_user="alice")
        driver = ScenarioDriver(runtime, "bad-deploy", seed=42, agents=True)
        stop = runtime.clock.now().replace(hour=2, minute=25)
        while runtime.clock.now() < stop:
            driver.step(15)
    finally:
        runtime.close()
    yield url


def _env() -> dict[str, str]:
    keep = ("WATCHFLOOR_DATA_DIR", "WATCHFLOOR_CONFIG_DIR", "WATCHFLOOR_USER")
    return {k: os.environ[k] for k in keep if k in os.environ}


def _data(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if set(content) == {"result"} else content
    return json.loads(result.content[0].text)


def _mcp_calls(url: str) -> list[Any]:
    runtime = Runtime(url)
    try:
        return [e for e in runtime.service.audit_entries() if e.action == "mcp.call"]
    finally:
        runtime.close()


def test_stdio_the_sdk_client_reads_proposes_and_every_call_is_audited(
        night_db: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, cwd=str(ROOT), env=_env(),
        args=["-m", "console", "mcp", "--db", night_db, "--as", "bob"])
    seen: dict[str, Any] = {}

    async def session() -> None:
        async with stdio_client(params) as (read, write), \
                ClientSession(read, write, client_info=CLIENT) as client:
            await client.initialize()
            tools = {t.name: t for t in (await client.list_tools()).tools}
            seen["tools"] = tools
            seen["incidents"] = _data(await client.call_tool("incidents", {}))
            seen["incident"] = _data(await client.call_tool("incident", {"incident": 1}))
            seen["causes"] = _data(await client.call_tool("causes", {"incident": 1}))
            seen["recs"] = _data(await client.call_tool("recommendations", {}))
            seen["audit"] = _data(await client.call_tool("audit_verify", {}))
            seen["ask"] = _data(await client.call_tool(
                "ask", {"question": "what changed before incident 1?"}))
            seen["proposed"] = _data(await client.call_tool(
                "propose", {"runbook": "restart-service", "params": {"service": "cart"},
                            "explanation": "cart pods look stuck", "incident": 1}))
            seen["bad"] = await client.call_tool("propose", {"runbook": "no-such-book"})
            seen["approve"] = await client.call_tool("approve", {"id": 1})

    anyio.run(session)

    tools = seen["tools"]
    assert set(tools) == READ_TOOLS | {"propose"}
    assert not [n for n in tools if any(word in n for word in NEVER)]
    assert all(tools[n].annotations.read_only_hint is True for n in READ_TOOLS)
    assert tools["propose"].annotations.read_only_hint is False
    assert tools["propose"].annotations.destructive_hint is False

    assert [i["id"] for i in seen["incidents"]] == [1]
    assert seen["incident"]["services"] and seen["incident"]["timeline"]
    cause = seen["causes"][0]
    assert cause["service"] == "payments" and cause["fault_class"] == "bad_deploy"
    assert cause["evidence"] and all(e["ref"] for e in cause["evidence"])
    rollback = next(r for r in seen["recs"] if r["runbook"] == "rollback-deploy")
    assert rollback["preview"]["summary"] and len(rollback["preview_hash"]) == 64
    assert seen["audit"]["ok"] is True
    assert seen["ask"]["citations"] and "[1]" in seen["ask"]["text"]
    proposed = seen["proposed"]
    assert (proposed["state"], proposed["requester"], proposed["target"]) == \
        ("pending", "user:bob", "cart")
    assert seen["bad"].is_error and "no-such-book" in seen["bad"].content[0].text
    assert seen["approve"].is_error  # there is no such tool

    runtime = Runtime(night_db)
    try:
        rec = runtime.service.engine.recommendation(proposed["id"])
        assert rec is not None and rec.state == "pending" and rec.requester == "user:bob"
        assert runtime.service.engine.executions() == []  # nothing ran
        created = [e for e in runtime.service.audit_entries()
                   if e.action == "recommendation.create"
                   and e.target == f"recommendation:{proposed['id']}"]
        assert [e.actor for e in created] == ["user:bob"]
    finally:
        runtime.close()

    calls = _mcp_calls(night_db)
    assert [c.inputs["tool"] for c in calls] == [
        "incidents", "incident", "causes", "recommendations", "audit_verify", "ask",
        "propose", "propose"]
    assert {c.actor for c in calls} == {"user:bob"}
    assert {json.dumps(c.inputs["client"]) for c in calls} == \
        {json.dumps({"name": "night-assistant", "version": "3.1"})}
    assert all(c.inputs["transport"] == "stdio" for c in calls)
    assert calls[6].inputs["arguments"] == {"runbook": "restart-service",
                                            "params": {"service": "cart"},
                                            "explanation": "cart pods look stuck",
                                            "incident": 1}
    assert calls[6].outputs["ok"] is True and calls[7].outputs["ok"] is False


def test_stdio_a_viewer_sees_a_waiting_recommendation_only_by_title(night_db: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, cwd=str(ROOT), env=_env(),
        args=["-m", "console", "mcp", "--db", night_db, "--as", "victor"])
    out: dict[str, Any] = {}

    async def session() -> None:
        async with Client(params, client_info=CLIENT) as client:
            out["recs"] = _data(await client.call_tool("recommendations", {}))
            out["propose"] = await client.call_tool(
                "propose", {"runbook": "restart-service", "params": {"service": "cart"}})

    anyio.run(session)
    assert out["recs"] and all(set(r) == {"id", "state", "target", "title"}
                               for r in out["recs"] if r["state"] in ("pending", "queued"))
    assert out["propose"].is_error and "denied" in out["propose"].content[0].text


def test_stdio_refuses_a_password_on_stdin_and_an_unknown_user(night_db: str) -> None:
    base = [sys.executable, "-m", "console", "mcp", "--db", night_db]
    env = {**os.environ, **_env()}
    piped = subprocess.run([*base, "--as", "bob", "--password-stdin"], cwd=ROOT, env=env,
                           input="secret\n", capture_output=True, text=True, timeout=120)
    assert piped.returncode == 2 and "watchfloor login" in piped.stderr
    stranger = subprocess.run([*base, "--as", "mallory"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert stranger.returncode == 1 and "'mallory' is not a known user" in stranger.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_streamable_http_on_loopback(night_db: str, tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "mcp-http.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "mcp", "--transport", "http", "--port", str(port),
         "--db", night_db, "--as", "bob"], cwd=ROOT, env={**os.environ, **_env()},
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    out: dict[str, Any] = {}
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=60,
                 what="the MCP HTTP server listening")
        assert proc.poll() is None, (tmp_path / "mcp-http.log").read_text()

        async def session() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", client_info=CLIENT) as client:
                out["tools"] = {t.name for t in (await client.list_tools()).tools}
                out["incidents"] = _data(await client.call_tool("incidents",
                                                                {"state": "open"}))

        anyio.run(session)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert out["tools"] == READ_TOOLS | {"propose"}
    assert [i["id"] for i in out["incidents"]] == [1]
    said = (tmp_path / "mcp-http.log").read_text()
    assert f"MCP on http://127.0.0.1:{port}/mcp as bob" in said
    calls = _mcp_calls(night_db)
    assert [(c.inputs["tool"], c.inputs["transport"], c.inputs["client"]["name"])
            for c in calls] == [("incidents", "http", "night-assistant")]


def test_once_passwords_are_in_use_the_person_proves_it(tmp_path: Path,
                                                        make_db_url: Any) -> None:
    url = make_db_url(tmp_path, "guarded")
    runtime = Runtime(url)
    try:
        runtime.service.bootstrap_admin("alice")
        runtime.service.add_user("bob", "operator", as_user="alice")
        runtime.service.auth.set_password("alice", PASSWORD, as_user="alice")
        runtime.service.auth.set_password("bob", PASSWORD, as_user="alice",
                                          current_password=PASSWORD)
    finally:
        runtime.close()
    env = {**os.environ, **_env()}
    base = [sys.executable, "-m", "console", "mcp", "--db", url, "--as", "bob"]
    # stdio has no terminal and its stdin is the protocol: a session is needed
    stdio = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert stdio.returncode == 2 and "watchfloor login" in stdio.stderr
    wrong = subprocess.run([*base, "--transport", "http", "--port", str(_free_port()),
                            "--password-stdin"], cwd=ROOT, env=env, input="nope\n",
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 1
    port = _free_port()
    log = (tmp_path / "mcp-http.log").open("w")
    proc = subprocess.Popen([*base, "--transport", "http", "--port", str(port),
                             "--password-stdin"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdin is not None
        proc.stdin.write(PASSWORD + "\n")
        proc.stdin.close()
        wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=60,
                 what="the MCP HTTP server listening")
        assert proc.poll() is None, (tmp_path / "mcp-http.log").read_text()

        async def session() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", client_info=CLIENT) as client:
                assert not (await client.call_tool("audit_verify", {})).is_error

        anyio.run(session)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    runtime = Runtime(url)
    try:
        entries = runtime.service.audit_entries()
    finally:
        runtime.close()
    served = [e for e in entries if e.action == "mcp.serve"]
    assert [(e.actor, e.inputs["proved_by"]) for e in served] == [("user:bob", "password")]
    assert [(e.actor, e.inputs["tool"], e.inputs["proved_by"]) for e in entries
            if e.action == "mcp.call"] == [("user:bob", "audit_verify", "password")]

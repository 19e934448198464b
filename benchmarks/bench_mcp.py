"""MCP both ways: what a question pays for the configured MCP servers, and what an MCP
client waits for `watchfloor mcp`.

- client: a stdio server (the official SDK, a one-tool notes server written to a
  temporary file) asked through console/mcp/client.py: the first lookup starts its
  process, the later ones reuse the open session (the cache is off, so every lookup
  calls the tool);
- server: the SDK's client starts `python -m console mcp` on a fresh SQLite database
  and calls `incidents` and `audit_verify` (each call also writes its audit record).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NOTES_SERVER = '''
from mcp.server import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def search_notes(query: str) -> str:
    return f"notes on {query}"


server.run()
'''
ROOT = Path(__file__).resolve().parents[1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def _client(folder: Path, lookups: int) -> dict[str, Any]:
    from console.mcp.client import McpSources
    from console.mcp.config import McpConfig

    script = folder / "notes_server.py"
    script.write_text(NOTES_SERVER, encoding="utf-8")
    config = McpConfig.model_validate({"servers": [{
        "name": "notes", "command": sys.executable, "args": [str(script)],
        "allow": [{"tool": "search_notes", "arguments": {"query": "{question}"}}]}]})
    sources = McpSources(config, cache_s=0.0)
    try:
        started = time.perf_counter()
        first = sources.lookup("warm-up")
        first_s = time.perf_counter() - started
        assert first.evidence, first.errors
        times = []
        for n in range(lookups):
            started = time.perf_counter()
            found = sources.lookup(f"question {n}")
            times.append(time.perf_counter() - started)
            assert found.evidence, found.errors
    finally:
        sources.close()
    return {"first_lookup_ms": _ms(first_s), "lookups": lookups,
            "lookup_median_ms": _ms(statistics.median(times)),
            "lookup_max_ms": _ms(max(times))}


def _server(folder: Path, calls: int) -> dict[str, Any]:
    import anyio
    from mcp import Client, StdioServerParameters

    from console.runtime import Runtime

    url = f"sqlite:///{folder / 'wf.db'}"
    env = {"WATCHFLOOR_DATA_DIR": str(folder / "data"),
           "WATCHFLOOR_CONFIG_DIR": str(folder / "config"), "WATCHFLOOR_USER": "alice"}
    os.environ.update(env)
    Runtime(url).close()  # the schema, before the timing
    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT), env=env,
                                   args=["-m", "console", "mcp", "--db", url, "--as", "alice"])
    out: dict[str, Any] = {}

    async def session() -> None:
        started = time.perf_counter()
        async with Client(params) as client:
            await client.list_tools()
            out["start_ms"] = _ms(time.perf_counter() - started)
            for tool in ("incidents", "audit_verify"):
                times = []
                for _ in range(calls):
                    begun = time.perf_counter()
                    result = await client.call_tool(tool, {})
                    times.append(time.perf_counter() - begun)
                    assert not result.is_error, result.content
                out[f"{tool}_median_ms"] = _ms(statistics.median(times))
                out[f"{tool}_max_ms"] = _ms(max(times))

    anyio.run(session)
    return out | {"calls_per_tool": calls}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wf-bench-mcp-") as tmp:
        folder = Path(tmp)
        return {"benchmark": "mcp", "client": _client(folder, 20),
                "server": _server(folder, 20)}

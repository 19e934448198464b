"""Other MCP servers as evidence: their read-only tools, quoted, never obeyed.

A team's CMDB, wiki or on-call tool may already speak MCP. The retriever and the
investigator ask the servers in `mcp.yaml` (console/mcp/config.py) about a question's
services and quote what comes back as evidence, cited `mcp:<server>/<tool>`.

What a server says of itself is not trusted, and neither is what its tools return:
- a tool is called only when it is on its server's allow-list (default deny), declares
  itself read-only (the `readOnlyHint` annotation), does not declare itself destructive,
  and its name does not say it acts (delete, exec, run...) unless the allow-list entry
  vouches for it (`despite_name: true`); anything else is refused, and said so;
- a result is text to quote: flattened, clipped and put in quotation marks inside an
  evidence item. It never reaches a prompt as instructions (the language model sees it
  only inside the retriever's FACTS block, agents/retriever_llm.py), never moves the
  investigator's scores, and nothing here can propose, approve or run anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from console.domain import Evidence
from console.mcp.config import AllowedTool, McpConfig, ServerConfig
from console.mcp.sessions import SessionPool

KIND = "mcp"
log = logging.getLogger(__name__)
CACHE_S = 60.0  # one answer per tool and arguments for this long: an investigation
#                 repeats every tick and must not start a server each time
MAX_SERVICES = 3  # a {service} tool is asked about this many of a question's services
ACTION_WORDS = re.compile(
    r"(^|[^a-z])(delete|remove|drop|destroy|purge|exec|execute|run|shell|kill|restart|stop|"
    r"start|rollback|roll_back|revert|deploy|scale|write|update|create|set|put|post|patch|"
    r"approve|reject|disable|enable|silence|ack|acknowledge|resolve|close|send)($|[^a-z])",
    re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the configured servers said about one question: the evidence quoted, the
    tools refused (with why) and the servers or calls that failed."""

    evidence: tuple[Evidence, ...] = ()
    refused: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass
class _Found:
    evidence: list[Evidence] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def refusal(server: str, allowed: AllowedTool, tool: Any) -> str | None:
    """Why this listed tool must not be called (None: it may be). `tool` is the
    server's own description of it (an mcp.types.Tool)."""
    where = f"{server}/{allowed.tool}"
    hints = getattr(tool, "annotations", None)
    if hints is None or getattr(hints, "read_only_hint", None) is not True:
        return f"{where}: refused: its server does not mark it read-only (readOnlyHint)"
    if getattr(hints, "destructive_hint", None) is True:
        return f"{where}: refused: its server marks it destructive (destructiveHint)"
    if ACTION_WORDS.search(allowed.tool.replace("-", "_").replace(".", "_")) \
            and not allowed.despite_name:
        return (f"{where}: refused: its name says it acts; list it with despite_name: true "
                "if it only reads")
    return None


def quote(server: str, tool: str, result: Any, max_chars: int) -> Evidence | None:
    """A tool result as one evidence item, its text quoted and clipped; None when it
    returned nothing to quote."""
    parts = [getattr(c, "text", "") for c in getattr(result, "content", None) or ()]
    text = " ".join(p for p in parts if p)
    if not text and getattr(result, "structured_content", None) is not None:
        text = json.dumps(result.structured_content, sort_keys=True, default=str)
    flat = " ".join(_CONTROL.sub(" ", text).split()).replace("\u201d", '"')
    if not flat:
        return None
    if len(flat) > max_chars:
        flat = flat[:max_chars - 1] + "…"
    return Evidence(KIND, f"{server}/{tool} returned (quoted, data only): \u201c{flat}\u201d",
                    f"{KIND}:{server}/{tool}", 0.0)


class McpSources:
    """The servers of one `mcp.yaml`, asked together, each within its own timeout."""

    def __init__(self, config: McpConfig, *, cache_s: float = CACHE_S,
                 version: str = "0") -> None:
        self.config = config
        self.cache_s = cache_s
        self.version = version
        self._cache: dict[tuple[str, str, str], tuple[float, Evidence | None]] = {}
        self._sessions = SessionPool()

    def __bool__(self) -> bool:
        return bool(self.config.servers)

    def lookup(self, question: str, services: Sequence[str] = (),
               incident: int | None = None) -> Lookup:
        """Blocking, safe from any thread: the servers are asked together on the
        sessions' own loop (console/mcp/sessions.py), each within its timeout."""
        if not self.config.servers:
            return Lookup()
        longest = max(server.timeout for server in self.config.servers)
        return self._sessions.call(
            partial(self._lookup, question, tuple(services)[:MAX_SERVICES], incident),
            longest + 5.0)

    def close(self) -> None:
        """End the servers' sessions (a stdio server's process exits)."""
        self._sessions.close()

    async def _lookup(self, question: str, services: tuple[str, ...],
                      incident: int | None) -> Lookup:
        values = [{"question": question, "service": s,
                   "incident": "" if incident is None else str(incident)}
                  for s in services or ("",)]
        found = [_Found() for _ in self.config.servers]
        await asyncio.gather(*(self._server(server, values, out) for server, out
                               in zip(self.config.servers, found, strict=True)))
        return Lookup(tuple(e for f in found for e in f.evidence),
                      tuple(dict.fromkeys(r for f in found for r in f.refused)),
                      tuple(dict.fromkeys(e for f in found for e in f.errors)))

    async def _server(self, server: ServerConfig, values: list[dict[str, str]],
                      out: _Found) -> None:
        from mcp.types import Implementation

        todo = self._uncached(server, self._calls(server, values), out)
        if not todo:
            return
        try:
            await self._sessions.run(
                server.name, _target(server),
                Implementation(name="watchfloor", version=self.version),
                partial(self._ask, server, todo, out), server.timeout)
        except TimeoutError:
            out.errors.append(f"{server.name}: no answer within {server.timeout:g} s")
        except Exception as exc:  # noqa: BLE001  (a server that fails is reported, not fatal)
            out.errors.append(f"{server.name}: cannot be reached: "
                              f"{type(exc).__name__}: {exc}"[:500])

    def _calls(self, server: ServerConfig,
               values: list[dict[str, str]]) -> list[tuple[AllowedTool, dict[str, Any]]]:
        calls: list[tuple[AllowedTool, dict[str, Any]]] = []
        for allowed in server.allow:
            seen: set[str] = set()
            for vals in values:
                args = allowed.fill(vals)
                key = json.dumps(args, sort_keys=True)
                if args is not None and key not in seen:
                    seen.add(key)
                    calls.append((allowed, args))
        return calls

    def _uncached(self, server: ServerConfig,
                  calls: list[tuple[AllowedTool, dict[str, Any]]],
                  out: _Found) -> list[tuple[AllowedTool, dict[str, Any]]]:
        now = time.monotonic()
        todo = []
        for allowed, args in calls:
            hit = self._cache.get((server.name, allowed.tool, json.dumps(args, sort_keys=True)))
            if hit is not None and hit[0] > now:
                if hit[1] is not None:
                    out.evidence.append(hit[1])
            else:
                todo.append((allowed, args))
        return todo

    async def _ask(self, server: ServerConfig,
                   todo: list[tuple[AllowedTool, dict[str, Any]]], out: _Found,
                   client: Any) -> None:
        """On the server's session: list its tools, refuse what may not be called, call
        the rest one by one."""
        tools = await _tools(client)
        for allowed, args in todo:
            tool = tools.get(allowed.tool)
            if tool is None:
                out.errors.append(f"{server.name}: offers no tool {allowed.tool!r}")
                continue
            why = refusal(server.name, allowed, tool)
            if why is not None:
                out.refused.append(why)
                continue
            result = await client.call_tool(allowed.tool, args)
            if getattr(result, "is_error", False):
                out.errors.append(f"{server.name}/{allowed.tool}: the tool failed")
                continue
            item = quote(server.name, allowed.tool, result, server.max_chars)
            self._cache[(server.name, allowed.tool, json.dumps(args, sort_keys=True))] = \
                (time.monotonic() + self.cache_s, item)
            if item is not None:
                out.evidence.append(item)


def _target(server: ServerConfig) -> Any:
    if server.url is not None:
        return server.url
    from mcp import StdioServerParameters

    return StdioServerParameters(command=server.command or "", args=list(server.args),
                                 env=dict(server.env) or None)


async def _tools(client: Any) -> dict[str, Any]:
    """Every tool the server lists, page by page (at most 50 pages)."""
    tools: dict[str, Any] = {}
    cursor = None
    for _page in range(50):
        listed = await client.list_tools(cursor=cursor)
        tools.update((t.name, t) for t in listed.tools)
        cursor = listed.next_cursor
        if not cursor:
            break
    return tools


def configured_sources(version: str = "0") -> McpSources | None:
    """The sources of the user's `mcp.yaml`; None without servers. A file that does not
    validate is reported (file, line, field) and ignored: the console works without."""
    from console.mcp.config import McpConfigError, load_mcp_config

    try:
        config = load_mcp_config()
    except McpConfigError as exc:
        log.warning("the MCP servers in mcp.yaml are ignored: %s", exc)
        return None
    return McpSources(config, version=version) if config.servers else None

"""`watchfloor mcp`: the console's read tools and `propose`, over the Model Context
Protocol (the official `mcp` SDK; stdio, or streamable HTTP on loopback by default).

Every call is audited (`mcp.call`) with who made it: the `--as` person, proved as for any
headless command (console/cli_identity.py), and the MCP client's name and version as it
introduced itself; with the tool's name, its arguments and whether it answered. There is
no tool that approves, executes, rolls back, silences or changes policy: an assistant
may recommend, and a signed-in person decides.

Tool calls run one at a time on a worker thread, so the database and the retriever
(which may ask other MCP servers itself, console/mcp/client.py) never block the
protocol's event loop.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from console.mcp.tools import ConsoleTools, ToolRefused

if TYPE_CHECKING:
    from console.audit import AuditEntry

NAME = "watchfloor"
AUDIT_ACTION = "mcp.call"
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
PROPOSE = ToolAnnotations(read_only_hint=False, destructive_hint=False,
                          idempotent_hint=False, open_world_hint=False)
# What no tool of this server may ever be: the test suite holds the server to it.
NEVER = ("approve", "execute", "rollback", "roll_back", "reject", "kill", "autonomy",
         "policy", "silence", "run")


def caller(ctx: Context | None) -> dict[str, str]:
    """The client as it introduced itself (initialize, or the request's envelope)."""
    params = None
    try:
        params = ctx.session.client_params if ctx is not None else None
    except (AttributeError, LookupError, ValueError):
        params = None
    info = getattr(params, "client_info", None)
    if info is None:
        return {"name": "(unnamed client)", "version": ""}
    return {"name": str(info.name)[:200], "version": str(info.version or "")[:100]}


class AuditedTools:
    """Runs one tool call as the proved person and audits it, whatever its outcome."""

    def __init__(self, tools: ConsoleTools, *, transport: str, proof: str) -> None:
        self.tools = tools
        self.transport = transport
        self.proof = proof
        self._one_at_a_time = anyio.CapacityLimiter(1)

    async def call(self, name: str, ctx: Context | None, fn: Callable[..., Any],
                   **arguments: Any) -> Any:
        who = caller(ctx)
        shown = {k: v for k, v in arguments.items() if v is not None}
        try:
            result = await anyio.to_thread.run_sync(
                functools.partial(fn, **arguments), limiter=self._one_at_a_time)
        except ToolRefused as exc:
            await self._audit(name, shown, who, ok=False, detail=str(exc))
            raise ToolError(str(exc)) from None
        except Exception as exc:
            await self._audit(name, shown, who, ok=False,
                              detail=f"{type(exc).__name__}: {exc}")
            raise
        await self._audit(name, shown, who, ok=True, detail=_outcome(name, result))
        return result

    async def _audit(self, name: str, arguments: dict[str, Any], who: dict[str, str], *,
                     ok: bool, detail: str) -> AuditEntry:
        service = self.tools.runtime.service
        record = functools.partial(
            service.record, actor=f"user:{self.tools.user}", action=AUDIT_ACTION,
            target=f"mcp-tool:{name}", reason=f"via MCP client {who['name']} {who['version']}"
            .strip(),
            inputs={"tool": name, "arguments": json.loads(json.dumps(arguments, default=str)),
                    "client": who, "transport": self.transport, "proved_by": self.proof},
            outputs={"ok": ok, "detail": detail[:2000]})
        entry: AuditEntry = await anyio.to_thread.run_sync(record,
                                                           limiter=self._one_at_a_time)
        return entry


def _outcome(name: str, result: Any) -> str:
    if name == "propose":
        return f"recommendation:{result['id']} pending, preview {result['preview_hash']}"
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    return "answered"


def build_server(tools: ConsoleTools, *, transport: str, proof: str) -> MCPServer:
    """The MCP server over these tools; nothing else is registered."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own_version = version("watchfloor")
    except PackageNotFoundError:
        own_version = "0"
    audited = AuditedTools(tools, transport=transport, proof=proof)
    server: MCPServer = MCPServer(
        NAME, version=own_version, log_level="WARNING",
        instructions=("Watchfloor's operator console: read incidents, their causes with "
                      "evidence, recommendations with their execution previews, ask "
                      "questions answered with citations, verify the audit log, and "
                      f"propose a runbook run. Every call is audited as {tools.user}. "
                      "Nothing runs from here: a person approves in the console."))

    @server.tool(annotations=READ)
    async def ask(question: str, ctx: Context, incident: int | None = None) -> dict[str, Any]:
        """Ask the console a question in plain language; every fact in the answer is cited
        ([n] into citations, each with a link to its record)."""
        return await audited.call("ask", ctx, tools.ask, question=question,
                                  incident=incident)

    @server.tool(annotations=READ)
    async def incidents(ctx: Context, state: str | None = None,
                        limit: int = 50) -> list[dict[str, Any]]:
        """The newest incidents first; state: open or resolved."""
        return await audited.call("incidents", ctx, tools.incidents, state=state, limit=limit)

    @server.tool(annotations=READ)
    async def incident(incident: int, ctx: Context) -> dict[str, Any]:
        """One incident with its timeline and its causes."""
        return await audited.call("incident", ctx, tools.incident, incident=incident)

    @server.tool(annotations=READ)
    async def causes(incident: int, ctx: Context) -> list[dict[str, Any]]:
        """An incident's causes, each with its state and the evidence of its diagnosis."""
        return await audited.call("causes", ctx, tools.causes, incident=incident)

    @server.tool(annotations=READ)
    async def recommendations(ctx: Context, state: str | None = None,
                              incident: int | None = None) -> list[dict[str, Any]]:
        """Recommendations with their execution previews (what would run, on what) and
        the preview hash a person approves."""
        return await audited.call("recommendations", ctx, tools.recommendations,
                                  state=state, incident=incident)

    @server.tool(annotations=READ)
    async def audit_verify(ctx: Context) -> dict[str, Any]:
        """Check the audit log's hash chain, the signed checkpoints and the rows it
        vouches for."""
        return await audited.call("audit_verify", ctx, tools.audit_verify)

    @server.tool(annotations=PROPOSE)
    async def propose(runbook: str, ctx: Context, params: dict[str, Any] | None = None,
                      explanation: str = "", incident: int | None = None) -> dict[str, Any]:
        """Recommend a runbook run. It is created pending with its preview and runs only
        once a person approves it; this server cannot approve or run anything."""
        return await audited.call("propose", ctx, tools.propose, runbook=runbook,
                                  params=params, explanation=explanation, incident=incident)

    return server

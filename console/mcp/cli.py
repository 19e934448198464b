"""`watchfloor mcp`: the argument parser here, the server only when the command runs
(the window's parser must not load the MCP SDK, tests/test_gui_e2e.py)."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

COMMAND = "mcp"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {text!r}")
    return int(text)


def add_parser(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    from console.cli_identity import add_proof_options

    mcp = sub.add_parser(
        COMMAND, parents=[db_parent],
        help="serve the console's read tools and propose over MCP (nothing executes)",
        description="Serve incidents, causes with evidence, recommendations with their "
                    "previews, questions with citations, audit verification and propose "
                    "to an MCP client, as USER (proved like any headless command: with "
                    "stdio, start a session with `watchfloor login` first). Every call is "
                    "audited with the client's name. Approving and running stay with a "
                    "signed-in person.")
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                     help="stdio (default; the client starts this command) or streamable "
                          "HTTP")
    mcp.add_argument("--host", default="127.0.0.1",
                     help="HTTP only: the address to bind (default 127.0.0.1, loopback; "
                          "the HTTP endpoint has no sign-in of its own)")
    mcp.add_argument("--port", type=_port, default=8765, help="HTTP only (default 8765)")
    mcp.add_argument("--as", dest="as_user", required=True, metavar="USER",
                     help="who every call acts and reads as")
    add_proof_options(mcp)


def run(args: argparse.Namespace) -> int:
    from console.cli_identity import IdentityError, prove
    from console.clock import RealClock
    from console.runtime import Runtime, local_user

    if args.transport == "stdio" and args.password_stdin:
        print("watchfloor: mcp --transport stdio: standard input carries the protocol, not "
              "a password; start a session with `watchfloor login --as USER` first",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.transport == "http" and not _loopback(args.host):
        print(f"watchfloor: mcp: serving on {args.host}, beyond this machine: anyone who "
              f"reaches it acts as {args.as_user}", file=sys.stderr)
    runtime = Runtime(args.db, clock=RealClock())
    try:
        runtime.service.bootstrap_admin(local_user())
        proof = prove(runtime.service, args.as_user, command=COMMAND,
                      password_stdin=args.password_stdin)
        if runtime.service.role_of(args.as_user) is None:
            raise IdentityError(f"{args.as_user!r} is not a known user of this database; "
                                "an admin adds them first (watchfloor user NAME ROLE)")
        return _serve(runtime, args, proof.method)
    finally:
        runtime.close()


def _serve(runtime: Any, args: argparse.Namespace, proof: str) -> int:
    from console.mcp.server import build_server
    from console.mcp.tools import ConsoleTools

    server = build_server(ConsoleTools(runtime, args.as_user), transport=args.transport,
                          proof=proof)
    runtime.service.record(actor=f"user:{args.as_user}", action="mcp.serve",
                           target=f"mcp:{args.transport}",
                           inputs={"transport": args.transport, "proved_by": proof,
                                   **({"host": args.host, "port": args.port}
                                      if args.transport == "http" else {})})
    if args.transport == "stdio":
        server.run("stdio")
    else:
        print(f"watchfloor: MCP on http://{args.host}:{args.port}/mcp as {args.as_user}",
              file=sys.stderr, flush=True)
        server.run("streamable-http", host=args.host, port=args.port)
    return EXIT_OK


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

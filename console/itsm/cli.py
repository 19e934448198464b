"""Headless tickets and credentials: `watchfloor tickets | credentials set | credentials
check`.

`credentials` touches only the OS keyring (never the database): `dispatch` does not use
the runtime for it, so the caller may pass None. A secret is read from standard input
(from a prompt that does not echo when that is a terminal) and is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMANDS = ("tickets", "credentials")
SYSTEMS = ("servicenow", "jira", "pagerduty")


def add_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    tickets = sub.add_parser("tickets", parents=[db_parent],
                             help="list the built-in store's tickets")
    tickets.add_argument("--json", action="store_true", help="one JSON list on stdout")

    creds = sub.add_parser("credentials",
                           help="store or check a ticketing credential in the OS keyring")
    creds_sub = creds.add_subparsers(dest="credentials_command", required=True)
    put = creds_sub.add_parser("set", help="store the secret read from standard input "
                                           "(prompted, not echoed, on a terminal)")
    check = creds_sub.add_parser("check", help="say whether a secret is stored (never "
                                               "prints it); exit 1 when none is")
    for parser in (put, check):
        parser.add_argument("system", choices=SYSTEMS, metavar="SYSTEM",
                            help=f"one of {', '.join(SYSTEMS)}")
        parser.add_argument("--account", required=True, metavar="NAME",
                            help="the keyring entry SYSTEM:NAME (the config's `account`, "
                                 "by default its URL's host)")


def dispatch(args: argparse.Namespace, runtime: Any) -> int:
    from console.itsm.base import TicketError
    from console.itsm.credentials import CredentialError

    try:
        if args.command == "tickets":
            return _tickets(args, runtime)
        return _credentials(args)
    except CredentialError as exc:  # the keyring itself failed us: a failed command
        print(f"watchfloor: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TicketError as exc:
        print(f"watchfloor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _tickets(args: argparse.Namespace, runtime: Any) -> int:
    from console.itsm.store import BuiltinTicketStore

    tickets = BuiltinTicketStore(runtime.service).tickets()
    if args.json:
        print(json.dumps([_ticket_json(t) for t in tickets], indent=2))
        return EXIT_OK
    if not tickets:
        print("no tickets")
    for t in tickets:
        group = f"  -> {t.group}" if t.group else ""
        outcome = "" if t.success is None else ("  (succeeded)" if t.success else "  (failed)")
        print(f"{t.number:9} {t.state:7} {t.severity:8} {t.service or '-':14} "
              f"{t.title}{group}{outcome}")
    return EXIT_OK


def _credentials(args: argparse.Namespace) -> int:
    from console.itsm.credentials import CredentialStore, entry_name

    if not args.account or not args.account.isprintable() or len(args.account) > 200:
        print(f"watchfloor: --account {args.account!r} must be 1-200 printable characters",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    store = CredentialStore()
    name = entry_name(args.system, args.account)
    if args.credentials_command == "check":
        if store.has(args.system, args.account):
            print(f"a credential is stored for {name} in the OS keyring")
            return EXIT_OK
        print(f"no credential stored for {name}; store one with: watchfloor credentials "
              f"set {args.system} --account {args.account}")
        return EXIT_FAILED
    secret = _read_secret(f"secret for {name}: ")
    if not secret:
        print("watchfloor: no secret given on standard input; nothing was stored",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    store.set(args.system, args.account, secret)
    print(f"stored the credential for {name} in the OS keyring ({store.describe()})")
    return EXIT_OK


def _read_secret(prompt: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    data = sys.stdin.read() if sys.stdin is not None else ""
    return data.rstrip("\r\n")  # a trailing newline from `echo` is not part of the secret


def _ticket_json(t: Any) -> dict[str, Any]:
    return {"number": t.number, "kind": t.kind, "title": t.title, "body": t.body,
            "service": t.service, "severity": t.severity, "state": t.state,
            "group": t.group, "notes": [dict(n) for n in t.notes],
            "resolution": t.resolution, "success": t.success,
            "idempotency_key": t.idempotency_key, "created_at": t.created_at.isoformat(),
            "updated_at": t.updated_at.isoformat()}

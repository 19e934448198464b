"""`watchfloor users list|passwd`: the team's people, roles and passwords, headless.

`passwd` is the operation `auth.set_password` (console/auth.py): whoever acts proves it
with their own password first when they have one (the old one, for their own), and an
admin sets anyone's. Passwords are read from the terminal without echo (getpass), or
from stdin with `--password-stdin` (one per line: first the acting user's current one
when they have a password, then the new one), never from the command line, so they do
not land in the shell history or the process list.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, TextIO

COMMAND = "users"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(subparsers: Any, db_parent: argparse.ArgumentParser | None = None) -> None:
    """Add `users` with its actions; `db_parent` gives each the common --db option."""
    parents = [db_parent] if db_parent is not None else []
    users = subparsers.add_parser(COMMAND, help="list the team's users, set passwords",
                                  description="The people who may sign in, their roles "
                                              "and passwords.")
    actions = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=parents,
                                 help="every user, their role and whether a password is set")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    passwd = actions.add_parser(
        "passwd", parents=parents, help="set a user's password (admin, or your own)",
        description="Set NAME's password. An admin sets anyone's; anyone their own. When "
                    "the acting user (--as) has a password, it is asked first (for your "
                    "own, that is the old one). Exit 1 when refused, 2 on bad input.")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--as", dest="as_user", default=None, metavar="USER",
                        help="who sets it (default: the local user, $WATCHFLOOR_USER)")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the passwords from stdin, one per line (the acting "
                             "user's current one first, when they have one), not the TTY")
    if db_parent is None:
        for sub in (listing, passwd):
            sub.add_argument("--db", metavar="URL", help="SQLAlchemy database URL")


def run(args: argparse.Namespace, *, stdin: TextIO | None = None) -> int:
    """Run `watchfloor users ...` from parsed arguments; returns the exit code."""
    from console.bus import EventBus
    from console.clock import RealClock
    from console.runtime import local_user
    from console.service import WatchfloorService
    from console.storage.db import Database, DatabaseUrlError

    try:
        db = Database(getattr(args, "db", None))
    except DatabaseUrlError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    try:
        service = WatchfloorService(db, EventBus(), RealClock())
        service.bootstrap_admin(local_user())  # as every other command does on a new database
        if args.users_command == "list":
            return _list(service, as_json=args.json)
        return _passwd(service, args.name, args.as_user or local_user(),
                       stdin=(stdin or sys.stdin) if args.password_stdin else None)
    finally:
        db.dispose()


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"watchfloor: {message}\n")
    return code


def _list(service: Any, *, as_json: bool) -> int:
    accounts = service.auth.accounts()
    if as_json:
        _out(json.dumps([{"name": a.name, "display_name": a.display_name, "role": a.role,
                           "password": a.has_password,
                           "password_set_at": a.password_set_at.isoformat()
                           if a.password_set_at else None} for a in accounts]))
        return EXIT_OK
    for a in accounts:
        _out(f"{a.name:24} {a.role:9} {'password set' if a.has_password else 'no password'}")
    return EXIT_OK


def _passwd(service: Any, name: str, as_user: str, *, stdin: TextIO | None) -> int:
    from console.auth import AuthError, SignInRefused
    from console.operations import PermissionDenied, Refused

    auth = service.auth
    if stdin is None and not sys.stdin.isatty():
        return _fail("no terminal to ask for the password on: use --password-stdin",
                     EXIT_BAD_INPUT)
    try:
        current = None
        if auth.has_password(as_user):
            current = _secret(stdin, f"Current password of {as_user}: "
                              if as_user == name else f"Password of {as_user}: ")
        new = _secret(stdin, f"New password for {name}: ")
        confirm = new if stdin is not None else _secret(None, "The new password again: ")
        auth.set_password(name, new, as_user=as_user, current_password=current,
                          confirm=confirm)
    except AuthError as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    except SignInRefused as exc:
        return _fail(exc.reason, EXIT_FAILED)
    except PermissionDenied as exc:
        return _fail(f"denied: {exc}", EXIT_FAILED)
    except Refused as exc:
        return _fail(f"refused: {exc.reason}", EXIT_FAILED)
    except EOFError:
        return _fail("no password given", EXIT_BAD_INPUT)
    _out(f"password of {name} set")
    return EXIT_OK


def _secret(stdin: TextIO | None, prompt: str) -> str:
    if stdin is None:
        return getpass.getpass(prompt)
    line = stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")

"""Who runs a headless command: once anyone has a password, the acting user proves it.

A command that changes anything acts as a person (`--as USER`, or the local user), and
the audit log names that person. On a database where nobody has a password (a single
workstation that never opted in) the name is taken as given, as the window's local
account is. Once anyone has a password the name alone proves nothing, so each such
command proves its actor in one of two ways, with the window's throttle and audit
(console/auth.py `Authenticator.sign_in`):

- the password, asked on the terminal without echo, or read as the first line of
  standard input with `--password-stdin` (never from the command line: it would land
  in the shell history and the process list);
- a short-lived session from `watchfloor login`: a random token kept in the OS keyring
  (entry "cli-session:<database>:<user>" of service "watchfloor"), whose SHA-256 and
  expiry the database keeps. The keyring holds the secret, the database only what
  checks it, so neither a copied database nor a copied keyring entry alone is enough
  for a different database. A changed password ends the session; `watchfloor logout`
  ends it at once.

Someone without a password cannot act once anyone has one: there is nothing to prove.

Sessions are rows of the shared settings table (key "cli_session:<token sha256>"):
they are few, short-lived and read by key, and every member of a team must see them.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from console.service import WatchfloorService

KEYRING_SERVICE = "watchfloor"
SESSION_PREFIX = "cli_session:"
DEFAULT_MINUTES, MAX_MINUTES = 15, 12 * 60
MAX_WAIT_S = 30.0  # a throttled attempt is waited out when it is this soon


class IdentityError(Exception):
    """The acting user could not be proved. `code` is the exit code: 1 refused (a wrong
    password, no password to prove, a locked name), 2 bad input (nothing to read a
    password from)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Proof:
    user: str
    method: str  # "password", "session" or "no passwords in use"


def add_proof_options(parser: argparse.ArgumentParser) -> None:
    """`--password-stdin` beside a command's `--as` (the same words everywhere)."""
    parser.add_argument("--password-stdin", action="store_true", dest="password_stdin",
                        help="read the acting user's password as the first line of stdin "
                             "(needed once anyone has a password, unless `watchfloor "
                             "login` started a session or a terminal can ask)")


def add_login_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    login = sub.add_parser(
        "login", parents=[db_parent], help="start a short session for headless commands",
        description="Prove who you are once with your password; for the next MINUTES "
                    "the headless commands you run as that user on this database need no "
                    "password. The session's secret is kept in the OS keyring only.")
    login.add_argument("--as", dest="as_user", default=None, metavar="USER",
                       help="who signs in (default: the local user, $WATCHFLOOR_USER)")
    login.add_argument("--minutes", type=_minutes, default=DEFAULT_MINUTES,
                       help=f"how long the session lasts (default {DEFAULT_MINUTES}, at "
                            f"most {MAX_MINUTES})")
    add_proof_options(login)
    logout = sub.add_parser("logout", parents=[db_parent],
                            help="end your headless session on this database now")
    logout.add_argument("--as", dest="as_user", default=None, metavar="USER")


def _minutes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"minutes must be 1-{MAX_MINUTES}, got {text!r}")
    return int(text)


# --- proving ---------------------------------------------------------------------------


def prove(service: WatchfloorService, user: str, *, command: str,
          password_stdin: bool = False, stdin: TextIO | None = None,
          sleep: Callable[[float], None] = time.sleep) -> Proof:
    """Prove `user` for `command`, or raise IdentityError (every attempt is audited)."""
    auth = service.auth
    if not auth.passwords_in_use():
        return Proof(user, "no passwords in use")
    if not auth.has_password(user):
        auth_audit_refusal(service, user, command, "no password set")
        raise IdentityError(
            f"{user} has no password, and passwords are in use on this database: an "
            "administrator sets one (watchfloor users passwd), then act as yourself")
    if not password_stdin and _session_ok(service, user, command):
        return Proof(user, "session")
    password = read_password(user, password_stdin=password_stdin, stdin=stdin)
    sign_in(service, user, password, purpose=f"cli {command}", sleep=sleep)
    return Proof(user, "password")


def read_password(user: str, *, password_stdin: bool, stdin: TextIO | None = None) -> str:
    if password_stdin:
        line = (stdin or sys.stdin).readline()
        if not line:
            raise IdentityError("--password-stdin: standard input ended before a password",
                                2)
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise IdentityError(
            f"{user}'s password is needed and there is no terminal to ask on: use "
            "--password-stdin, or start a session with `watchfloor login`", 2)
    try:
        return getpass.getpass(f"Password of {user}: ")
    except EOFError:
        raise IdentityError("no password given", 2) from None


def sign_in(service: WatchfloorService, user: str, password: str, *, purpose: str,
            sleep: Callable[[float], None] = time.sleep) -> None:
    """The window's sign-in (throttled, audited). An attempt that came too early is
    waited out once when the wait is short, as nothing else runs in a command."""
    from console.auth import WRONG, SignInRefused

    for attempt in range(2):
        try:
            service.auth.sign_in(user, password, purpose=purpose)
            return
        except SignInRefused as exc:
            early = exc.reason != WRONG
            if attempt or not early or exc.locked or exc.wait_s > MAX_WAIT_S:
                raise IdentityError(exc.reason) from None
            sleep(max(exc.wait_s, 0.0))


def auth_audit_refusal(service: WatchfloorService, user: str, command: str,
                       why: str) -> None:
    from console.auth import this_workstation

    station = this_workstation()
    with service.db.sessions() as session:
        entry = service.audit.append(
            session, actor=f"workstation:{station}", action="auth.cli_refused",
            target=f"user:{user}", reason=why, inputs={"command": command},
            outputs={"workstation": station}, decision="deny", at=service.clock.now())
        session.commit()
    _publish(service, entry)


# --- sessions (`watchfloor login`) -----------------------------------------------------


def keyring_entry(service: WatchfloorService, user: str) -> str:
    database = hashlib.sha256(service.db.url.encode()).hexdigest()[:16]
    return f"cli-session:{database}:{user}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login(service: WatchfloorService, user: str, *, minutes: int, password: str,
          sleep: Callable[[float], None] = time.sleep) -> datetime:
    """Sign `user` in with `password` and keep a session for `minutes`; returns its
    end (UTC). IdentityError when the password is wrong or the keyring cannot keep it."""
    import keyring
    import keyring.errors

    from console.auth import this_workstation
    from console.storage.models import SettingRow, UserRow

    if not service.auth.passwords_in_use():
        raise IdentityError("nobody has a password on this database yet: commands act "
                            "as the name given, no session is needed", 2)
    sign_in(service, user, password, purpose="cli login", sleep=sleep)
    token = secrets.token_urlsafe(32)
    entry = keyring_entry(service, user)
    try:
        keyring.set_password(KEYRING_SERVICE, entry, token)
    except keyring.errors.KeyringError as exc:
        raise IdentityError(f"the OS keyring cannot keep the session ({exc}); use "
                            "--password-stdin on each command instead") from None
    now = datetime.now(UTC)
    ends = now + timedelta(minutes=minutes)
    with service.db.sessions() as session:
        _forget_expired(session, now)
        row = session.get(UserRow, user)
        set_at = row.password_set_at.isoformat() if row and row.password_set_at else None
        session.add(SettingRow(key=SESSION_PREFIX + _digest(token), value={
            "user": user, "expires_at": ends.isoformat(), "password_set_at": set_at,
            "workstation": this_workstation()}))
        audit = service.audit.append(
            session, actor=f"user:{user}", action="auth.cli_login", target=f"user:{user}",
            inputs={"minutes": minutes}, outputs={"expires_at": ends.isoformat(),
                                                  "workstation": this_workstation()},
            decision="allow", at=service.clock.now())
        session.commit()
    _publish(service, audit)
    return ends


def logout(service: WatchfloorService, user: str) -> bool:
    """End `user`'s session on this database (keyring entry and row); False: none."""
    import keyring
    import keyring.errors

    from console.storage.models import SettingRow

    entry = keyring_entry(service, user)
    try:
        token = keyring.get_password(KEYRING_SERVICE, entry)
        if token:
            keyring.delete_password(KEYRING_SERVICE, entry)
    except keyring.errors.KeyringError:
        token = None
    if not token:
        return False
    with service.db.sessions() as session:
        row = session.get(SettingRow, SESSION_PREFIX + _digest(token))
        if row is not None:
            session.delete(row)
        audit = service.audit.append(
            session, actor=f"user:{user}", action="auth.cli_logout", target=f"user:{user}",
            decision="allow", at=service.clock.now())
        session.commit()
    _publish(service, audit)
    return True


def _session_ok(service: WatchfloorService, user: str, command: str) -> bool:
    """A live session of `user` on this database, from the OS keyring (audited use)."""
    import keyring
    import keyring.errors

    from console.auth import this_workstation
    from console.storage.models import SettingRow, UserRow

    try:
        token = keyring.get_password(KEYRING_SERVICE, keyring_entry(service, user))
    except keyring.errors.KeyringError:
        return False  # no keyring here: the password is asked instead
    if not token:
        return False
    now = datetime.now(UTC)
    with service.db.sessions() as session:
        row = session.get(SettingRow, SESSION_PREFIX + _digest(token))
        person = session.get(UserRow, user)
        value = row.value if row is not None and isinstance(row.value, dict) else None
        if value is None or person is None or value.get("user") != user:
            return False
        try:
            ends = datetime.fromisoformat(str(value.get("expires_at")))
        except ValueError:
            return False
        set_at = person.password_set_at.isoformat() if person.password_set_at else None
        if ends.tzinfo is None or ends <= now or value.get("password_set_at") != set_at:
            return False  # over, or the password changed since the login
        audit = service.audit.append(
            session, actor=f"user:{user}", action="auth.sign_in", target=f"user:{user}",
            inputs={"purpose": f"cli {command}"},
            outputs={"method": "session from watchfloor login", "role": person.role,
                     "workstation": this_workstation(), "session_ends": ends.isoformat()},
            decision="allow", at=service.clock.now())
        session.commit()
    _publish(service, audit)
    return True


def _forget_expired(session: Any, now: datetime) -> None:
    from sqlalchemy import select

    from console.storage.models import SettingRow

    for row in session.scalars(select(SettingRow).where(
            SettingRow.key.startswith(SESSION_PREFIX))):
        ends = row.value.get("expires_at") if isinstance(row.value, dict) else None
        try:
            over = ends is None or datetime.fromisoformat(ends) <= now
        except (TypeError, ValueError):
            over = True
        if over:
            session.delete(row)


def _publish(service: WatchfloorService, entry: Any) -> None:
    from console.events import AuditAppended

    service.bus.publish(AuditAppended(entry))


# --- the commands of its own -----------------------------------------------------------


def run_session(args: argparse.Namespace, open_runtime: Callable[[argparse.Namespace], Any]
                ) -> int:
    """`watchfloor login` / `logout` (IdentityError: the CLI prints it with its code)."""
    from console.runtime import local_user

    user = args.as_user or local_user()
    runtime = open_runtime(args)
    try:
        if args.command == "logout":
            ended = logout(runtime.service, user)
            print(f"session of {user} ended" if ended else f"{user} had no session here")
            return 0
        password = read_password(user, password_stdin=args.password_stdin)
        ends = login(runtime.service, user, minutes=args.minutes, password=password)
        print(f"signed in as {user} until {ends:%Y-%m-%d %H:%M} UTC (session kept in the "
              "OS keyring; `watchfloor logout` ends it)")
        return 0
    finally:
        runtime.close()


def database_owner(args: argparse.Namespace) -> str:
    """The administrator who gives `--db` to a headless run (`run --i-own-this-database`),
    proved by their password or session: a database with people on it is theirs to give
    (console/run_guard.py), and only with proof."""
    from console.runtime import Runtime, local_user

    if args.db is None:
        raise IdentityError("--i-own-this-database goes with --db URL (without --db the run "
                            "has a private database of its own)", 2)
    owner = args.as_user or local_user()
    runtime = Runtime(args.db)
    try:
        if not runtime.service.auth.has_password(owner):
            raise IdentityError(f"{owner} has no password on this database: only an "
                                "administrator who proves it gives a database to a run")
        prove(runtime.service, owner, command="run --i-own-this-database",
              password_stdin=args.password_stdin)
    finally:
        runtime.close()
    return owner


# --- which commands act as a person ----------------------------------------------------

ACTING_COMMANDS = frozenset({"propose", "approve", "reject", "rollback", "reconcile",
                             "policy", "ask", "kill-switch", "autonomy", "user", "ingest",
                             "knowledge", "eval", "assess", "maintenance"})


def acting_user(args: argparse.Namespace) -> str | None:
    """The person a command acts as when it changes something (or answers by that
    person's role, as `ask` does); None: it only reads."""
    from console.runtime import local_user

    command = getattr(args, "command", None)
    if command not in ACTING_COMMANDS:
        return None
    if command == "policy" and args.policy_command != "set":
        return None
    if command == "knowledge" and args.knowledge_command != "import":
        return None
    if command == "assess" and getattr(args, "no_record", False):
        return None
    if command == "maintenance" and args.maintenance_command == "list":
        return None
    return getattr(args, "as_user", None) or local_user()


def add_actor_options(parser: argparse.ArgumentParser) -> None:
    """`--as` (default: the local user) and `--password-stdin`, for a command that had
    no `--as` of its own."""
    parser.add_argument("--as", dest="as_user", default=None, metavar="USER",
                        help="who acts (default: the local user, $WATCHFLOOR_USER)")
    add_proof_options(parser)

"""Sign-in: who sits at this console, proved by a password, and what their role offers.

Passwords are kept only as salted scrypt hashes in a self-describing string
(``$scrypt$ln=15,r=8,p=1$SALT$KEY``, PHC style), so the cost can be raised later and old
hashes still verify (and are rehashed at their next sign-in). A password is never
stored, logged or audited; audit records of sign-ins and password changes name who,
where and what happened, nothing typed.

Failed sign-ins are slowed down *without sleeping*. Each name and each workstation has
a throttle row (the name is stored only as a SHA-256, so a password typed into the name
field is not kept): after consecutive failures the next attempt is looked at only from
`not_before` (0.5 s, doubling to 30 s; a name is locked for 5 minutes from its 5th
consecutive failure). `Authenticator.sign_in` refuses an early attempt without looking
at the password and returns at once, raising `SignInRefused` with `retry_at`/`wait_s`:
the caller waits asynchronously (the sign-in dialog with a QTimer, a CLI with
time.sleep, where nothing else runs). The GUI thread never blocks here, and a client
that does not wait gains nothing. The scrypt work itself (~0.1 s) is CPU-bound: GUI
callers run `sign_in` on a worker (widgets/ops.Worker), never on the GUI thread.

An unknown name, a person without a password and a wrong password give the same
message and cost the same (one scrypt derivation against a random hash of the same
parameters), and their throttles grow alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import socket
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from console.domain import AuditEntry
from console.events import AuditAppended, OpChanges, OperationDone
from console.operations import Operation, Refused
from console.storage.models import SettingRow, SignInThrottleRow, UserRow
from console.storage.repos import ROLES, UserRepo, role_rank

if TYPE_CHECKING:
    from console.service import WatchfloorService

# --- what a role offers --------------------------------------------------------------

# The least role each capability needs. The GUI enables its controls from `can`; the
# operations enforce the same roles themselves (tests/test_auth.py checks they agree).
CAPABILITIES: Mapping[str, str] = {
    "approve": "operator",  # policy may still ask for an approver, or a second person
    "reject": "operator",
    "roll_back": "operator",
    "kill_switch": "operator",  # anyone on watch may stop the agents...
    "release_kill_switch": "admin",  # ...only an admin lets them go again
    "set_autonomy": "admin",
    "edit_policy": "admin",
    "edit_settings": "admin",
    "manage_users": "admin",
    "steer": "operator",
    "sign_off_playbook": "approver",
}


def can(role: str | None, capability: str) -> bool:
    """Whether `role` (None: not a known user) is offered `capability`."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r} "
                         f"(known: {', '.join(CAPABILITIES)})")
    if role not in ROLES:
        return False
    return role_rank(role) >= role_rank(CAPABILITIES[capability])


# --- hashing -------------------------------------------------------------------------

MIN_PASSWORD, MAX_PASSWORD = 8, 1024
SALT_BYTES, KEY_BYTES = 16, 32


@dataclass(frozen=True, slots=True, order=True)
class ScryptParams:
    ln: int = 15  # n = 2**15: 32 MiB of memory, about 0.1 s per derivation
    r: int = 8
    p: int = 1

    def check(self) -> ScryptParams:
        # Bounds, so a hash string written into the database cannot ask for a day of CPU.
        if not (10 <= self.ln <= 22 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt parameters out of bounds: {self}")
        return self


DEFAULT_PARAMS = ScryptParams()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    n = 1 << params.ln
    return hashlib.scrypt(unicodedata.normalize("NFC", password).encode("utf-8"), salt=salt,
                          n=n, r=params.r, p=params.p, dklen=KEY_BYTES,
                          maxmem=256 * params.r * (n + params.p) + (1 << 20))


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """A new salted hash of `password`, with its parameters, as one string."""
    params.check()
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, params)
    return f"$scrypt$ln={params.ln},r={params.r},p={params.p}${_b64(salt)}${_b64(key)}"


def parse_hash(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    """(parameters, salt, key) of a stored hash; ValueError when it is not one."""
    try:
        empty, scheme, fields, salt, key = encoded.split("$")
        values = dict(part.split("=", 1) for part in fields.split(","))
        params = ScryptParams(int(values["ln"]), int(values["r"]), int(values["p"]))
        raw_salt, raw_key = _unb64(salt), _unb64(key)
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a scrypt password hash") from None
    if empty or scheme != "scrypt" or set(values) != {"ln", "r", "p"} or not raw_key:
        raise ValueError("not a scrypt password hash")
    return params.check(), raw_salt, raw_key


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (a constant-time comparison)."""
    try:
        params, salt, key = parse_hash(encoded)
    except ValueError:
        return False
    return hmac.compare_digest(_derive(password, salt, params), key)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True when `encoded` was made with weaker parameters than `params`."""
    try:
        stored = parse_hash(encoded)[0]
    except ValueError:
        return True
    return (stored.ln, stored.r, stored.p) < (params.ln, params.r, params.p)


def _decoy(params: ScryptParams) -> str:
    """A hash nothing matches, costing what a real one costs: checked for unknown names."""
    return (f"$scrypt$ln={params.ln},r={params.r},p={params.p}$"
            f"{_b64(secrets.token_bytes(SALT_BYTES))}${_b64(secrets.token_bytes(KEY_BYTES))}")


class AuthError(ValueError):
    """Bad input to a sign-in step (passwords that differ, too short...): say it, fix it."""


def check_new_password(password: str, confirm: str | None = None) -> None:
    if confirm is not None and not hmac.compare_digest(password.encode(), confirm.encode()):
        raise AuthError("the two passwords differ")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AuthError(f"a password has at most {MAX_PASSWORD} characters")
    if password != password.strip():
        raise AuthError("a password may not start or end with a space")


# --- throttling ----------------------------------------------------------------------

FIRST_DELAY_S, MAX_DELAY_S = 0.5, 30.0
LOCKOUT_AFTER, LOCKOUT_S = 5, 300.0
FORGET_AFTER_S = 3600.0  # an hour without failures and the count starts again
WRONG = "Unknown user or wrong password."


def delay_after(failures: int) -> float:
    """The wait after `failures` consecutive failures (of a name or a workstation)."""
    return 0.0 if failures <= 0 else min(FIRST_DELAY_S * 2 ** (failures - 1), MAX_DELAY_S)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class SignInRefused(Exception):
    """A sign-in that did not succeed (already audited). `retry_at` (UTC) is when the next
    attempt of this name here will be looked at; `wait_s` the seconds until then."""

    def __init__(self, message: str, *, retry_at: datetime | None = None,
                 wait_s: float = 0.0, locked: bool = False) -> None:
        super().__init__(message)
        self.reason = message
        self.retry_at, self.wait_s, self.locked = retry_at, wait_s, locked


@dataclass(frozen=True, slots=True)
class SignedIn:
    name: str
    role: str
    display_name: str
    workstation: str


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    display_name: str
    role: str
    has_password: bool
    password_set_at: datetime | None


def this_workstation() -> str:
    return (os.environ.get("WATCHFLOOR_WORKSTATION") or socket.gethostname() or "local")[:100]


class Authenticator:
    """Sign-in, first-run and passwords over the service's database, audit log and bus.

    `now` is wall-clock time for the throttle (the console's clock may be simulated and
    fast); audit records carry the service clock's time like every other record.
    """

    def __init__(self, service: WatchfloorService, *,
                 now: Callable[[], datetime] | None = None, workstation: str | None = None,
                 params: ScryptParams = DEFAULT_PARAMS) -> None:
        self.service = service
        self.now = now or (lambda: datetime.now(UTC))
        self.workstation = workstation or this_workstation()
        self.params = params.check()
        self._users = UserRepo()

    # --- reading --------------------------------------------------------------------

    def passwords_in_use(self) -> bool:
        """Whether anyone has a password (no: a single workstation that never opted in)."""
        with self.service.db.sessions() as session:
            return self._any_password(session)

    def has_password(self, name: str) -> bool:
        with self.service.db.sessions() as session:
            row = session.get(UserRow, name)
            return row is not None and row.password_hash is not None

    def accounts(self) -> list[Account]:
        with self.service.db.sessions() as session:
            return [Account(r.name, r.display_name, r.role, r.password_hash is not None,
                            r.password_set_at)
                    for r in session.scalars(select(UserRow).order_by(UserRow.name))]

    @staticmethod
    def _any_password(session: Session) -> bool:
        return session.scalar(select(UserRow.name).where(UserRow.password_hash.is_not(None))
                              .limit(1)) is not None

    # --- sign-in --------------------------------------------------------------------

    def sign_in(self, name: str, password: str, *, workstation: str | None = None,
                purpose: str = "console") -> SignedIn:
        """The person `name`, when `password` is theirs; else `SignInRefused` (audited,
        throttled: see the module docstring). Never sleeps."""
        name, station = name.strip(), (workstation or self.workstation)[:100]
        now = self.now()
        with self.service.db.sessions() as session:
            waits = self._waits(session, name, station, now)
            row = session.get(UserRow, name) if name else None
            stored = row.password_hash if row is not None else None
            known = row is not None
        if waits is not None:
            retry_at, locked = waits
            self._audit_failure(name if known else "", station, purpose, "throttled",
                                retry_at, locked)
            raise SignInRefused(self._wait_message(retry_at, locked, now), retry_at=retry_at,
                                wait_s=(retry_at - now).total_seconds(), locked=locked)
        ok = verify_password(password, stored or _decoy(self._params_of(stored))) \
            and stored is not None
        if not ok:
            retry_at, locked = self._count_failure(name, station, now)
            self._audit_failure(name if known else "", station, purpose,
                                "wrong password" if stored else
                                "no password set" if known else "unknown user",
                                retry_at, locked)
            raise SignInRefused(WRONG, retry_at=retry_at,
                                wait_s=(retry_at - now).total_seconds(), locked=locked)
        assert stored is not None
        rehash = hash_password(password, self.params) if needs_rehash(stored, self.params) \
            else None
        return self._succeed(name, station, purpose, rehash)

    def sign_in_trusted(self, name: str, *, workstation: str | None = None) -> SignedIn | None:
        """The local account without a password, as consoles always signed in, but only
        on a database where nobody has a password (a single workstation that has not
        opted in: whoever sits there could set the account anyway). Audited as such.
        None once anyone has a password: then everyone signs in with theirs."""
        station = (workstation or self.workstation)[:100]
        with self.service.db.sessions() as session:
            if self._any_password(session):
                return None
            row = session.get(UserRow, name)
            role = row.role if row is not None else None
            entry = self.service.audit.append(
                session, actor=f"user:{name}", action="auth.sign_in", target=f"user:{name}",
                inputs={"purpose": "console"},
                outputs={"method": "local account; no passwords set", "role": role,
                         "workstation": station},
                decision="allow", at=self.service.clock.now())
            session.commit()
        self._publish(entry)
        return SignedIn(name, role or "", row.display_name if row is not None else name,
                        station)

    def _params_of(self, stored: str | None) -> ScryptParams:
        try:
            return parse_hash(stored)[0] if stored else self.params
        except ValueError:
            return self.params

    def _waits(self, session: Session, name: str, station: str,
               now: datetime) -> tuple[datetime, bool] | None:
        """(not before, locked) when this name or this workstation must wait still."""
        active = []
        for scope, key in (("user", _key(name)), ("workstation", _key(station))):
            row = session.get(SignInThrottleRow, (scope, key))
            if row is not None and row.not_before is not None and row.not_before > now:
                active.append((row.not_before, scope == "user" and row.failures >= LOCKOUT_AFTER))
        if not active:
            return None
        return max(when for when, _locked in active), any(locked for _when, locked in active)

    def _count_failure(self, name: str, station: str, now: datetime) -> tuple[datetime, bool]:
        for attempt in range(2):  # a first failure of a name may race another console's
            try:
                with self.service.db.sessions() as session:
                    retry_at, locked = now, False
                    for scope, key in (("user", _key(name)), ("workstation", _key(station))):
                        row = session.get(SignInThrottleRow, (scope, key))
                        if row is None:
                            row = SignInThrottleRow(scope=scope, key=key, failures=0)
                            session.add(row)
                        stale = row.last_failed_at is None or \
                            (now - row.last_failed_at).total_seconds() > FORGET_AFTER_S
                        row.failures = 1 if stale else row.failures + 1
                        row.last_failed_at = now
                        lock = scope == "user" and row.failures >= LOCKOUT_AFTER
                        wait = LOCKOUT_S if lock else delay_after(row.failures)
                        row.not_before = now + timedelta(seconds=wait)
                        if row.not_before > retry_at:
                            retry_at = row.not_before
                        locked = locked or lock
                    session.commit()
                return retry_at, locked
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _succeed(self, name: str, station: str, purpose: str,
                 rehash: str | None) -> SignedIn:
        with self.service.db.sessions() as session:
            row = session.get(UserRow, name)
            if row is None:  # removed between the check and now
                raise SignInRefused(WRONG)
            for scope, key in (("user", _key(name)), ("workstation", _key(station))):
                throttle = session.get(SignInThrottleRow, (scope, key))
                if throttle is not None:
                    session.delete(throttle)
            if rehash is not None:
                row.password_hash = rehash
            signed = SignedIn(row.name, row.role, row.display_name, station)
            entry = self.service.audit.append(
                session, actor=f"user:{name}", action="auth.sign_in", target=f"user:{name}",
                inputs={"purpose": purpose},
                outputs={"role": row.role, "workstation": station,
                         "rehashed": rehash is not None},
                decision="allow", at=self.service.clock.now())
            session.commit()
        self._publish(entry)
        return signed

    def _audit_failure(self, known_name: str, station: str, purpose: str, why: str,
                       retry_at: datetime, locked: bool) -> None:
        # An unknown name is not written down: it may be a password typed in the wrong box.
        with self.service.db.sessions() as session:
            entry = self.service.audit.append(
                session, actor=f"workstation:{station}", action="auth.sign_in_failed",
                target=f"user:{known_name}" if known_name else "user:?",
                reason=why, inputs={"purpose": purpose},
                outputs={"workstation": station, "known_user": bool(known_name),
                         "retry_at": retry_at.isoformat(), "locked": locked},
                decision="deny", at=self.service.clock.now())
            session.commit()
        self._publish(entry)

    @staticmethod
    def _wait_message(retry_at: datetime, locked: bool, now: datetime) -> str:
        if locked:
            return ("Too many failed sign-ins: this name is paused until "
                    f"{retry_at:%H:%M:%S} UTC.")
        seconds = max(1, round((retry_at - now).total_seconds() + 0.49))
        return f"Too many failed sign-ins: try again in {seconds} s."

    # --- first run ------------------------------------------------------------------

    def create_first_admin(self, name: str, password: str, confirm: str, *,
                           workstation: str | None = None) -> SignedIn:
        """On a database where nobody has a password yet, make `name` its first
        administrator with this password, and sign them in (both audited). `name` is new
        or already an admin; once anyone has a password this is refused."""
        name, station = name.strip(), (workstation or self.workstation)[:100]
        if not name or len(name) > 200 or not name.isprintable():
            raise AuthError("a user name is 1-200 printable characters")
        check_new_password(password, confirm)
        encoded = hash_password(password, self.params)
        now = self.service.clock.now()
        try:
            with self.service.db.sessions() as session:
                if self._any_password(session):
                    raise AuthError("an administrator has been set up already: sign in")
                row = session.get(UserRow, name)
                if row is not None and row.role != "admin":
                    raise AuthError(f"{name} is a {row.role}; the first administrator is a "
                                    "new name or an existing admin")
                if row is None:
                    self._users.add(session, name, "admin")
                    session.flush()
                    row = session.get(UserRow, name)
                    assert row is not None
                row.password_hash, row.password_set_at = encoded, datetime.now(UTC)
                # Two consoles racing through first run: the second one's insert fails.
                session.add(SettingRow(key="auth.first_admin", value=name))
                entry = self.service.audit.append(
                    session, actor=f"user:{name}", action="auth.first_admin",
                    target=f"user:{name}", reason="first password of this database",
                    outputs={"role": "admin", "workstation": station}, decision="allow",
                    at=now)
                session.commit()
        except IntegrityError:
            raise AuthError("another console set up the administrator just now: "
                            "sign in") from None
        self._publish(entry)
        self.service.bus.publish(OperationDone("auth.first_admin",
                                               OpChanges(users=True, ids=(name,)), name, {}))
        return self._succeed(name, station, "first run", None)

    # --- passwords ------------------------------------------------------------------

    def set_password(self, name: str, new_password: str, *, as_user: str,
                     current_password: str | None = None, confirm: str | None = None,
                     workstation: str | None = None) -> None:
        """Set `name`'s password, as the operation `auth.set_password` (audited without
        any password). An admin sets anyone's, anyone their own. Whoever has a password
        proves it first (`current_password`: the old one when it is their own); once
        anyone has a password, someone without one changes nothing. The first password
        of a database is an admin's, so an admin can always sign in."""
        check_new_password(new_password, confirm)
        actor_has = self.has_password(as_user)
        if actor_has:
            if not current_password:
                raise AuthError(f"{as_user}'s current password is needed")
            self.sign_in(as_user, current_password, workstation=workstation,
                         purpose="set_password")
        encoded = hash_password(new_password, self.params)

        def apply(session: Session) -> tuple[OpChanges, Mapping[str, Any]]:
            row = session.get(UserRow, name)
            if row is None:
                raise Refused(f"no user {name!r}; an admin adds them first")
            anyone = self._any_password(session)
            if not actor_has and anyone:
                raise Refused(f"{as_user} has no password: an administrator who signs in "
                              "sets it")
            if not anyone and row.role != "admin":
                raise Refused("the first password of this database is an administrator's")
            row.password_hash, row.password_set_at = encoded, datetime.now(UTC)
            return (OpChanges(users=True, ids=(name,)),
                    {"password": "set", "own": as_user == name})

        needed = "viewer" if as_user == name else CAPABILITIES["manage_users"]
        self.service.runner.run(Operation("auth.set_password", f"user:{name}", needed, apply,
                                          inputs={"user": name}), as_user)

    def _publish(self, entry: AuditEntry) -> None:
        self.service.bus.publish(AuditAppended(entry))

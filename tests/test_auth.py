"""Sign-in over a real temporary database: salted scrypt hashes with their parameters,
one answer for every failure, failures slowed down per name and per workstation (the
core returns the wait, never sleeps), audit records without passwords, the first
administrator, and the roles the operations enforce matching what the console offers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console import auth as auth_module
from console.auth import (
    CAPABILITIES,
    LOCKOUT_AFTER,
    LOCKOUT_S,
    WRONG,
    Authenticator,
    AuthError,
    ScryptParams,
    SignInRefused,
    can,
    delay_after,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)
from console.bus import EventBus
from console.clock import SimClock
from console.operations import PermissionDenied, Refused
from console.service import WatchfloorService
from console.storage.db import Database, alembic_config, current_revision, head_revision
from console.storage.repos import ROLES

FAST = ScryptParams(ln=10, r=8, p=1)  # the tests' hashes: the format is the same, cheaper
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-22", "carol": "carol-pass-333"}


class WallClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class World:
    service: WatchfloorService
    auth: Authenticator
    wall: WallClock

    def audit(self, action: str | None = None) -> list[Any]:
        return [e for e in self.service.audit_entries() if action in (None, e.action)]

    def other_station(self, name: str) -> Authenticator:
        return Authenticator(self.service, now=self.wall, workstation=name, params=FAST)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    db = Database(db_url)
    service = WatchfloorService(db, EventBus(), SimClock(datetime(2026, 3, 1, tzinfo=UTC)))
    wall = WallClock()
    service._auth = auth = Authenticator(service, now=wall, workstation="console-1",
                                         params=FAST)
    service.bootstrap_admin("alice")
    for name, role in (("bob", "operator"), ("carol", "approver"), ("victor", "viewer")):
        service.add_user(name, role, as_user="alice")
    yield World(service, auth, wall)
    db.dispose()


def with_passwords(world: World, *names: str) -> None:
    world.auth.create_first_admin("alice", PASSWORDS["alice"], PASSWORDS["alice"])
    for name in names:
        world.auth.set_password(name, PASSWORDS[name], as_user="alice",
                                current_password=PASSWORDS["alice"])


def refused(call: Callable[[], Any]) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        call()
    return caught.value


# --- hashing -------------------------------------------------------------------------


def test_a_hash_is_salted_scrypt_with_its_parameters() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$scrypt$ln=15,r=8,p=1$")
    assert first != second  # a fresh salt each time
    params, salt, key = parse_hash(first)
    assert params == ScryptParams(15, 8, 1)
    assert (len(salt), len(key)) == (16, 32)
    assert "correct horse" not in first
    assert verify_password("correct horse", first)
    assert not verify_password("correct horsE", first)
    assert not verify_password("correct horse", first[:-2] + "AA")  # another key
    assert not verify_password("x", "plain text")
    assert not verify_password("x", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA")  # refused, not run


def test_parameters_can_be_raised_later() -> None:
    weak = hash_password("correct horse", FAST)
    assert verify_password("correct horse", weak)  # old hashes keep working
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("correct horse"))


def test_an_old_hash_is_raised_at_the_next_sign_in(world: World) -> None:
    with_passwords(world, "bob")
    stronger = Authenticator(world.service, now=world.wall, params=ScryptParams(ln=11))
    stronger.sign_in("bob", PASSWORDS["bob"])
    from console.storage.models import UserRow

    with world.service.db.sessions() as session:
        stored = session.get(UserRow, "bob").password_hash  # type: ignore[union-attr]
    assert stored.startswith("$scrypt$ln=11,")
    assert world.audit("auth.sign_in")[-1].outputs["rehashed"] is True


# --- signing in ----------------------------------------------------------------------


def test_the_right_password_signs_in_with_the_role(world: World) -> None:
    with_passwords(world, "carol")
    who = world.auth.sign_in("carol", PASSWORDS["carol"])
    assert (who.name, who.role, who.workstation) == ("carol", "approver", "console-1")
    last = world.audit("auth.sign_in")[-1]
    assert (last.actor, last.target, last.decision) == ("user:carol", "user:carol", "allow")
    assert last.outputs["role"] == "approver"


def test_unknown_user_no_password_and_wrong_password_look_the_same(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with_passwords(world, "bob")
    derived: list[tuple[int, int, int]] = []
    real = auth_module._derive

    def counting(password: str, salt: bytes, params: ScryptParams) -> bytes:
        derived.append((params.ln, params.r, params.p))
        return real(password, salt, params)

    monkeypatch.setattr(auth_module, "_derive", counting)
    answers = []
    for name in ("bob", "nobody", "victor"):  # wrong password, unknown, no password set
        answer = refused(lambda n=name: world.auth.sign_in(n, "guess-guess"))
        answers.append((answer.reason, answer.wait_s, answer.locked))
        world.auth = world.other_station(f"station-{name}")  # each a first failure
    assert answers == [(WRONG, 0.5, False)] * 3
    assert derived == [(10, 8, 1)] * 3  # the same work each time: one derivation alike


def test_failures_are_slowed_down_then_the_name_is_locked(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with_passwords(world, "bob")
    waits = []
    for _ in range(LOCKOUT_AFTER - 1):
        answer = refused(lambda: world.auth.sign_in("bob", "wrong-wrong"))
        waits.append(answer.wait_s)
        assert answer.retry_at == world.wall.at + timedelta(seconds=answer.wait_s)
        world.wall.advance(answer.wait_s)
    assert waits == [0.5, 1.0, 2.0, 4.0]
    locked = refused(lambda: world.auth.sign_in("bob", "wrong-wrong"))
    assert locked.locked
    assert locked.wait_s == LOCKOUT_S
    # While it waits not even the right password is looked at: nothing is derived.
    monkeypatch.setattr(auth_module, "_derive", lambda *a: pytest.fail("password checked"))
    world.wall.advance(LOCKOUT_S - 1)
    early = refused(lambda: world.auth.sign_in("bob", PASSWORDS["bob"]))
    assert early.locked
    assert "paused until" in early.reason
    monkeypatch.undo()
    world.wall.advance(1)
    assert world.auth.sign_in("bob", PASSWORDS["bob"]).role == "operator"
    # A success clears the count: the next failure waits the first delay again.
    assert refused(lambda: world.auth.sign_in("bob", "wrong-wrong")).wait_s == 0.5
    throttled = [e for e in world.audit("auth.sign_in_failed") if e.reason == "throttled"]
    assert len(throttled) == 1


def test_a_workstation_that_tries_many_names_is_slowed_down_too(world: World) -> None:
    with_passwords(world, "bob", "carol")
    waits = []
    for name in ("bob", "carol", "nobody", "someone"):
        answer = refused(lambda n=name: world.auth.sign_in(n, "wrong-wrong"))
        waits.append(answer.wait_s)
        world.wall.advance(answer.wait_s)
    assert waits == [delay_after(n) for n in range(1, 5)]  # grows across names
    # Another console is not held up by this one's failures of other names.
    assert world.other_station("console-2").sign_in("alice", PASSWORDS["alice"]).role == \
        "admin"


def test_the_delay_is_capped_and_forgotten_after_a_quiet_hour(world: World) -> None:
    assert [delay_after(n) for n in range(0, 4)] == [0.0, 0.5, 1.0, 2.0]
    assert delay_after(50) == 30.0
    with_passwords(world, "bob")
    for _ in range(3):
        world.wall.advance(refused(lambda: world.auth.sign_in("bob", "wrong-wrong")).wait_s)
    world.wall.advance(3601)
    assert refused(lambda: world.auth.sign_in("bob", "wrong-wrong")).wait_s == 0.5


def test_audit_records_never_hold_a_password_nor_an_unknown_name(world: World) -> None:
    with_passwords(world, "bob")
    world.auth.sign_in("bob", PASSWORDS["bob"])
    refused(lambda: world.auth.sign_in("bob", "typo-typo-typo"))
    world.wall.advance(60)
    refused(lambda: world.auth.sign_in("hunter2-typed-as-name", "whatever-x"))
    world.wall.advance(60)
    world.auth.set_password("bob", "bob-new-pass", as_user="bob",
                            current_password=PASSWORDS["bob"])
    records = world.audit()
    text = json.dumps([[e.actor, e.action, e.target, e.reason, e.inputs, e.outputs]
                       for e in records])
    for secret in (*PASSWORDS.values(), "typo-typo-typo", "whatever-x", "bob-new-pass",
                   "hunter2-typed-as-name", "$scrypt$"):
        assert secret not in text
    failed = world.audit("auth.sign_in_failed")
    assert [(e.target, e.reason, e.outputs["known_user"]) for e in failed] == [
        ("user:bob", "wrong password", True), ("user:?", "unknown user", False)]
    assert all(e.actor == "workstation:console-1" and e.decision == "deny" for e in failed)
    changed = world.audit("auth.set_password")[-1]
    assert (changed.actor, changed.target, changed.decision) == ("user:bob", "user:bob",
                                                                 "allow")
    assert world.service.verify_audit().ok


# --- first run -----------------------------------------------------------------------


def test_first_run_makes_the_first_administrator(world: World) -> None:
    assert not world.auth.passwords_in_use()
    with pytest.raises(AuthError, match="differ"):
        world.auth.create_first_admin("root", "long-enough-1", "long-enough-2")
    with pytest.raises(AuthError, match="at least 8"):
        world.auth.create_first_admin("root", "short", "short")
    with pytest.raises(AuthError, match="victor is a viewer"):
        world.auth.create_first_admin("victor", "long-enough-1", "long-enough-1")
    who = world.auth.create_first_admin("root", "long-enough-1", "long-enough-1")
    assert (who.name, who.role) == ("root", "admin")
    assert world.service.role_of("root") == "admin"
    assert world.auth.passwords_in_use()
    assert [e.action for e in world.audit()[-2:]] == ["auth.first_admin", "auth.sign_in"]
    with pytest.raises(AuthError, match="set up already"):
        world.auth.create_first_admin("mallory", "long-enough-1", "long-enough-1")
    assert world.service.role_of("mallory") is None
    assert world.auth.sign_in("root", "long-enough-1").role == "admin"


def test_the_local_account_signs_in_without_a_password_only_until_passwords_exist(
        world: World) -> None:
    trusted = world.auth.sign_in_trusted("alice")
    assert trusted is not None
    assert trusted.role == "admin"
    assert world.audit("auth.sign_in")[-1].outputs["method"].startswith("local account")
    with_passwords(world)
    assert world.auth.sign_in_trusted("alice") is None
    assert world.auth.sign_in_trusted("bob") is None  # bob has no password, alice has one


# --- passwords -----------------------------------------------------------------------


def test_who_may_set_a_password(world: World) -> None:
    # The first password of a database is an administrator's, so one can always sign in.
    with pytest.raises(Refused, match="administrator's"):
        world.auth.set_password("victor", "victor-pass-1", as_user="victor")
    with_passwords(world, "bob")
    # An admin sets anyone's, after proving who they are.
    with pytest.raises(AuthError, match="current password"):
        world.auth.set_password("carol", PASSWORDS["carol"], as_user="alice")
    world.auth.set_password("carol", PASSWORDS["carol"], as_user="alice",
                            current_password=PASSWORDS["alice"])
    assert world.auth.sign_in("carol", PASSWORDS["carol"]).name == "carol"
    # Anyone their own, with the old one.
    refused(lambda: world.auth.set_password("bob", "bob-next-pass", as_user="bob",
                                            current_password="not-the-old-one"))
    world.wall.advance(5)
    world.auth.set_password("bob", "bob-next-pass", as_user="bob",
                            current_password=PASSWORDS["bob"])
    assert world.auth.sign_in("bob", "bob-next-pass").name == "bob"
    # Nobody else's without managing users.
    with pytest.raises(PermissionDenied, match="needs role admin"):
        world.auth.set_password("carol", "carol-next-pass", as_user="bob",
                                current_password="bob-next-pass")
    # Once passwords are in use, someone without one cannot set any (not even their own).
    with pytest.raises(Refused, match="victor has no password"):
        world.auth.set_password("victor", "victor-pass-1", as_user="victor")
    denied = [e for e in world.audit("auth.set_password") if e.decision == "deny"]
    assert len(denied) == 3


def test_the_last_admin_who_can_sign_in_stays_an_admin(world: World) -> None:
    with pytest.raises(Refused, match="last admin"):
        world.service.add_user("alice", "operator", as_user="alice")
    world.service.add_user("bob", "admin", as_user="alice")
    with_passwords(world)  # alice has a password now, bob none: bob cannot sign in
    with pytest.raises(Refused, match="last admin"):
        world.service.add_user("alice", "operator", as_user="alice")
    world.auth.set_password("bob", PASSWORDS["bob"], as_user="alice",
                            current_password=PASSWORDS["alice"])
    world.service.add_user("alice", "operator", as_user="bob")
    assert world.service.role_of("alice") == "operator"


# --- roles ---------------------------------------------------------------------------


def test_can_follows_the_roles() -> None:
    assert not can("viewer", "approve")
    assert can("operator", "approve")
    assert can("operator", "kill_switch")
    assert not can("operator", "release_kill_switch")
    assert not can("approver", "edit_policy")
    assert can("admin", "manage_users")
    assert not can(None, "approve")
    assert not can("root", "approve")
    with pytest.raises(ValueError, match="unknown capability"):
        can("admin", "fly")


def _attempts(tmp_path: Path) -> dict[str, Callable[[WatchfloorService, str], Any]]:
    """Each capability as the operation that enforces it (on ids that need not exist:
    the role is checked before anything is looked up)."""
    from console.settings_store import SettingsStore
    from console.steering import SteeringOps

    return {
        "approve": lambda s, u: s.engine.approve(999, as_user=u, preview_hash="x"),
        "reject": lambda s, u: s.engine.reject(999, as_user=u, reason="no"),
        "roll_back": lambda s, u: s.engine.rollback(999, as_user=u),
        "kill_switch": lambda s, u: s.set_kill_switch(True, as_user=u),
        "release_kill_switch": lambda s, u: s.set_kill_switch(False, as_user=u),
        "set_autonomy": lambda s, u: s.set_autonomy_ceiling(2, as_user=u),
        "edit_policy": lambda s, u: s.set_policy(s.policy(), as_user=u),
        "edit_settings": lambda s, u: SettingsStore(tmp_path / "s.yaml").save(
            SettingsStore(tmp_path / "s.yaml").load(), service=s, as_user=u),
        "manage_users": lambda s, u: s.add_user("zed", "viewer", as_user=u),
        "steer": lambda s, u: SteeringOps(s).exclude_service(999, "cart", as_user=u),
        "sign_off_playbook": lambda s, u: _sign_off(s, u),
    }


def _sign_off(service: WatchfloorService, user: str) -> Any:
    from agents.playbooks import PlaybookAgent

    return PlaybookAgent(service).sign_off(999, user)


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_the_operations_enforce_what_the_console_offers(world: World, tmp_path: Path,
                                                        capability: str) -> None:
    attempt = _attempts(tmp_path)[capability]
    people = {"viewer": "victor", "operator": "bob", "approver": "carol", "admin": "alice"}
    for role in ROLES:
        if can(role, capability):
            try:
                attempt(world.service, people[role])
            except PermissionDenied as exc:  # pragma: no cover - the failure's message
                pytest.fail(f"{role} is offered {capability} but denied: {exc}")
            except Exception:  # no such id, nothing to do: past the role check
                pass
        else:
            with pytest.raises(PermissionDenied):
                attempt(world.service, people[role])


def test_every_capability_is_tried() -> None:
    assert set(_attempts(Path("."))) == set(CAPABILITIES)


# --- schema --------------------------------------------------------------------------


def test_the_migration_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    db = Database(db_url)
    try:
        assert "sign_in_throttle" in inspect(db.engine).get_table_names()
        cfg = alembic_config(db.engine)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0009")
        assert current_revision(db.engine) == "0009"
        assert "password_hash" not in {c["name"] for c in inspect(db.engine)
                                       .get_columns("users")}
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert current_revision(db.engine) == head_revision()
        assert "password_hash" in {c["name"] for c in inspect(db.engine).get_columns("users")}
    finally:
        db.dispose()


# --- the command ---------------------------------------------------------------------


def _users_cli(argv: list[str], stdin: str | None = None) -> int:
    import argparse
    import io

    from console import users_cli

    parser = argparse.ArgumentParser(prog="watchfloor")
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db")
    users_cli.add_parser(parser.add_subparsers(dest="command"), db_parent)
    args = parser.parse_args(argv)
    return users_cli.run(args, stdin=io.StringIO(stdin) if stdin is not None else None)


def test_users_passwd_and_list(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    passwd = ["users", "passwd", "--password-stdin", "--db", db_url]
    assert _users_cli(["users", "list", "--db", db_url]) == 0
    assert capsys.readouterr().out.split() == ["alice", "admin", "no", "password"]
    # No password anywhere yet: the local admin sets their own first one.
    assert _users_cli([*passwd[:2], "alice", *passwd[2:]], "alice-pass-1\n") == 0
    # From now on whoever acts proves it first: the old one, then the new one.
    assert _users_cli([*passwd[:2], "alice", *passwd[2:]], "alice-pass-1\nshort\n") == 2
    assert "at least 8" in capsys.readouterr().err
    assert _users_cli([*passwd[:2], "alice", *passwd[2:]], "wrong-one-1\nalice-pass-2\n") == 1
    assert WRONG in capsys.readouterr().err
    time.sleep(0.6)  # the first failure's wait (the command does not wait: it says so)
    assert _users_cli([*passwd[:2], "nobody", "--as", "alice", *passwd[2:]],
                      "alice-pass-1\nnew-pass-123\n") == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert _users_cli(["users", "list", "--json", "--db", db_url]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"], u["password"]) for u in listed] == [("alice", "admin", True)]
    assert "alice-pass" not in json.dumps(listed)

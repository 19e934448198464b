"""Headless commands act only as a person who proved it (once anyone has a password),
and a headless scenario run never acts on a team's database in their names."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import keyring.backends.SecretService
import pytest

from console.auth import Authenticator, ScryptParams
from console.cli import main
from console.clock import RealClock
from console.runtime import Runtime
from tests.itsm_keyring import SecretService, start_secret_service

ADMIN_PW = "adm1-long-password"
FAST = ScryptParams(ln=10, r=8, p=1)  # the stored hash names its cost: sign-in reads it


class Db:
    """A team's database: admin adm1 with a password, viewer vic, pending work of bob."""

    def __init__(self, url: str) -> None:
        self.url = url
        rt = self.open()
        try:
            service = rt.service
            service.bootstrap_admin("alice")  # the local user, no password (conftest)
            Authenticator(service, params=FAST).create_first_admin("adm1", ADMIN_PW,
                                                                   ADMIN_PW)
            service.add_user("vic", "viewer", as_user="adm1")
            service.add_user("bob", "operator", as_user="adm1")
            self.pending = rt.service.engine.propose(
                "restart-service", {"service": "cart"}, requester="user:bob",
                explanation="bob thinks cart is stuck")
        finally:
            rt.close()

    def open(self) -> Runtime:
        return Runtime(self.url, clock=RealClock())

    def state(self) -> dict[str, Any]:
        rt = self.open()
        try:
            s = rt.service
            return {"policy": s.policy().model_dump(mode="json"),
                    "ceiling": s.status().autonomy_ceiling, "users": sorted(s.users()),
                    "pending": rt.service.engine.recommendation(self.pending).state,
                    "audit": [(e.actor, e.action) for e in s.audit_entries()]}
        finally:
            rt.close()


@pytest.fixture(autouse=True)
def _no_keyring_detection() -> None:
    """Commands here read the keyring for a session: never let that be keyring's own
    detection, which runs once a process and would leave out a Secret Service that a
    later test starts (tests/test_itsm_governance.py)."""
    keyring.set_keyring(keyring.backends.fail.Keyring())


@pytest.fixture
def team_db(db_url: str) -> Db:
    return Db(db_url)


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str | None = None) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin or ""))
    return main(argv)


# --- point 1: a headless run on a database with people -------------------------------


def test_a_headless_run_refuses_a_database_with_people_and_changes_nothing(
        team_db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = team_db.state()
    code = _run(["run", "--headless", "--scenario", "bad-deploy", "--autonomy", "5",
                 "--approve", "all", "--json", "--db", team_db.url], monkeypatch)
    assert code == 2
    err = capsys.readouterr().err
    assert "has users" in err and "--i-own-this-database" in err
    assert team_db.state() == before  # no policy, ceiling, user, approval or audit record


def test_the_owner_gives_the_database_with_a_password_and_the_run_acts_as_itself(
        team_db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = team_db.state()
    argv = ["run", "--headless", "--scenario", "bad-deploy", "--autonomy", "5", "--approve",
            "all", "--json", "--db", team_db.url, "--i-own-this-database", "--as", "adm1",
            "--password-stdin"]
    assert _run(argv, monkeypatch, "not-the-password\n") == 1
    assert team_db.state() == {**before, "audit": team_db.state()["audit"]}
    assert "wrong password" in capsys.readouterr().err.lower()
    # a viewer with the flag is not an administrator: refused before anything changes
    assert _run([*argv[:-3], "--as", "vic", "--password-stdin"], monkeypatch, "x\n") == 1

    assert _run(argv, monkeypatch, ADMIN_PW + "\n") == 0
    after = team_db.state()
    assert after["policy"] == before["policy"] and after["ceiling"] == before["ceiling"]
    assert after["pending"] == "pending"  # bob's recommendation is bob's to have decided
    new = after["audit"][len(before["audit"]):]
    by_people = {(actor, action) for actor, action in new
                 if actor.startswith("user:") and actor not in ("user:headless-admin",
                                                                "user:on-call")}
    # the administrator is named only for proving who they are and giving the database
    assert {action for _, action in by_people} <= {"auth.sign_in", "auth.sign_in_failed",
                                                   "run.claim_database", "user.set_role"}
    assert ("user:adm1", "run.claim_database") in by_people
    approvals = {actor for actor, action in new if action == "recommendation.approve"}
    assert approvals == {"user:on-call"}  # the run's own approvals, as its stand-in


def test_a_private_run_still_needs_no_password(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    for _ in range(2):  # a database only headless runs have used stays usable
        assert _run(["run", "--headless", "--scenario", "bad-deploy", "--approve", "all",
                     "--json", "--db", url], monkeypatch) == 0


# --- point 2: --as is proved ---------------------------------------------------------


def test_as_needs_the_password_once_passwords_exist(
        team_db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", team_db.url]
    assert _run(["autonomy", "5", "--as", "adm1", *db], monkeypatch) == 2  # no terminal
    assert "no terminal" in capsys.readouterr().err
    assert _run(["autonomy", "5", "--as", "adm1", "--password-stdin", *db], monkeypatch,
                "guess\n") == 1
    assert team_db.state()["ceiling"] != 5
    assert _run(["autonomy", "5", "--as", "adm1", "--password-stdin", *db], monkeypatch,
                ADMIN_PW + "\n") == 0
    assert team_db.state()["ceiling"] == 5
    audit = team_db.state()["audit"]
    assert ("user:adm1", "auth.sign_in") in audit
    assert any(action == "auth.sign_in_failed" for _, action in audit)


@pytest.mark.parametrize("argv", [
    ["policy", "set", "POLICY", "--as", "adm1"],
    ["kill-switch", "off", "--as", "adm1"],
    ["user", "vic", "admin", "--as", "adm1"],
    ["approve", "1", "--as", "adm1"],
    ["reject", "1", "--as", "adm1", "--reason", "no"],
    ["rollback", "1", "--as", "adm1"],
    ["propose", "restart-service", "--param", "service=cart", "--as", "adm1"],
    ["reconcile", "--as", "adm1"],
    ["ingest", "--format", "changes", "CHANGES", "--as", "adm1"],
    ["knowledge", "import", "DOC", "--as", "adm1"],
    ["ask", "what changed?", "--as", "adm1"],
])
def test_every_acting_command_refuses_an_unproved_name(
        team_db: Db, argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    files = {"POLICY": tmp_path / "policy.yaml", "CHANGES": tmp_path / "changes.json",
             "DOC": tmp_path / "doc.md"}
    files["POLICY"].write_text("default_level: 5\n", encoding="utf-8")
    files["CHANGES"].write_text('[{"service": "cart", "kind": "deploy", "description": '
                                '"v2", "at": "2026-01-01T00:00:00Z"}]', encoding="utf-8")
    files["DOC"].write_text("# CartDown\n\n## Meaning\n\nCart is down.\n", encoding="utf-8")
    argv = [str(files[a]) if a in files else a for a in argv]
    before = team_db.state()
    assert _run([*argv, "--db", team_db.url], monkeypatch) == 2
    assert "password is needed and there is no terminal" in capsys.readouterr().err
    after = team_db.state()
    assert after["audit"] == before["audit"] and after == before


def test_a_passwordless_name_cannot_act_once_anyone_has_a_password(
        team_db: Db, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # alice is the passwordless built-in admin of this database; vic is a viewer
    assert _run(["user", "vic", "admin", "--as", "alice", "--db", team_db.url],
                monkeypatch) == 1
    assert "has no password" in capsys.readouterr().err
    assert ("vic", "viewer") in team_db.state()["users"]
    assert team_db.state()["audit"][-1][1] == "auth.cli_refused"


def test_without_passwords_names_are_taken_as_given(db_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(["autonomy", "4", "--as", "alice", "--db", db_url], monkeypatch) == 0


# --- sessions from `watchfloor login`, kept in a real OS keyring ----------------------


@pytest.fixture(scope="module")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    service = start_secret_service(tmp_path_factory.mktemp("keyring"))
    yield service
    service.stop()


@pytest.fixture
def os_keyring(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS",
                       secret_service.env["DBUS_SESSION_BUS_ADDRESS"])
    monkeypatch.setenv("XDG_CONFIG_HOME", secret_service.env["XDG_CONFIG_HOME"])
    # keyring picks its backends once a process (an earlier command found no bus): this
    # test's commands use the Secret Service on the bus started here
    keyring.set_keyring(keyring.backends.SecretService.Keyring())
    yield
    keyring.set_keyring(keyring.backends.fail.Keyring())


def test_login_keeps_a_short_session_in_the_keyring_and_logout_ends_it(
        team_db: Db, os_keyring: None, monkeypatch: pytest.MonkeyPatch) -> None:
    db = ["--db", team_db.url]
    assert _run(["login", "--as", "adm1", "--password-stdin", "--minutes", "5", *db],
                monkeypatch, ADMIN_PW + "\n") == 0
    assert _run(["autonomy", "4", "--as", "adm1", *db], monkeypatch) == 0  # no password
    assert team_db.state()["ceiling"] == 4
    assert ("user:adm1", "auth.cli_login") in team_db.state()["audit"]
    # the session is adm1's, on this database only
    assert _run(["user", "vic", "operator", "--as", "bob", *db], monkeypatch) == 1
    assert _run(["logout", "--as", "adm1", *db], monkeypatch) == 0
    assert _run(["autonomy", "3", "--as", "adm1", *db], monkeypatch) == 2
    assert team_db.state()["ceiling"] == 4


def test_a_changed_password_ends_the_session(team_db: Db, os_keyring: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db = ["--db", team_db.url]
    assert _run(["login", "--as", "adm1", "--password-stdin", *db], monkeypatch,
                ADMIN_PW + "\n") == 0
    rt = team_db.open()
    try:
        Authenticator(rt.service, params=FAST).set_password(
            "adm1", "a-new-long-password", as_user="adm1", current_password=ADMIN_PW,
            confirm="a-new-long-password")
    finally:
        rt.close()
    assert _run(["autonomy", "2", "--as", "adm1", *db], monkeypatch) == 2


def test_owning_a_database_needs_one(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["run", "--headless", "--scenario", "bad-deploy",
                 "--i-own-this-database"], monkeypatch) == 2
    assert "goes with --db" in capsys.readouterr().err

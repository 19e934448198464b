"""Tickets in governed execution: the change gate (alone and inside the execution
lifecycle), the ticket config, credentials kept only in a real OS keyring (gnome-keyring
on a private D-Bus, tests/itsm_keyring.py) and the `tickets`/`credentials` commands."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.core
import pytest

from console.audit import canonical_json, plain
from console.itsm import cli as itsm_cli
from console.itsm.audited import AuditedTickets
from console.itsm.base import TicketError
from console.itsm.change import ChangeGate
from console.itsm.config import (
    TicketConfigError,
    build_ticket_system,
    load_ticket_config,
    parse_ticket_config,
)
from console.itsm.credentials import CredentialStore
from console.itsm.http import RetryPolicy
from console.itsm.jira import JiraAdapter
from console.itsm.pagerduty import PagerDutyAdapter
from console.itsm.servicenow import ServiceNowAdapter
from console.itsm.store import BuiltinTicketStore
from console.policy import Policy
from console.runtime import Runtime, ScenarioDriver
from tests.itsm_keyring import SecretService, start_secret_service
from tests.itsm_servers import FakeServiceNow

FAST = RetryPolicy(attempts=3, backoff=0.0, timeout=5, sleep=lambda _: None)


@pytest.fixture(scope="module")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    service = start_secret_service(tmp_path_factory.mktemp("keyring"))
    yield service
    service.stop()


@pytest.fixture
def os_keyring(secret_service: SecretService,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[CredentialStore]:
    """keyring's own choice of backend, in a session whose Secret Service is ours."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS",
                       secret_service.env["DBUS_SESSION_BUS_ADDRESS"])
    monkeypatch.setenv("XDG_CONFIG_HOME", secret_service.env["XDG_CONFIG_HOME"])
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    # keyring finds the viable backends once a process; an earlier test may have made it
    # look before this bus existed
    with contextlib.suppress(KeyError):  # KeyError: it has not looked yet
        keyring.backend.get_all_keyring.reset()
    keyring.core.init_backend()
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.SecretService"
    yield CredentialStore()
    keyring.set_keyring(keyring.backends.fail.Keyring())


@pytest.fixture
def snow() -> Iterator[FakeServiceNow]:
    fake = FakeServiceNow(password="sn-" + uuid.uuid4().hex).start()
    yield fake
    fake.stop()


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Runtime, ScenarioDriver]]:
    """The estate of tests/test_execution.py: bob operates, alice administers."""
    runtime = Runtime(db_url)
    runtime.service.bootstrap_admin("alice")
    runtime.service.add_user("bob", "operator", as_user="alice")
    driver = ScenarioDriver(runtime, "quiet-day", seed=7)
    driver.step(60)
    yield runtime, driver
    runtime.close()


def run_scale_out(runtime: Runtime, driver: ScenarioDriver) -> int:
    engine = runtime.service.engine
    runtime.service.set_policy(Policy(change_records=("scale",)), as_user="alice")
    rec_id = engine.propose("scale-out", {"service": "cart", "count": 1}, requester="user:bob")
    rec = engine.recommendation(rec_id)
    assert rec is not None
    exec_id: int = engine.approve(rec_id, as_user="bob",
                                  preview_hash=rec.preview_hash)["execution"]
    for _ in range(8):
        driver.step(15)
    execution = engine.execution(exec_id)
    assert execution is not None
    assert execution.state == "succeeded"
    return exec_id


def write_config(text: str) -> Path:
    from console.storage.db import config_dir

    path = config_dir() / "tickets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def snow_config(fake: FakeServiceNow, account: str) -> str:
    return (f"system: servicenow\nurl: {fake.url}\nusername: wf.bot\naccount: {account}\n"
            "assignment_group: NOC\n")


def run_cli(argv: list[str], runtime: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="watchfloor")
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db")
    sub = parser.add_subparsers(dest="command", required=True)
    itsm_cli.add_parsers(sub, db_parent)
    return itsm_cli.dispatch(parser.parse_args(argv), runtime)


# --- the change gate ------------------------------------------------------------------


def test_change_gate_opens_links_and_closes_a_change(runtime: Any) -> None:
    store = BuiltinTicketStore(runtime.service)
    gate = ChangeGate(store)
    plan = {"title": "Scale out", "target": "cart", "action_class": "scale", "risk": "low",
            "steps": [{"executor": "estate", "action": "scale_out", "count": 1}],
            "probe": {"kind": "check"}, "deadline": 120,
            "rollback": [{"executor": "estate", "action": "scale_in", "count": 1}]}
    ref = gate.open_change("scale", "Scale out on cart", json.dumps(plan), "exec:4")
    assert gate.open_change("scale", "Scale out on cart", json.dumps(plan), "exec:4") == ref
    ticket = store.ticket(ref.id)
    assert ticket is not None
    assert (ticket.kind, ticket.number, ticket.service) == ("change", "CHG-0001", "cart")
    assert ticket.title == "[scale] Scale out on cart"
    assert "1. scale_out" in ticket.body
    assert "Rollback: scale_in" in ticket.body
    gate.close_change(ref, "validation failed: saturation 0.97", False)
    closed = store.ticket(ref.id)
    assert closed is not None
    assert (closed.state, closed.success) == ("closed", False)
    assert len(store.tickets()) == 1


def test_execution_opens_the_change_before_and_closes_it_after(
        world: tuple[Runtime, ScenarioDriver]) -> None:
    runtime, driver = world
    store = BuiltinTicketStore(runtime.service)
    runtime.service.engine.change_gate = ChangeGate(store)
    exec_id = run_scale_out(runtime, driver)
    [ticket] = store.tickets()
    assert ticket.kind == "change"
    assert ticket.idempotency_key == f"change:exec:{exec_id}"
    assert (ticket.state, ticket.success) == ("closed", True)
    actions = [e.action for e in runtime.service.audit_entries()]
    assert actions.index("execution.intent") < actions.index("ticket.open") \
        < actions.index("execution.executed") < actions.index("execution.succeeded") \
        < actions.index("ticket.close")
    execution = runtime.service.engine.execution(exec_id)
    assert execution is not None
    assert execution.result["change"] == {"system": "builtin", "id": ticket.number,
                                          "url": "", "extra": {}}


# --- credentials: only ever in the OS keyring -----------------------------------------


def test_a_credential_is_never_stored_outside_the_keyring(
        world: tuple[Runtime, ScenarioDriver], snow: FakeServiceNow,
        os_keyring: CredentialStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    runtime, driver = world
    secret = snow.credentials[1]
    account = f"acme-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert run_cli(["credentials", "set", "servicenow", "--account", account]) == 0
    assert run_cli(["credentials", "check", "servicenow", "--account", account]) == 0
    assert secret not in capsys.readouterr().out
    config_file = write_config(snow_config(snow, account))
    tickets = build_ticket_system(load_ticket_config(), runtime.service, retry=FAST)
    runtime.service.engine.change_gate = ChangeGate(tickets)
    run_scale_out(runtime, driver)
    ref = tickets.open(kind="incident", title="cart slow", body="p99 2s", service="cart",
                       severity="warning", idempotency_key="incident:1")
    tickets.update(ref, "scaled out")
    tickets.close(ref, "p99 back to 200 ms")
    snow.credentials = ("wf.bot", "rotated")  # the next call fails authentication
    with pytest.raises(TicketError, match="authentication failed"):
        tickets.route(ref, "cart-team")
    [change] = snow.records["change_request"].values()
    assert (change["state"], change["close_code"]) == ("3", "successful")
    assert snow.records["incident"][ref.id]["assignment_group"] == "NOC"
    sent = {base64.b64decode(r.headers["authorization"][6:]).decode() for r in snow.received}
    assert f"wf.bot:{secret}" in sent  # the secret did travel, to the server only
    with runtime.db.sessions() as session:  # every row of every table, on any backend
        from console.storage.models import Base

        stored = [repr(tuple(row)) for table in Base.metadata.sorted_tables
                  for row in session.execute(table.select())]
    assert stored
    assert [row for row in stored if secret in row] == []
    runtime.db.dispose()  # everything written and checkpointed into the files
    needle = secret.encode()
    scanned = [p for p in tmp_path.rglob("*") if p.is_file()]
    if runtime.db.engine.dialect.name == "sqlite":  # the database files themselves, too
        assert any(p.name.startswith("wf.db") for p in scanned)
    assert config_file in scanned
    assert [p for p in scanned if needle in p.read_bytes()] == []
    entries = runtime.service.audit_entries()
    assert {"ticket.open", "ticket.close", "ticket.route.failed"} <= {e.action for e in entries}
    assert [e.seq for e in entries if secret in canonical_json(plain(asdict(e)))] == []
    assert os_keyring.get("servicenow", account) == secret


def test_a_missing_credential_names_the_system_and_the_command(
        runtime: Any, snow: FakeServiceNow, os_keyring: CredentialStore) -> None:
    write_config(snow_config(snow, "nobody"))
    tickets = build_ticket_system(load_ticket_config(), runtime.service, retry=FAST)
    with pytest.raises(TicketError, match=r"no credential stored for servicenow account "
                                          r"'nobody'.*watchfloor credentials set servicenow "
                                          r"--account nobody"):
        tickets.open(kind="incident", title="t", body="", service="s", severity="info",
                     idempotency_key="k")
    assert snow.received == []
    assert runtime.service.audit_entries()[-1].action == "ticket.open.failed"
    assert not os_keyring.has("servicenow", "nobody")


def test_credentials_commands(os_keyring: CredentialStore, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    account = f"pd-{uuid.uuid4().hex[:8]}"
    assert run_cli(["credentials", "check", "pagerduty", "--account", account]) == 1
    assert f"watchfloor credentials set pagerduty --account {account}" in \
        capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run_cli(["credentials", "set", "pagerduty", "--account", account]) == 2
    assert "no secret given" in capsys.readouterr().err
    assert run_cli(["credentials", "set", "pagerduty", "--account", "bad\tname"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("R0UTING\n"))
    assert run_cli(["credentials", "set", "pagerduty", "--account", account]) == 0
    out = capsys.readouterr().out
    assert "SecretService" in out
    assert "R0UTING" not in out
    assert os_keyring.get("pagerduty", account) == "R0UTING"  # the newline is not kept
    with pytest.raises(SystemExit) as caught:
        run_cli(["credentials", "set", "zendesk", "--account", "x"])
    assert caught.value.code == 2


def test_tickets_command_lists_the_builtin_store(runtime: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["tickets"], runtime) == 0
    assert "no tickets" in capsys.readouterr().out
    store = BuiltinTicketStore(runtime.service)
    ref = store.open(kind="incident", title="cart slow", body="", service="cart",
                     severity="warning", idempotency_key="k")
    store.route(ref, "cart-team")
    assert run_cli(["tickets"], runtime) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:4] == ["INC-0001", "routed", "warning", "cart"]
    assert line.endswith("cart slow  -> cart-team")
    assert run_cli(["tickets", "--json"], runtime) == 0
    [ticket] = json.loads(capsys.readouterr().out)
    assert (ticket["number"], ticket["group"], ticket["idempotency_key"]) == (
        "INC-0001", "cart-team", "k")


# --- the config file ------------------------------------------------------------------


def test_config_names_each_system_and_the_factory_builds_it(runtime: Any) -> None:
    assert isinstance(build_ticket_system(load_ticket_config(), runtime.service),
                      BuiltinTicketStore)  # no file: the built-in store
    cases = {
        ServiceNowAdapter: "system: servicenow\nurl: https://acme.service-now.com/\n"
                           "username: wf.bot\nservicenow: {change_type: standard}\n",
        JiraAdapter: "system: jira\nurl: https://acme.atlassian.net\nusername: a@b.c\n"
                     "jira: {project: OPS, route_by: label}\ntimeout: 5s\nretries: 1\n",
        PagerDutyAdapter: "system: pagerduty\npagerduty: {source: noc}\n",
    }
    for adapter_type, text in cases.items():
        tickets = build_ticket_system(parse_ticket_config(text, "t.yaml"), runtime.service)
        assert isinstance(tickets, AuditedTickets)
        assert isinstance(tickets.inner, adapter_type)
    snow_cfg = parse_ticket_config(cases[ServiceNowAdapter], "t.yaml")
    assert snow_cfg.keyring_account() == "acme.service-now.com"
    assert snow_cfg.url == "https://acme.service-now.com"
    jira_cfg = parse_ticket_config(cases[JiraAdapter], "t.yaml")
    assert jira_cfg.retry_policy().attempts == 2
    assert jira_cfg.timeout == 5.0


@pytest.mark.parametrize(("text", "message"), [
    ("system: servicenow\nurl: https://x.example\nusername: u\npassword: hunter2\n",
     "t.yaml:4: password: secrets never go in the config file; store it in the OS keyring "
     "with: watchfloor credentials set servicenow --account NAME"),
    ("system: jira\njira:\n  project: OPS\n  api_token: abc\n",
     "t.yaml:4: jira.api_token: secrets never go in the config file; store it in the OS "
     "keyring with: watchfloor credentials set jira --account NAME"),
    ("system: pagerduty\nrouting_key: R123\n", "t.yaml:2: routing_key: secrets never go"),
    ("system: servicenow\nurl: https://bot:hunter2@x.example\nusername: bot\n",
     "t.yaml:2: url: a URL may not carry a user or password"),
    ("system: zendesk\n", "t.yaml:1: system: Input should be 'builtin', 'servicenow'"),
    ("system: jira\nurl: https://x.example\nusername: u\ntimeout: fast\n",
     "t.yaml:4: timeout: expected a duration"),
    ("system: jira\nurl: https://x.example\nusername: u\n", "t.yaml:1: system: jira needs "
                                                            "jira.project"),
    ("system: servicenow\nurl: https://x.example\nlocation: eu\n",
     "t.yaml:3: location: Extra inputs are not permitted"),
    ("system: [servicenow\n", "t.yaml:2: not valid YAML"),
])
def test_config_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(TicketConfigError) as caught:
        parse_ticket_config(text, "t.yaml")
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_config_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("system: pagerduty\n")
    assert load_ticket_config().system == "pagerduty"
    other = tmp_path / "elsewhere.yaml"
    other.write_text("system: builtin\n")
    monkeypatch.setenv("WATCHFLOOR_TICKETS", str(other))
    assert load_ticket_config().system == "builtin"
    with pytest.raises(TicketConfigError, match=r"missing\.yaml: cannot read"):
        load_ticket_config(tmp_path / "missing.yaml")


def test_the_readme_ticket_config_example_loads() -> None:
    from console.itsm.config import parse_ticket_config
    from tests.helpers import readme_yaml

    config = parse_ticket_config(readme_yaml("system: servicenow"), "README.md")
    assert config.system == "servicenow"
    assert config.keyring_account() == "acme.service-now.com"
    assert config.servicenow.change_table == "change_request"

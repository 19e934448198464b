"""Level-1 rules and the ticket system the console is configured with: a rule's
`ticket.route`, `ticket.update` and `ticket.close` act on the ticket a `ticket.open` made,
in the same run and in a later one (after a restart), with the built-in store and with
ServiceNow, Jira and PagerDuty (loopback servers that speak their APIs).

The rules here run the way the console runs them: from the user's rules folder, through
the runtime's rule engine and the ticket system it builds from `tickets.yaml`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
import yaml
from jaraco.classes import properties

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.itsm.store import BuiltinTicketStore
from console.rules import RUN_ACTION
from console.runtime import Runtime
from console.storage.db import config_dir
from tests.itsm_servers import FakeApi, FakeJira, FakePagerDuty, FakeServiceNow

ACCOUNT = "noc-bot"
RULES = {"rules": [
    {"id": "page", "trigger": {"type": "alert", "state": "firing"},
     "workflow": [
         {"do": "ticket.open", "title": "{alert.name} on {alert.service}",
          "body": "{alert.summary}"},
         {"do": "ticket.route", "group": "noc"},
         {"do": "ticket.update", "note": "first seen: {alert.name}"}]},
    {"id": "settle", "trigger": {"type": "alert", "state": "resolved"},
     "workflow": [
         {"do": "ticket.update", "note": "cleared: {alert.name}"},
         {"do": "ticket.close", "resolution": "{alert.name} resolved"}]},
]}


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that holds its entries in memory (the real Secret Service is exercised
    by tests/test_itsm_governance.py; here only the rules' use of tickets is tested).
    It is only ever set by hand: its priority raises, so keyring's own choice of
    backend (which considers every subclass) never picks it."""

    @properties.classproperty
    def priority(cls) -> float:  # type: ignore[override]
        raise RuntimeError("set explicitly with keyring.set_keyring, never chosen")

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@dataclass
class Seen:
    """What the ticket system holds for the one ticket the rules opened."""

    title: str
    group: str
    notes: list[str]
    closed: bool


@dataclass
class System:
    name: str
    config: str  # tickets.yaml; empty for the built-in store
    secret: str
    seen: Callable[[Runtime], Seen]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    # Never keyring.get_keyring() here: its first call detects (and caches) the backends
    # viable in this environment, which would leave out a Secret Service started later.
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(keyring.backends.fail.Keyring())


def _builtin(runtime: Runtime) -> Seen:
    (ticket,) = BuiltinTicketStore(runtime.service).tickets()
    return Seen(ticket.title, ticket.group, [str(n["text"]) for n in ticket.notes],
                ticket.state == "closed")


def _servicenow(fake: FakeServiceNow) -> Callable[[Runtime], Seen]:
    def seen(_: Runtime) -> Seen:
        (record,) = fake.records["incident"].values()
        return Seen(record["short_description"], record["assignment_group"],
                    list(record["journal"]), record["state"] == "6")
    return seen


def _jira(fake: FakeJira) -> Callable[[Runtime], Seen]:
    def seen(_: Runtime) -> Seen:
        (issue,) = fake.issues.values()
        fields = issue["fields"]
        return Seen(fields["summary"], ",".join(c["name"] for c in fields["components"]),
                    [c["body"] for c in issue["comments"] if "first seen" in c["body"]
                     or "cleared" in c["body"]],
                    fields["status"]["statusCategory"]["key"] == "done")
    return seen


def _pagerduty(fake: FakePagerDuty) -> Callable[[Runtime], Seen]:
    def seen(_: Runtime) -> Seen:
        (alert,) = fake.alerts
        details = [event["payload"]["custom_details"] for event in alert.log
                   if event.get("event_action") == "trigger"]
        # every follow-up repeats the alert's own summary and severity (a restart must not
        # turn it into "Watchfloor alert <key>" at warning)
        assert {(e["payload"]["summary"], e["payload"]["severity"]) for e in alert.log
                if e.get("event_action") == "trigger"} == {(alert.summary, "critical")}
        groups = [d["watchfloor_group"] for d in details if "watchfloor_group" in d]
        return Seen(alert.summary, ",".join(groups),
                    [d["note"] for d in details if "note" in d], alert.status == "resolved")
    return seen


@pytest.fixture(params=["builtin", "servicenow", "jira", "pagerduty"])
def system(request: pytest.FixtureRequest,
           memory_keyring: MemoryKeyring) -> Iterator[System]:
    name = request.param
    if name == "builtin":
        yield System(name, "", "", _builtin)
        return
    tail = f"account: {ACCOUNT}\nretries: 0\ntimeout: 5s\n"
    fake: FakeApi
    if name == "servicenow":
        fake = FakeServiceNow(password="sn-pass")
        made = System(name, f"system: servicenow\nurl: {{url}}\nusername: wf.bot\n{tail}",
                      "sn-pass", _servicenow(fake))
    elif name == "jira":
        fake = FakeJira(token="jira-pass")
        made = System(name, "system: jira\nurl: {url}\nusername: noc@example.com\n"
                      f"jira: {{{{project: OPS}}}}\n{tail}", "jira-pass", _jira(fake))
    else:
        fake = FakePagerDuty(routing_key="R0UTINGKEY0000000000000000000042")
        made = System(name, f"system: pagerduty\nurl: {{url}}\n{tail}",
                      "R0UTINGKEY0000000000000000000042", _pagerduty(fake))
    fake.start()
    made.config = made.config.format(url=fake.url)
    memory_keyring.set_password("watchfloor", f"{name}:{ACCOUNT}", made.secret)
    yield made
    fake.stop()


@pytest.fixture
def consoles(db_url: str) -> Iterator[Callable[[], Runtime]]:
    """Starts a console's runtime on the test database (one per "process"): the rules
    from the user's folder, the tickets from the config; each is closed at the end."""
    running: list[Runtime] = []

    def start() -> Runtime:
        while running:  # a restart: the earlier process is gone
            running.pop().close()
        runtime = Runtime(db_url)
        runtime.service.bootstrap_admin("alice")
        assert runtime.start_rules() is not None
        running.append(runtime)
        return runtime

    yield start
    while running:
        running.pop().close()


def _write_setup(system: System) -> None:
    folder = config_dir() / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tickets.yaml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    if system.config:
        (config_dir() / "tickets.yaml").write_text(system.config)


def _alert(runtime: Runtime, status: AlertStatus) -> Signal:
    signal = Signal("test", SignalKind.ALERT, "HighErrorRate", "cart", Severity.CRITICAL,
                    status, runtime.clock.now(), {"service": "cart"},
                    {"summary": "cart is failing"})
    runtime.service.ingest([signal])
    runtime.ticket_worker.flush()
    return signal


def _steps(runtime: Runtime) -> list[list[tuple[str, str]]]:
    return [[(s["do"], s["outcome"]) for s in e.outputs["steps"]]
            for e in runtime.service.audit_entries() if e.action == RUN_ACTION]


OPENED = [("ticket.open", "ok"), ("ticket.route", "ok"), ("ticket.update", "ok")]
SETTLED = [("ticket.update", "ok"), ("ticket.close", "ok")]


def test_a_rule_acts_on_the_ticket_it_opened_in_the_same_run(
        consoles: Callable[[], Runtime], system: System) -> None:
    _write_setup(system)
    runtime = consoles()
    _alert(runtime, AlertStatus.FIRING)
    assert _steps(runtime) == [OPENED]
    seen = system.seen(runtime)
    assert (seen.title, seen.group, seen.notes, seen.closed) == (
        "HighErrorRate on cart", "noc", ["first seen: HighErrorRate"], False)
    runtime.clock.advance(120)
    _alert(runtime, AlertStatus.RESOLVED)
    assert _steps(runtime) == [OPENED, SETTLED]
    seen = system.seen(runtime)
    assert (seen.notes, seen.closed) == (
        ["first seen: HighErrorRate", "cleared: HighErrorRate"], True)
    assert runtime.service.verify_audit().ok


def test_a_rule_acts_on_the_ticket_an_earlier_process_opened(
        consoles: Callable[[], Runtime], system: System) -> None:
    _write_setup(system)
    _alert(consoles(), AlertStatus.FIRING)
    later = consoles()  # a new process: the link comes back from the audit log
    later.clock.advance(120)
    _alert(later, AlertStatus.RESOLVED)
    assert _steps(later) == [OPENED, SETTLED]
    seen = system.seen(later)
    assert (seen.group, seen.notes, seen.closed) == (
        "noc", ["first seen: HighErrorRate", "cleared: HighErrorRate"], True)


def test_a_ticket_of_another_system_is_not_sent_to_the_configured_one(
        consoles: Callable[[], Runtime], memory_keyring: MemoryKeyring) -> None:
    """The ticket a rule opened in the built-in store is never routed or closed through
    ServiceNow after the config changes: the rule says no ticket is linked there."""
    _write_setup(System("builtin", "", "", _builtin))
    first = consoles()
    _alert(first, AlertStatus.FIRING)
    fake = FakeServiceNow(password="sn-pass").start()
    try:
        memory_keyring.set_password("watchfloor", f"servicenow:{ACCOUNT}", "sn-pass")
        (config_dir() / "tickets.yaml").write_text(
            f"system: servicenow\nurl: {fake.url}\nusername: wf.bot\naccount: {ACCOUNT}\n"
            "retries: 0\n")
        later = consoles()
        later.clock.advance(120)
        _alert(later, AlertStatus.RESOLVED)
        runs = [e for e in later.service.audit_entries() if e.action == RUN_ACTION]
        assert [s["outcome"] for s in runs[-1].outputs["steps"]] == ["skipped", "skipped"]
        assert "no ticket is linked" in runs[-1].outputs["steps"][0]["detail"]
        assert fake.requests() == []
        (ticket,) = BuiltinTicketStore(later.service).tickets()
        assert ticket.state == "routed"
    finally:
        fake.stop()

"""Tickets: the built-in store, and the ServiceNow, Jira and PagerDuty adapters against
loopback servers that speak their APIs (tests/itsm_servers.py): the exact requests they
send, retries after 503 and 429, a lost response that must not make a second ticket,
4xx never retried, authentication failures. The change gate, the config, credentials
and the commands are in tests/test_itsm_governance.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from console.events import OperationDone
from console.itsm.base import TicketError, TicketRef
from console.itsm.change import ChangeGate
from console.itsm.http import RetryPolicy, idempotency_token
from console.itsm.jira import JiraAdapter, JiraOptions
from console.itsm.pagerduty import PagerDutyAdapter
from console.itsm.servicenow import ServiceNowAdapter
from console.itsm.store import BuiltinTicketStore
from tests.itsm_servers import FakeApi, FakeJira, FakePagerDuty, FakeServiceNow

OPEN = {"kind": "incident", "title": "checkout error rate above 5%", "body": "340 alerts",
        "service": "checkout", "severity": "critical"}


class Sleeps(list[float]):
    """Records each backoff wait instead of sleeping through it."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(attempts=4, backoff=0.5, timeout=5, sleep=sleeps)


def served(fake: FakeApi) -> Iterator[Any]:
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def snow() -> Iterator[FakeServiceNow]:
    yield from served(FakeServiceNow())


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    yield from served(FakeJira())


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    yield from served(FakePagerDuty())


def snow_adapter(fake: FakeServiceNow, retry: RetryPolicy, secret: str = "sn-secret",
                 **kw: Any) -> ServiceNowAdapter:
    return ServiceNowAdapter(fake.url, "wf.bot", lambda: secret, retry=retry, **kw)


def jira_adapter(fake: FakeJira, retry: RetryPolicy, secret: str = "jira-token",
                 **options: Any) -> JiraAdapter:
    return JiraAdapter(fake.url, "noc@example.com", lambda: secret, retry=retry,
                       options=JiraOptions(project="OPS", **options))


def pd_adapter(fake: FakePagerDuty, retry: RetryPolicy, key: str | None = None,
               **kw: Any) -> PagerDutyAdapter:
    return PagerDutyAdapter(lambda: key or next(iter(fake.routing_keys)), url=fake.url,
                            retry=retry, **kw)


# --- the built-in store ---------------------------------------------------------------


def test_builtin_store_opens_routes_updates_and_closes_each_change_audited(
        runtime: Any) -> None:
    service = runtime.service
    done: list[OperationDone] = []
    service.bus.subscribe(OperationDone, done.append)
    store = BuiltinTicketStore(service)
    ref = store.open(**OPEN, idempotency_key="incident:7")
    assert ref == TicketRef("builtin", "INC-0001", "incident")
    store.route(ref, "payments-oncall")
    store.update(ref, "rolled back payments to v41")
    store.close(ref, "error rate back under 1%", success=True)
    ticket = store.ticket("INC-0001")
    assert ticket is not None
    assert (ticket.state, ticket.group, ticket.success) == ("closed", "payments-oncall", True)
    assert ticket.resolution == "error rate back under 1%"
    assert [n["text"] for n in ticket.notes] == ["rolled back payments to v41"]
    assert (ticket.service, ticket.severity, ticket.idempotency_key) == (
        "checkout", "critical", "incident:7")
    records = [e for e in service.audit_entries() if e.action.startswith("ticket.")]
    assert [(e.action, e.target) for e in records] == [
        ("ticket.open", "ticket:INC-0001"), ("ticket.route", "ticket:INC-0001"),
        ("ticket.update", "ticket:INC-0001"), ("ticket.close", "ticket:INC-0001")]
    assert records[-1].outputs == {"state": "closed", "resolution": "error rate back under 1%",
                                   "success": True}
    assert [d.operation for d in done] == ["ticket.open", "ticket.route", "ticket.update",
                                           "ticket.close"]
    assert all(d.changes.tickets and d.changes.ids == ("ticket:INC-0001",) for d in done)
    assert service.verify_audit().ok


def test_builtin_open_with_a_used_key_returns_the_first_ticket(runtime: Any) -> None:
    store = BuiltinTicketStore(runtime.service)
    first = store.open(**OPEN, idempotency_key="incident:7")
    again = store.open(**{**OPEN, "title": "a retry"}, idempotency_key="incident:7")
    change = store.open(**{**OPEN, "kind": "change"}, idempotency_key="change:exec:1")
    assert again == first
    assert change.id == "CHG-0001"
    assert [t.number for t in store.tickets()] == ["INC-0001", "CHG-0001"]
    store.close(first, "fixed")
    store.close(first, "fixed")  # a repeated close changes nothing and audits nothing
    actions = [e.action for e in runtime.service.audit_entries()]
    assert actions.count("ticket.open") == 2
    assert actions.count("ticket.close") == 1


def test_builtin_store_refuses_what_it_cannot_do(runtime: Any) -> None:
    store = BuiltinTicketStore(runtime.service)
    with pytest.raises(TicketError, match="unknown severity 'urgent'"):
        store.open(**{**OPEN, "severity": "urgent"}, idempotency_key="k")
    ref = store.open(**OPEN, idempotency_key="k")
    store.close(ref, "done")
    with pytest.raises(TicketError, match="INC-0001 is closed"):
        store.route(ref, "dba")
    with pytest.raises(TicketError, match="no ticket 'INC-0099'"):
        store.update(TicketRef("builtin", "INC-0099"), "note")
    with pytest.raises(TicketError, match="belongs to 'jira'"):
        store.update(TicketRef("jira", "OPS-1"), "note")


# --- ServiceNow -----------------------------------------------------------------------


def test_servicenow_speaks_the_table_api(snow: FakeServiceNow, retry: RetryPolicy) -> None:
    adapter = snow_adapter(snow, retry)
    ref = adapter.open(**OPEN, idempotency_key="incident:7")
    token = idempotency_token("incident:7")
    lookup, create = snow.received
    assert (lookup.method, lookup.path) == ("GET", "/api/now/table/incident")
    assert lookup.query == {"sysparm_query": f"correlation_id={token}", "sysparm_limit": "1",
                            "sysparm_fields": "sys_id,number,state"}
    assert (create.method, create.path) == ("POST", "/api/now/table/incident")
    assert create.body["short_description"] == OPEN["title"]
    assert create.body["correlation_id"] == token
    assert (create.body["impact"], create.body["urgency"]) == ("1", "1")
    assert create.basic_auth() == ("wf.bot", "sn-secret")
    record = snow.records["incident"][ref.id]
    assert ref.extra == {"number": "INC0010001", "table": "incident"}
    assert ref.url.startswith(snow.url)
    adapter.update(ref, "rolled back")
    adapter.route(ref, "Payments")
    adapter.close(ref, "fixed by rollback")
    patches = snow.requests("PATCH")
    assert {p.path for p in patches} == {f"/api/now/table/incident/{ref.id}"}
    assert [p.body for p in patches] == [
        {"work_notes": "rolled back"}, {"assignment_group": "Payments"},
        {"state": "6", "close_code": "Solution provided", "close_notes": "fixed by rollback"}]
    assert (record["state"], record["journal"]) == ("6", ["rolled back"])
    change = adapter.open(**{**OPEN, "kind": "change"}, idempotency_key="change:exec:1")
    adapter.close(change, "validation failed", success=False)
    chg = snow.records["change_request"][change.id]
    assert (chg["number"], chg["type"], chg["state"], chg["close_code"]) == (
        "CHG0030001", "normal", "3", "unsuccessful")


def test_servicenow_retries_503_with_backoff(snow: FakeServiceNow, retry: RetryPolicy,
                                             sleeps: Sleeps) -> None:
    snow.fail_next(2)
    ref = snow_adapter(snow, retry).open(**OPEN, idempotency_key="k")
    assert [r.outcome for r in snow.received] == ["failed:503", "failed:503", "answered",
                                                  "answered"]
    assert sleeps == [0.5, 1.0]
    assert list(snow.records["incident"]) == [ref.id]


def test_servicenow_lost_response_is_found_not_made_twice(snow: FakeServiceNow,
                                                          retry: RetryPolicy) -> None:
    snow.drop_next(method="POST")
    ref = snow_adapter(snow, retry).open(**OPEN, idempotency_key="k")
    assert [(r.method, r.outcome) for r in snow.received] == [
        ("GET", "answered"), ("POST", "dropped"), ("GET", "answered")]
    assert list(snow.records["incident"]) == [ref.id]
    # and a second open with the same key, much later, links to it too
    assert snow_adapter(snow, retry).open(**OPEN, idempotency_key="k") == ref
    assert len(snow.records["incident"]) == 1


def test_servicenow_4xx_is_final_and_clear(snow: FakeServiceNow, retry: RetryPolicy) -> None:
    adapter = snow_adapter(snow, retry)
    with pytest.raises(TicketError, match=r"refused \(HTTP 404\): No Record found"):
        adapter.update(TicketRef("servicenow", "0" * 32), "note")
    with pytest.raises(TicketError, match="mandatory: Short description"):
        adapter.open(**{**OPEN, "title": ""}, idempotency_key="k")
    assert [r.outcome for r in snow.received] == ["answered"] * 3  # PATCH, GET, POST: once


def test_servicenow_auth_failure_says_how_to_fix_it(snow: FakeServiceNow,
                                                    retry: RetryPolicy) -> None:
    adapter = snow_adapter(snow, retry, secret="wrong",
                           auth_hint="Store it with: watchfloor credentials set servicenow "
                                     "--account acme")
    with pytest.raises(TicketError) as caught:
        adapter.open(**OPEN, idempotency_key="k")
    message = str(caught.value)
    assert "authentication failed (HTTP 401): User Not Authenticated" in message
    assert "watchfloor credentials set servicenow --account acme" in message
    assert "wrong" not in message
    assert len(snow.received) == 1


def test_retries_run_out_with_a_clear_error(snow: FakeServiceNow, retry: RetryPolicy,
                                            sleeps: Sleeps) -> None:
    snow.fail_next(10)
    with pytest.raises(TicketError, match=r"failed after 4 attempt\(s\): HTTP 503"):
        snow_adapter(snow, retry).route(TicketRef("servicenow", "x"), "dba")
    assert len(snow.received) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_429_waits_as_long_as_retry_after_says(snow: FakeServiceNow, retry: RetryPolicy,
                                               sleeps: Sleeps) -> None:
    snow.fail_next(1, status=429, retry_after="3")
    snow_adapter(snow, retry).open(**OPEN, idempotency_key="k")
    assert sleeps == [3.0]
    assert len(snow.records["incident"]) == 1


def test_an_unreachable_system_is_retried_then_reported(retry: RetryPolicy,
                                                        sleeps: Sleeps) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = ServiceNowAdapter(f"http://127.0.0.1:{port}", "u", lambda: "p", retry=retry)
    with pytest.raises(TicketError, match=r"failed after 4 attempt\(s\): could not reach"):
        adapter.open(**OPEN, idempotency_key="k")
    assert len(sleeps) == 3


# --- Jira -----------------------------------------------------------------------------


def test_jira_speaks_rest_v2(jira: FakeJira, retry: RetryPolicy) -> None:
    adapter = jira_adapter(jira, retry, assignment_group="noc")
    ref = adapter.open(**OPEN, idempotency_key="incident:7")
    token = idempotency_token("incident:7")
    search, create = jira.received
    assert (search.method, search.path) == ("GET", "/rest/api/2/search")
    assert search.query == {"jql": f'labels = "{token}"', "maxResults": "1",
                            "fields": "summary"}
    fields = create.body["fields"]
    assert fields["project"] == {"key": "OPS"}
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == OPEN["title"]
    assert fields["labels"] == ["watchfloor", token, "severity-critical", "service-checkout"]
    assert fields["components"] == [{"name": "noc"}]
    assert create.basic_auth() == ("noc@example.com", "jira-token")
    assert (ref.id, ref.url) == ("OPS-1", f"{jira.url}/browse/OPS-1")
    adapter.update(ref, "rolled back")
    adapter.route(ref, "db")
    adapter.close(ref, "fixed by rollback")
    issue = jira.issues["OPS-1"]
    assert [c["body"] for c in issue["comments"]] == ["rolled back",
                                                      "Resolved: fixed by rollback"]
    assert issue["fields"]["components"] == [{"name": "db"}]
    assert issue["fields"]["status"]["name"] == "Done"
    steps = [(r.method, r.path.removeprefix("/rest/api/2/issue/OPS-1")) for r in
             jira.received[2:]]
    assert steps == [("POST", "/comment"), ("PUT", ""), ("GET", ""), ("GET", "/transitions"),
                     ("POST", "/transitions")]
    assert jira.received[3].body == {"update": {"components": [{"set": [{"name": "db"}]}]}}
    assert jira.received[-1].body["transition"] == {"id": "31"}
    adapter.close(ref, "again")  # done already: nothing is transitioned twice
    assert jira.received[-1].method == "GET"


def test_jira_retries_and_never_makes_a_twin(jira: FakeJira, retry: RetryPolicy) -> None:
    jira.fail_next(1, status=503, method="GET")
    jira.drop_next(method="POST")
    ref = jira_adapter(jira, retry).open(**OPEN, idempotency_key="k")
    assert [(r.method, r.outcome) for r in jira.received] == [
        ("GET", "failed:503"), ("GET", "answered"), ("POST", "dropped"), ("GET", "answered")]
    assert list(jira.issues) == [ref.id]


def test_jira_validation_errors_are_final(jira: FakeJira, retry: RetryPolicy) -> None:
    adapter = JiraAdapter(jira.url, "noc@example.com", lambda: "jira-token", retry=retry,
                          options=JiraOptions(project="NOPE", close_transition="Finish"))
    with pytest.raises(TicketError, match="project: valid project is required"):
        adapter.open(**OPEN, idempotency_key="k")
    assert len(jira.requests("POST")) == 1
    ref = jira_adapter(jira, retry).open(**OPEN, idempotency_key="k2")
    with pytest.raises(TicketError, match=r"no transition 'Finish'.*available: In Progress, "
                                          r"Done"):
        adapter.close(ref, "done")
    with pytest.raises(TicketError, match="Component name 'payments' is not valid"):
        adapter.route(ref, "payments")
    labelled = jira_adapter(jira, retry, route_by="label")
    labelled.route(ref, "payments team")
    assert jira.issues[ref.id]["fields"]["labels"][-1] == "wf-group-payments-team"


def test_jira_auth_failure(jira: FakeJira, retry: RetryPolicy) -> None:
    with pytest.raises(TicketError, match=r"authentication failed \(HTTP 401\)"):
        jira_adapter(jira, retry, secret="expired").open(**OPEN, idempotency_key="k")
    assert len(jira.received) == 1


# --- PagerDuty ------------------------------------------------------------------------


def test_pagerduty_speaks_events_v2(pd: FakePagerDuty, retry: RetryPolicy) -> None:
    adapter = pd_adapter(pd, retry)
    routing_key = next(iter(pd.routing_keys))
    ref = adapter.open(**OPEN, idempotency_key="incident:7")
    token = idempotency_token("incident:7")
    assert ref.id == token
    [trigger] = pd.received
    assert trigger.path == "/v2/enqueue"
    assert trigger.body == {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": token,
        "client": "Watchfloor",
        "payload": {"summary": OPEN["title"], "source": "checkout", "severity": "critical",
                    "custom_details": {"body": "340 alerts", "service": "checkout"}}}
    adapter.update(ref, "rolled back")
    adapter.route(ref, "payments")
    adapter.close(ref, "fixed")
    [alert] = pd.alerts
    assert alert.status == "resolved"
    assert [e["event_action"] for e in alert.log] == ["trigger"] * 4 + ["resolve"]
    assert [e.get("payload", {}).get("custom_details") for e in alert.log[1:4]] == [
        {"note": "rolled back"}, {"watchfloor_group": "payments"},
        {"resolution": "fixed", "success": True}]
    assert alert.log[-1] == {"routing_key": routing_key, "event_action": "resolve",
                             "dedup_key": token}


def test_pagerduty_validates_severity_before_sending(pd: FakePagerDuty,
                                                     retry: RetryPolicy) -> None:
    with pytest.raises(TicketError, match="unknown severity 'sev1'"):
        pd_adapter(pd, retry).open(**{**OPEN, "severity": "sev1"}, idempotency_key="k")
    assert pd.received == []


def test_pagerduty_retries_land_on_one_alert(pd: FakePagerDuty, retry: RetryPolicy,
                                             sleeps: Sleeps) -> None:
    pd.drop_next()
    pd.fail_next(1, status=429, retry_after="2")
    pd_adapter(pd, retry).open(**OPEN, idempotency_key="k")
    assert [r.outcome for r in pd.received] == ["dropped", "failed:429", "answered"]
    assert sleeps == [0.5, 2.0]
    assert len(pd.alerts) == 1


def test_pagerduty_bad_routing_key_and_bad_events_are_final(pd: FakePagerDuty,
                                                            retry: RetryPolicy) -> None:
    adapter = pd_adapter(pd, retry, key="not-a-key",
                         auth_hint="Store it with: watchfloor credentials set pagerduty "
                                   "--account default")
    with pytest.raises(TicketError, match=r"Invalid routing key\. Store it with: watchfloor "
                                          r"credentials set pagerduty"):
        adapter.open(**OPEN, idempotency_key="k")
    with pytest.raises(TicketError, match=r"HTTP 400\): Event object is invalid; "
                                          r"'payload.summary' is missing"):
        pd_adapter(pd, retry).open(**{**OPEN, "title": ""}, idempotency_key="k")
    assert len(pd.received) == 2
    assert pd.alerts == []


def test_pagerduty_changes_are_change_events(pd: FakePagerDuty, retry: RetryPolicy) -> None:
    gate = ChangeGate(pd_adapter(pd, retry))
    ref = gate.open_change("scale", "Scale out on cart", json.dumps({"target": "cart"}),
                           "exec:3")
    gate.close_change(ref, "validated", True)
    assert [r.path for r in pd.received] == ["/v2/change/enqueue"] * 2
    opened, closed = (e["payload"] for e in pd.change_events)
    assert opened["summary"] == "[scale] Scale out on cart"
    assert opened["source"] == "cart"
    assert opened["custom_details"]["phase"] == "starting"
    assert closed["summary"] == "[scale] Scale out on cart: succeeded"
    assert closed["custom_details"]["resolution"] == "validated"
    assert pd.alerts == []

"""Zabbix pulled: the poller asks a loopback Zabbix API (JSON-RPC, tests/zabbix_server.py)
for open problems; what it finds opens an incident about the right service, a problem
gone is resolved, and an API error is the source's degraded health, named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from console.domain import AlertStatus, Severity
from console.runtime import Runtime
from console.sources.providers.base import ProviderConfig
from console.sources.providers.zabbix import ZabbixProvider
from console.sources.providers.zabbix_api import ZabbixPoller
from tests.zabbix_server import TOKEN, ZabbixState, problem, zabbix_api

NOW = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)


def test_open_problems_become_an_incident_and_gone_ones_resolve(db_url: str) -> None:
    state = ZabbixState()
    state.problems = [problem("9001", "23310", "Disk space is low (used > 90%)",
                              tags=[{"tag": "service", "value": "search"}]),
                      problem("9002", "23311", "Zabbix agent is not available",
                              severity="3")]
    state.hosts = {"23310": {"hostid": "10084", "host": "srch-1", "name": "search-node-1"},
                   "23311": {"hostid": "10085", "host": "ldg-1", "name": "ledger"}}

    async def rounds(url: str) -> tuple[list, list]:
        async with httpx.AsyncClient() as client:
            poller = ZabbixPoller(client, url, TOKEN)
            first = await poller.poll(NOW)
            state.problems = state.problems[:1]
            second = await poller.poll(NOW)
            assert poller.health.state == "ok"
            return first, second

    with zabbix_api(state) as url, Runtime(db_url) as rt:
        first, second = asyncio.run(rounds(url))
        assert state.calls == ["problem.get", "trigger.get", "problem.get"]  # hosts kept
        rt.service.store(first, ())
        rt.receive(first, [])
        by_name = {s.name: s for s in first}
        disk = by_name["Disk space is low (used > 90%)"]
        # the service tag where there is one, else the host's visible name
        incidents = {i.services: i for i in rt.service.incidents()}
        assert set(incidents) == {("search",), ("ledger",)}
        refs = {n.ref for n in rt.service.incident_timeline(incidents[("search",)].id)}
        assert disk.fingerprint in refs
        assert (disk.source, disk.severity, disk.labels["host"]) == (
            "zabbix", Severity.CRITICAL, "search-node-1")
        assert disk.at == datetime(2026, 1, 5, 2, 12, tzinfo=UTC)
        assert by_name["Zabbix agent is not available"].severity == Severity.WARNING
        (gone,) = second
        assert (gone.name, gone.status, gone.at) == ("Zabbix agent is not available",
                                                     AlertStatus.RESOLVED, NOW)


def test_an_api_error_degrades_the_source_with_the_reason() -> None:
    state = ZabbixState()

    async def round_(url: str) -> tuple[list, str, str]:
        async with httpx.AsyncClient() as client:
            poller = ZabbixPoller(client, url, "wrong-token")
            signals = await poller.poll(NOW)
            return signals, poller.health.state, poller.health.last_error

    with zabbix_api(state) as url:
        signals, health, error = asyncio.run(round_(url))
    assert (signals, health) == ([], "degraded")
    assert error == "zabbix problem.get: Invalid params. Not authorized."


def test_a_malformed_problem_is_named() -> None:
    state = ZabbixState()
    state.problems = [problem("9001", "23310", "fine"), {**problem("9002", "1", "x"),
                                                         "clock": "yesterday"}]

    async def round_(url: str) -> str:
        async with httpx.AsyncClient() as client:
            poller = ZabbixPoller(client, url, TOKEN)
            assert await poller.poll(NOW) == []
            return poller.health.last_error

    with zabbix_api(state) as url:
        error = asyncio.run(round_(url))
    assert error.startswith("problem.get: result.1: not a valid Zabbix problem: clock:")


def test_health_asks_the_api_when_an_address_is_given() -> None:
    async def check(url: str) -> tuple[str, str]:
        provider = ZabbixProvider(ProviderConfig(urls={"zabbix": url}))
        async with httpx.AsyncClient() as client:
            health = await provider.check(client)
        return health.state, health.detail

    with zabbix_api(ZabbixState()) as url:
        assert asyncio.run(check(url)) == ("ok", f"{url}: Zabbix API 7.0.5")
    state, detail = asyncio.run(check(url))  # the server is gone now
    assert state == "degraded"
    assert "zabbix apiinfo.version" in detail


def test_the_leading_member_polls_zabbix_into_incidents(db_url: str) -> None:
    """`watchfloor node --zabbix URL` as the leader runs it: the poller starts with the
    other sources, and an open problem becomes an incident."""
    from console.leading import LeaderDuties
    from tests.test_deferred_correlation import _step_down, _until

    state = ZabbixState()
    state.problems = [problem("9001", "23310", "Disk space is low (used > 90%)",
                              tags=[{"tag": "service", "value": "search"}])]
    state.hosts = {"23310": {"hostid": "10084", "host": "srch-1", "name": "search-node-1"}}

    async def scenario(url: str) -> None:
        with Runtime(db_url) as runtime:
            runtime.loop = asyncio.get_running_loop()
            runtime.bus.bind_loop(runtime.loop)
            duties = LeaderDuties(runtime, "quiet-day", user="alice", mode="node",
                                  zabbix=(url, TOKEN), poll_interval=0.2)
            await duties.lead()
            try:
                await _until(lambda: any(i.services == ("search",)
                                         for i in runtime.service.incidents()), 60)
                assert "zabbix polling" in {t.get_name() for t in duties.tasks}
            finally:
                await _step_down(runtime, duties)

    with zabbix_api(state) as url:
        asyncio.run(scenario(url))
    assert state.calls[:2] == ["problem.get", "trigger.get"]


def test_node_refuses_zabbix_without_a_token(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    monkeypatch.delenv("WATCHFLOOR_ZABBIX_TOKEN", raising=False)
    assert main(["node", "--db", db_url, "--scenario", "quiet-day",
                 "--zabbix", "http://127.0.0.1:1/zabbix"]) == 2
    assert "$WATCHFLOOR_ZABBIX_TOKEN" in capsys.readouterr().err

"""Zabbix pulled: the API's `problem.get` over JSON-RPC, polled like Alertmanager's.

Each round asks for the open problems with their tags (`problem.get`, `recent` false:
only what is unresolved), then, for the problems whose trigger's host is not yet known,
`trigger.get` with `selectHosts` (a problem names its trigger, not its host). A problem
seen for the first time is a firing signal, one gone since the last round a resolved
one, as the Alertmanager poller does. The API token goes in the Authorization header
(Zabbix 6.4 and later); a JSON-RPC error is the source's failure, named, and the rounds
back off (console/sources/clients.py SourceHealth).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.domain import AlertStatus, Signal
from console.sources.alertmanager import MAX_ALERTS, MAX_NAME, PayloadError, Text, explain
from console.sources.clients import SourceError, SourceHealth
from console.sources.providers.zabbix import ZabbixTag, problem_signal
from console.sources.timestamps import to_utc

_ids = itertools.count(1)


class Problem(BaseModel):
    """One element of `problem.get`'s result (numbers come as text, as Zabbix sends)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    eventid: Text = Field(pattern=r"^[0-9]{1,20}$")
    source: Text = Field("0", pattern=r"^[0-9]$")
    object: Text = Field("0", pattern=r"^[0-9]$")
    objectid: Text = Field(pattern=r"^[0-9]{1,20}$")
    clock: Text = Field(pattern=r"^[0-9]{1,12}$")
    name: Text = Field(min_length=1, max_length=MAX_NAME)
    severity: Text = Field(pattern=r"^[0-5]$")
    suppressed: Text = Field("0", pattern=r"^[01]$")
    acknowledged: Text = Field("0", pattern=r"^[01]$")
    tags: list[ZabbixTag] = Field([], max_length=64)


def parse_problems(result: Any) -> list[Problem]:
    """`problem.get`'s result; PayloadError naming the element that is not a problem."""
    if not isinstance(result, list):
        raise PayloadError("problem.get: result: expected a list of problems")
    if len(result) > MAX_ALERTS:
        raise PayloadError(f"problem.get: at most {MAX_ALERTS} problems, got {len(result)}")
    out = []
    for index, item in enumerate(result):
        try:
            out.append(Problem.model_validate(item))
        except ValidationError as exc:
            raise PayloadError(f"problem.get: result.{index}: "
                               + explain(exc, "Zabbix problem")) from None
    return out


def problem_to_signal(problem: Problem, host: str, *, firing: bool = True,
                      at: datetime | None = None) -> Signal:
    when = at or to_utc(datetime.fromtimestamp(int(problem.clock), UTC))
    notes = {"zabbix_event": problem.eventid}
    if problem.suppressed == "1":
        notes["zabbix_suppressed"] = "yes"
    return problem_signal(name=problem.name, host=host, level=int(problem.severity),
                          firing=firing, at=when, tags=list(problem.tags),
                          trigger=problem.objectid if problem.object == "0" else None,
                          notes=notes)


class ZabbixPoller:
    """Polls one Zabbix frontend (`base_url`, e.g. http://zabbix.example/zabbix)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str, *,
                 timeout: float = 10.0) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/api_jsonrpc.php"
        self.token = token
        self.timeout = timeout
        self.health = SourceHealth("zabbix")
        self._hosts: dict[str, str] = {}  # trigger id -> host's visible name
        self._active: dict[str, Signal] = {}

    async def call(self, method: str, params: dict[str, Any], *, token: bool = True) -> Any:
        """One JSON-RPC call; `token`: whether the method needs the API token (Zabbix
        refuses one on apiinfo.version)."""
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}
        what = f"zabbix {method}"
        headers = {"Content-Type": "application/json-rpc"}
        if token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            answer = await self.client.post(self.url, json=request, timeout=self.timeout,
                                            headers=headers)
        except httpx.TimeoutException:
            raise SourceError(f"{what}: no answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{what}: {type(exc).__name__}: {exc}") from None
        try:
            body = answer.json()
        except ValueError:
            raise SourceError(f"{what}: answer is not JSON (HTTP {answer.status_code})") \
                from None
        if not isinstance(body, dict):
            raise SourceError(f"{what}: answer is not a JSON-RPC object")
        error = body.get("error")
        if isinstance(error, dict):
            raise SourceError(f"{what}: {error.get('message', 'error')} "
                              f"{error.get('data', '')}".rstrip())
        if answer.status_code >= 400 or "result" not in body:
            raise SourceError(f"{what}: HTTP {answer.status_code}, no result")
        return body["result"]

    async def problems(self) -> list[tuple[Problem, str]]:
        result = await self.call("problem.get", {
            "output": "extend", "selectTags": "extend", "recent": False,
            "sortfield": ["eventid"], "sortorder": "ASC"})
        problems = parse_problems(result)
        unknown = sorted({p.objectid for p in problems if p.object == "0"} - set(self._hosts))
        if unknown:
            triggers = await self.call("trigger.get", {
                "triggerids": unknown, "output": ["triggerid"],
                "selectHosts": ["host", "name"]})
            for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
                hosts = trigger.get("hosts") if isinstance(trigger, dict) else None
                if not isinstance(hosts, list) or not hosts or not isinstance(hosts[0], dict):
                    raise PayloadError(f"trigger.get: result.{index}: no hosts")
                name = hosts[0].get("name") or hosts[0].get("host")
                if not isinstance(name, str) or not name or len(name) > MAX_NAME:
                    raise PayloadError(f"trigger.get: result.{index}.hosts.0: no usable name")
                self._hosts[str(trigger.get("triggerid"))] = name
        return [(p, self._hosts.get(p.objectid, "zabbix")) for p in problems]

    async def poll(self, now: datetime) -> list[Signal]:
        """New problems (firing) and problems gone since the last round (resolved)."""
        if not self.health.due():
            return []
        try:
            current = await self.problems()
        except (SourceError, PayloadError) as exc:
            self.health.failed(str(exc))
            return []
        self.health.succeeded()
        seen = {p.eventid: problem_to_signal(p, host) for p, host in current}
        out = [sig for event, sig in seen.items() if event not in self._active]
        for event, old in self._active.items():
            if event not in seen:
                out.append(Signal(old.source, old.kind, old.name, old.service, old.severity,
                                  AlertStatus.RESOLVED, now, old.labels, old.annotations,
                                  old.fingerprint))
        self._active = seen
        return out

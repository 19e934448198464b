"""ServiceNow over its Table API (basic auth).

- open:   POST /api/now/table/incident | /api/now/table/change_request
- update: PATCH /api/now/table/{table}/{sys_id} with work_notes
- route:  PATCH ... with assignment_group
- close:  PATCH ... with state, close_code and close_notes (incident: state 6, Resolved;
          change_request: state 3, Closed — the instance's change model must allow that
          move through the API, or closing reports ServiceNow's refusal)

Every answer is {"result": {...}} (a list for queries); errors are
{"error": {"message", "detail"}, "status": "failure"}.

ServiceNow has no idempotency header, so a create first asks for a record whose
correlation_id is our token (GET ...?sysparm_query=correlation_id=TOKEN&sysparm_limit=1)
and returns it if found; the record made sets correlation_id to that token. Look-up and
create are retried together, so a create whose response was lost is found next time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from console.itsm.base import TicketError, TicketKind, TicketRef
from console.itsm.http import (
    HttpApi,
    RetryPolicy,
    check_ref,
    check_severity,
    idempotency_token,
    json_of,
)

NAME = "servicenow"
# severity -> (impact, urgency); ServiceNow derives the priority from the pair
IMPACT_URGENCY = {"critical": ("1", "1"), "error": ("2", "2"), "warning": ("2", "3"),
                  "info": ("3", "3")}


@dataclass(frozen=True)
class ServiceNowOptions:
    incident_table: str = "incident"
    change_table: str = "change_request"
    change_type: str = "normal"
    assignment_group: str = ""  # routed there on open when set
    incident_close_code: str = "Solution provided"
    incident_fail_code: str = "No resolution provided"
    change_close_code: str = "successful"
    change_fail_code: str = "unsuccessful"


def error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return response.text[:300].strip()
    parts = [str(error.get(k)) for k in ("message", "detail") if error.get(k)]
    return ": ".join(parts)


class ServiceNowAdapter:
    name = NAME

    def __init__(self, url: str, username: str, secret: Callable[[], str], *,
                 options: ServiceNowOptions | None = None, retry: RetryPolicy | None = None,
                 auth_hint: str = "") -> None:
        self.url = url.rstrip("/")
        self.options = options or ServiceNowOptions()
        self.api = HttpApi(NAME, self.url, retry=retry, username=username, secret=secret,
                           error_text=error_text, auth_hint=auth_hint)

    def close_client(self) -> None:
        self.api.close()

    def _table(self, kind: str) -> str:
        return self.options.change_table if kind == "change" else self.options.incident_table

    def _ref(self, kind: TicketKind, table: str, record: Mapping[str, Any]) -> TicketRef:
        sys_id = str(record.get("sys_id", ""))
        if not sys_id:
            raise TicketError(f"{NAME}: the answer from table {table} has no sys_id")
        return TicketRef(NAME, sys_id, kind,
                         f"{self.url}/nav_to.do?uri={quote(f'{table}.do?sys_id={sys_id}')}",
                         {"number": str(record.get("number", "")), "table": table})

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef:
        severity = check_severity(NAME, severity)
        table = self._table(kind)
        token = idempotency_token(idempotency_key)
        impact, urgency = IMPACT_URGENCY[severity]
        record: dict[str, Any] = {
            "short_description": title[:160], "description": _description(body, service),
            "impact": impact, "urgency": urgency, "correlation_id": token,
            "correlation_display": "Watchfloor"}
        if kind == "change":
            record["type"] = self.options.change_type
        if self.options.assignment_group:
            record["assignment_group"] = self.options.assignment_group
        path = f"/api/now/table/{table}"

        def find_or_create() -> TicketRef:
            found = self.api.once("GET", path, params={
                "sysparm_query": f"correlation_id={token}", "sysparm_limit": 1,
                "sysparm_fields": "sys_id,number,state"})
            existing = json_of(NAME, found).get("result") or []
            if existing:
                return self._ref(kind, table, existing[0])
            created = self.api.once("POST", path, body=record)
            return self._ref(kind, table, json_of(NAME, created).get("result") or {})

        return self.api.retrying(find_or_create, f"open a {table} record")

    def _patch(self, ref: TicketRef, fields: Mapping[str, Any]) -> None:
        check_ref(NAME, ref)
        table = str(ref.extra.get("table") or self._table(ref.kind))
        self.api.request("PATCH", f"/api/now/table/{table}/{quote(ref.id, safe='')}",
                         body=dict(fields))

    def update(self, ref: TicketRef, note: str) -> None:
        self._patch(ref, {"work_notes": note})

    def route(self, ref: TicketRef, group: str) -> None:
        self._patch(ref, {"assignment_group": group})

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        o = self.options
        if ref.kind == "change":
            code = o.change_close_code if success else o.change_fail_code
            fields = {"state": "3", "close_code": code, "close_notes": resolution}
        else:
            code = o.incident_close_code if success else o.incident_fail_code
            fields = {"state": "6", "close_code": code, "close_notes": resolution}
        self._patch(ref, fields)


def _description(body: str, service: str) -> str:
    return f"{body}\n\nService: {service}\n(opened by Watchfloor)" if service else body

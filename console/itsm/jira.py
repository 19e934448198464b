"""Jira over REST API v2 (basic auth with the account's email and an API token).

- open:   POST /rest/api/2/issue {"fields": {project, summary, description, issuetype,
          labels}} -> 201 {"id", "key", "self"}
- update: POST /rest/api/2/issue/{key}/comment {"body"}
- route:  PUT /rest/api/2/issue/{key} setting the issue's component to the group (the
          default, since components are how Jira projects name owning teams and a group
          is no user to assign), or adding the label "wf-group-<group>" (`route_by:
          label`, for projects without components)
- close:  GET /rest/api/2/issue/{key}/transitions, then POST the transition named like
          `close_transition` ("Done") with the resolution as a comment; an issue whose
          status is already in the "done" category is left as it is
Errors are {"errorMessages": [...], "errors": {field: message}}.

Idempotency: the issue made carries the label "wf-<token>"; a create first searches
for it (GET /rest/api/2/search?jql=labels = "wf-<token>") and returns what it finds.
Jira's search index can lag a create by a moment, so a lost response that is retried
at once may, rarely, still make a second issue; the label makes such a twin easy to find.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
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

NAME = "jira"


@dataclass(frozen=True)
class JiraOptions:
    project: str
    incident_type: str = "Task"
    change_type: str = "Task"
    close_transition: str = "Done"
    route_by: Literal["component", "label"] = "component"
    assignment_group: str = ""  # routed there on open when set


def label(text: str) -> str:
    """Jira labels may not contain spaces."""
    return re.sub(r"\s+", "-", text.strip())[:255]


def error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        messages = [str(m) for m in data.get("errorMessages") or []]
        messages += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
    except (ValueError, AttributeError):
        return response.text[:300].strip()
    return "; ".join(messages)


class JiraAdapter:
    name = NAME

    def __init__(self, url: str, email: str, secret: Callable[[], str], *,
                 options: JiraOptions, retry: RetryPolicy | None = None,
                 auth_hint: str = "") -> None:
        self.url = url.rstrip("/")
        self.options = options
        self.api = HttpApi(NAME, self.url, retry=retry, username=email, secret=secret,
                           error_text=error_text, auth_hint=auth_hint)

    def close_client(self) -> None:
        self.api.close()

    def _ref(self, kind: TicketKind, issue: dict[str, Any]) -> TicketRef:
        key = str(issue.get("key", ""))
        if not key:
            raise TicketError(f"{NAME}: the answer has no issue key")
        return TicketRef(NAME, key, kind, f"{self.url}/browse/{key}",
                         {"id": str(issue.get("id", ""))})

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef:
        severity = check_severity(NAME, severity)
        o = self.options
        token = idempotency_token(idempotency_key)
        labels = ["watchfloor", token, f"severity-{severity}"]
        if service:
            labels.append(label(f"service-{service}"))
        fields: dict[str, Any] = {
            "project": {"key": o.project}, "summary": title[:255],
            "description": f"{body}\n\nService: {service}" if service else body,
            "issuetype": {"name": o.change_type if kind == "change" else o.incident_type},
            "labels": labels}
        if o.assignment_group:
            if o.route_by == "component":
                fields["components"] = [{"name": o.assignment_group}]
            else:
                labels.append(label(f"wf-group-{o.assignment_group}"))

        def find_or_create() -> TicketRef:
            found = self.api.once("GET", "/rest/api/2/search", params={
                "jql": f'labels = "{token}"', "maxResults": 1, "fields": "summary"})
            issues = json_of(NAME, found).get("issues") or []
            if issues:
                return self._ref(kind, issues[0])
            created = self.api.once("POST", "/rest/api/2/issue", body={"fields": fields})
            return self._ref(kind, json_of(NAME, created))

        return self.api.retrying(find_or_create, f"open an issue in {o.project}")

    def _issue(self, ref: TicketRef) -> str:
        check_ref(NAME, ref)
        return f"/rest/api/2/issue/{quote(ref.id, safe='')}"

    def update(self, ref: TicketRef, note: str) -> None:
        self.api.request("POST", f"{self._issue(ref)}/comment", body={"body": note})

    def route(self, ref: TicketRef, group: str) -> None:
        if self.options.route_by == "component":
            change: dict[str, Any] = {"components": [{"set": [{"name": group}]}]}
        else:
            change = {"labels": [{"add": label(f"wf-group-{group}")}]}
        self.api.request("PUT", self._issue(ref), body={"update": change})

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        path = self._issue(ref)
        wanted = self.options.close_transition
        comment = f"{'Resolved' if success else 'Closed, not resolved'}: {resolution}"

        def close_once() -> None:
            issue = json_of(NAME, self.api.once("GET", path, params={"fields": "status"}))
            status = (issue.get("fields") or {}).get("status") or {}
            if (status.get("statusCategory") or {}).get("key") == "done":
                return  # closed already (by us, on an attempt whose answer was lost)
            options = json_of(NAME, self.api.once("GET", f"{path}/transitions"))
            transitions = options.get("transitions") or []
            chosen = next((t for t in transitions
                           if wanted.casefold() in (str(t.get("name", "")).casefold(),
                                                    str((t.get("to") or {}).get("name", ""))
                                                    .casefold())), None)
            if chosen is None:
                names = ", ".join(str(t.get("name")) for t in transitions) or "none"
                raise TicketError(f"{NAME}: {ref.id} has no transition {wanted!r} from "
                                  f"status {status.get('name')!r} (available: {names}); "
                                  "set close_transition in the ticket config")
            self.api.once("POST", f"{path}/transitions", body={
                "transition": {"id": str(chosen["id"])},
                "update": {"comment": [{"add": {"body": comment}}]}})

        self.api.retrying(close_once, f"close {ref.id}")

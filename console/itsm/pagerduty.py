"""PagerDuty over the Events API v2; the routing (integration) key is the credential.

- open (incident): POST /v2/enqueue {"routing_key", "event_action": "trigger",
  "dedup_key", "payload": {"summary", "source", "severity", "custom_details"}}
  -> 202 {"status": "success", "message": "Event processed", "dedup_key"}
- update: trigger again with the same dedup_key and the note in custom_details (PagerDuty
  adds it to the open alert's log)
- route: PagerDuty routes by its own service and orchestration rules, not by a group we
  name; route() re-triggers with custom_details.watchfloor_group = GROUP, which an Event
  Orchestration rule can route on
- close: a trigger carrying the resolution, then "resolve"
Errors are 400 {"status": "invalid event", "message", "errors": [...]}; a bad routing
key is such a 400 ("Invalid routing key"), not a 401.

The dedup_key is our idempotency token, so a retried trigger (even one whose response
was lost) lands on the same alert: PagerDuty deduplicates it.

PagerDuty has no change requests. A change (kind "change", what the ChangeGate opens)
is sent as a change event, POST /v2/change/enqueue {"routing_key", "payload": {"summary",
"source", "timestamp", "custom_details"}} -> 202 {"status": "success", "message": "Change
event processed"}, shown on the service's timeline; closing sends a second change event
with the outcome. Change events cannot be updated, resolved or deduplicated: a retry
after a lost response may show the same change twice on that timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from console.itsm.base import TicketError, TicketKind, TicketRef
from console.itsm.http import (
    HttpApi,
    RetryPolicy,
    check_ref,
    check_severity,
    idempotency_token,
)

NAME = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com"


def error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        parts = [str(data.get("message") or "")] + [str(e) for e in data.get("errors") or []]
    except (ValueError, AttributeError):
        return response.text[:300].strip()
    return "; ".join(p for p in parts if p)


class PagerDutyAdapter:
    name = NAME

    def __init__(self, routing_key: Callable[[], str], *, url: str = DEFAULT_URL,
                 source: str = "watchfloor", retry: RetryPolicy | None = None,
                 auth_hint: str = "") -> None:
        self._routing_key = routing_key
        self.source = source
        self.url = url.rstrip("/")
        self.api = HttpApi(NAME, self.url, retry=retry, error_text=error_text,
                           auth_hint=auth_hint)
        self._auth_hint = auth_hint

    def close_client(self) -> None:
        self.api.close()

    def _send(self, path: str, event: Mapping[str, Any]) -> None:
        body = {"routing_key": self._routing_key(), **event}
        try:
            self.api.request("POST", path, body=body)
        except TicketError as exc:
            if "routing key" in str(exc).lower() and self._auth_hint:
                raise TicketError(f"{exc}. {self._auth_hint}") from None
            raise

    def _change_event(self, summary: str, source: str, details: Mapping[str, Any]) -> None:
        self._send("/v2/change/enqueue", {"payload": {
            "summary": summary[:1024], "source": source or self.source,
            "timestamp": datetime.now(UTC).isoformat(), "custom_details": dict(details)}})

    def _trigger(self, ref: TicketRef, details: Mapping[str, Any],
                 summary: str | None = None) -> None:
        if summary is None:  # a follow-up: the alert's own summary, as far as we know it
            summary = str(ref.extra.get("summary") or f"Watchfloor alert {ref.id}")
        self._send("/v2/enqueue", {
            "event_action": "trigger", "dedup_key": ref.id, "client": "Watchfloor",
            "payload": {"summary": summary[:1024],
                        "source": str(ref.extra.get("source") or self.source),
                        # a ref rebuilt from storage has lost it: warning neither pages
                        # as critical nor hides the alert
                        "severity": str(ref.extra.get("severity") or "warning"),
                        "custom_details": dict(details)}})

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef:
        token = idempotency_token(idempotency_key)
        source = service or self.source
        if kind == "change":
            self._change_event(title, source, {"details": body, "watchfloor_key": token,
                                               "phase": "starting"})
            return TicketRef(NAME, token, "change", "", {"summary": title, "source": source})
        severity = check_severity(NAME, severity)
        ref = TicketRef(NAME, token, "incident", "",
                        {"summary": title, "source": source, "severity": severity})
        self._trigger(ref, {"body": body, "service": service}, title)
        return ref

    def update(self, ref: TicketRef, note: str) -> None:
        check_ref(NAME, ref)
        if ref.kind == "change":
            self._change_event(f"Update: {note}", str(ref.extra.get("source", "")),
                               {"watchfloor_key": ref.id, "note": note})
            return
        self._trigger(ref, {"note": note})

    def route(self, ref: TicketRef, group: str) -> None:
        check_ref(NAME, ref)
        if ref.kind == "change":
            return  # a change event has no owner to route to
        self._trigger(ref, {"watchfloor_group": group})

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        check_ref(NAME, ref)
        outcome = "succeeded" if success else "failed"
        if ref.kind == "change":
            summary = str(ref.extra.get("summary") or ref.id)
            self._change_event(f"{summary}: {outcome}", str(ref.extra.get("source", "")),
                               {"watchfloor_key": ref.id, "phase": "finished",
                                "outcome": outcome, "resolution": resolution})
            return
        if resolution:
            self._trigger(ref, {"resolution": resolution, "success": success})
        self._send("/v2/enqueue", {"event_action": "resolve", "dedup_key": ref.id})

"""Audit what Watchfloor asks of an external ticketing system, whether it worked or not.

The built-in store audits its own changes in the same transaction as the change; an
external system's changes happen elsewhere, so this wrapper writes one audit record per
call after the answer (or the failure) comes back. Only what we sent and what we got
back is recorded, never a credential: adapters read those from the keyring per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from console.itsm.base import TicketError, TicketKind, TicketRef, TicketSystem

if TYPE_CHECKING:
    from console.service import WatchfloorService

T = TypeVar("T")
ACTOR = "system:tickets"


class AuditedTickets:
    def __init__(self, inner: TicketSystem, service: WatchfloorService, *,
                 actor: str = ACTOR) -> None:
        self.inner = inner
        self.name = inner.name
        self._service = service
        self._actor = actor

    def close_client(self) -> None:
        """Close the adapter's HTTP client (at shutdown)."""
        closer = getattr(self.inner, "close_client", None)
        if closer is not None:
            closer()

    def _call(self, action: str, target: str, inputs: Mapping[str, Any],
              call: Callable[[], T], outputs: Callable[[T], Mapping[str, Any]]) -> T:
        target = target[:200]
        try:
            result = call()
        except TicketError as exc:
            self._service.record(actor=self._actor, action=f"{action}.failed", target=target,
                                 reason=str(exc)[:2000], inputs=inputs)
            raise
        self._service.record(actor=self._actor, action=action, target=target, inputs=inputs,
                             outputs=outputs(result))
        return result

    def open(self, *, kind: TicketKind, title: str, body: str, service: str,
             severity: str, idempotency_key: str) -> TicketRef:
        inputs = {"kind": kind, "title": title, "service": service, "severity": severity,
                  "idempotency_key": idempotency_key}

        def outputs(ref: TicketRef) -> Mapping[str, Any]:
            return {"system": ref.system, "id": ref.id, "url": ref.url, "extra": ref.extra}

        return self._call("ticket.open", f"{self.name}:{idempotency_key}", inputs,
                          lambda: self.inner.open(kind=kind, title=title, body=body,
                                                  service=service, severity=severity,
                                                  idempotency_key=idempotency_key),
                          outputs)

    def update(self, ref: TicketRef, note: str) -> None:
        self._call("ticket.update", f"{ref.system}:{ref.id}", {"note": note},
                   lambda: self.inner.update(ref, note), _nothing)

    def route(self, ref: TicketRef, group: str) -> None:
        self._call("ticket.route", f"{ref.system}:{ref.id}", {"group": group},
                   lambda: self.inner.route(ref, group), _nothing)

    def close(self, ref: TicketRef, resolution: str, *, success: bool = True) -> None:
        self._call("ticket.close", f"{ref.system}:{ref.id}",
                   {"resolution": resolution, "success": success},
                   lambda: self.inner.close(ref, resolution, success=success), _nothing)


def _nothing(_: None) -> Mapping[str, Any]:
    return {}

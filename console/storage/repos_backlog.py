"""The correlation backlog's reads and writes (console/correlation.py says why it exists)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from console.storage.models import CorrelationBacklogRow, InboundPayloadRow


class BacklogRepo:
    def add(self, session: Session, delivery_id: int, queued_at: datetime) -> None:
        session.add(CorrelationBacklogRow(delivery_id=delivery_id, queued_at=queued_at))

    def settle(self, session: Session, delivery_ids: Iterable[int]) -> int:
        ids = list(delivery_ids)
        if not ids:
            return 0
        result: Any = session.execute(delete(CorrelationBacklogRow)
                                      .where(CorrelationBacklogRow.delivery_id.in_(ids)))
        return int(result.rowcount or 0)

    def pending(self, session: Session, limit: int,
                after: int = 0) -> list[tuple[int, str, Any, int]]:
        """The oldest `limit` deliveries waiting after delivery `after`, oldest first:
        (id, source, stored body, how many signals it was stored with)."""
        rows = session.execute(
            select(InboundPayloadRow.id, InboundPayloadRow.source, InboundPayloadRow.body,
                   InboundPayloadRow.signals)
            .join(CorrelationBacklogRow,
                  CorrelationBacklogRow.delivery_id == InboundPayloadRow.id)
            .where(InboundPayloadRow.id > after).order_by(InboundPayloadRow.id).limit(limit))
        return [(int(i), str(source), body, int(n)) for i, source, body, n in rows]

    def count(self, session: Session) -> int:
        return int(session.scalar(select(func.count())
                                  .select_from(CorrelationBacklogRow)) or 0)

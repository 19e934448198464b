"""Exporting the audit log as a version 2 bundle in one streaming pass.

The records are read as `audit verify` reads them (console/audit_stream.py): raw rows
from the driver's cursor, each record's canonical body built by the database itself, a
batch at a time, and written to the bundle as they come; nothing holds the whole log.
A record the database cannot splice, or whose spliced body does not hash to its stored
hash (written before JSON was stored canonically, or changed since), is read field by
field and serialized here in the canonical form, so the bundle carries what the
database holds and its verification judges it. One whose fields no honest writer
produces stops the export naming it, and no file is left behind.

A window's export of a long log takes a while: it is told how far the pass has come
after each batch (`progress`) and asked whether to stop (`cancelled`); a stopped export
raises `ExportCancelled` and leaves no file either.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.audit import AuditLog
from console.audit_bundle_file import BundleWriter
from console.audit_chain import UnreadableRecord, field_problem
from console.audit_form import canonical_json, record_body
from console.audit_stream import STREAM_BATCH, batches, parsed, raw_columns, spliced_query
from console.storage.models import AuditRow

_table = AuditRow.__table__

Progress = Callable[[int, int], None]  # (records written, records the head counts)


class ExportCancelled(Exception):
    """The export was stopped on request; nothing was written."""


def _slow_body(session: Session, dialect: str, seq: int, last: int,
               cache: dict[int, tuple[Any, ...]]) -> bytes:
    if seq not in cache:  # the rest of the batch at once: an old log takes this path often
        cache.clear()
        cache.update({r[0]: tuple(r) for r in session.execute(
            select(*raw_columns(dialect)).where(_table.c.seq.between(seq, last))
            .order_by(_table.c.seq))})
    rec = parsed(cache[seq])
    problem = field_problem(rec)
    if problem is not None:
        raise UnreadableRecord(seq, *problem)
    return canonical_json(record_body(rec)).encode()


def export_stream(session: Session, out: Path, key: Ed25519PrivateKey, *,
                  source: str, batch: int = STREAM_BATCH, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Write every record to `out` and sign the manifest; returns the manifest.
    UnreadableRecord names a record that cannot be exported, ExportCancelled says it
    was stopped (either way nothing is written)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # one snapshot: the head and the records agree
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    head = AuditLog().head(session)
    writer = BundleWriter(out, key, source=source)
    total = int(head["count"]) if head and isinstance(head.get("count"), int) else 0
    try:
        raw: dict[int, tuple[Any, ...]] = {}
        for rows in batches(session, spliced_query(dialect, False, batch), 0):
            last = rows[-1][0]
            for seq, _prev, hash_, body in rows:
                if body is None or sha256(body).hexdigest() != hash_:
                    # not stored canonically (or changed): the record's own fields, in
                    # canonical form, which the bundle's verification then judges
                    body = _slow_body(session, dialect, seq, last, raw)
                writer.add(int(seq), str(hash_), bytes(body))
            if cancelled is not None and cancelled():
                raise ExportCancelled(f"export to {out} cancelled; nothing was written")
            if progress is not None:
                progress(writer.count, total)
        return writer.finish(head)
    except BaseException:
        writer.abort()
        raise

"""The append-only, hash-chained audit log and its signed export bundle.

Each record holds the SHA-256 of the previous record and its own hash over a canonical
JSON serialization of every field (sorted keys, no whitespace, UTC timestamps with
microseconds), so changing any field, deleting or inserting a record breaks the chain
at that point. Deleting the newest records leaves no gap behind them, so the chain head
(count and last hash) is kept beside the records, written in the same transaction, and
checked by `verify`. Whoever can write the records can write that head too, so the
chain is also anchored outside the database by signed checkpoints
(console/audit_anchor.py) and held against the rows written with its records
(console/audit_checks.py). Bundles are signed with an Ed25519 key from the user config
directory and can be verified with no database. A record whose stored fields no honest
writer produces (bytes where text belongs) is reported by name, never hashed blindly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Table, insert, select, update
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from console.audit_chain import (
    GENESIS,
    OBJECT_FIELDS,
    TEXT_FIELDS,
    RecordCheck,
    UnreadableRecord,
    VerifyResult,
    field_problem,
    head_problem,
    verify_one,
    verify_records,
)
from console.audit_form import (
    HASHED_FIELDS,
    canonical_json,
    format_time,
    plain,
    record_body,
    record_hash,
)
from console.audit_stream import verify_stream
from console.domain import AuditEntry
from console.storage.models import AuditRow, SettingRow

__all__ = [  # the chain's walk lives in console/audit_chain.py; its callers import it here
    "GENESIS", "OBJECT_FIELDS", "TEXT_FIELDS", "RecordCheck", "UnreadableRecord",
    "VerifyResult", "field_problem", "head_problem", "verify_one", "verify_records",
]

HEAD_KEY = "audit.head"
BUNDLE_FORMAT = "watchfloor-audit-bundle"
BUNDLE_VERSION = 1
# session.info, only during the flush `append_many` ends with: (actor, action, target) of
# the records it inserted without ORM objects. Whoever counts the records a unit of work
# appends from `session.new` in a before_flush listener (the checkpoints, the change feed)
# adds these: `appended_in_flush`.
BULK_APPENDED = "watchfloor.audit.bulk_appended"


def _rows_up_to_the_unreadable(session: Session, after: int, batch: int) -> list[AuditRow]:
    """Read one row at a time: the readable rows before the bad one, then UnreadableRecord
    naming the bad one and which of its columns fails to load."""
    table = AuditRow.__table__
    seqs = session.scalars(select(table.c.seq).where(table.c.seq > after)
                           .order_by(table.c.seq).limit(batch)).all()
    rows: list[AuditRow] = []
    for seq in seqs:
        try:
            row = session.scalars(select(AuditRow).where(AuditRow.seq == seq)).one()
        except (TypeError, ValueError):
            session.rollback()
            if rows:  # the good ones first; the next batch starts at the bad one
                return rows
            for column in table.c:
                try:
                    session.execute(select(column).where(table.c.seq == seq)).one()
                except (TypeError, ValueError) as exc:
                    session.rollback()
                    raw = session.execute(select(sql_column(column.name)).select_from(table)
                                          .where(table.c.seq == seq)).scalar()
                    raise UnreadableRecord(int(seq), column.name, _why(raw, exc)) from None
            raise UnreadableRecord(int(seq), "?", "cannot be read") from None
        rows.append(row)
    return rows


def _why(raw: Any, exc: Exception) -> str:
    if isinstance(raw, (bytes, bytearray, memoryview)):  # a BLOB where text is stored
        return "is not text (bytes)"
    return f"cannot be read ({str(exc)[:120] or type(exc).__name__})"


def _row_fields(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq, "at": row.at, "actor": row.actor, "action": row.action,
        "target": row.target, "reason": row.reason, "inputs": row.inputs,
        "outputs": row.outputs, "decision": row.decision, "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _entry(fields: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(**{k: fields[k] for k in (*HASHED_FIELDS, "hash")})


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """A record to append, as its writer says it; the chain gives it seq and hashes."""

    actor: str
    action: str
    target: str = ""
    reason: str = ""
    inputs: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    decision: str = "n/a"
    at: datetime | None = None


def appended_in_flush(session: Session) -> list[tuple[str, str, str]]:
    """(actor, action, target) of every audit record the flush under way writes: the
    ORM's new rows and what `append_many` inserted (for before_flush listeners)."""
    found = [(obj.actor, obj.action, obj.target) for obj in session.new
             if isinstance(obj, AuditRow)]
    found.extend(session.info.get(BULK_APPENDED, ()))
    return found


def _lock_head(session: Session) -> SettingRow | None:
    """The chain head's row, locked until the caller's transaction ends (None before the
    first record), so appenders in other threads, processes or team members wait for
    this one and then number after it."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE; a write statement first takes its write lock, so
        # a second appender (another thread, another console) waits here and then
        # reads the head this one committed, instead of numbering the same seq twice.
        # (On the table: the ORM would also look for the row among loaded objects.)
        settings = cast(Table, SettingRow.__table__)
        session.execute(update(settings).where(settings.c.key == HEAD_KEY)
                        .values(key=settings.c.key))
    elif session.get_bind().dialect.name == "postgresql":
        # FOR UPDATE locks only a row that exists: two first appenders would both find
        # no head and both write record 1. Making the head first (a no-op once it
        # exists; a second maker waits for the first to commit) leaves a row to lock.
        session.execute(pg_insert(SettingRow)
                        .values(key=HEAD_KEY, value={"count": 0, "hash": GENESIS})
                        .on_conflict_do_nothing(index_elements=[SettingRow.key]))
    return session.get(SettingRow, HEAD_KEY, with_for_update=True, populate_existing=True)


def _chained(draft: AuditDraft, seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored fields of `draft` as record `seq`, after the record hashed `prev_hash`:
    the one place a record joins the chain, for `append` and `append_many` alike."""
    fields: dict[str, Any] = {
        "seq": seq, "at": (draft.at or datetime.now(UTC)).astimezone(UTC),
        "actor": draft.actor, "action": draft.action, "target": draft.target,
        "reason": draft.reason, "inputs": plain(dict(draft.inputs or {})),
        "outputs": plain(dict(draft.outputs or {})), "decision": draft.decision,
        "prev_hash": prev_hash,
    }
    fields["hash"] = record_hash(fields)
    return fields


def _move_head(session: Session, head_row: SettingRow | None, last: Mapping[str, Any]) -> None:
    new_head = {"count": last["seq"], "hash": last["hash"]}
    if head_row is None:
        session.add(SettingRow(key=HEAD_KEY, value=new_head))
    else:
        head_row.value = new_head


class AuditLog:
    """Appends to and verifies the chain inside the caller's unit of work."""

    def append(self, session: Session, *, actor: str, action: str, target: str = "",
               reason: str = "", inputs: Mapping[str, Any] | None = None,
               outputs: Mapping[str, Any] | None = None, decision: str = "n/a",
               at: datetime | None = None) -> AuditEntry:
        if not actor or not action:
            raise ValueError("an audit record needs an actor and an action")
        draft = AuditDraft(actor, action, target, reason, inputs, outputs, decision, at)
        head_row = _lock_head(session)
        head: dict[str, Any] = (dict(head_row.value) if head_row is not None
                                else {"count": 0, "hash": GENESIS})
        fields = _chained(draft, int(head["count"]) + 1, head["hash"])
        session.add(AuditRow(**fields))
        _move_head(session, head_row, fields)
        session.flush()
        return _entry(fields)

    def append_many(self, session: Session, drafts: Iterable[AuditDraft]) -> list[AuditEntry]:
        """`append` for a batch, in order, into the same chain: the head is locked once
        and the records go in one insert (a correlation that opens thousands of
        incidents audits each, and a lock, an ORM object and a flush per record were
        most of its time). Nothing is written when any draft lacks an actor or action."""
        drafts = list(drafts)
        if not drafts:
            return []
        if any(not d.actor or not d.action for d in drafts):
            raise ValueError("an audit record needs an actor and an action")
        head_row = _lock_head(session)
        head: dict[str, Any] = (dict(head_row.value) if head_row is not None
                                else {"count": 0, "hash": GENESIS})
        seq, prev_hash = int(head["count"]), str(head["hash"])
        rows: list[dict[str, Any]] = []
        for draft in drafts:
            seq += 1
            fields = _chained(draft, seq, prev_hash)
            prev_hash = fields["hash"]
            rows.append(fields)
        # Into the table, as the signals and notes go: the ORM's bulk path costs a third
        # more here, and no caller needs the row objects.
        session.execute(insert(cast(Table, AuditRow.__table__)), rows)
        _move_head(session, head_row, rows[-1])
        session.info[BULK_APPENDED] = [(r["actor"], r["action"], r["target"]) for r in rows]
        try:
            session.flush()  # the head moved: its listeners hear of the records now
        finally:
            session.info.pop(BULK_APPENDED, None)
        return [_entry(fields) for fields in rows]

    def iter_fields(self, session: Session, batch: int = 2000,
                    after: int = 0) -> Iterator[dict[str, Any]]:
        """The records after record `after` (0: all of them), oldest first. A row that
        cannot be read (bytes where a time or JSON belongs) raises UnreadableRecord
        naming it, after every readable record before it."""
        last = after
        while True:
            query = select(AuditRow).where(AuditRow.seq > last).order_by(AuditRow.seq)
            try:
                rows = session.scalars(query.limit(batch)).all()
            except (TypeError, ValueError):
                session.rollback()
                rows = _rows_up_to_the_unreadable(session, last, batch)
            if not rows:
                return
            for row in rows:
                yield _row_fields(row)
            last = rows[-1].seq

    def entries(self, session: Session, after: int = 0) -> list[AuditEntry]:
        return [_entry(f) for f in self.iter_fields(session, after=after)]

    def head(self, session: Session) -> dict[str, Any] | None:
        row = session.get(SettingRow, HEAD_KEY)
        return dict(row.value) if row is not None else None

    def verify(self, session: Session) -> VerifyResult:
        """The chain and its head, in one streaming pass over the raw rows."""
        return verify_stream(session, self.head(session))


# --- signing keys and bundles -------------------------------------------------------


class BundleError(ValueError):
    """The bundle file is not a Watchfloor audit bundle or cannot be read."""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_fingerprint(public_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def _signed_part(bundle: Mapping[str, Any]) -> bytes:
    keys = ("format", "version", "exported_at", "source", "head", "records", "public_key")
    return canonical_json({k: bundle[k] for k in keys}).encode()


def build_bundle(records: Iterable[Mapping[str, Any]], head: Mapping[str, Any] | None,
                 key: Ed25519PrivateKey, *, source: str) -> dict[str, Any]:
    serial = []
    for rec in records:
        bad_field = field_problem(rec)
        if bad_field is not None:  # json.dumps would raise on it; name it instead
            raise UnreadableRecord(int(rec["seq"]), *bad_field)
        item = record_body(rec)
        item["hash"] = rec["hash"]
        serial.append(item)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "exported_at": format_time(datetime.now(UTC)), "source": source,
        "head": dict(head) if head else {"count": 0, "hash": GENESIS},
        "records": serial, "public_key": public_key_b64(key.public_key()),
    }
    bundle["signature"] = base64.b64encode(key.sign(_signed_part(bundle))).decode()
    return bundle


def write_bundle(path: Path, bundle: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(bundle, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a JSON audit bundle ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: not a Watchfloor audit bundle (format field missing)")
    if data.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle version {data.get('version')!r} is not supported")
    missing = [k for k in ("exported_at", "source", "head", "records", "public_key",
                           "signature") if k not in data]
    if missing:
        raise BundleError(f"{path}: bundle lacks field(s) {', '.join(missing)}")
    if not isinstance(data["records"], list):
        raise BundleError(f"{path}: field 'records' must be a list")
    for i, rec in enumerate(data["records"]):
        if not isinstance(rec, dict) or any(k not in rec for k in (*HASHED_FIELDS, "hash")):
            raise BundleError(f"{path}: records[{i}] lacks audit fields")
    return data


def verify_bundle(bundle: Mapping[str, Any]) -> VerifyResult:
    """Signature first (was the file changed after export?), then the chain itself."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(bundle["public_key"]))
        public.verify(base64.b64decode(bundle["signature"]), _signed_part(bundle))
    except (InvalidSignature, ValueError, TypeError):
        chain = verify_records(bundle["records"], bundle["head"])
        if not chain.ok:
            return chain
        return VerifyResult(False, len(bundle["records"]), None,
                            "bundle signature does not match its contents")
    return verify_records(bundle["records"], bundle["head"])

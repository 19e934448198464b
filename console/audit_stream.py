"""Verifying the audit chain in one streaming pass over the raw rows.

A record's hash is taken over the canonical JSON of its fields (console/audit_form.py).
Reading each record into Python objects, parsing its JSON and serializing it again
costs many times the hashing itself. So the database writes JSON columns in canonical
form (`stored_json` in console/audit_form.py is the engine's serializer) and builds each
record's canonical body itself, in the query: the text fields quoted as JSON strings,
the time in its canonical text, `inputs` and `outputs` as the text that is stored. The
verifier only hashes those bytes and follows the links.

Why a spliced body that hashes right proves the record: the text fields are quoted by
the database's JSON functions, and `inputs`/`outputs` are spliced only when the
database finds them to be valid JSON objects. A JSON object's text ends where its
braces close, so no other pair of valid objects can splice into the same bytes: a
record whose body hashes to its stored hash holds exactly the bytes hashed when it was
written.

Any record the query cannot splice (one written before JSON was stored canonically,
one with a field no honest writer produces, one that was changed) is read raw and
checked the slow way, field by field, by the same rules as every other record
(`console.audit_chain.verify_one`): the verdict and its words never depend on which
path a record took, only the speed does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, select, text, type_coerce
from sqlalchemy.orm import Session

from console.audit_chain import (
    GENESIS,
    RecordCheck,
    UnreadableRecord,
    VerifyResult,
    head_problem,
    verify_one,
)
from console.storage.models import AuditRow

STREAM_BATCH = 5000

_table = AuditRow.__table__
_CHECKED = ("actor", "action", "target", "decision")  # what a RecordCheck reads

# The canonical body of a record, built by SQLite in one printf (json_quote escapes as
# Python's JSON encoder does with ensure_ascii off; a valid JSON text that starts with a
# brace is an object). NULL when a field is not what this program writes: such a record
# takes the slow path, which names what is wrong with it.
_SQLITE_BODY = """CASE WHEN typeof(actor) = 'text' AND typeof(action) = 'text'
  AND typeof(target) = 'text' AND typeof(reason) = 'text' AND typeof(decision) = 'text'
  AND typeof(prev_hash) = 'text' AND typeof(at) = 'text' AND length(at) = 26
  AND substr(at, 11, 1) = ' ' AND substr(inputs, 1, 1) = '{' AND substr(outputs, 1, 1) = '{'
  AND json_valid(inputs) AND json_valid(outputs)
THEN CAST(printf('{"action":%s,"actor":%s,"at":"%sT%s+00:00","decision":%s,"inputs":%s,'
  || '"outputs":%s,"prev_hash":%s,"reason":%s,"seq":%d,"target":%s}',
  json_quote(action), json_quote(actor), substr(at, 1, 10), substr(at, 12),
  json_quote(decision), inputs, outputs, json_quote(prev_hash), json_quote(reason), seq,
  json_quote(target)) AS BLOB) END"""
# The same by PostgreSQL: its json type keeps the text as written, and to_json of a
# text escapes as Python does.
_PG_BODY = """CASE WHEN json_typeof(inputs) = 'object' AND json_typeof(outputs) = 'object'
THEN convert_to('{"action":' || to_json(action)::text || ',"actor":' || to_json(actor)::text
  || ',"at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\\:MI\\:SS.US')
  || '+00:00","decision":' || to_json(decision)::text || ',"inputs":' || inputs::text
  || ',"outputs":' || outputs::text || ',"prev_hash":' || to_json(prev_hash)::text
  || ',"reason":' || to_json(reason)::text || ',"seq":' || seq::text || ',"target":'
  || to_json(target)::text || '}', 'UTF8') END"""
_BODIES = {"sqlite": _SQLITE_BODY, "postgresql": _PG_BODY}


def spliced_query(dialect: str, with_check: bool, batch: int) -> Any:
    body = _BODIES.get(dialect, "NULL")
    extra = "".join(f", {name}" for name in _CHECKED) if with_check else ""
    return text(f"SELECT seq, prev_hash, hash, {body} AS body{extra} FROM audit_records "
                f"WHERE seq > :after ORDER BY seq LIMIT {int(batch)}")


def raw_columns(dialect: str) -> tuple[Any, ...]:
    """One row as stored, for the slow path: no JSON or time conversion. SQLite keeps
    JSON as text and hands it back as such (a CAST would turn a stray blob into an
    undecodable string); PostgreSQL's driver parses json columns unless read as text."""
    c = _table.c
    if dialect == "sqlite":
        inputs, outputs, at = (type_coerce(c.inputs, Text), type_coerce(c.outputs, Text),
                               type_coerce(c.at, Text))
    else:
        inputs, outputs, at = cast(c.inputs, Text), cast(c.outputs, Text), c.at
    return (c.seq, at, c.actor, c.action, c.target, c.reason, inputs, outputs, c.decision,
            c.prev_hash, c.hash)


def parsed(row: tuple[Any, ...]) -> dict[str, Any]:
    """The record as the ORM would give it: JSON parsed, the time an aware datetime. A
    field that cannot be read raises UnreadableRecord naming it."""
    (seq, at, actor, action, target, reason, inputs, outputs, decision, prev_hash,
     hash_) = row
    fields: dict[str, Any] = {"seq": seq, "actor": actor, "action": action, "target": target,
                              "reason": reason, "decision": decision,
                              "prev_hash": prev_hash, "hash": hash_}
    for name, stored in (("inputs", inputs), ("outputs", outputs)):
        if stored is None:
            fields[name] = None
            continue
        if not isinstance(stored, str):
            raise UnreadableRecord(int(seq), name, f"is not text ({type(stored).__name__})")
        try:
            fields[name] = json.loads(stored)
        except ValueError as exc:
            raise UnreadableRecord(int(seq), name, f"is not JSON ({exc})") from None
    if isinstance(at, (bytes, bytearray, memoryview)):
        raise UnreadableRecord(int(seq), "at", "is not text (bytes)")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise UnreadableRecord(int(seq), "at", f"is not a time ({at[:40]!r})") from None
    if isinstance(at, datetime):
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    elif at is not None:
        raise UnreadableRecord(int(seq), "at", f"is not a time ({type(at).__name__})")
    fields["at"] = at
    return fields


def batches(session: Session, query: Any, after: int) -> Iterator[list[Any]]:
    """The spliced rows after `after`, a batch at a time, from the driver's own cursor in
    the session's transaction: SQLAlchemy's result rows cost a sixth of the pass."""
    compiled = query.compile(dialect=session.get_bind().dialect)
    sql, names = str(compiled), compiled.positiontup
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        while True:
            params = {"after": after}
            cursor.execute(sql, tuple(params[n] for n in names) if names else params)
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]
    finally:
        cursor.close()


def verify_stream(session: Session, head: Mapping[str, Any] | None, *,
                  check: RecordCheck | None = None, start: tuple[int, str] = (0, GENESIS),
                  batch: int = STREAM_BATCH) -> VerifyResult:
    """`console.audit_chain.verify_records` over the database's rows, read raw: the same
    verdicts and messages, with no ORM object and no JSON parsed for any record stored
    in canonical form. `check` sees each record that holds, as a mapping with at least
    seq, actor, action, target, decision and hash."""
    dialect = session.get_bind().dialect.name
    query = spliced_query(dialect, check is not None, batch)
    slow_columns = raw_columns(dialect)
    sha256 = hashlib.sha256
    count, prev_hash = start
    expected_seq = count + 1
    try:
        for rows in batches(session, query, count):
            as_stored: dict[int, tuple[Any, ...]] = {}  # the batch read raw, if needed
            for row in rows:
                seq, stored_prev, stored_hash, body = row[0], row[1], row[2], row[3]
                if (body is not None and seq == expected_seq and stored_prev == prev_hash
                        and sha256(body).hexdigest() == stored_hash):
                    if check is not None:
                        problem = check({"seq": seq, "actor": row[4], "action": row[5],
                                         "target": row[6], "decision": row[7],
                                         "hash": stored_hash})
                        if problem:
                            return VerifyResult(False, count, seq, problem)
                else:
                    if seq not in as_stored:  # a database written before canonical
                        # JSON takes this path for every record: read the rest at once
                        as_stored = {r[0]: tuple(r) for r in session.execute(
                            select(*slow_columns).where(_table.c.seq.between(seq, rows[-1][0]))
                            .order_by(_table.c.seq))}
                    result = verify_one(parsed(as_stored[seq]), expected_seq, prev_hash,
                                        count, check)
                    if result is not None:
                        return result
                prev_hash = stored_hash
                expected_seq += 1
                count += 1
    except UnreadableRecord as exc:
        return VerifyResult(False, count, exc.seq, f"field {exc.field} {exc.why}")
    return head_problem(head, count, prev_hash) or VerifyResult(True, count)

"""Walking the audit chain: what makes a record hold, and the verdict on a run of them.

Shared by every reader of the chain (the database, read raw: console/audit_stream.py;
an exported bundle: console/audit.py), so a record is judged by the same rules and
named in the same words wherever it is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.audit_form import record_hash

GENESIS = "0" * 64


TEXT_FIELDS = ("actor", "action", "target", "reason", "decision", "prev_hash", "hash")
OBJECT_FIELDS = ("inputs", "outputs")


class UnreadableRecord(ValueError):
    """A stored record that cannot even be read as an audit record (a raw SQL write put
    bytes or garbage where text, JSON or a time belongs): a named failure, never a
    traceback."""

    def __init__(self, seq: int, field: str, why: str) -> None:
        super().__init__(f"record {seq}: field {field} {why}")
        self.seq, self.field, self.why = seq, field, why


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""
    notes: tuple[str, ...] = ()  # what else was checked (checkpoints, rows), one line each

    def describe(self) -> str:
        if self.ok:
            head = f"audit chain holds: {self.records} records"
        elif self.first_bad_seq is None:
            head = f"audit chain does not hold: {self.problem}"
        else:
            head = f"audit chain broken at record {self.first_bad_seq}: {self.problem}"
        return "\n".join((head, *self.notes))


def field_problem(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, why) of the first field whose type no honest writer produces; checked
    before hashing, since hashing bytes or a non-object would raise instead of report."""
    for name in TEXT_FIELDS:
        value = rec.get(name)
        if not isinstance(value, str):
            return name, f"is not text ({type(value).__name__})"
    for name in OBJECT_FIELDS:
        value = rec.get(name)
        if value is not None and not isinstance(value, dict):
            return name, f"is not a JSON object ({type(value).__name__})"
    at = rec.get("at")
    if not isinstance(at, (str, datetime)) or (isinstance(at, datetime) and at.tzinfo is None):
        return "at", f"is not a UTC time ({type(at).__name__})"
    return None


RecordCheck = Callable[[Mapping[str, Any]], str | None]


def verify_records(records: Iterable[Mapping[str, Any]],
                   head: Mapping[str, Any] | None, *,
                   check: RecordCheck | None = None,
                   start: tuple[int, str] = (0, GENESIS)) -> VerifyResult:
    """Walk the chain in order; report the first record that does not hold. `check` sees
    each record that holds and may name a further problem with it (a checkpoint that
    says otherwise). `start` (seq, hash): the records follow that one (a checkpoint)
    instead of the beginning; `records` then counts up from its seq."""
    count, prev_hash = start
    expected_seq = count + 1
    try:
        for rec in records:
            result = verify_one(rec, expected_seq, prev_hash, count, check)
            if result is not None:
                return result
            prev_hash = rec["hash"]
            expected_seq += 1
            count += 1
    except UnreadableRecord as exc:
        return VerifyResult(False, count, exc.seq, f"field {exc.field} {exc.why}")
    return head_problem(head, count, prev_hash) or VerifyResult(True, count)


def head_problem(head: Mapping[str, Any] | None, count: int,
                 prev_hash: str) -> VerifyResult | None:
    """The chain head beside the records must name the last of them: deleting the newest
    records leaves no gap in the chain itself."""
    if head is not None and (head.get("count") != count or head.get("hash") != prev_hash):
        head_count = head.get("count")
        first_bad = min(head_count, count) + 1 if isinstance(head_count, int) else 1
        return VerifyResult(False, count, first_bad,
                            f"chain head says {head.get('count')} records ending in "
                            f"{str(head.get('hash'))[:12]}, found {count} ending in "
                            f"{prev_hash[:12]} (newest records deleted or added)")
    if head is None and count:
        return VerifyResult(False, count, 1, "chain head is missing")
    return None


def verify_one(rec: Mapping[str, Any], expected_seq: int, prev_hash: str, count: int,
                check: RecordCheck | None) -> VerifyResult | None:
    seq = rec["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        return VerifyResult(False, count, expected_seq,
                            f"record {expected_seq}: field seq is not an integer ({seq!r})")
    if seq != expected_seq:
        what = "missing" if seq > expected_seq else "duplicated or out of order"
        return VerifyResult(False, count, expected_seq,
                            f"record {expected_seq} is {what} (found {seq} next)")
    bad_field = field_problem(rec)
    if bad_field is not None:
        return VerifyResult(False, count, seq, f"field {bad_field[0]} {bad_field[1]}")
    if rec["prev_hash"] != prev_hash:
        return VerifyResult(False, count, seq,
                            "prev_hash does not match the hash of the record before it "
                            "(a record was inserted, deleted or changed)")
    if record_hash(rec) != rec["hash"]:
        return VerifyResult(False, count, seq,
                            "contents do not match the record's hash (a field was changed)")
    problem = check(rec) if check is not None else None
    if problem:
        return VerifyResult(False, count, seq, problem)
    return None

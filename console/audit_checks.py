"""`audit verify` on a database: the chain, this workstation's checkpoints of it, and
the rows it vouches for.

The chain alone proves only that its records link up; whoever rewrites the records can
rewrite the head beside them. So the chain is also held against what lives outside the
database (the signed checkpoints, console/audit_anchor.py) and against the tables that
each row of was written with its record (console/audit_refs.py). What is newer than
the latest checkpoint is reported as not anchored yet when consoles recorded work in the
change feed since, and as added outside Watchfloor when none did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.audit import AuditLog, VerifyResult
from console.audit_anchor import AnchorStore, Checkpoint
from console.audit_refs import References
from console.audit_stream import verify_stream
from console.audit_trust import existing_public_key
from console.storage.db import Database
from console.storage.models import ChangeFeedRow

_WORKSTATION = object()  # trusted_public's default: this workstation's key, if it has one


@dataclass(frozen=True, slots=True)
class _Problem:
    seq: int | None
    text: str


def verify_database(db: Database, audit: AuditLog | None = None, *,
                    store: AnchorStore | None = None,
                    trusted_public: object = _WORKSTATION) -> VerifyResult:
    """The whole check; `store` and `trusted_public` (base64 key) default to this
    workstation's checkpoint file of `db` and its own key."""
    audit = audit or AuditLog()
    store = store or AnchorStore.for_url(db.engine.url)
    public = existing_public_key() if trusted_public is _WORKSTATION else trusted_public
    assert public is None or isinstance(public, str)
    checkpoints, bad_lines = store.read(public)
    problems = [_Problem(None, f"{store.path} line {bad.line} {bad.problem}")
                for bad in bad_lines]
    anchors: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        anchors.setdefault(cp.seq, []).append(cp)
    refs = References()

    def check(rec: Mapping[str, Any]) -> str | None:
        refs.see(rec)
        for cp in anchors.get(int(rec["seq"]), ()):
            if cp.hash != rec["hash"]:
                return (f"hash {str(rec['hash'])[:12]} is not {cp.hash[:12]}, the record the "
                        f"{cp.describe()} in {store.path} vouches for: the chain was "
                        "rewritten at or before this record")
        return None

    notes: list[str] = []
    with db.sessions() as session:
        chain = verify_stream(session, audit.head(session), check=check)
        if not chain.ok:  # the rest would only repeat it: records after it were not seen
            return _result(chain.records, [_Problem(chain.first_bad_seq, chain.problem),
                                           *problems], notes)
        latest = max(checkpoints, key=lambda cp: cp.seq, default=None)
        problems += _against_latest(session, chain.records, latest, store, notes)
        if latest is None and not bad_lines:
            notes.append(f"no checkpoint of this database on this workstation "
                         f"({store.path}): the newest records are checked by the chain alone")
        ref_problems, counted = refs.check(session)
    problems += [_Problem(p.seq, p.text) for p in ref_problems]
    if not ref_problems:
        notes.append("rows with their records: " + ", ".join(
            f"{n} {kind}" for kind, n in counted.items()))
    return _result(chain.records, problems, notes)


def _against_latest(session: Session, records: int, latest: Checkpoint | None,
                    store: AnchorStore, notes: list[str]) -> list[_Problem]:
    if latest is None:
        return []
    where = f"the {latest.describe()} in {store.path}"
    if records < latest.seq:
        return [_Problem(records + 1,
                         f"the chain has {records} records but {where} vouches for "
                         f"{latest.seq}: records {records + 1}..{latest.seq} were deleted "
                         "(if this database was replaced on purpose, move that file away)")]
    if records == latest.seq:
        notes.append(f"anchored: {where} matches (signed by this workstation's key "
                     f"{latest.fingerprint})")
        return []
    since = session.execute(
        select(ChangeFeedRow.origin, func.count())
        .where(ChangeFeedRow.seq > latest.feed_seq).group_by(ChangeFeedRow.origin)).all()
    span = f"records {latest.seq + 1}..{records}"
    if not since:
        return [_Problem(latest.seq + 1,
                         f"{span} were added after {where}, yet no console has recorded any "
                         "work in the change feed since: they were added outside Watchfloor")]
    units = sum(int(n) for _origin, n in since)
    origins = ", ".join(sorted(str(origin) for origin, _n in since)[:5])
    notes.append(f"anchored up to record {latest.seq} ({where} matches); {span} are newer "
                 f"and not anchored yet ({units} unit(s) of work recorded since, by "
                 f"{origins})")
    return []


def _result(records: int, problems: list[_Problem], notes: list[str]) -> VerifyResult:
    if not problems:
        return VerifyResult(True, records, notes=tuple(notes))
    first, rest = problems[0], problems[1:]
    return VerifyResult(False, records, first.seq, first.text,
                        notes=tuple(f"also: {p.text}" for p in rest) + tuple(notes))


"""Audit bundles of version 2: one file per export, written, checked and browsed a page
at a time, so a log of a million records costs no more memory than one of a thousand.

Why an SQLite file rather than JSON lines in a zip: a reviewer scrolls to record
600,000 and the window reads that page by its key (the records are keyed by seq), with
no index of offsets held in memory; the review's search runs as one SQL query over the
file on a worker thread; the standard library reads it on any laptop; and the file
states its own length in its header, so a copy cut short is named as such before a
record is read. Each record is kept as the exact canonical bytes its hash covers
(`body`) beside that hash, so checking a record is one SHA-256 over stored bytes.

Why a manifest: Ed25519 signs the canonical JSON of a small manifest (the record count,
first and last seq and hash, the chain head, the key's id, and the SHA-256 of every
record's line in order) instead of the records themselves, so neither the exporter nor
the verifier ever holds the records; the verifier recomputes the digest in the same
pass in which it walks the chain (console/audit_bundle_verify.py).

Version 1 bundles (one JSON object) and hand-off packets are read by console/audit.py and
console/handoff_verify.py as before; `is_stream_bundle` tells the two apart by the
file's first bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.audit import BUNDLE_FORMAT, BundleError, key_fingerprint, public_key_b64
from console.audit_chain import GENESIS
from console.audit_form import canonical_json, format_time
from console.domain import AuditEntry

STREAM_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"
APPLICATION_ID = 0x57464232  # "WFB2" in the file header: a bundle, not any SQLite file
WRITE_BATCH = 5000
_IN_CHUNK = 500  # under every SQLite build's limit of bound parameters
MANIFEST_FIELDS = ("format", "version", "exported_at", "source", "head", "records",
                   "public_key", "key_id")
RECORDS_FIELDS = ("count", "first_seq", "last_seq", "first_hash", "last_hash", "sha256")

_SCHEMA = (
    "CREATE TABLE bundle (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE records (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, body TEXT NOT NULL)",
)


class BundleDamaged(BundleError):
    """A version 2 bundle whose file was cut short or damaged after export: a failed
    check (exit 1), where a file that is no bundle at all is bad input (exit 2)."""


def record_line(hash_: str, body: bytes) -> bytes:
    """What the records digest covers for one record: its hash and its exact bytes."""
    return hash_.encode() + b" " + body + b"\n"


def signed_bytes(manifest: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(manifest)).encode()


class BundleWriter:
    """Appends records as they are read and signs the manifest at the end. The file
    appears under its name only once it is complete (written beside it, then renamed):
    a failed export leaves no half bundle behind and replaces nothing."""

    def __init__(self, path: Path, key: Ed25519PrivateKey, *, source: str) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        self._key = key
        self._source = source
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.unlink(missing_ok=True)
        self._db = sqlite3.connect(self._tmp, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF",
                       f"application_id = {APPLICATION_ID}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("BEGIN")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._pending: list[tuple[int, str, str]] = []
        self._digest = hashlib.sha256()
        self.count = 0
        self._first: tuple[int, str] | None = None
        self._last: tuple[int, str] = (0, GENESIS)

    def add(self, seq: int, hash_: str, body: bytes) -> None:
        self._digest.update(record_line(hash_, body))
        self._pending.append((seq, hash_, body.decode("utf-8")))
        if self._first is None:
            self._first = (seq, hash_)
        self._last = (seq, hash_)
        self.count += 1
        if len(self._pending) >= WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO records (seq, hash, body) VALUES (?, ?, ?)",
                             self._pending)
        self._pending.clear()

    def finish(self, head: Mapping[str, Any] | None) -> dict[str, Any]:
        """Sign and close; returns the manifest."""
        self._flush()
        first = self._first or (0, GENESIS)
        public = public_key_b64(self._key.public_key())
        manifest: dict[str, Any] = {
            "format": BUNDLE_FORMAT, "version": STREAM_VERSION,
            "exported_at": format_time(datetime.now(UTC)), "source": self._source,
            "head": dict(head) if head else {"count": 0, "hash": GENESIS},
            "records": {"count": self.count, "first_seq": first[0],
                        "last_seq": self._last[0], "first_hash": first[1],
                        "last_hash": self._last[1], "sha256": self._digest.hexdigest()},
            "public_key": public, "key_id": key_fingerprint(public),
        }
        signature = base64.b64encode(self._key.sign(signed_bytes(manifest))).decode()
        self._db.executemany("INSERT INTO bundle (name, value) VALUES (?, ?)",
                             [("manifest", canonical_json(manifest)),
                              ("signature", signature)])
        self._db.execute("COMMIT")
        self._db.close()
        os.replace(self._tmp, self.path)
        return manifest

    def abort(self) -> None:
        self._db.close()
        self._tmp.unlink(missing_ok=True)


def is_stream_bundle(path: Path) -> bool:
    """True when the file starts as an SQLite file does (a version 2 bundle or a file
    that claims to be one); JSON bundles and hand-off packets start otherwise."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _declared_size(path: Path) -> tuple[int, int]:
    """(bytes the header says the file holds, bytes it holds)."""
    with path.open("rb") as fh:
        header = fh.read(100)
    actual = path.stat().st_size
    if len(header) < 100:
        return 100, actual
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    return page_size * pages, actual


def _application_id(path: Path) -> int:
    with path.open("rb") as fh:
        header = fh.read(72)
    return int.from_bytes(header[68:72], "big") if len(header) >= 72 else 0


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Read-only and immutable: reviewing a bundle never writes beside it (no journal,
    no lock file), so it works from a read-only share or a USB stick."""
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _parse_manifest(path: Path, text: str, signature: str) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise BundleError(f"{path}: the manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: not a Watchfloor audit bundle (manifest format field)")
    if manifest.get("version") != STREAM_VERSION:
        raise BundleError(f"{path}: bundle version {manifest.get('version')!r} is not "
                          "supported in an SQLite bundle")
    missing = [k for k in MANIFEST_FIELDS if k not in manifest]
    records = manifest.get("records")
    if isinstance(records, dict):
        missing += [f"records.{k}" for k in RECORDS_FIELDS if k not in records]
    else:
        missing.append("records (an object)")
    if missing:
        raise BundleError(f"{path}: manifest lacks field(s) {', '.join(missing)}")
    if not all(isinstance(records[k], int) for k in ("count", "first_seq", "last_seq")):
        raise BundleError(f"{path}: manifest records.count, first_seq and last_seq must be "
                          "integers")
    head = manifest["head"]
    if not (isinstance(head, dict) and isinstance(head.get("count"), int)
            and isinstance(head.get("hash"), str)):
        raise BundleError(f"{path}: manifest head must be an object with a count and a hash")
    if not signature:
        raise BundleError(f"{path}: the bundle holds no signature")
    return manifest


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What the review's filter fields hold (substrings, case-insensitive for ASCII as
    SQLite's lower() is; decision exact; times inclusive)."""

    actor: str = ""
    action: str = ""
    target: str = ""
    text: str = ""
    decision: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return any((self.actor, self.action, self.target, self.text, self.decision,
                    self.since, self.until))


class BundleFile:
    """An opened version 2 bundle: its manifest and its records by seq, read on demand."""

    def __init__(self, path: Path, db: sqlite3.Connection, manifest: dict[str, Any],
                 signature: str) -> None:
        self.path, self._db, self.manifest, self.signature = path, db, manifest, signature

    @classmethod
    def open(cls, path: Path) -> BundleFile:
        """BundleError when the file is no bundle, BundleDamaged when it was one and is
        cut short or damaged; reads the header and the manifest only."""
        if not path.exists():
            raise BundleError(f"{path}: no such file")
        if not is_stream_bundle(path):
            raise BundleError(f"{path}: not an SQLite audit bundle")
        if _application_id(path) != APPLICATION_ID:
            raise BundleError(f"{path}: an SQLite file, but not a Watchfloor audit bundle")
        declared, actual = _declared_size(path)
        if actual < declared:
            raise BundleDamaged(f"{path}: the file is cut short ({actual:,} of its "
                                f"{declared:,} bytes)")
        db = connect_read_only(path)
        try:
            rows = dict(db.execute("SELECT name, value FROM bundle").fetchall())
            db.execute("SELECT seq, hash, body FROM records LIMIT 0")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise BundleDamaged(f"{path}: the bundle's tables cannot be read ({exc})") from None
        if "manifest" not in rows:
            db.close()
            raise BundleError(f"{path}: the bundle holds no manifest")
        try:
            manifest = _parse_manifest(path, str(rows["manifest"]), str(rows.get("signature", "")))
        except BundleError:
            db.close()
            raise
        return cls(path, db, manifest, str(rows["signature"]))

    @property
    def count(self) -> int:
        return int(self.manifest["records"]["count"])

    @property
    def last_seq(self) -> int:
        return int(self.manifest["records"]["last_seq"])

    @property
    def first_seq(self) -> int:
        return int(self.manifest["records"]["first_seq"])

    @property
    def fingerprint(self) -> str:
        try:
            return key_fingerprint(str(self.manifest["public_key"]))
        except ValueError:
            return "unreadable"

    def entries(self, seqs: Sequence[int]) -> dict[int, AuditEntry]:
        """The records of these seqs that the file holds and can show, by seq."""
        found: dict[int, AuditEntry] = {}
        wanted = list(dict.fromkeys(seqs))
        for start in range(0, len(wanted), _IN_CHUNK):  # by key: sparse seqs of a search too
            chunk = wanted[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            try:
                rows = self._db.execute(
                    f"SELECT seq, hash, body FROM records WHERE seq IN ({marks})",
                    chunk).fetchall()
            except sqlite3.DatabaseError:  # a damaged page: each record on its own
                rows = self._readable(chunk)
            for seq, hash_, body in rows:
                entry = entry_of(seq, hash_, body)
                if entry is not None:
                    found[seq] = entry
        return found

    def _readable(self, seqs: Sequence[int]) -> list[Any]:
        """The records of `seqs` that a damaged file still yields (the others are shown
        as unreadable; verification names the first)."""
        rows = []
        for seq in seqs:
            try:
                rows.extend(self._db.execute(
                    "SELECT seq, hash, body FROM records WHERE seq = ?", (seq,)).fetchall())
            except sqlite3.DatabaseError:
                continue
        return rows

    def span(self) -> tuple[datetime, datetime] | None:
        """Times of the first and the last record (for the time filter's range)."""
        first = self.entries([self.first_seq]).get(self.first_seq)
        last = self.entries([self.last_seq]).get(self.last_seq)
        return (first.at, last.at) if first is not None and last is not None else None

    def rows(self, after: int = 0, batch: int = WRITE_BATCH) -> Iterable[list[Any]]:
        """The stored records after seq `after` in seq order, a batch at a time (the
        verifier's pass)."""
        return iter_rows(self._db, after, batch)

    def close(self) -> None:
        self._db.close()


def entry_of(seq: int, hash_: str, body: Any) -> AuditEntry | None:
    """A stored record as the browser shows it; None when its body is not a record (the
    verification names it; the browser shows a placeholder)."""
    try:
        rec = json.loads(body)
        at = datetime.fromisoformat(rec["at"])
        return AuditEntry(seq=seq, at=at, actor=str(rec["actor"]), action=str(rec["action"]),
                          target=str(rec["target"]), reason=str(rec["reason"]),
                          inputs=dict(rec["inputs"] or {}), outputs=dict(rec["outputs"] or {}),
                          decision=str(rec["decision"]), prev_hash=str(rec["prev_hash"]),
                          hash=str(hash_))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def search(path: Path, filters: SearchFilters, limit: int) -> tuple[list[int], bool]:
    """Seqs of the records matching `filters`, newest first, at most `limit` of them
    (and whether there were more). Opens its own connection: it runs on a worker
    thread while the window reads pages on its own."""
    clauses: list[str] = []
    params: list[Any] = []
    for name in ("actor", "action", "target"):
        value = getattr(filters, name).strip().lower()
        if value:
            clauses.append(f"instr(lower(json_extract(body, '$.{name}')), ?) > 0")
            params.append(value)
    if filters.text.strip():
        clauses.append("instr(lower(body || ' ' || hash), ?) > 0")
        params.append(filters.text.strip().lower())
    if filters.decision:
        clauses.append("json_extract(body, '$.decision') = ?")
        params.append(filters.decision)
    for op, when in ((">=", filters.since), ("<=", filters.until)):
        if when is not None:
            clauses.append(f"json_extract(body, '$.at') {op} ?")
            params.append(format_time(when))
    where = " AND ".join(clauses) or "1"
    db = connect_read_only(path)
    try:
        rows = db.execute(f"SELECT seq FROM records WHERE {where} ORDER BY seq DESC "
                          f"LIMIT {int(limit) + 1}", params).fetchall()
    finally:
        db.close()
    seqs = [int(r[0]) for r in rows]
    return seqs[:limit], len(seqs) > limit


def iter_rows(db: sqlite3.Connection, after: int = 0,
              batch: int = WRITE_BATCH) -> Iterable[list[Any]]:
    """The stored records after seq `after` in seq order, a batch at a time. With a
    batch of one, one query per record: a cursor reads a row ahead, so an error it
    raises may belong to the record after the one it returns."""
    if batch == 1:
        while row := db.execute("SELECT seq, hash, body FROM records WHERE seq > ? "
                                "ORDER BY seq LIMIT 1", (after,)).fetchone():
            yield [row]
            after = row[0]
        return
    cursor = db.execute("SELECT seq, hash, body FROM records WHERE seq > ? ORDER BY seq",
                        (after,))
    try:
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()

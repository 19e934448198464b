"""Checkpoints of the audit chain, kept outside the database and signed.

The chain head is stored beside the records, so whoever can rewrite the records can
rewrite the head too: truncate the chain, re-chain it from any record, or delete all of
it, and the chain alone still "holds". A checkpoint (sequence, head hash, the change
feed's position, wall time, which database) signed with this workstation's Ed25519 key
and written to a file in the user data directory is out of that reach: a later
verification finds a chain shorter than a checkpoint, or a different record where a
checkpoint says which one was there.

One file per database location (`audit-checkpoints/<name>-<digest>.jsonl`), one JSON
object per line, appended with a single write so processes that share a database can
write to it side by side. Every team member keeps its own file of the shared chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import URL, make_url

from console.audit import canonical_json, format_time, key_fingerprint, public_key_b64
from console.storage.db import data_dir

FORMAT = "watchfloor-audit-checkpoint"
VERSION = 1
DIRECTORY = "audit-checkpoints"
SIGNED = ("format", "version", "database", "seq", "hash", "feed_seq", "at", "public_key")
MAX_LINES = 4096  # past this, the file keeps its newest KEEP_LINES
KEEP_LINES = 1024
log = logging.getLogger(__name__)


def checkpoint_dir() -> Path:
    """Beside the default database, under the same override (WATCHFLOOR_DATA_DIR)."""
    return data_dir() / DIRECTORY


def database_location(url: URL | str) -> str:
    """Which database, without credentials: the absolute file for SQLite, else
    backend://host:port/name, so that the same database has the same checkpoints
    whatever driver or password reaches it."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return f"sqlite:{Path(parsed.database or '').expanduser().resolve()}"
    port = parsed.port or (5432 if backend == "postgresql" else "")
    return f"{backend}://{parsed.host or 'localhost'}:{port}/{parsed.database or ''}"


def _file_name(location: str) -> str:
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "_", location.rsplit("/", 1)[-1])[-40:] or "db"
    return f"{tail}-{hashlib.sha256(location.encode()).hexdigest()[:16]}.jsonl"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    database: str
    seq: int
    hash: str
    feed_seq: int  # the change feed's last row when the head was read
    at: str  # wall-clock UTC, ISO
    public_key: str
    signature: str
    line: int = 0  # where in the file (1-based), for messages

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public_key)

    def body(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "database": self.database,
                "seq": self.seq, "hash": self.hash, "feed_seq": self.feed_seq,
                "at": self.at, "public_key": self.public_key}

    def describe(self) -> str:
        return f"checkpoint of {self.at} (record {self.seq}, line {self.line})"


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of a checkpoint file that is not a checkpoint this workstation signed."""

    line: int
    problem: str


def sign(key: Ed25519PrivateKey, database: str, seq: int, head_hash: str,
         feed_seq: int, at: datetime | None = None) -> Checkpoint:
    body = {"format": FORMAT, "version": VERSION, "database": database, "seq": seq,
            "hash": head_hash, "feed_seq": feed_seq,
            "at": format_time(at or datetime.now(UTC)),
            "public_key": public_key_b64(key.public_key())}
    signature = base64.b64encode(key.sign(canonical_json(body).encode())).decode()
    return Checkpoint(database, seq, head_hash, feed_seq, body["at"], body["public_key"],
                      signature)


def parse_line(text: str, number: int, database: str,
               trusted_public: str | None) -> Checkpoint | BadLine:
    """One line: a checkpoint of `database` signed by the trusted key, or why not."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return BadLine(number, "is not JSON")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return BadLine(number, "is not a Watchfloor audit checkpoint")
    if data.get("version") != VERSION:
        return BadLine(number, f"has checkpoint version {data.get('version')!r}, not {VERSION}")
    fields: Mapping[str, type] = {"database": str, "seq": int, "hash": str, "feed_seq": int,
                                  "at": str, "public_key": str, "signature": str}
    wrong = [name for name, kind in fields.items()
             if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool)]
    if wrong:
        return BadLine(number, f"lacks or mistypes field(s) {', '.join(wrong)}")
    cp = Checkpoint(data["database"], data["seq"], data["hash"], data["feed_seq"],
                    data["at"], data["public_key"], data["signature"], number)
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
        public.verify(base64.b64decode(cp.signature), canonical_json(cp.body()).encode())
    except (InvalidSignature, ValueError, TypeError):
        return BadLine(number, f"signature does not verify (record {cp.seq}, {cp.at}): "
                               "the checkpoint was forged or edited")
    if trusted_public is None:
        return BadLine(number, "cannot be checked: this workstation has no audit key "
                               "(was it deleted?)")
    if cp.public_key != trusted_public:
        return BadLine(number, f"is signed by key {_fp(cp.public_key)}, not by this "
                               f"workstation's key {_fp(trusted_public)}")
    if cp.database != database:
        return BadLine(number, f"is a checkpoint of {cp.database}, not of {database}")
    return cp


def _fp(public_b64: str) -> str:
    try:
        return key_fingerprint(public_b64)
    except ValueError:
        return "unreadable"


class AnchorStore:
    """The checkpoint file of one database location."""

    def __init__(self, location: str, directory: Path | None = None) -> None:
        self.location = location
        self.directory = directory or checkpoint_dir()
        self.path = self.directory / _file_name(location)

    @classmethod
    def for_url(cls, url: URL | str, directory: Path | None = None) -> AnchorStore:
        return cls(database_location(url), directory)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self, trusted_public: str | None) -> tuple[list[Checkpoint], list[BadLine]]:
        """Every checkpoint of the file that holds, and every line that does not."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], []
        good: list[Checkpoint] = []
        bad: list[BadLine] = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(BadLine(number, "is not UTF-8 text"))
                continue
            parsed = parse_line(text, number, self.location, trusted_public)
            (good if isinstance(parsed, Checkpoint) else bad).append(parsed)  # type: ignore[arg-type]
        return good, bad

    def latest(self, trusted_public: str | None) -> Checkpoint | None:
        """The checkpoint with the highest record that holds; only the lines from the top
        down to it have their signatures checked (the checkpointer asks this often)."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return None
        ranked = []
        for number, line in enumerate(lines, start=1):
            try:
                seq = json.loads(line).get("seq")
            except (ValueError, AttributeError):
                continue
            if isinstance(seq, int):
                ranked.append((seq, number, line))
        for _seq, number, line in sorted(ranked, reverse=True):
            parsed = parse_line(line.decode("utf-8", "replace"), number, self.location,
                                trusted_public)
            if isinstance(parsed, Checkpoint):
                return parsed
        return None

    def append(self, checkpoint: Checkpoint) -> None:
        """One write of one line (O_APPEND): lines of processes writing side by side never
        interleave; fsync, so a checkpoint said to exist survives a power cut."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {**checkpoint.body(), "signature": checkpoint.signature}
        line = (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._compact_if_long()

    def _compact_if_long(self) -> None:
        """The newest checkpoints are the ones a verification leans on (the chain links
        the older ones to them); the file is cut back instead of growing for ever."""
        try:
            if self.path.stat().st_size < MAX_LINES * 200:
                return
            lines = self.path.read_bytes().splitlines(keepends=True)
        except FileNotFoundError:
            return
        if len(lines) <= MAX_LINES:
            return
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(lines[-KEEP_LINES:])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def sweep_gone_sqlite(directory: Path, keep: Iterable[str] = ()) -> list[Path]:
    """Drop the checkpoint files of SQLite databases whose file is gone (a headless run's
    private database, a test's): nothing is left to verify against them, and a database
    made again at that place starts a chain of its own."""
    removed: list[Path] = []
    keep_names = {_file_name(location) for location in keep}
    try:
        candidates = sorted(directory.glob("*.jsonl"))
    except OSError:
        return removed
    for path in candidates:
        if path.name in keep_names:
            continue
        try:
            with path.open("rb") as fh:
                first = json.loads(fh.readline() or b"{}")
        except (OSError, ValueError):
            continue
        location = first.get("database") if isinstance(first, dict) else None
        if not isinstance(location, str) or not location.startswith("sqlite:"):
            continue
        if path.name != _file_name(location):
            continue  # not a file this code named: leave it
        if not Path(location.removeprefix("sqlite:")).exists():
            try:
                path.unlink()
                removed.append(path)
            except OSError as exc:
                log.debug("could not remove %s: %s", path, exc)
    return removed

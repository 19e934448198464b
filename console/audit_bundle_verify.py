"""Checking a version 2 bundle in one streaming pass: signature, manifest and chain.

The signature covers the manifest; the manifest names the records (count, first and
last hash, the digest of every record's line); the chain ties each record to the one
before it. One pass over the file, a batch of rows at a time, checks each record's hash
over its stored bytes and its link, and feeds the same bytes to the digest, so memory
stays flat however long the log is.

A record's hash is checked over the bytes the file stores, as they were exported (the
database's canonical form of the record). Bytes that parse to the record shown but are
not canonical could only hash right if someone rewrote every later hash too, which the
signed manifest's last hash and digest then refuse: the verdicts are the same as for a
version 1 bundle, and a record is named in the same words (console/audit_chain.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from console.audit_bundle_file import WRITE_BATCH, BundleFile, record_line, signed_bytes
from console.audit_chain import GENESIS, VerifyResult, field_problem, head_problem

SIGNATURE_PROBLEM = "bundle signature does not match its manifest (changed after export)"


@dataclass(frozen=True, slots=True)
class StreamVerdict:
    """The three checks of a version 2 bundle, each on its own: a reviewer needs to
    know whether the manifest was changed (signature), whether it describes these
    records, and where the chain inside breaks first."""

    signature_ok: bool
    chain: VerifyResult  # the walk, then whether the manifest describes what was walked

    @property
    def result(self) -> VerifyResult:
        """One verdict, as `audit verify --bundle` prints it: the chain's break first
        (it names a record), then the signature."""
        if self.chain.ok and not self.signature_ok:
            return VerifyResult(False, self.chain.records, None, SIGNATURE_PROBLEM)
        return self.chain


def signature_holds(bundle: BundleFile) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(bundle.manifest["public_key"])))
        public.verify(base64.b64decode(bundle.signature), signed_bytes(bundle.manifest))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _record_problem(seq: int, hash_: Any, body: Any, expected_seq: int,
                    prev_hash: str) -> tuple[int, str] | None:
    """(seq to name, what is wrong) with one stored record, or None when it holds."""
    if seq != expected_seq:
        what = "missing" if seq > expected_seq else "duplicated or out of order"
        return expected_seq, f"record {expected_seq} is {what} (found {seq} next)"
    if not isinstance(body, str) or not isinstance(hash_, str):
        return seq, "is not stored as text in the bundle"
    try:
        rec = json.loads(body)
    except ValueError as exc:
        return seq, f"body is not JSON ({exc})"
    if not isinstance(rec, dict):
        return seq, "body is not a JSON object"
    if rec.get("seq") != seq:
        return seq, f"body says it is record {rec.get('seq')!r}"
    rec["hash"] = hash_
    bad_field = field_problem(rec)
    if bad_field is not None:
        return seq, f"field {bad_field[0]} {bad_field[1]}"
    if rec["prev_hash"] != prev_hash:
        return seq, ("prev_hash does not match the hash of the record before it "
                     "(a record was inserted, deleted or changed)")
    if hashlib.sha256(body.encode()).hexdigest() != hash_:
        return seq, "contents do not match the record's hash (a field was changed)"
    return None


def _manifest_problem(manifest: dict[str, Any], count: int, first: tuple[int, str],
                      last: tuple[int, str], digest: str) -> str | None:
    listed = manifest["records"]
    found = {"count": count, "first_seq": first[0], "first_hash": first[1],
             "last_seq": last[0], "last_hash": last[1], "sha256": digest}
    differs = [name for name, value in found.items() if listed.get(name) != value]
    if not differs:
        return None
    return (f"the manifest does not describe these records ({', '.join(differs)} "
            "differ: records changed after export, or a manifest from another bundle)")


def _holds(rec: Any, seq: int, hash_: Any, raw: bytes, prev_hash: str) -> bool:
    """The common case of `_record_problem` finding nothing, in one expression: most
    of the pass is spent here, and a record it doubts is judged there, word for word."""
    return (type(rec) is dict and type(rec.get("seq")) is int and rec["seq"] == seq
            and rec.get("prev_hash") == prev_hash and type(rec.get("actor")) is str
            and type(rec.get("action")) is str and type(rec.get("target")) is str
            and type(rec.get("reason")) is str and type(rec.get("decision")) is str
            and type(rec.get("at")) is str
            and (rec.get("inputs") is None or type(rec["inputs"]) is dict)
            and (rec.get("outputs") is None or type(rec["outputs"]) is dict)
            and hashlib.sha256(raw).hexdigest() == hash_)


def walk(bundle: BundleFile) -> VerifyResult:
    """The chain of the file's records and whether the manifest describes them."""
    digest = hashlib.sha256()
    count, prev_hash = 0, GENESIS
    first: tuple[int, str] = (0, GENESIS)
    decode = json.JSONDecoder().raw_decode  # json.loads less its checks of the input
    batch = WRITE_BATCH
    while True:
        try:
            for rows in bundle.rows(after=count, batch=batch):
                for seq, hash_, body in rows:
                    raw = body.encode() if type(body) is str and type(hash_) is str else b""
                    try:
                        rec, end = decode(body) if raw else (None, 0)
                        rec = rec if end == len(body) else None  # no trailing bytes
                    except ValueError:
                        rec = None
                    if not _holds(rec, count + 1, hash_, raw, prev_hash):
                        problem = _record_problem(seq, hash_, body, count + 1, prev_hash)
                        if problem is not None:
                            return VerifyResult(False, count, *problem)
                    digest.update(record_line(hash_, raw))
                    if not count:
                        first = (seq, hash_)
                    prev_hash = hash_
                    count += 1
            break
        except sqlite3.DatabaseError as exc:
            if batch > 1:  # the batch is lost: read on one record at a time to the damage
                batch = 1
                continue
            return VerifyResult(False, count, count + 1,
                                f"cannot be read: the file is damaged here ({exc})")
    head = head_problem(bundle.manifest["head"], count, prev_hash)
    if head is not None:
        return head
    problem = _manifest_problem(bundle.manifest, count, first, (count, prev_hash),
                                digest.hexdigest())
    return VerifyResult(False, count, None, problem) if problem else VerifyResult(True, count)


def verify_stream_bundle(path: Path) -> tuple[BundleFile, StreamVerdict]:
    """Open and check a version 2 bundle (BundleError: not a bundle; BundleDamaged: cut
    short). The returned file is closed; its manifest stays readable."""
    bundle = BundleFile.open(path)
    try:
        signature_ok = signature_holds(bundle)
        chain = walk(bundle)
    finally:
        bundle.close()
    return bundle, StreamVerdict(signature_ok, chain)

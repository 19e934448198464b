"""Reading an exported audit bundle back as records, for review with no database.

`console.audit` writes and verifies bundles; a reviewer also needs the records
themselves as the same `AuditEntry` values the live console shows, plus what the
bundle says about itself (who exported it, when, from where, with which key). This
module gives both, so the audit browser can show a bundle exactly as it shows the
live chain, without any Qt and without opening a database.

The signature and the chain are checked separately: a reviewer needs to know
whether the file was changed after export (signature) and, independently, whether
the chain inside it holds and where it breaks first.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from console.audit import (
    BundleError,
    VerifyResult,
    _signed_part,
    key_fingerprint,
    read_bundle,
    verify_records,
)
from console.domain import AuditEntry

__all__ = ["BundleError", "BundleReview", "entries_of", "open_bundle", "review_bundle",
           "review_of", "signature_holds"]


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise BundleError(f"{where}: 'at' must be an ISO time, got {value!r}")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BundleError(f"{where}: 'at' is not an ISO time ({exc})") from None
    if at.tzinfo is None:
        raise BundleError(f"{where}: 'at' has no timezone")
    return at


def entries_of(bundle: Mapping[str, Any], source: str = "bundle") -> list[AuditEntry]:
    """The bundle's records as audit entries, in the bundle's order (normally by seq)."""
    out = []
    for i, rec in enumerate(bundle["records"]):
        where = f"{source}: records[{i}]"
        if not isinstance(rec.get("seq"), int):
            raise BundleError(f"{where}: 'seq' must be an integer")
        if not all(isinstance(rec[k] or {}, Mapping) for k in ("inputs", "outputs")):
            raise BundleError(f"{where}: 'inputs' and 'outputs' must be objects")
        out.append(AuditEntry(
            seq=rec["seq"], at=_parse_time(rec["at"], where), actor=str(rec["actor"]),
            action=str(rec["action"]), target=str(rec["target"]), reason=str(rec["reason"]),
            inputs=dict(rec["inputs"] or {}), outputs=dict(rec["outputs"] or {}),
            decision=str(rec["decision"]), prev_hash=str(rec["prev_hash"]),
            hash=str(rec["hash"])))
    return out


def signature_holds(bundle: Mapping[str, Any]) -> bool:
    """True when the bundle's signature matches its contents and embedded key."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(bundle["public_key"]))
        public.verify(base64.b64decode(bundle["signature"]), _signed_part(bundle))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class BundleReview:
    """Everything a reviewer sees of one bundle: its records and both checks."""

    path: Path
    entries: tuple[AuditEntry, ...]
    exported_at: str
    source: str
    fingerprint: str
    signature_ok: bool
    chain: VerifyResult

    @property
    def ok(self) -> bool:
        return self.signature_ok and self.chain.ok

    def describe(self) -> str:
        """One line for a banner or a terminal: signature, then chain."""
        signature = ("signature valid" if self.signature_ok
                     else "SIGNATURE DOES NOT MATCH (changed after export)")
        return f"{signature}; {self.chain.describe()} (key {self.fingerprint})"


def open_bundle(path: Path) -> tuple[dict[str, Any], list[AuditEntry]]:
    """Read and parse a bundle (BundleError with the reason on a bad file); no checks."""
    bundle = read_bundle(path)  # format, version, fields and every record's keys
    return bundle, entries_of(bundle, str(path))


def _fingerprint(bundle: Mapping[str, Any]) -> str:
    try:
        return key_fingerprint(str(bundle["public_key"]))
    except ValueError:  # not base64: the signature check fails and says so
        return "unreadable"


def review_of(path: Path, bundle: Mapping[str, Any],
              entries: Sequence[AuditEntry]) -> BundleReview:
    """Check an opened bundle's signature and chain (CPU work: run it off the GUI)."""
    return BundleReview(
        path=path, entries=tuple(entries), exported_at=str(bundle["exported_at"]),
        source=str(bundle["source"]), fingerprint=_fingerprint(bundle),
        signature_ok=signature_holds(bundle),
        chain=verify_records(bundle["records"], bundle["head"]))


def review_bundle(path: Path) -> BundleReview:
    """Read a bundle and check its signature and its chain."""
    bundle, entries = open_bundle(path)
    return review_of(path, bundle, entries)

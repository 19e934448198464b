"""Checking a hand-off packet (HTML or PDF) against the audit chain it carries.

A packet is believed only when all of these hold, and each that does not is named:
- the packet's signature covers its content (nothing was changed after export);
- the embedded audit bundle's signature holds, and its stretch of the chain holds from
  the record it says it follows on from to its head (console/audit.py's own checks);
- every record the packet shows is in that stretch with the same hash, and what the
  packet says of an approval (who, which recommendation, the preview hash approved), a
  validation or a rollback is what its record says;
- the page a person reads is the packet's own rendering (HTML: a hash edited in the
  visible table is named by line; a PDF carries the packet in its XMP metadata, which is
  what is checked, and its drawing is not compared);
- with a database given, every record of the stretch has the database's hash too.

Who signed it is judged apart (console/audit_trust.py), as for a bundle.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from console.audit import BundleError, verify_records
from console.audit_bundle_read import signature_holds
from console.audit_form import HASHED_FIELDS
from console.handoff import PACKET_FORMAT, PACKET_VERSION, signed_part
from console.handoff_html import extract, render_page

XMP_PACKET = re.compile(rb"<wf:packet>([A-Za-z0-9+/=\s]+)</wf:packet>")
PACKET_KEYS = ("exported_at", "incident", "causes", "timeline", "approvals", "actions",
               "validations", "rollbacks", "cited", "audit", "signature")
BUNDLE_KEYS = ("format", "version", "exported_at", "source", "head", "records",
               "public_key", "signature", "start")
SHOWN = (("approvals", ("actor", "action", "target", "decision")),
         ("validations", ("actor", "action", "target", "reason")),
         ("rollbacks", ("actor", "action", "target", "reason")))


def looks_like_packet(path: Path) -> bool:
    """A page or a PDF (a bundle is plain JSON): read as a packet."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512).lstrip()
    except OSError:
        return False
    return head.startswith((b"%PDF", b"<!DOCTYPE html", b"<html"))


@dataclass
class PacketVerdict:
    """What was checked, one line each; `problems` is empty when the packet holds."""

    packet: dict[str, Any]
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        head = ("hand-off packet holds" if self.ok
                else f"hand-off packet REFUSED: {len(self.problems)} problem(s)")
        return "\n".join((head, *self.checked, *(f"PROBLEM: {p}" for p in self.problems)))


def read_packet(path: Path) -> tuple[dict[str, Any], str | None]:
    """The packet and, for a page, the page's text; BundleError naming what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc})") from None
    page: str | None = None
    if raw.lstrip().startswith(b"%PDF"):
        match = XMP_PACKET.search(raw)
        if match is None:
            raise BundleError(f"{path}: a PDF without a Watchfloor hand-off packet in its "
                              "metadata")
        try:
            text = base64.b64decode(b"".join(match.group(1).split()), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BundleError(f"{path}: the packet in the PDF's metadata is unreadable "
                              f"({exc})") from None
    else:
        try:
            page = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{path}: not UTF-8 text ({exc})") from None
        found = extract(page)
        if found is None:
            raise BundleError(f"{path}: a page without a Watchfloor hand-off packet "
                              "(no watchfloor-handoff data block)")
        text = found
    try:
        packet = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: the packet's data is not JSON ({exc})") from None
    _check_shape(packet, path)
    return packet, page


def _check_shape(packet: Any, path: Path) -> None:
    if not isinstance(packet, dict) or packet.get("format") != PACKET_FORMAT:
        raise BundleError(f"{path}: not a Watchfloor hand-off packet (format field)")
    if packet.get("version") != PACKET_VERSION:
        raise BundleError(f"{path}: packet version {packet.get('version')!r} is not supported")
    missing = [k for k in PACKET_KEYS if k not in packet]
    if missing:
        raise BundleError(f"{path}: packet lacks field(s) {', '.join(missing)}")
    bundle = packet["audit"]
    if not isinstance(bundle, dict) or any(k not in bundle for k in BUNDLE_KEYS):
        raise BundleError(f"{path}: the packet's audit bundle lacks fields")
    records = bundle["records"]
    if not isinstance(records, list) or any(
            not isinstance(r, dict) or any(k not in r for k in (*HASHED_FIELDS, "hash"))
            for r in records):
        raise BundleError(f"{path}: a record of the packet's audit bundle lacks audit fields")


def verify_packet(path: Path, *,
                  stored_hashes: Callable[[int, int], Mapping[int, str]] | None = None,
                  ) -> PacketVerdict:
    """Check the packet at `path` (BundleError when it is no packet at all).
    `stored_hashes(first, last)`: the database's hash of each record in that range."""
    packet, page = read_packet(path)
    verdict = PacketVerdict(packet)
    bundle = packet["audit"]
    incident = packet["incident"]
    start, head = bundle["start"], bundle["head"]
    verdict.checked.append(
        f"packet of incident {incident.get('id')}: {len(packet['cited'])} records about it, "
        f"within records {start.get('count', 0) + 1}-{head.get('count')} of the chain")
    _check_signature(packet, verdict)
    _check_chain(bundle, verdict)
    by_seq = {r.get("seq"): r for r in bundle["records"]}
    _check_cited(packet, by_seq, verdict)
    if page is not None:
        _check_page(packet, page, verdict)
    else:
        verdict.checked.append("PDF: the packet in its metadata is what was checked")
    if stored_hashes is not None:
        _check_database(bundle, stored_hashes, verdict)
    return verdict


def _check_signature(packet: Mapping[str, Any], verdict: PacketVerdict) -> None:
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(packet["audit"]["public_key"]))
        public.verify(base64.b64decode(packet["signature"]), signed_part(packet))
    except (InvalidSignature, ValueError, TypeError):
        verdict.problems.append("the packet's signature does not match its contents "
                                "(changed after export)")
        return
    verdict.checked.append("packet signature valid")


def _check_chain(bundle: Mapping[str, Any], verdict: PacketVerdict) -> None:
    if not signature_holds(bundle):
        verdict.problems.append("the embedded audit bundle's signature does not match its "
                                "records (changed after export)")
    start = bundle["start"]
    try:
        anchor = (int(start["count"]), str(start["hash"]))
    except (KeyError, TypeError, ValueError):
        verdict.problems.append(f"the bundle's start is unreadable: {start!r}")
        return
    result = verify_records(bundle["records"], bundle["head"], start=anchor)
    if result.ok:
        verdict.checked.append(f"audit chain holds from record {anchor[0] + 1} to "
                               f"{bundle['head'].get('count')}")
    else:
        verdict.problems.append(result.describe())


def _check_cited(packet: Mapping[str, Any], by_seq: Mapping[Any, Mapping[str, Any]],
                 verdict: PacketVerdict) -> None:
    before = len(verdict.problems)
    for cited in packet["cited"]:
        record = by_seq.get(cited.get("seq"))
        if record is None:
            verdict.problems.append(f"record {cited.get('seq')} shown by the packet is not in "
                                    "its audit chain")
        elif record["hash"] != cited.get("hash"):
            verdict.problems.append(f"record {cited['seq']}: the packet shows hash "
                                    f"{str(cited.get('hash'))[:16]}\u2026, the chain has "
                                    f"{record['hash'][:16]}\u2026")
    for part, fields in SHOWN:
        for shown in packet[part]:
            record = by_seq.get(shown.get("seq"))
            if record is None:
                verdict.problems.append(f"{part[:-1]} in record {shown.get('seq')}: no such "
                                        "record in the packet's chain")
                continue
            for name in fields:
                if str(shown.get(name)) != str(record.get(name)):
                    verdict.problems.append(
                        f"{part[:-1]} in record {shown['seq']}: the packet shows {name} "
                        f"{shown.get(name)!r}, the record says {record.get(name)!r}")
            if part == "approvals":
                said = str((record.get("inputs") or {}).get("preview_hash", ""))
                if shown.get("preview_hash") != said:
                    verdict.problems.append(
                        f"approval in record {shown['seq']}: the packet shows preview hash "
                        f"{shown.get('preview_hash')!r}, the record approved {said!r}")
    if len(verdict.problems) == before:
        verdict.checked.append(f"every record shown is in the chain, and "
                               f"{len(packet['approvals'])} approval(s) name the preview "
                               "hash their record approved")


def _check_page(packet: Mapping[str, Any], page: str, verdict: PacketVerdict) -> None:
    expected = render_page(packet).splitlines()
    found = page.splitlines()
    for number, (want, got) in enumerate(zip(expected, found, strict=False), start=1):
        if want != got:
            at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False))
                       if a != b), min(len(want), len(got)))
            verdict.problems.append(f"the page differs from its packet at line {number}: "
                                    f"it shows {_around(got, at)!r} where the packet gives "
                                    f"{_around(want, at)!r}")
            return
    if len(expected) != len(found):
        verdict.problems.append(f"the page has {len(found)} lines, its packet renders "
                                f"{len(expected)}")
        return
    verdict.checked.append("the page shows exactly what its packet holds")


def _check_database(bundle: Mapping[str, Any],
                    stored_hashes: Callable[[int, int], Mapping[int, str]],
                    verdict: PacketVerdict) -> None:
    records = bundle["records"]
    if not records:
        return
    first, last = records[0]["seq"], records[-1]["seq"]
    stored = stored_hashes(first, last)
    for record in records:
        have = stored.get(record["seq"])
        if have is None:
            verdict.problems.append(f"record {record['seq']} is not in the database")
            return
        if have != record["hash"]:
            verdict.problems.append(f"record {record['seq']} differs from the database's "
                                    f"(hash {record['hash'][:16]}\u2026 in the packet, "
                                    f"{have[:16]}\u2026 stored)")
            return
    verdict.checked.append(f"records {first}-{last} match the database's chain")


def _around(text: str, at: int, reach: int = 60) -> str:
    """The part of a (long) line around column `at`, where two versions differ."""
    start, end = max(0, at - reach), at + reach
    return (("\u2026" if start else "") + text[start:end]
            + ("\u2026" if end < len(text) else ""))

"""`watchfloor audit verify|export`: the audit log from a terminal.

`verify --db URL` checks the chain, this workstation's signed checkpoints of it and the
rows it vouches for (console/audit_checks.py), reading only: it neither creates users
nor writes a checkpoint. `verify --bundle FILE` checks an exported bundle with no
database (version 2, streamed: console/audit_bundle_verify.py; or version 1 JSON), or
an incident's hand-off packet (HTML or PDF, console/handoff_verify.py; with --db also
against that database's chain), and who signed it: against
`--expect-key FINGERPRINT`, `--trusted-keys FILE`, or else the default trusted-keys file
in the config directory when there is one; with none of them it says plainly that the
signer was not checked. `export --out FILE` writes a signed version 2 bundle in one
streaming pass (console/audit_bundle_export.py).

Exit codes: 0 the check holds, 1 it does not (or a record cannot be exported), 2 bad
input (a file that is not a bundle, an unreadable trusted-keys file, a bad URL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

COMMAND = "audit"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               db_parent: argparse.ArgumentParser) -> None:
    audit = subparsers.add_parser("audit", help="verify or export the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify", parents=[db_parent],
        help="check the hash chain (exit 1 naming the first bad record)",
        description="Check the audit chain of the database: every record's hash and link, "
                    "this workstation's signed checkpoints of it (kept outside the "
                    "database), and the incidents, recommendations, approvals, executions "
                    "and rollbacks each written with a record. With --bundle: an exported "
                    "bundle's chain, signature and signer, no database.")
    verify.add_argument("--bundle", type=Path, metavar="FILE",
                        help="verify an exported bundle (chain, signature, signer), no "
                             "database; or an incident's hand-off packet (.html or .pdf), "
                             "against the database's chain too when --db is given")
    verify.add_argument("--expect-key", metavar="FINGERPRINT", default=None,
                        help="with --bundle: the bundle must be signed by this key (the "
                             "fingerprint `audit export` printed)")
    verify.add_argument("--trusted-keys", type=Path, metavar="FILE", default=None,
                        help="with --bundle: the bundle must be signed by a key this file "
                             "lists (default: trusted_keys.txt in the config directory, "
                             "when it exists)")
    export = audit_sub.add_parser("export", parents=[db_parent],
                                  help="write a self-contained, signed bundle")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    export.add_argument("--format", choices=("sqlite", "json"), default="sqlite",
                        help="sqlite: a version 2 bundle, written and later verified and "
                             "reviewed in one streaming pass, for a log of any size "
                             "(default); json: a version 1 bundle, one JSON object built "
                             "in memory, for tools that read it as JSON")


def dispatch(args: argparse.Namespace) -> int:
    if args.audit_command == "verify" and args.bundle is not None:
        return _verify_bundle(args)
    if args.audit_command == "verify" and (args.expect_key or args.trusted_keys):
        return _bad("--expect-key and --trusted-keys apply to --bundle FILE")
    if args.audit_command == "verify":
        return _verify_database(args.db)
    if args.format == "json":
        return _export_json(args.db, args.out)
    return _export(args.db, args.out)


def _bad(message: str) -> int:
    print(f"watchfloor: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _verify_bundle(args: argparse.Namespace) -> int:
    from console.audit import BundleError, key_fingerprint, read_bundle, verify_bundle
    from console.audit_trust import TrustError, judge_signer, parse_fingerprint
    from console.handoff_verify import looks_like_packet

    if looks_like_packet(args.bundle):
        return _verify_packet(args)
    from console.audit_bundle_file import is_stream_bundle

    if is_stream_bundle(args.bundle):
        return _verify_stream_bundle(args)

    try:
        expect = parse_fingerprint(args.expect_key) if args.expect_key else None
        bundle = read_bundle(args.bundle)
        result = verify_bundle(bundle)
        verdict = judge_signer(str(bundle["public_key"]), expect=expect,
                               trusted_file=args.trusted_keys)
    except (BundleError, TrustError) as exc:
        return _bad(str(exc))
    try:
        fingerprint = key_fingerprint(str(bundle["public_key"]))
    except ValueError:
        fingerprint = "unreadable"
    print(f"{result.describe()} (signed by key {fingerprint}, exported "
          f"{bundle['exported_at']})")
    print(verdict.text)
    if not result.ok:
        return EXIT_FAILED
    return EXIT_FAILED if verdict.checked and not verdict.trusted else EXIT_OK


def _verify_stream_bundle(args: argparse.Namespace) -> int:
    """A version 2 bundle, in one streaming pass (console/audit_bundle_verify.py)."""
    from console.audit import BundleError
    from console.audit_bundle_file import BundleDamaged
    from console.audit_bundle_verify import verify_stream_bundle
    from console.audit_trust import TrustError, judge_signer, parse_fingerprint

    try:
        expect = parse_fingerprint(args.expect_key) if args.expect_key else None
        bundle, verdict = verify_stream_bundle(args.bundle)
        signer = judge_signer(str(bundle.manifest["public_key"]), expect=expect,
                              trusted_file=args.trusted_keys)
    except BundleDamaged as exc:
        print(f"audit bundle does not hold: {exc}")
        return EXIT_FAILED
    except (BundleError, TrustError) as exc:
        return _bad(str(exc))
    print(f"{verdict.result.describe()} (signed by key {bundle.fingerprint}, exported "
          f"{bundle.manifest['exported_at']})")
    print(signer.text)
    if not verdict.result.ok:
        return EXIT_FAILED
    return EXIT_FAILED if signer.checked and not signer.trusted else EXIT_OK


def _verify_packet(args: argparse.Namespace) -> int:
    """An incident's hand-off packet (HTML or PDF): its chain, that it shows what its
    records say, its signer, and with --db the database's chain too."""
    from console.audit import BundleError
    from console.audit_trust import TrustError, judge_signer, parse_fingerprint
    from console.handoff_verify import verify_packet

    db = None
    if args.db is not None:
        from console.storage.db import Database

        db = Database(args.db, migrate=False)  # reads only
    try:
        expect = parse_fingerprint(args.expect_key) if args.expect_key else None
        verdict = verify_packet(args.bundle, stored_hashes=None if db is None
                                else lambda first, last: _stored_hashes(db, first, last))
        signer = judge_signer(str(verdict.packet["audit"]["public_key"]), expect=expect,
                              trusted_file=args.trusted_keys)
    except (BundleError, TrustError) as exc:
        return _bad(str(exc))
    finally:
        if db is not None:
            db.dispose()
    print(verdict.describe())
    print(signer.text)
    if not verdict.ok:
        return EXIT_FAILED
    return EXIT_FAILED if signer.checked and not signer.trusted else EXIT_OK


def _stored_hashes(db: Any, first: int, last: int) -> dict[int, str]:
    from sqlalchemy import select

    from console.storage.models import AuditRow

    with db.sessions() as session:
        rows = session.execute(select(AuditRow.seq, AuditRow.hash).where(
            AuditRow.seq >= first, AuditRow.seq <= last))
        return {seq: digest for seq, digest in rows}


def _verify_database(url: str | None) -> int:
    from console.audit_checks import verify_database
    from console.storage.db import Database

    db = Database(url)
    try:
        result = verify_database(db)
    finally:
        db.dispose()
    print(result.describe())
    return EXIT_OK if result.ok else EXIT_FAILED


def _export(url: str | None, out: Path) -> int:
    """A version 2 bundle, streamed from the database (console/audit_bundle_export.py)."""
    from console.audit import UnreadableRecord
    from console.audit_bundle_export import export_stream
    from console.audit_trust import workstation_key
    from console.storage.db import Database

    key = workstation_key()
    db = Database(url)
    try:
        with db.sessions() as session:
            manifest = export_stream(session, out, key, source=db.url)
    except UnreadableRecord as exc:
        print(f"watchfloor: nothing exported: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.dispose()
    print(f"wrote {manifest['records']['count']} records to {out} (signed by key "
          f"{manifest['key_id']})")
    return EXIT_OK


def _export_json(url: str | None, out: Path) -> int:
    from console.audit import (
        AuditLog,
        UnreadableRecord,
        build_bundle,
        key_fingerprint,
        write_bundle,
    )
    from console.audit_trust import workstation_key
    from console.storage.db import Database

    key = workstation_key()
    db = Database(url)
    log = AuditLog()
    try:
        with db.sessions() as session:
            bundle = build_bundle(log.iter_fields(session), log.head(session), key,
                                  source=db.url)
    except UnreadableRecord as exc:
        print(f"watchfloor: nothing exported: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bundle(out, bundle)
    print(f"wrote {len(bundle['records'])} records to {out} (signed by key "
          f"{key_fingerprint(bundle['public_key'])})")
    return EXIT_OK

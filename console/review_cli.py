"""`watchfloor review FILE`: open an exported audit bundle read-only, offline.

The bundle is read and parsed here, without Qt (a version 2 bundle only as far as its
header and manifest: the window pages through its records), so a file that is not a
bundle exits 2 with the reason before any window opens (the same message `audit verify --bundle`
gives). Only then is the GUI imported, through the GUI composition root
(`console.app.run_review`), the one core module allowed to reach the widgets.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

COMMANDS = ("review",)
EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               db_parent: argparse.ArgumentParser | None = None) -> None:
    """Add `review`; `db_parent` gives it the common --db option (unused: no database)."""
    review = subparsers.add_parser(
        "review", parents=[db_parent] if db_parent is not None else [],
        help="open an exported audit bundle read-only in the audit browser (offline)",
        description="Open a bundle written by `watchfloor audit export` in the audit "
                    "browser, read-only and without any database; its signature and "
                    "chain are verified on opening and the result is shown. A file that "
                    "is not a bundle exits 2 with the reason.")
    review.add_argument("bundle", type=Path, metavar="FILE",
                        help="the bundle (version 2 SQLite, or version 1 JSON)")


def dispatch(args: argparse.Namespace,
             run: Callable[[Path], int] | None = None) -> int:
    """Check the file, then open the review window until it is closed. `run` replaces
    the GUI (tests)."""
    from console.audit_bundle_file import BundleFile, is_stream_bundle
    from console.audit_bundle_read import BundleError, open_bundle  # not on the GUI's path

    try:
        if is_stream_bundle(args.bundle):  # version 2: its header and manifest only
            BundleFile.open(args.bundle).close()
        else:
            open_bundle(args.bundle)
    except BundleError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    if run is None:
        from console.app import run_review  # type: ignore[attr-defined]  # GUI root, lazily

        run = run_review
    return run(args.bundle)

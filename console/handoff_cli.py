"""`watchfloor incident export N --out FILE.html|FILE.pdf`: an incident's hand-off packet.

The HTML is written here, with no Qt. A PDF is drawn from the same page by the widgets
layer, which only the composition root may reach: `console/cli.py` hands in the drawing
function (`console.app.write_handoff_pdf`), so this module stays in the core.

Exit codes: 0 written, 1 the packet could not be made (no such incident, an unreadable
record), 2 bad input (an output name that is neither .html nor .pdf, a bad URL).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMAND = "incident"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SUFFIXES = (".html", ".htm", ".pdf")

PdfWriter = Callable[[str, dict[str, Any], Path], None]
"""(the page's body HTML, the packet, the output path): writes the PDF."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
               db_parent: argparse.ArgumentParser) -> None:
    incident = subparsers.add_parser("incident", help="an incident's hand-off packet")
    incident_sub = incident.add_subparsers(dest="incident_command", metavar="ACTION",
                                           required=True)
    export = incident_sub.add_parser(
        "export", parents=[db_parent],
        help="write the incident's hand-off packet as HTML or PDF",
        description="Write one incident's hand-off packet: its timeline, causes and "
                    "evidence, every approval with the exact preview hash approved, the "
                    "actions, validations and rollbacks, and the audit records they come "
                    "from (a signed stretch of the chain, embedded). FILE.html or FILE.pdf; "
                    "check it with `watchfloor audit verify --bundle FILE`.")
    export.add_argument("incident_id", type=int, metavar="N", help="the incident's number")
    export.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="FILE.html or FILE.pdf")


def dispatch(args: argparse.Namespace, write_pdf: Callable[[], PdfWriter]) -> int:
    """`write_pdf()` gives the PDF writer (imported only when a PDF is asked for)."""
    out: Path = args.out
    if out.suffix.lower() not in SUFFIXES:
        print(f"watchfloor: --out {out}: the packet is written as .html or .pdf",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    from console.audit import UnreadableRecord
    from console.audit_trust import workstation_key
    from console.handoff import PacketError, build_packet
    from console.handoff_html import render_body, render_page
    from console.clock import RealClock
    from console.runtime import Runtime

    runtime = Runtime(args.db, clock=RealClock())
    try:
        packet = build_packet(runtime.service, args.incident_id, workstation_key())
    except (PacketError, UnreadableRecord) as exc:
        print(f"watchfloor: nothing exported: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        runtime.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        write_pdf()(render_body(packet), packet, out)
    else:
        write_text(out, render_page(packet))
    print(f"wrote the hand-off packet of incident {args.incident_id} to {out}: "
          f"{len(packet['approvals'])} approval(s), {len(packet['actions'])} action(s), "
          f"{len(packet['cited'])} audit records (check it with `watchfloor audit verify "
          f"--bundle {out}`)")
    return EXIT_OK


def write_text(path: Path, text: str) -> None:
    """All or nothing: a half-written packet never takes the name."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)

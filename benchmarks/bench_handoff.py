"""The incident hand-off packet: how long making one and checking one takes, and how big
it is, for every incident of a scenario played to its end with every fix approved.

Figures per incident: `audit_records_about_it` (the records the packet shows),
`chain_stretch` (the records of the chain it embeds, from its first record to its last,
whoever they are about), `html_bytes`, `build_s` (read, sign and render the page) and
`verify_s` (`audit verify --bundle`'s whole check of the page, offline). The same
scenario (`--scenario`, default storm) and the same machine give comparable figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from console.audit_trust import workstation_key
from console.clock import RealClock
from console.handoff import build_packet
from console.handoff_html import render_page
from console.handoff_verify import verify_packet
from console.runtime import Runtime, run_headless


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'handoff.db'}"
        start = time.perf_counter()
        run_headless(args.scenario, db_url=url, approve="all")
        played_s = time.perf_counter() - start
        key = workstation_key(Path(tmp) / "bench.key")
        runtime = Runtime(url, clock=RealClock())
        try:
            incidents = [info.id for info in runtime.service.incidents()]
            per_incident = []
            for incident_id in sorted(incidents):
                start = time.perf_counter()
                packet = build_packet(runtime.service, incident_id, key)
                page = render_page(packet)
                build_s = time.perf_counter() - start
                path = Path(tmp) / f"incident-{incident_id}.html"
                path.write_text(page, encoding="utf-8")
                start = time.perf_counter()
                verdict = verify_packet(path)
                verify_s = time.perf_counter() - start
                per_incident.append({
                    "incident": incident_id, "holds": verdict.ok,
                    "audit_records_about_it": len(packet["cited"]),
                    "chain_stretch": len(packet["audit"]["records"]),
                    "approvals": len(packet["approvals"]),
                    "html_bytes": len(page.encode()), "build_s": round(build_s, 3),
                    "verify_s": round(verify_s, 3)})
        finally:
            runtime.close()
    return {"scenario": args.scenario, "played_s": round(played_s, 1),
            "incidents": per_incident}

"""The hand-off packet as a page: what a person reads, and the packet itself inside it.

`render_page` is a pure function of the packet: the same packet always gives the same
bytes, so whoever verifies the file renders it again and compares (a hash edited in the
visible table is caught like one edited in the data). The packet travels as JSON in a
`<script type="application/json">` block, every `<`, `>` and `&` escaped so no content
can close the block early. `render_body` is the readable part alone, which the PDF draws
(Qt's rich text would print a script's text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

DATA_ID = "watchfloor-handoff"
_DATA = re.compile(r'<script type="application/json" id="' + DATA_ID + r'">(.*?)</script>',
                   re.S)
CSS = ("body { font-family: sans-serif; font-size: 10pt; color: #111; } "
       "h1 { font-size: 16pt; margin-bottom: 2px; } h2 { font-size: 12pt; margin-top: 14px; "
       "border-bottom: 1px solid #888; } table { border-collapse: collapse; } "
       "th { text-align: left; background: #e8e8e8; } th, td { padding: 2px 6px; "
       "vertical-align: top; border: 1px solid #bbb; } .hash { font-family: monospace; "
       "font-size: 8pt; } .muted { color: #555; }")


def embed(packet: Mapping[str, Any]) -> str:
    """The packet as JSON that is safe inside a script block."""
    text = json.dumps(packet, ensure_ascii=False, sort_keys=True, indent=1)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def extract(page: str) -> str | None:
    """The packet's JSON text from a page, None when the page holds none."""
    match = _DATA.search(page)
    return match.group(1) if match else None


def render_page(packet: Mapping[str, Any]) -> str:
    incident = packet["incident"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>Incident {incident['id']} hand-off</title>\n<style>{CSS}</style>\n"
            "</head>\n<body>\n" + render_body(packet)
            + f"<script type=\"application/json\" id=\"{DATA_ID}\">{embed(packet)}</script>\n"
            "</body>\n</html>\n")


def render_body(packet: Mapping[str, Any]) -> str:
    """The readable packet, one element per line (a verifier names the line that
    differs)."""
    incident, audit = packet["incident"], packet["audit"]
    records = audit["records"]
    parts = [
        f"<h1>Incident {incident['id']}: {_e(incident['title'])}</h1>",
        f"<p>{_e(incident['severity']).upper()} \u00b7 {_e(incident['state'])} \u00b7 "
        f"opened {_e(_when(incident['opened_at']))} UTC"
        + (f" \u00b7 resolved {_e(_when(incident['resolved_at']))} UTC"
           if incident["resolved_at"] else "")
        + f" \u00b7 services: {_e(', '.join(incident['services']) or '-')}</p>",
        f"<p class=\"muted\">Hand-off packet exported {_e(_when(packet['exported_at']))} UTC; "
        f"{len(packet['cited'])} audit records about this incident, within records "
        f"{audit['start']['count'] + 1}-{audit['head']['count']} of the chain "
        f"(embedded, signed). Check it with: watchfloor audit verify --bundle FILE</p>",
        "<h2>Causes</h2>",
        *(_cause(c) for c in packet["causes"]),
        *(("<p>No cause was diagnosed.</p>",) if not packet["causes"] else ()),
        "<p class=\"muted\">Times are UTC.</p>",
        "<h2>Approvals</h2>",
        _table(("Record", "When", "Who", "Decision", "Recommendation", "Preview hash approved"),
               ([str(a["seq"]), _when(a["at"]), a["actor"], _decision(a), a["target"],
                 (a["preview_hash"] or "-", "hash")] for a in packet["approvals"]),
               "No approval or rejection was recorded."),
        "<h2>Actions</h2>",
        _table(("Run", "Runbook", "Target", "Started by", "State", "Started", "Finished"),
               ([str(r["execution"]), r["runbook"], r["target"],
                 r["initiator"] + (" (autonomous)" if r["autonomous"] else ""), r["state"],
                 _when(r["started_at"]), _when(r["finished_at"])] for r in packet["actions"]),
               "No action ran."),
        "<h2>Validations</h2>",
        _table(("Record", "When", "Run", "Outcome", "Why"),
               ([str(v["seq"]), _when(v["at"]), v["target"], v["action"].partition(".")[2],
                 v["reason"] or "-"] for v in packet["validations"]),
               "No validation was recorded."),
        "<h2>Rollbacks</h2>",
        _table(("Record", "When", "Run", "Step", "Who", "Why"),
               ([str(r["seq"]), _when(r["at"]), r["target"], r["action"].partition(".")[2],
                 r["actor"], r["reason"] or "-"] for r in packet["rollbacks"]),
               "Nothing was rolled back."),
        "<h2>Timeline</h2>",
        _table(("When", "Kind", "Who", "What", "Record"),
               ([_when(t["at"]), t["kind"], t["who"] or "-", t["text"], t["ref"] or "-"]
                for t in packet["timeline"]), "Nothing was recorded."),
        "<h2>Audit records</h2>",
        _table(("Record", "When", "Actor", "Action", "Target", "Decision", "Hash"),
               ([str(r["seq"]), _when(r["at"]), r["actor"], r["action"], r["target"] or "-",
                 r["decision"], (r["hash"], "hash")] for r in records
                if r["seq"] in {c["seq"] for c in packet["cited"]}),
               "No audit record names this incident."),
        f"<p class=\"muted\">Signed by key {_e(_fingerprint(audit['public_key']))}.</p>",
    ]
    return "\n".join(parts) + "\n"


def _cause(cause: Mapping[str, Any]) -> str:
    evidence = "".join(
        f"<li>{_e(e['summary'] or e['kind'])} <span class=\"muted\">[{_e(e['ref'])}]</span></li>"
        for e in cause["evidence"])
    recs = ", ".join(f"#{n}" for n in cause["recommendations"]) or "none"
    return (f"<h3>Cause {cause['ordinal']}: {_e(cause['key'])} \u2014 {_e(cause['state'])} "
            f"(confidence {cause['confidence']:.2f})</h3>"
            + (f"<p>{_e(cause['note'])}</p>" if cause["note"] else "")
            + f"<p>Recommendations: {_e(recs)}</p>"
            + (f"<ul>{evidence}</ul>" if evidence else "<p>No evidence stored.</p>"))


def _decision(approval: Mapping[str, Any]) -> str:
    verb = "approved" if approval["action"] == "recommendation.approve" else "rejected"
    return verb if approval["decision"] != "deny" else f"{verb}: refused by policy"


Cell = str | tuple[str, str] | None


def _table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], empty: str) -> str:
    body = ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows]
    if not body:
        return f"<p>{_e(empty)}</p>"
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"
    return "<table>\n" + head + "\n" + "\n".join(body) + "\n</table>"


def _cell(cell: Cell) -> str:
    if isinstance(cell, tuple):
        return f"<td class=\"{cell[1]}\">{_e(cell[0])}</td>"
    return f"<td>{_e(cell or '')}</td>"


def _when(iso: str | None) -> str:
    """An ISO time as a person reads it on paper (UTC, to the second); the packet's data
    keeps it whole."""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ")


def _e(value: Any) -> str:
    return escape(str(value if value is not None else ""))


def _fingerprint(public_b64: str) -> str:
    from console.audit import key_fingerprint

    try:
        return key_fingerprint(public_b64)
    except ValueError:
        return "unreadable"

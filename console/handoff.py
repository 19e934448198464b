"""The incident hand-off packet: one incident, as the next shift or the post-incident
review needs it, in a file that proves itself.

The packet holds the incident, its causes with their evidence, its timeline, every
approval with the exact preview hash that was approved, the actions, their validations
and rollbacks, and the audit records all of this was read from. Those records travel as
an audit bundle (the format `watchfloor audit export` writes, signed with this
workstation's key) holding the stretch of the chain from the incident's first record to
its last, anchored at the hash of the record before it, so `watchfloor audit verify
--bundle PACKET` can check the chain, that every record the packet shows is in it, and
that what the packet says (each approval's preview hash...) is what those records say.
The packet's own content is signed with the same key: a packet changed after export is
refused, naming what differs (console/handoff_verify.py).

This module gathers the packet as plain JSON-able data; console/handoff_html.py renders
it. No Qt: the CLI exports HTML without a display, and the PDF is drawn by the widgets
layer from the same HTML.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.audit import AuditLog, build_bundle
from console.audit_form import canonical_json, format_time
from console.domain import AuditEntry, Execution, Hypothesis
from console.service import IncidentActivity, WatchfloorService
from console.storage.repos_causes import Cause, CauseRepo
from console.storage.repos_retrieval import RetrievalRepo

PACKET_FORMAT = "watchfloor-handoff-packet"
PACKET_VERSION = 1
APPROVALS = ("recommendation.approve", "recommendation.reject")
VALIDATIONS = ("execution.succeeded", "execution.failed")
ROLLBACKS = ("execution.rollback", "execution.rolled_back", "execution.rollback_failed")
SIGNAL_LEAD_S = 1800.0  # signals and changes from this long before the incident opened
NOTES_KEPT = 10  # of each kind of team note, the first and last five (a storm writes
# thousands of one kind; the console's timeline has them all)
TIMELINE_REASON = 240  # a timeline row quotes this much of a record's reason (the record,
# in the packet's audit records, has it whole)


class PacketError(ValueError):
    """The packet cannot be made (no such incident, a record that cannot be read)."""


def _clip(text: str) -> str:
    return text if len(text) <= TIMELINE_REASON else text[:TIMELINE_REASON - 1] + "\u2026"


def _note_ref(ref: str | None) -> str:
    """A note names an alert series by its fingerprint, or any record by its link."""
    if not ref:
        return ""
    return ref if ":" in ref else f"signal:{ref}"


def _time(at: datetime | None) -> str | None:
    return None if at is None else format_time(at)


def signed_part(packet: Mapping[str, Any]) -> bytes:
    """What the packet's signature covers: everything but the signature itself."""
    return canonical_json({k: v for k, v in packet.items() if k != "signature"}).encode()


def build_packet(service: WatchfloorService, incident_id: int, key: Ed25519PrivateKey,
                 ) -> dict[str, Any]:
    """The signed packet of incident `incident_id` (PacketError when there is none).
    Reads only; blocks on the database."""
    activity = service.incident_activity(incident_id, lead_s=SIGNAL_LEAD_S, limit=5000)
    if activity is None:
        raise PacketError(f"no incident {incident_id} in this database")
    repo = RetrievalRepo()
    with service.db.sessions() as session:
        causes = CauseRepo().causes(session, incident_id)
        hypotheses = repo.hypotheses(session, incident_id)
        incident_records = _incident_records(session, repo, incident_id, activity.audit)
        bundle = _chain_stretch(session, incident_records, key, source=service.db.url)
    packet: dict[str, Any] = {
        "format": PACKET_FORMAT, "version": PACKET_VERSION,
        "exported_at": bundle["exported_at"],
        "incident": _incident(activity),
        "causes": [_cause(c, hypotheses) for c in causes],
        "timeline": _timeline(activity, incident_records),
        "approvals": [_approval(e) for e in incident_records if e.action in APPROVALS],
        "actions": [_action(run) for run in activity.executions],
        "validations": [_outcome(e) for e in incident_records if e.action in VALIDATIONS],
        "rollbacks": [_outcome(e) for e in incident_records if e.action in ROLLBACKS],
        "cited": [{"seq": e.seq, "hash": e.hash} for e in incident_records],
        "audit": bundle,
    }
    packet["signature"] = base64.b64encode(key.sign(signed_part(packet))).decode()
    return packet


# --- reading ------------------------------------------------------------------------------


def _incident_records(session: Any, repo: RetrievalRepo, incident_id: int,
                      about_actions: Sequence[AuditEntry]) -> list[AuditEntry]:
    """The audit records about the incident itself and about its recommendations and
    runs, in chain order, each once."""
    own = repo.audit_for(session, [f"incident:{incident_id}"], limit=5000)
    seen: dict[int, AuditEntry] = {e.seq: e for e in (*own, *about_actions)}
    return [seen[seq] for seq in sorted(seen)]


def _chain_stretch(session: Any, records: Sequence[AuditEntry], key: Ed25519PrivateKey, *,
                   source: str) -> dict[str, Any]:
    """A signed audit bundle of the chain from the first of `records` to the last (every
    record in between, whoever it is about: the chain has no gaps), with `start`: the
    record count and hash it follows on from."""
    if not records:
        bundle = build_bundle([], None, key, source=source)
        bundle["start"] = {"count": 0, "hash": bundle["head"]["hash"]}
        return bundle
    first, last = records[0].seq, records[-1].seq
    stretch: list[dict[str, Any]] = []
    for fields in AuditLog().iter_fields(session, after=first - 1):
        if fields["seq"] > last:
            break
        stretch.append(fields)
    bundle = build_bundle(stretch, {"count": last, "hash": stretch[-1]["hash"]}, key,
                          source=source)
    bundle["start"] = {"count": first - 1, "hash": stretch[0]["prev_hash"]}
    return bundle


# --- the parts ------------------------------------------------------------------------------


def _incident(activity: IncidentActivity) -> dict[str, Any]:
    info = activity.incident
    return {"id": info.id, "title": info.title, "severity": info.severity.value,
            "state": info.state, "services": list(info.services),
            "opened_at": _time(info.opened_at), "resolved_at": _time(info.resolved_at)}


def _cause(cause: Cause, hypotheses: Iterable[Hypothesis]) -> dict[str, Any]:
    """A stored cause with the evidence of the hypothesis it is (its summaries where the
    ranking still holds it, the stored links otherwise)."""
    ranked = next((h for h in hypotheses if h.key == cause.key), None)
    evidence = ([{"kind": e.kind, "summary": e.summary, "ref": e.ref} for e in ranked.evidence]
                if ranked is not None else
                [{"kind": ref.partition(":")[0], "summary": "", "ref": ref}
                 for ref in cause.evidence])
    return {"ordinal": cause.ordinal, "key": cause.key, "service": cause.service,
            "fault_class": cause.fault_class, "confidence": round(cause.confidence, 4),
            "state": cause.state, "note": cause.note, "evidence": evidence,
            "recommendations": [a.recommendation_id for a in cause.actions]}


def _approval(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": _time(entry.at), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "decision": entry.decision,
            "preview_hash": str(entry.inputs.get("preview_hash", "")),
            "reason": entry.reason}


def _action(run: Execution) -> dict[str, Any]:
    return {"execution": run.id, "recommendation": run.recommendation_id,
            "runbook": run.runbook_id, "action_class": run.action_class,
            "target": run.target, "initiator": run.initiator, "autonomous": run.autonomous,
            "state": run.state, "started_at": _time(run.started_at),
            "finished_at": _time(run.finished_at)}


def _outcome(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": _time(entry.at), "action": entry.action,
            "target": entry.target, "actor": entry.actor, "reason": entry.reason}


def _timeline(activity: IncidentActivity,
              records: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    """The incident's story in time order: the alert series as they first fired, the
    changes, the team's notes, and every audit record about it."""
    rows: list[tuple[str, int, dict[str, Any]]] = []
    fired: set[str] = set()
    for sig in activity.signals:
        if sig.status.value != "firing" or sig.fingerprint in fired:
            continue
        fired.add(sig.fingerprint)
        rows.append((_time(sig.at) or "", 0, {
            "at": _time(sig.at), "kind": "signal", "who": sig.source,
            "text": f"{sig.name} firing on {sig.service}", "ref": f"signal:{sig.fingerprint}"}))
    for chg in activity.changes:
        rows.append((_time(chg.at) or "", 1, {
            "at": _time(chg.at), "kind": "change", "who": chg.author,
            "text": f"{chg.kind} of {chg.service}: {chg.description}",
            "ref": f"change:{chg.id}"}))
    for note in activity.notes:
        rows.append((_time(note.at) or "", 2, {
            "at": _time(note.at), "kind": note.kind, "who": str(note.data.get("agent", "")),
            "text": note.summary, "ref": _note_ref(note.ref)}))
    for entry in records:
        rows.append((_time(entry.at) or "", 3, {
            "at": _time(entry.at), "kind": "audit", "who": entry.actor,
            "text": f"{entry.action} {entry.target}".strip()
            + (f" ({entry.decision})" if entry.decision not in ("n/a", "") else "")
            + (f": {_clip(entry.reason)}" if entry.reason else ""),
            "ref": f"audit:{entry.seq}"}))
    rows.sort(key=lambda row: (row[0], row[1]))
    return _fold_repeats([row for _at, _rank, row in rows])


def _fold_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A storm's team writes thousands of notes of one kind ("flapping: ...", "join:
    ..."): of each kind of note (its kind, author and first word) the packet keeps the
    first and last NOTES_KEPT // 2 and says how many it left out between them, and when
    (all of them stay in the database and in the console's timeline)."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for index, row in enumerate(rows):
        if row["kind"] in ("signal", "change", "audit"):
            continue
        verb = row["text"].partition(":")[0].partition(" ")[0]
        groups.setdefault((row["kind"], row["who"], verb), []).append(index)
    dropped: set[int] = set()
    summaries: dict[int, dict[str, Any]] = {}
    half = NOTES_KEPT // 2
    for (kind, who, verb), indexes in groups.items():
        if len(indexes) <= NOTES_KEPT:
            continue
        left_out = indexes[half:-half]
        dropped.update(left_out)
        first, last = rows[left_out[0]], rows[left_out[-1]]
        summaries[left_out[0]] = {
            "at": first["at"], "kind": kind, "who": who,
            "text": f"\u2026 {len(left_out):,} more \u201c{verb}\u201d notes like these, "
                    f"until {last['at']} (in the console's timeline)", "ref": ""}
    out = []
    for index, row in enumerate(rows):
        if index in summaries:
            out.append(summaries[index])
        if index not in dropped:
            out.append(row)
    return out

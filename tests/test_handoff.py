"""The incident hand-off packet: what it holds (every approval with the exact preview hash
approved, the actions, validations, the audit records with their hashes), `watchfloor
incident export` writing it, and `watchfloor audit verify --bundle` passing a good packet
and refusing a tampered one with what differs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console import cli
from console.audit import BundleError
from console.audit_trust import workstation_key
from console.handoff import build_packet
from console.handoff_html import embed, extract, render_page
from console.handoff_verify import verify_packet
from console.runtime import ScenarioDriver
from tests.scenario_play import approve_and_run, first_pending


@pytest.fixture
def fixed(runtime: Any) -> Any:
    """bad-deploy with its fix approved by alice, run and validated."""
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    rec = first_pending(runtime, driver)
    approve_and_run(runtime, driver, rec)
    runtime.fixed_rec = rec
    return runtime


def _page(runtime: Any, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    packet = build_packet(runtime.service, runtime.fixed_rec.incident_id, workstation_key())
    path = tmp_path / "handoff.html"
    path.write_text(render_page(packet), encoding="utf-8")
    return path, packet


def test_the_packet_holds_every_approval_with_its_preview_hash(fixed: Any,
                                                               tmp_path: Path) -> None:
    path, packet = _page(fixed, tmp_path)
    page = path.read_text(encoding="utf-8")
    rec = fixed.fixed_rec
    approvals = [e for e in fixed.service.audit_entries()
                 if e.action == "recommendation.approve"]
    assert approvals
    for entry in approvals:
        assert entry.inputs["preview_hash"] == rec.preview_hash
        shown = page.split("<h2>Actions</h2>")[0]  # the visible approvals table
        assert f"<td>{entry.seq}</td>" in shown
        assert rec.preview_hash in shown
    assert [a["preview_hash"] for a in packet["approvals"]] == [rec.preview_hash]
    run = fixed.service.engine.executions()[0]
    assert [a["execution"] for a in packet["actions"]] == [run.id]
    assert [v["action"] for v in packet["validations"]] == ["execution.succeeded"]
    assert packet["causes"] and packet["causes"][0]["evidence"]
    # Every record about the incident is in the page with its whole hash.
    cited = {c["seq"]: c["hash"] for c in packet["cited"]}
    stored = {e.seq: e.hash for e in fixed.service.audit_entries()}
    assert all(stored[seq] == digest for seq, digest in cited.items())
    assert all(digest in page for digest in cited.values())
    # The data block is the packet itself.
    assert json.loads(extract(page) or "") == packet


def test_a_good_packet_verifies(fixed: Any, tmp_path: Path) -> None:
    path, packet = _page(fixed, tmp_path)
    verdict = verify_packet(path, stored_hashes=lambda first, last: {
        e.seq: e.hash for e in fixed.service.audit_entries() if first <= e.seq <= last})
    assert verdict.ok, verdict.describe()
    text = verdict.describe()
    assert "the page shows exactly what its packet holds" in text
    assert "match the database's chain" in text


def test_a_hash_edited_in_the_visible_page_is_refused_by_line(fixed: Any,
                                                              tmp_path: Path) -> None:
    path, _packet = _page(fixed, tmp_path)
    good = fixed.fixed_rec.preview_hash
    forged = ("0" if good[0] != "0" else "1") + good[1:]
    page = path.read_text(encoding="utf-8")
    head, data = page.split('<script type="application/json"', 1)
    path.write_text(head.replace(good, forged) + '<script type="application/json"' + data,
                    encoding="utf-8")
    verdict = verify_packet(path)
    assert not verdict.ok
    [problem] = verdict.problems
    assert "the page differs from its packet at line" in problem
    assert forged[:20] in problem and good[:20] in problem


def test_a_preview_hash_edited_in_the_data_is_refused(fixed: Any, tmp_path: Path) -> None:
    path, packet = _page(fixed, tmp_path)
    good = packet["approvals"][0]["preview_hash"]
    forged = ("0" if good[0] != "0" else "1") + good[1:]
    packet["approvals"][0]["preview_hash"] = forged
    path.write_text(render_page(packet), encoding="utf-8")  # page and data agree
    problems = verify_packet(path).problems
    assert "the packet's signature does not match its contents (changed after export)" \
        in problems
    seq = packet["approvals"][0]["seq"]
    assert (f"approval in record {seq}: the packet shows preview hash {forged!r}, the "
            f"record approved {good!r}") in problems


def test_a_record_changed_in_the_embedded_chain_is_named(fixed: Any, tmp_path: Path) -> None:
    path, packet = _page(fixed, tmp_path)
    records = packet["audit"]["records"]
    victim = records[len(records) // 2]
    victim["reason"] = "nothing to see here"
    page = path.read_text(encoding="utf-8")
    data = extract(page) or ""
    path.write_text(page.replace(data, embed(packet)), encoding="utf-8")
    text = verify_packet(path).describe()
    assert "REFUSED" in text
    assert f"audit chain broken at record {victim['seq']}" in text
    assert "the embedded audit bundle's signature does not match" in text


def test_a_packet_that_differs_from_the_database_is_named(fixed: Any, tmp_path: Path) -> None:
    path, packet = _page(fixed, tmp_path)
    first = packet["audit"]["records"][0]["seq"]
    verdict = verify_packet(path, stored_hashes=lambda lo, hi: {
        seq: ("f" * 64 if seq == first + 1 else h) for seq, h in
        ((e.seq, e.hash) for e in fixed.service.audit_entries()) if lo <= seq <= hi})
    assert verdict.problems == [f"record {first + 1} differs from the database's (hash "
                                f"{packet['audit']['records'][1]['hash'][:16]}\u2026 in the "
                                f"packet, {'f' * 16}\u2026 stored)"]


def test_a_page_without_a_packet_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<!DOCTYPE html><html><body>hello</body></html>", encoding="utf-8")
    with pytest.raises(BundleError, match="a page without a Watchfloor hand-off packet"):
        verify_packet(path)


def test_the_commands_export_and_verify_a_packet(fixed: Any, db_url: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    incident = fixed.fixed_rec.incident_id
    out = tmp_path / "out" / "packet.html"
    assert cli.main(["incident", "export", str(incident), "--out", str(out),
                     "--db", db_url]) == 0
    assert f"wrote the hand-off packet of incident {incident}" in capsys.readouterr().out
    assert cli.main(["audit", "verify", "--bundle", str(out), "--db", db_url]) == 0
    said = capsys.readouterr().out
    assert "hand-off packet holds" in said
    assert "is trusted by" in said

    page = out.read_text(encoding="utf-8")
    out.write_text(page.replace("approved", "rejected", 1), encoding="utf-8")
    assert cli.main(["audit", "verify", "--bundle", str(out)]) == 1
    said = capsys.readouterr().out
    assert "hand-off packet REFUSED" in said
    assert "the page differs from its packet at line" in said

    assert cli.main(["incident", "export", "999", "--out", str(out), "--db", db_url]) == 1
    assert "no incident 999" in capsys.readouterr().err
    assert cli.main(["incident", "export", str(incident), "--out",
                     str(tmp_path / "packet.txt"), "--db", db_url]) == 2
    assert ".html or .pdf" in capsys.readouterr().err


def test_a_storm_of_one_kind_of_note_is_folded_with_how_many_were_left_out() -> None:
    from console.handoff import NOTES_KEPT, _fold_repeats

    rows = [{"at": f"2026-01-05T02:{m:02d}:00+00:00", "kind": "agent", "who": "correlator",
             "text": f"flapping: HighErrorRate on svc-{m}", "ref": ""} for m in range(30)]
    rows.insert(3, {"at": "2026-01-05T02:02:30+00:00", "kind": "audit", "who": "user:alice",
                    "text": "recommendation.approve", "ref": "audit:9"})
    folded = _fold_repeats(rows)
    notes = [r for r in folded if r["kind"] == "agent"]
    assert len(notes) == NOTES_KEPT + 1
    [summary] = [r for r in notes if "more" in r["text"]]
    left_out = 30 - NOTES_KEPT
    assert summary["text"].startswith(f"\u2026 {left_out} more \u201cflapping\u201d notes")
    assert summary["text"].endswith("until 2026-01-05T02:24:00+00:00 (in the console's "
                                    "timeline)")
    assert any(r["kind"] == "audit" for r in folded)  # records are never folded
    assert folded == sorted(folded, key=lambda r: r["at"])

"""New and surging kinds of log lines point at where errors start: the deepest service
writing lines it did not write while well, not its callers reporting the failed calls.

Recordings are laid out as the Nezha cases are (tests/test_investigator_traces.py), with
`logs.jsonl` and a fault-free window's `baseline/logs.jsonl`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.investigator_logs import log_findings
from console.storage.repos_evidence import TemplateStat
from tests.test_investigator_traces import INCIDENT, STEP, T0, investigate, nezha_case

# frontend -> checkout -> payment (and others): see EDGES there


def _line(service: str, minute: float, message: str) -> str:
    ts = T0 + minute * STEP
    return json.dumps({"timestamp": datetime.fromtimestamp(ts, UTC).isoformat(), "ts": ts,
                       "service": service, "pod": f"{service}-0",
                       "message": f"12:00:00.000 {message}"})


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _chatter(minutes: range) -> list[str]:
    """What the services write while well: a steady warning of catalog's."""
    return [_line("catalog", m + k / 4, "WARN c.CatalogImpl#12 [list][No discount "
                                        f"for product {m * 4 + k}]")
            for m in minutes for k in range(4)]


def _fault(minutes: range) -> list[str]:
    """payment fails; checkout, which calls it, reports each failed call (more lines)."""
    out = []
    for m in minutes:
        out += [_line("payment", m + 0.1, f"ERROR p.PaymentImpl#88 [charge][Card {m}7 "
                                          "rejected: NullPointerException in tokenizer]")]
        out += [_line("checkout", m + k / 5, f"WARN o.CheckoutImpl#40 [placeOrder][charge "
                                             f"of order {m * 5 + k} failed, retrying]")
                for k in range(5)]
    return out


def test_the_deepest_service_writing_new_kinds_of_lines_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = nezha_case(tmp_path / "f01", client_slow={})
    _write(case / "logs.jsonl",  # kept all along, as a live estate's are
           _chatter(range(INCIDENT - 8, INCIDENT + 4)) + _fault(range(INCIDENT, INCIDENT + 4)))
    _write(case / "baseline" / "logs.jsonl", _chatter(range(2)))
    report = investigate(case, capsys)
    ranked = [c["service"] for c in report["candidates"]]
    assert ranked[0] == "payment"
    assert ranked.index("checkout") > 0
    evidence = [e for e in report["candidates"][0]["evidence"] if e["kind"] == "log"]
    assert any("did not write while normal" in e["summary"] for e in evidence)
    caller = next(c for c in report["candidates"] if c["service"] == "checkout")
    assert any("which it calls" in e["summary"] for e in caller["evidence"])


def test_a_kind_of_line_the_fault_free_window_holds_is_no_news(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # catalog's steady warning is only in the window from the minute before the symptom
    # on (the rest of its log was not kept); the fault-free window says it is normal.
    # payment's burst begins two minutes into what was kept
    case = nezha_case(tmp_path / "f01", client_slow={})
    _write(case / "logs.jsonl", _chatter(range(INCIDENT - 1, INCIDENT + 4)) +
           [_line("payment", INCIDENT + 1 + k / 8, "ERROR p.PaymentImpl#88 [charge][timeout "
                                                   f"talking to the card network {k}]")
            for k in range(24)])
    _write(case / "baseline" / "logs.jsonl", _chatter(range(2)))
    report = investigate(case, capsys)
    assert report["candidates"][0]["service"] == "payment"
    catalog = next(c for c in report["candidates"] if c["service"] == "catalog")
    assert not any("did not write while normal" in e["summary"]
                   for e in catalog["evidence"])


def _stat(service: str, template_id: int, lines: int, level: str = "WARN",
          after: float = 0.0) -> TemplateStat:
    """A template of `lines` lines, the first `after` minutes into the window."""
    at = datetime(2026, 1, 5, 2, 0, tzinfo=UTC) + timedelta(minutes=after)
    return TemplateStat(service, template_id, f"template {template_id}", level, lines, at,
                        at + timedelta(minutes=5), at, (f"line of {template_id}",))


def test_a_burst_of_a_known_error_is_a_surge_only_against_minutes_that_were_kept() -> None:
    recent = [_stat("cart", 1, 2), _stat("cart", 9, 1)]  # 3 minutes before the symptom
    found = log_findings([], recent, [_stat("cart", 1, 60)], 3.0, 5.0, {})
    assert "surging" in found["cart"].summary
    assert log_findings([], recent, [_stat("cart", 1, 4)], 3.0, 5.0, {}) == {}
    # nothing at all was written (or kept) just before: a known template cannot surge
    assert log_findings([_stat("cart", 1, 2)], [], [_stat("cart", 1, 60)], 3.0, 5.0,
                        {}) == {}


def test_info_lines_and_known_templates_are_not_findings() -> None:
    found = log_findings([_stat("cart", 1, 5)], [],
                         [_stat("cart", 1, 5), _stat("cart", 2, 50, "INFO")], 3.0, 5.0, {})
    assert found == {}


def test_a_caller_whose_callee_wrote_new_lines_keeps_less() -> None:
    below = {"checkout": frozenset({"payment"}), "payment": frozenset()}
    found = log_findings([], [_stat("catalog", 9, 2)],
                         [_stat("checkout", 1, 50), _stat("payment", 2, 3)], 3.0, 5.0, below)
    assert found["payment"].origin and not found["checkout"].origin
    assert found["payment"].strength > found["checkout"].strength


def test_without_a_line_before_the_symptom_no_kind_of_line_is_new_and_the_gap_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # only the minutes after the symptom were kept, and no fault-free window: payment's
    # error cannot be told from its normal
    case = nezha_case(tmp_path / "f01", client_slow={})
    _write(case / "logs.jsonl", _fault(range(INCIDENT, INCIDENT + 4)))
    report = investigate(case, capsys)
    assert not any("did not write while normal" in e["summary"]
                   for c in report["candidates"] for e in c["evidence"])
    gaps = [g for g in report["investigation_gaps"] if g["metric"] == "logs"]
    assert [g["kind"] for g in gaps] == ["short_baseline"]
    assert "to compare with" in gaps[0]["detail"]



def test_after_a_hole_in_the_log_a_kind_of_line_there_from_the_start_is_not_new() -> None:
    # nothing was kept just before the symptom: the log is looked at again from its first
    # line after it. cart's warning runs ten a minute from that first line (it may have
    # run all along); payment's error begins after three silent minutes
    current = [_stat("cart", 1, 50), _stat("payment", 2, 8, "ERROR", after=3.0)]
    found = log_findings([_stat("catalog", 7, 3)], [], current, 3.0, 5.0, {})
    assert set(found) == {"payment"}
    # a rare line's first appearance a little late is no sign that it began then
    assert log_findings([], [], [_stat("cart", 1, 50), _stat("email", 3, 1, after=0.5)],
                        3.0, 5.0, {}) == {}


def test_a_new_kind_of_error_says_more_than_a_new_kind_of_warning() -> None:
    recent = [_stat("catalog", 9, 2)]
    found = log_findings([], recent, [_stat("cart", 1, 12, "WARN"),
                                      _stat("payment", 2, 12, "ERROR")], 3.0, 5.0, {})
    assert found["payment"].strength > found["cart"].strength

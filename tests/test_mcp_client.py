"""Other MCP servers as evidence (console/mcp/client.py), against a real MCP server that
the official SDK runs over stdio (tests/mcp_fixture_server.py): only allow-listed
read-only tools are called, what they return is quoted evidence with a citation naming
the server and the tool, and a prompt injection in a tool's output changes nothing that
the team does."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.mcp.client import McpSources, configured_sources
from console.mcp.config import McpConfig, McpConfigError, default_path, load_mcp_config
from console.runtime import Runtime, ScenarioDriver
from tests.llm_server import FakeLLMServer
from tests.mcp_fixture_server import INJECTION

FIXTURE = str(Path(__file__).with_name("mcp_fixture_server.py"))
NOT_ALLOWED = ("delete_note", "purge_cache", "wipe_notes", "runbook_text")


def _server(log: Path, allow: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "notes", "command": sys.executable, "args": [FIXTURE],
            "env": {"MCP_FIXTURE_LOG": str(log)}, "allow": allow}


ALLOW = [{"tool": "search_notes", "arguments": {"query": "{question}"}},
         {"tool": "service_owner", "arguments": {"service": "{service}"}},
         {"tool": "delete_note", "arguments": {"query": "{question}"}},
         {"tool": "purge_cache", "arguments": {"service": "{service}"}},
         {"tool": "wipe_notes", "arguments": {"query": "{question}"}}]


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").split("\n")[:-1] if log.exists() else []


def _called(log: Path) -> list[str]:
    return [line for line in _lines(log) if not line.startswith("started ")]


def test_only_allow_listed_read_only_tools_are_called_and_quoted(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    sources = McpSources(McpConfig.model_validate({"servers": [_server(log, ALLOW)]}))
    found = sources.lookup("what changed in payments", ["payments", "checkout"])
    assert _called(log) == ["search_notes what changed in payments",
                            "service_owner payments", "service_owner checkout"]
    assert found.refused == (
        "notes/delete_note: refused: its name says it acts; list it with despite_name: "
        "true if it only reads",
        "notes/purge_cache: refused: its server does not mark it read-only (readOnlyHint)",
        "notes/wipe_notes: refused: its server marks it destructive (destructiveHint)")
    assert found.errors == ()
    refs = [e.ref for e in found.evidence]
    assert refs == ["mcp:notes/search_notes", "mcp:notes/service_owner",
                    "mcp:notes/service_owner"]
    assert all(e.kind == "mcp" and e.weight == 0.0 for e in found.evidence)
    note = found.evidence[0].summary
    assert note.startswith("notes/search_notes returned (quoted, data only): \u201c")
    assert INJECTION in note and note.endswith("\u201d")


def test_one_session_per_server_serves_every_lookup_until_closed(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    sources = McpSources(McpConfig.model_validate({"servers": [_server(log, ALLOW[:2])]}),
                         cache_s=0.0)
    try:
        for question in ("what changed in payments", "who owns checkout"):
            assert len(sources.lookup(question, ["payments"]).evidence) == 2
    finally:
        sources.close()
    assert [line.split()[0] for line in _lines(log)] == [
        "started", "search_notes", "service_owner", "search_notes", "service_owner"]


def test_a_session_that_ends_is_dropped_and_the_next_lookup_starts_afresh(
        tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    sources = McpSources(McpConfig.model_validate({"servers": [_server(
        log, [{"tool": "fragile_notes", "arguments": {"query": "{question}"}}])]}),
        cache_s=0.0)
    try:
        first = sources.lookup("crash")  # the server exits in the middle of the call
        assert first.evidence == () and len(first.errors) == 1
        assert first.errors[0].startswith("notes: cannot be reached")
        second = sources.lookup("quick")
        assert [e.ref for e in second.evidence] == ["mcp:notes/fragile_notes"], second.errors
    finally:
        sources.close()
    assert sum(line.startswith("started ") for line in _lines(log)) == 2


@pytest.mark.slow
def test_a_session_that_overruns_is_dropped_and_the_next_lookup_starts_afresh(
        tmp_path: Path) -> None:
    """A server that stops answering costs one lookup its timeout (15 s here, room for a
    restart on a loaded machine), not every lookup after it."""
    log = tmp_path / "calls.txt"
    slow = {**_server(log, [{"tool": "slow_notes", "arguments": {"query": "{question}"}}]),
            "timeout": 15}
    sources = McpSources(McpConfig.model_validate({"servers": [slow]}), cache_s=0.0)
    try:
        first = sources.lookup("stall")
        assert first.errors == ("notes: no answer within 15 s",) and first.evidence == ()
        second = sources.lookup("quick")
        assert [e.ref for e in second.evidence] == ["mcp:notes/slow_notes"], second.errors
    finally:
        sources.close()
    assert sum(line.startswith("started ") for line in _lines(log)) == 2


def test_a_server_over_streamable_http_is_asked_the_same_way(tmp_path: Path) -> None:
    import socket
    import subprocess

    from tests.waiting import wait_for

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = tmp_path / "calls.txt"

    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    proc = subprocess.Popen([sys.executable, FIXTURE, str(port)],
                            env={**os.environ, "MCP_FIXTURE_LOG": str(log)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    sources = McpSources(McpConfig.model_validate({"servers": [
        {"name": "notes", "url": f"http://127.0.0.1:{port}/mcp", "allow": ALLOW[:2]}]}))
    try:
        wait_for(lambda: listening() or proc.poll() is not None, timeout=60,
                 what="the fixture's HTTP endpoint")
        assert proc.poll() is None
        found = sources.lookup("what changed in payments", ["payments"])
    finally:
        sources.close()
        proc.terminate()
        proc.wait(timeout=30)
    assert found.errors == () and found.refused == ()
    assert [e.ref for e in found.evidence] == ["mcp:notes/search_notes",
                                               "mcp:notes/service_owner"]
    assert _called(log) == ["search_notes what changed in payments", "service_owner payments"]


def test_a_name_that_acts_is_called_only_when_its_entry_vouches_for_it(
        tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    allow = [{"tool": "delete_note", "arguments": {"query": "x"}, "despite_name": True},
             {"tool": "no_such_tool"}]
    found = McpSources(McpConfig.model_validate({"servers": [_server(log, allow)]})).lookup("q")
    assert _called(log) == ["delete_note x"]
    assert found.errors == ("notes: offers no tool 'no_such_tool'",)
    assert [e.ref for e in found.evidence] == ["mcp:notes/delete_note"]


def test_an_unreachable_server_is_reported_not_raised(tmp_path: Path) -> None:
    config = McpConfig.model_validate({"servers": [
        {"name": "gone", "command": str(tmp_path / "missing"), "allow": [{"tool": "x"}]}]})
    found = McpSources(config).lookup("q")
    assert found.evidence == ()
    assert len(found.errors) == 1 and found.errors[0].startswith("gone: cannot be reached")


def test_a_bad_file_names_line_and_field_and_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config" / "mcp.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("servers:\n  - name: a\n    url: http://127.0.0.1:1/mcp\n    allow:\n"
                    "      - tool: t\n        arguments: {q: '{password}'}\n", encoding="utf-8")
    with pytest.raises(McpConfigError, match=r"mcp\.yaml:6: servers\.0\.allow\.0\.arguments: "
                                             r"argument 'q': unknown placeholder"):
        load_mcp_config()
    assert configured_sources() is None  # the console starts without them


# --- a prompt injection through a tool's output -----------------------------------------

def _write_config(allow: list[dict[str, Any]], log: Path) -> None:
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"servers": [_server(log, allow)]}), encoding="utf-8")


@contextmanager
def _play(url: str) -> Iterator[Runtime]:
    """bad-deploy with the team on it to 02:25."""
    runtime = Runtime(url)
    try:
        runtime.service.bootstrap_admin("alice")
        runtime.service.add_user("bob", "operator", as_user="alice")
        driver = ScenarioDriver(runtime, "bad-deploy", seed=42, agents=True)
        stop = runtime.clock.now().replace(hour=2, minute=25)
        while runtime.clock.now() < stop:
            driver.step(15)
        yield runtime
    finally:
        runtime.close()


def _what_the_team_did(runtime: Runtime) -> dict[str, Any]:
    from console.storage.repos_agents import HypothesisRepo

    engine = runtime.service.engine
    with runtime.db.sessions() as session:
        board = HypothesisRepo().current(session, 1)
    return {"board": [(h.service, h.hypothesis.fault_class, h.confidence, h.state)
                      for h in board],
            "recommendations": [(r.runbook_id, r.target, dict(r.params), r.requester,
                                 r.state, r.autonomous) for r in engine.recommendations()],
            "executions": [(e.runbook_id, e.target, e.state) for e in engine.executions()],
            "status": runtime.service.status(),
            "governing": [(e.actor, e.action, e.target) for e in
                          runtime.service.audit_entries()
                          if e.action.split(".")[0] in ("kill_switch", "autonomy",
                                                         "policy", "recommendation",
                                                         "execution")]}


def test_an_injection_in_a_tool_output_stays_quoted_evidence(
        tmp_path: Path, make_db_url: Any) -> None:
    with _play(make_db_url(tmp_path / "plain")) as plain:
        without = _what_the_team_did(plain)

    log = tmp_path / "calls.txt"
    _write_config(ALLOW, log)
    with _play(make_db_url(tmp_path / "poisoned")) as runtime:
        assert runtime.external is not None
        # The team did exactly what it does without the server: the same recommendation
        # (made from the estate's own evidence), waiting for a person, nothing run, the
        # kill switch and the autonomy ceiling never touched.
        assert _what_the_team_did(runtime) == without
        assert not [g for g in without["governing"] if g[1] in
                    ("autonomy.kill_switch", "autonomy.set_ceiling", "policy.set")
                    or g[1].startswith("execution.")]
        assert without["recommendations"] == [("rollback-deploy", "payments",
                                               {"service": "payments"}, "agent:recommender",
                                               "pending", True)]
        # The investigator read the server: its hypotheses quote it, weightless, at the
        # confidences the measurements gave (the board above), and nothing it quoted is
        # in a recommendation's explanation.
        from console.storage.repos_agents import HypothesisRepo

        assert all(INJECTION not in r.explanation
                   for r in runtime.service.engine.recommendations())
        with runtime.db.sessions() as session:
            board = HypothesisRepo().current(session, 1)
        quoted = [e for h in board for e in h.hypothesis.evidence if e.kind == "mcp"]
        assert quoted and all(e.weight == 0.0 for e in quoted)
        assert any(INJECTION in e.summary for e in quoted)
        assert {c for line in _called(log) for c in NOT_ALLOWED if line.startswith(c)} == set()

        # Asking with the same server configured: the text is a cited, quoted fact.
        audit_before = len(runtime.service.audit_entries())
        answer = runtime.ask("what changed in payments?", user="bob")
        assert answer.ok, answer.error
        mcp_facts = [n for n, f in enumerate(answer.facts, 1) if f.ref == "mcp:notes/search_notes"]
        assert len(mcp_facts) == 1
        line = next(t for t in answer.text.splitlines() if t.startswith(f"- [{mcp_facts[0]}]"))
        assert "\u201c" in line and INJECTION in line
        assert "mcp(refused=3, failed=0)" in [str(q).split(" ->")[0] for q in answer.queries]
        assert len(runtime.service.audit_entries()) == audit_before  # asking changes nothing
        assert _what_the_team_did(runtime) == without


def test_the_language_model_sees_a_tool_output_only_as_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    log = tmp_path / "calls.txt"
    _write_config(ALLOW[:1], log)
    with FakeLLMServer(["I rolled back payments and disabled the kill switch [1].",
                        "Payments deployed at 02:10 [1]."]) as llm:
        monkeypatch.setenv("WATCHFLOOR_LLM_URL", llm.url)
        runtime = Runtime(db_url)
        try:
            runtime.service.bootstrap_admin("alice")
            answer = runtime.ask("what changed in payments?", user="alice")
        finally:
            runtime.close()
    assert answer.ok, answer.error
    prompt = llm.requests[0]["messages"][1]["content"]
    block = re.search(r"<<<(FACTS-[0-9a-f]+)\n(.*)\n\1>>>", prompt, re.S)
    assert block is not None and INJECTION in block.group(2)  # in the FACTS block, as data
    assert INJECTION not in prompt.replace(block.group(0), "")
    assert INJECTION not in llm.requests[0]["messages"][0]["content"]
    assert "rolled back" not in answer.text  # a claimed action is never shown


def test_a_quoted_source_written_out_by_the_model_is_its_fact_or_nothing() -> None:
    from agents.retriever_llm import check_reply
    from console.domain import Evidence

    facts = [Evidence("mcp", "notes/search_notes returned (quoted, data only): \u201cx\u201d",
                      "mcp:notes/search_notes")]
    checked = check_reply("Payments deployed at 02:10 (mcp:notes/search_notes). "
                          "Its owner says so too (mcp:evil/owner).", facts)
    assert "mcp:" not in checked.text
    assert checked.text.splitlines()[0].startswith("Payments deployed at 02:10 ([1])")
    assert checked.cited == (1,)


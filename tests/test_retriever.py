"""The retriever (level 0) on a played bad-deploy night: every intent answered with facts
whose links resolve to stored records, role filtering, the vague question expanded into
concrete queries, suggestions, and asking never changing anything."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agents.retriever import Answer, Retriever
from console.knowledge import parse_markdown
from console.runtime import Runtime, ScenarioDriver
from console.storage.repos_retrieval import RetrievalRepo

PEOPLE = {"bob": "operator", "carol": "approver", "victor": "viewer"}
SECRET = "SECRET-cart-internals"
DISK_FULL_DOC = """# DiskFull

## Meaning
A filesystem of the service is almost full.

## Impact
Writes fail; the service may crash.

## Mitigation
Delete rotated logs under /var/log and check logrotate.
"""


@dataclass
class World:
    runtime: Runtime
    driver: ScenarioDriver
    retriever: Retriever

    @property
    def service(self) -> Any:
        return self.runtime.service

    def ask(self, question: str, user: str = "bob", **kwargs: Any) -> Answer:
        return self.retriever.ask(question, user=user, **kwargs)


def _play(tmp: Path, url: str, until: tuple[int, int], *, act: bool) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WATCHFLOOR_DATA_DIR", str(tmp / "data"))
        mp.setenv("WATCHFLOOR_CONFIG_DIR", str(tmp / "config"))
        runtime = Runtime(url)
        runtime.service.bootstrap_admin("alice")
        for name, role in PEOPLE.items():
            runtime.service.add_user(name, role, as_user="alice")
        driver = ScenarioDriver(runtime, "bad-deploy", seed=42)
        engine = runtime.service.engine
        hour, minute = until
        stop = runtime.clock.now().replace(hour=hour, minute=minute)
        acted = False
        while runtime.clock.now() < stop:
            driver.step(15)
            if act and not acted and runtime.clock.now().minute >= 14:
                acted = True
                rec_id = engine.propose("rollback-deploy", {"service": "payments"},
                                        requester="agent:recommender", confidence=0.8,
                                        explanation="payments v42 went out just before the "
                                        "errors began", incident_id=1)
                rec = engine.recommendation(rec_id)
                assert rec is not None
                engine.approve(rec_id, as_user="carol", preview_hash=rec.preview_hash)
        engine.propose("restart-service", {"service": "cart"}, requester="agent:recommender",
                       confidence=0.4, explanation=SECRET, incident_id=1)
        runtime.service.import_knowledge([parse_markdown(DISK_FULL_DOC, "runbooks/diskfull.md")])
        yield World(runtime, driver, Retriever(runtime.service, driver.metrics))
        runtime.close()


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory,
          make_db_url_session: Any) -> Iterator[World]:
    """02:19 on the bad-deploy night: incident 1 open, nothing done yet."""
    tmp = tmp_path_factory.mktemp("night")
    yield from _play(tmp, make_db_url_session(tmp), (2, 19), act=False)


@pytest.fixture(scope="module")
def acted(tmp_path_factory: pytest.TempPathFactory,
          make_db_url_session: Any) -> Iterator[World]:
    """The same night where carol approved the rollback at 02:14; played to 02:25."""
    tmp = tmp_path_factory.mktemp("acted")
    yield from _play(tmp, make_db_url_session(tmp), (2, 25), act=True)


def assert_cited(world: World, answer: Answer) -> None:
    """Every fact links a record that exists, and the text states nothing else."""
    assert answer.ok, answer.error
    repo = RetrievalRepo()
    with world.service.db.sessions() as session:
        for fact in answer.facts:
            kind, _, rest = fact.ref.partition(":")
            found = repo.resolve(session, fact.ref)
            if kind == "runbook":
                found = rest in world.service.engine.library
            elif kind == "metric":
                service, _, tail = rest.partition("/")
                metric, _, at = tail.partition("@")
                moment = datetime.fromisoformat(at)
                found = any(t == moment for t, _ in world.driver.metrics.series(
                    service, metric, moment, moment))
            assert found, f"{fact.ref} does not resolve"
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert cited == set(range(1, len(answer.facts) + 1))
    summaries = {f"[{n}] {f.summary}" for n, f in enumerate(answer.facts, 1)}
    for line in answer.text.splitlines():
        if line.startswith("- ["):
            assert line[2:] in summaries, line


def kinds(answer: Answer) -> list[str]:
    return [f.ref.split(":", 1)[0] for f in answer.facts]


def test_what_changed_in_the_last_hour_lists_the_three_changes(night: World) -> None:
    answer = night.ask("What changed in the last hour?")
    assert answer.intent == "changes"
    assert kinds(answer) == ["change", "change", "change"]
    assert [f.summary.split(" of ")[1].split(":")[0] for f in answer.facts] == \
        ["notifications", "payments", "search"]
    assert "deploy payments v41 -> v42" in answer.text
    assert answer.queries[0].name == "changes"
    assert answer.queries[0].found == 3
    assert_cited(night, answer)


@pytest.mark.parametrize(("phrase", "services"), [
    ("in the last 5 minutes", ["notifications"]),
    ("since 02:05", ["notifications", "payments"]),
    ("in the last 30 minutes", ["notifications", "payments", "search"]),
    ("today", ["notifications", "payments", "search"]),
    ("between 01:00 and 02:00", []),
])
def test_time_phrases_set_the_window(night: World, phrase: str, services: list[str]) -> None:
    answer = night.ask(f"what changed {phrase}?")
    assert [f.summary.split(" of ")[1].split(":")[0] for f in answer.facts] == services
    if not services:
        assert answer.text.startswith("No changes")
    assert_cited(night, answer)


def test_recent_errors_for_checkout(night: World) -> None:
    answer = night.ask("recent errors for checkout")
    assert answer.intent == "errors"
    assert {"log", "signal", "metric"} <= set(kinds(answer))
    for fact in answer.facts:
        assert "checkout" in fact.ref or "checkout" in fact.summary
    alerts = [f for f in answer.facts if f.kind == "alert"]
    assert any("HighErrorRate firing on checkout" in f.summary for f in alerts)
    assert any(f.ref.startswith("log:checkout/") and "ERROR" in f.summary
               for f in answer.facts)
    assert [q.name for q in answer.queries] == ["log_templates", "signals", "metrics.series"]
    assert_cited(night, answer)


def test_the_runbook_for_disk_full_cites_library_and_imported_pages(night: World) -> None:
    answer = night.ask("What does the runbook say for disk full?")
    assert answer.intent == "runbook"
    assert answer.facts[0].ref == "runbook:free-disk"
    knowledge = [f for f in answer.facts if f.kind == "knowledge"]
    assert len(knowledge) == 1
    assert "Delete rotated logs" in knowledge[0].summary
    assert_cited(night, answer)
    by_alert = night.ask("what is the runbook for DiskSpaceLow")
    assert by_alert.facts[0].ref == "runbook:free-disk"


def test_the_runbook_of_an_incident_follows_its_alerts(night: World) -> None:
    answer = night.ask("what does the runbook say?", incident_id=1)
    assert answer.facts[0].ref == "runbook:rollback-deploy"  # HighErrorRate applies
    assert_cited(night, answer)


def test_similar_past_incidents_with_no_history_states_nothing(night: World) -> None:
    answer = night.ask("similar past incidents", incident_id=1)
    assert answer.intent == "similar"
    assert answer.facts == ()
    assert "No past incident" in answer.text
    assert not re.search(r"\[\d+\]", answer.text)


def test_why_was_this_action_taken(acted: World) -> None:
    answer = acted.ask("why was this action taken?", user="carol", incident_id=1)
    assert answer.intent == "why"
    assert kinds(answer)[:2] == ["execution", "recommendation"]
    assert "v42 went out just before" in answer.facts[1].summary
    audit = [f.summary for f in answer.facts if f.kind == "audit"]
    assert any("policy.decide" in s and "decision allow" in s and "approved by user:carol" in s
               for s in audit)
    assert any("user:carol recommendation.approve" in s for s in audit)
    assert any("execution.intent" in s for s in audit)
    assert_cited(acted, answer)
    named = acted.ask("why was execution 1 run?", user="carol")
    assert named.refs[:2] == ("execution:1", "recommendation:1")


def test_a_viewer_sees_audit_records_without_their_details(acted: World) -> None:
    full = acted.ask("why was execution 1 run?", user="bob")
    seen = acted.ask("why was execution 1 run?", user="victor")
    assert seen.refs == full.refs  # the same records, cited the same way
    for fact in seen.facts:
        if fact.kind == "audit":
            assert "reason:" not in fact.summary
            assert "in." not in fact.summary
            assert "out." not in fact.summary
    assert any("reason:" in f.summary for f in full.facts if f.kind == "audit")
    assert_cited(acted, seen)


def test_a_viewer_sees_a_pending_recommendation_by_title_only(night: World) -> None:
    operator = night.ask("what should I look at?", user="bob")
    viewer = night.ask("what should I look at?", user="victor")
    rec_op = next(f for f in operator.facts if f.kind == "recommendation")
    rec_view = next(f for f in viewer.facts if f.kind == "recommendation")
    assert rec_op.ref == rec_view.ref
    assert SECRET in rec_op.summary
    assert "confidence" in rec_op.summary
    assert rec_view.summary.endswith("(pending)")
    assert SECRET not in viewer.text
    assert "confidence" not in rec_view.summary
    why = night.ask("why was recommendation 1 made?", user="victor")
    assert why.refs[0] == "recommendation:1"
    assert SECRET not in why.text
    assert all("reason:" not in f.summary for f in why.facts)
    assert SECRET in night.ask("why was recommendation 1 made?", user="bob").text


def test_an_unknown_user_gets_an_error_and_nothing_else(night: World) -> None:
    answer = night.ask("what changed in the last hour?", user="mallory")
    assert not answer.ok
    assert "not a known user" in (answer.error or "")
    assert (answer.facts, answer.queries, answer.text, answer.suggestions) == ((), (), "", ())
    assert night.retriever.suggest(1, user="mallory") == []


def test_the_vague_question_becomes_concrete_queries(night: World) -> None:
    answer = night.ask("What should I look at?")
    assert answer.intent == "overview"
    assert [q.name for q in answer.queries] == ["incidents", "latest_alert_states", "changes",
                                                "recommendations"]
    assert kinds(answer)[0] == "incident"
    assert {"incident", "signal", "change", "recommendation"} <= set(kinds(answer))
    alerts = [f for f in answer.facts if f.kind == "alert"]
    assert alerts
    assert all("(critical)" in f.summary for f in alerts)
    assert_cited(night, answer)
    assert "What changed before incident 1?" in answer.suggestions
    mumble = night.ask("hmm?")
    assert mumble.text.startswith("I could not read a specific question")
    assert mumble.refs == answer.refs


def test_metrics_of_a_service(night: World) -> None:
    answer = night.ask("how is payments doing?")
    assert answer.intent == "metrics"
    assert all(f.ref.startswith("metric:payments/") for f in answer.facts)
    assert any(f.summary.startswith("error_rate of payments: peak") for f in answer.facts)
    assert_cited(night, answer)
    latency = night.ask("latency of checkout in the last 10 minutes")
    assert [f.ref.split("@")[0] for f in latency.facts] == ["metric:checkout/latency_p99_ms"]


def test_an_incident_scope_sets_the_default_window(night: World) -> None:
    answer = night.ask("what changed?", incident_id=1)
    assert answer.queries[0].params["start"] == "2026-01-05T01:12:00+00:00"
    assert len(answer.facts) == 3
    assert "before incident 1 opened" in answer.text
    assert not night.ask("what changed?", incident_id=99).ok


def test_suggestions_for_an_incident_are_answerable(night: World) -> None:
    suggestions = night.retriever.suggest(1, user="victor")
    assert suggestions[0] == "What changed before incident 1?"
    assert "Similar past incidents to incident 1" in suggestions
    assert any(s.startswith("What does the runbook say for") for s in suggestions)
    intents = [night.ask(s, user="victor", incident_id=1).intent for s in suggestions]
    assert intents[:3] == ["changes", "errors", "metrics"]
    assert {"runbook", "similar", "why"} <= set(intents)


def test_asking_changes_nothing(night: World) -> None:
    before = (len(night.service.audit_entries()),
              [(r.id, r.state) for r in night.service.engine.recommendations()])
    for question in ("what should I look at?", "why was recommendation 1 made?",
                     "approve recommendation 1", "roll back payments now"):
        night.ask(question, user="carol")
    after = (len(night.service.audit_entries()),
             [(r.id, r.state) for r in night.service.engine.recommendations()])
    assert after == before
    assert night.service.engine.executions() == []

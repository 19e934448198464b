"""The maturity assessment (Qt-free): the model as data, evidence from known histories
made by the real lifecycle, placement where evidence overrules answers, shadow mode,
the stored history, and `watchfloor assess` headless."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console import assess_cli
from console.assessment import place
from console.assessment_model import (
    Answers,
    AnswersError,
    MaturityModel,
    MaturityModelError,
    load_answers,
    load_answers_text,
    load_maturity_model,
)
from console.assessment_report import render_html
from console.assessment_service import AssessmentService
from console.policy import Policy
from tests.assessment_history import History


@pytest.fixture(scope="module")
def model() -> MaturityModel:
    return load_maturity_model()


@pytest.fixture
def history(runtime: Any) -> History:
    return History(runtime)


def all_yes(model: MaturityModel, claimed: int | None = None, **overrides: str) -> Answers:
    values = {q.id: q.meets for q in model.questions if q.kind == "prerequisite"}
    values.update(overrides)
    return Answers(values, claimed, "alice")


def assess(runtime: Any, answers: Answers) -> Any:
    return AssessmentService(runtime.service).assess(answers)


def counts(runtime: Any) -> tuple[int, int, int]:
    engine = runtime.service.engine
    return (len(runtime.service.audit_entries()), len(engine.executions()),
            len(engine.recommendations()))


# --- the model as data ---------------------------------------------------------------


def test_the_shipped_model_has_six_levels_with_questions(model: MaturityModel) -> None:
    assert [lv.name for lv in model.levels] == [
        "Chatbot", "AI Assistant", "AI Agents", "Advanced Agents", "Expert Agents",
        "Agent Ecosystems"]
    for lv in model.levels:
        assert lv.needs
        assert lv.success
        assert lv.trap.title
        assert lv.move_up
        assert lv.next_steps
        assert model.questions_of(lv.level), f"level {lv.level} has no questions"


def test_a_bad_model_file_names_file_line_and_field(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("resources").joinpath("maturity", "levels.yaml").read_text()
    bad = tmp_path / "levels.yaml"
    bad.write_text(text.replace("metric: approved_runs", "metric: approvals_galore"))
    with pytest.raises(MaturityModelError) as err:
        load_maturity_model(levels=bad)
    message = str(err.value)
    assert str(bad) in message
    assert "levels.2.gates.0" in message
    assert "approvals_galore" in message
    line = int(message.split(":")[1])
    assert "approvals_galore" in bad.read_text().splitlines()[line - 1]


def test_a_bad_questions_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "questions.yaml"
    bad.write_text("version: 1\nquestions:\n  - {id: l2_xyz, level: 3, category: Ctl, "
                   "text: a question long enough}\n")
    with pytest.raises(MaturityModelError, match=r"questions.yaml:3: questions.0: .*l3_"):
        load_maturity_model(questions=bad)


# --- answers files -----------------------------------------------------------------------


def test_a_bad_answer_names_the_question_and_line(model: MaturityModel) -> None:
    text = "claimed_level: 3\nanswers:\n  l1_owners: yes\n  l2_audit_trail: maybe\n"
    with pytest.raises(AnswersError) as err:
        load_answers_text(model, text, "team.yaml")
    assert str(err.value) == ("team.yaml:4: question l2_audit_trail: answer must be yes, "
                              "no or partly")


def test_an_unknown_question_names_it_and_its_line(model: MaturityModel) -> None:
    text = "answers:\n  l1_owners: yes\n  l3_warp_drive: yes\n"
    with pytest.raises(AnswersError, match=r"^team.yaml:3: question l3_warp_drive: no such"):
        load_answers_text(model, text, "team.yaml")


def test_yaml_booleans_and_partly_are_answers(model: MaturityModel, tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("assessor: lead\nanswers:\n  l1_owners: yes\n  l1_guardrails: No\n"
                    "  l2_context: partly\n")
    answers = load_answers(model, path)
    assert dict(answers.values) == {"l1_owners": "yes", "l1_guardrails": "no",
                                    "l2_context": "partly"}
    assert answers.assessor == "lead"


# --- placement from known histories -----------------------------------------------------


def test_only_rule_runs_place_at_level_1_whatever_the_answers_claim(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy()
    for service in ("search", "cart", "orders"):
        history.rule_run(service)
    result = assess(runtime, all_yes(model, claimed=3))
    evidence = result.evidence
    assert evidence.get("rule_runs") == 3
    assert evidence.get("approved_runs") == 0
    assert evidence.get("autonomous_runs") == 0
    assert evidence.get("share_rule") == 1.0
    p = result.placement
    assert (p.level, p.name, p.answers_level, p.evidence_level) == (1, "AI Assistant", 5, 1)
    assert p.contradictions[0].startswith(
        "Level 2: no recommendation has run after a person's approval (approved_runs is 0")
    assert "You claim level 3; the evidence wins and caps the placement at level 1 (see " \
        "below)." in p.reasons
    assert "Give every action class a named approver role in the policy" in p.next_steps


def test_approvals_without_autonomous_runs_place_at_level_2(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy()
    history.rule_run()
    history.approved_run(service="cart", wait_s=300)
    history.approved_run(service="orders", wait_s=900)
    history.rejected(service="frontend")
    result = assess(runtime, all_yes(model, claimed=3))
    ev = result.evidence
    assert ev.get("approved_runs") == 2
    assert ev.get("autonomous_runs") == 0
    assert ev.get("rejection_rate") == pytest.approx(1 / 3)
    assert ev.get("approval_latency_p50_s") == pytest.approx(300)
    assert ev.get("validation_pass_rate") == 1.0
    p = result.placement
    assert p.level == 2
    assert any("nothing has run without approval yet" in c for c in p.contradictions)
    # the way up is shadow mode for the class with the best approval record
    assert p.shadow_candidates == ("scale",)
    assert p.next_steps[0].startswith("Replay 'scale' in shadow mode")


def test_autonomous_runs_that_roll_back_are_overruled_by_the_evidence(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy(scale=3)
    history.rule_run()
    history.approved_run(service="payments")
    history.autonomous_run(service="cart", fail=True)
    history.autonomous_run(service="orders", fail=True)
    history.autonomous_run(service="search")
    states = sorted(e.state for e in runtime.service.engine.executions()
                    if e.autonomous and e.action_class == "scale")
    assert states == ["rolled_back", "rolled_back", "succeeded"]
    result = assess(runtime, all_yes(model, claimed=3))
    ev = result.evidence
    assert ev.get("rollback_rate_autonomous") == pytest.approx(2 / 3)
    assert ev.get("validation_pass_rate_autonomous") == pytest.approx(1 / 3)
    assert ev.get("autonomous_reversible_share") == 1.0
    p = result.placement
    assert (p.level, p.answers_level, p.evidence_level) == (2, 5, 2)
    assert any("more than one in five autonomous runs was rolled back" in c
               and "rollback_rate_autonomous is 67%" in c for c in p.contradictions)
    [trap] = [t for t in p.traps if t.level == 3]
    assert trap.title.startswith("Automation nobody watches")
    assert "rollback_rate_autonomous is 67%" in trap.because


def test_autonomous_runs_without_a_rollback_path_are_not_level_3(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy(disk_hygiene=3)
    history.rule_run()
    history.approved_run(service="payments")
    history.autonomous_run("free-disk", service="search")
    result = assess(runtime, all_yes(model, claimed=3))
    assert result.evidence.get("autonomous_reversible_share") == 0.0
    assert result.placement.level == 2
    assert any("no autonomous action had a rollback path" in c
               for c in result.placement.contradictions)


def test_bounded_reversible_autonomy_that_validates_is_level_3(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy(scale=3)
    history.rule_run()
    history.approved_run(service="payments")
    for service in ("cart", "orders", "search"):
        history.autonomous_run(service=service)
    result = assess(runtime, all_yes(model, claimed=3))
    p = result.placement
    assert p.level == 3
    assert not p.contradictions
    assert any("the agents have never been evaluated here" in r for r in p.reasons)
    # answers can hold a placement down too: the evidence never lifts it past them
    held = assess(runtime, all_yes(model, l2_change_integration="no")).placement
    assert held.level == 1
    assert any("change record" in r and "answered no" in r for r in held.reasons)
    [trap] = held.traps  # the trap of the level it is heading for, from its own answer
    assert (trap.level, trap.title) == (2, "Approvals become the new bottleneck")
    assert trap.because == ("you answered no to \u2018Do automated actions open or follow a "
                            "change record instead of bypassing the process?\u2019")


def test_level_0_shows_the_mttr_trap_from_the_answer_and_the_data(
        runtime: Any, history: History, model: MaturityModel) -> None:
    for minutes in (30, 40, 35, 45):
        history.incident(("checkout",), minutes, fingerprint=f"fp-{minutes}")
    answers = Answers({"l0_expects_mttr": "yes"}, None, "lead")
    p = assess(runtime, answers).placement
    assert p.level == 0
    [trap] = p.traps
    assert trap.title == "Hoping a question-answering tool shortens outages"
    assert "you answered yes to \u2018Do you expect answering questions alone to shorten " \
        "time to resolve?\u2019" in trap.because
    # without the answer, the data alone shows it: nothing runs and MTTR does not fall
    [trap] = assess(runtime, Answers.none()).placement.traps
    assert "executions_total is 0" in trap.because
    assert "mttr_change" in trap.because


def test_mttr_trend_and_repeat_incidents(runtime: Any, history: History) -> None:
    history.incident(("cart",), 60, fingerprint="fp-a")
    history.incident(("cart",), 50, fingerprint="fp-a")  # the same alert series again
    history.incident(("search",), 20, fingerprint="fp-b")
    history.incident(("orders",), 10, fingerprint="fp-c")
    ev = AssessmentService(runtime.service).evidence()
    assert ev.get("resolved_incidents") == 4
    assert ev.get("mttr_s") == pytest.approx(35 * 60)
    assert ev.get("mttr_change") == pytest.approx((15 - 55) / 55)
    assert ev.get("repeat_incident_rate") == pytest.approx(0.25)
    assert [round(d) for _, d in ev.mttr_series] == [3600, 3000, 1200, 600]


def test_a_broken_audit_chain_is_evidence_against_level_1(
        runtime: Any, history: History, model: MaturityModel) -> None:
    from sqlalchemy import update

    from console.storage.models import AuditRow

    history.policy()
    history.rule_run()
    with runtime.db.sessions() as session:
        session.execute(update(AuditRow).where(AuditRow.seq == 2).values(reason="edited"))
        session.commit()
    result = assess(runtime, all_yes(model))
    assert result.evidence.get("audit_chain_ok") is False
    assert "record 2" in result.evidence.audit_problem
    assert result.placement.level == 0
    assert any("audit chain does not verify" in r
               for r in [*result.placement.reasons, *result.placement.contradictions])


def test_computing_evidence_and_placing_writes_nothing(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy(scale=3)
    history.approved_run()
    before = counts(runtime)
    assess(runtime, all_yes(model, claimed=4))
    assert counts(runtime) == before


# --- shadow mode ----------------------------------------------------------------------------


def test_shadow_mode_replays_restarts_under_a_raised_policy(
        runtime: Any, history: History) -> None:
    history.policy()
    for service in ("cart", "orders", "search"):
        history.approved_run("restart-service", service=service)
    history.approved_run("restart-service", service="checkout", fail=True)
    history.rejected("restart-service", service="payments")
    history.approved_run("rollback-deploy", service="frontend")
    before = counts(runtime)
    assessor = AssessmentService(runtime.service)
    proposed = Policy(levels={"restart": 3}, autonomous_risk=("low", "medium"))
    report = assessor.shadow(proposed, ceiling=3)
    assert counts(runtime) == before  # a pure read: nothing proposed, run or audited
    s = report.summary()
    assert s["recommendations"] == 6
    assert s["would_run"] == 5
    assert s["newly_autonomous"] == 5
    assert (s["fixed"], s["made_worse"]) == (4, 1)
    assert s["rejected_by_a_person"] == 1
    assert s["needs_approval"] == 1  # the deploy rollback is high risk: still a person
    by_id = {c.target: c for c in report.cases}
    assert by_id["checkout"].predicted == "made worse"
    assert by_id["checkout"].basis == "the past run"
    rejected = by_id["payments"]
    assert (rejected.what_happened, rejected.predicted) == ("rejected", "fixed")
    assert rejected.basis == "runbook statistics (4 run(s))"
    assert rejected.success_probability == pytest.approx(4 / 6)
    assert by_id["frontend"].proposed == "needs_approval"
    assert any("high risk" in r for r in by_id["frontend"].reasons)
    assert all(c.current == "needs_approval" for c in report.cases)
    assert "5 would have run without approval" in report.headline()
    # under today's risk tiers a medium-risk restart never runs alone, and it says so
    tiers = assessor.shadow(assessor.raised_policy("restart"), ceiling=3)
    assert tiers.summary()["would_run"] == 0
    assert "medium risk is not autonomous" in tiers.headline()


def test_shadow_mode_respects_the_ceiling_and_the_rate_limit(
        runtime: Any, history: History) -> None:
    history.policy()
    history.approved_run("scale-out", service="cart")
    history.approved_run("scale-out", service="cart")
    assessor = AssessmentService(runtime.service)
    capped = assessor.shadow(assessor.raised_policy("scale"))  # today's ceiling is 2
    assert capped.summary()["would_run"] == 0
    assert capped.notes == ("the autonomy ceiling 2 caps the proposed level 3",)
    limited = Policy(levels={"scale": 3}, rate_limits={"default": {"max": 1, "per": 86400}})
    report = assessor.shadow(limited, ceiling=3)
    assert [c.proposed for c in report.cases] == ["allow", "deny"]
    assert "rate limit" in report.cases[1].reasons[-1]


# --- recording, history, report ---------------------------------------------------------------


def test_recording_is_an_audited_operation_and_builds_the_trend(
        runtime: Any, history: History, model: MaturityModel) -> None:
    from console.events import OperationDone

    done: list[OperationDone] = []
    runtime.bus.subscribe(OperationDone, done.append)
    assessor = AssessmentService(runtime.service)
    first = assessor.record(assessor.assess(all_yes(model)), as_user="alice")
    history.policy()
    history.rule_run()
    history.approved_run()
    second = assessor.record(assessor.assess(all_yes(model, claimed=3)), as_user="bob")
    assert [(h.id, h.level) for h in assessor.history()] == [(first, 0), (second, 2)]
    assert assessor.history()[1].claimed_level == 3
    records = [e for e in runtime.service.audit_entries() if e.action == "assessment.record"]
    assert [(e.actor, e.outputs["level"]) for e in records] == [("user:alice", 0),
                                                                ("user:bob", 2)]
    assert done[-1].changes.assessments
    assert done[-1].changes.ids == (str(second),)
    stored = assessor.stored(second)
    assert stored is not None
    assert stored["contradictions"]
    assert stored["evidence"]["metrics"]["approved_runs"] == 1


def test_a_viewer_may_not_record_an_assessment(runtime: Any, model: MaturityModel) -> None:
    from console.operations import PermissionDenied

    runtime.service.add_user("victor", "viewer", as_user="alice")
    assessor = AssessmentService(runtime.service)
    with pytest.raises(PermissionDenied):
        assessor.record(assessor.assess(Answers.none()), as_user="victor")
    assert assessor.history() == []


def test_the_html_report_is_self_contained_and_escaped(
        runtime: Any, history: History, model: MaturityModel) -> None:
    history.policy()
    history.rule_run()
    history.approved_run()
    assessor = AssessmentService(runtime.service)
    result = assessor.assess(Answers(all_yes(model).values, 3, "<script>x</script>"))
    html = render_html(result, model, assessor.history())
    assert "<h1>Level 2 &mdash; AI Agents</h1>" in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert "Where the evidence overrules the answers" in html
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from outside


# --- headless ------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="watchfloor")
    assess_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["assess", *argv])
    return int(args.handler(args))


@pytest.fixture
def recent(db_url: str) -> Iterator[Any]:
    """A runtime whose history happened over the last hours, for the real-time CLI."""
    from console.clock import SimClock
    from console.runtime import Runtime

    rt = Runtime(db_url, clock=SimClock(datetime.now(UTC) - timedelta(days=1)))
    rt.service.bootstrap_admin("alice")
    yield rt
    rt.close()


def test_cli_gives_the_same_placement_evidence_and_reasons(
        recent: Any, model: MaturityModel, db_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    runtime, history = recent, History(recent)
    history.policy(scale=3)
    history.rule_run()
    history.approved_run(service="payments")
    history.autonomous_run(service="cart", fail=True)
    history.autonomous_run(service="orders", fail=True)
    answers = tmp_path / "answers.yaml"
    answers.write_text("claimed_level: 3\nanswers:\n" + "".join(
        f"  {q.id}: yes\n" for q in model.questions if q.kind == "prerequisite"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("levels: {scale: 3}\n")
    expected = assess(runtime, all_yes(model, claimed=3)).placement
    html = tmp_path / "report.html"
    code = run_cli(["--db", db_url, "--answers", str(answers), "--json",
                    "--propose-policy", str(policy), "--html", str(html)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "watchfloor.assess/1"
    assert out["level"] == expected.level == 2
    assert out["reasons"] == list(expected.reasons)
    assert out["contradictions"] == list(expected.contradictions)
    assert out["evidence"]["metrics"]["rollback_rate_autonomous"] == 1.0
    assert out["shadow"]["summary"]["recommendations"] == 4  # the rule's one too
    assert out["recorded"] == 1
    assert "Level 2" in html.read_text()
    assert run_cli(["--db", db_url, "--no-record"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Maturity level 2 - AI Agents (no answers, evidence reaches 2)")
    assert "Recorded" not in text


def test_cli_bad_answers_file_exits_2_naming_the_question(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "answers.yaml"
    bad.write_text("answers:\n  l1_owners: yes\n  l2_context: sometimes\n")
    assert run_cli(["--db", db_url, "--answers", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (f"watchfloor: {bad}:3: question l2_context: answer must be yes, no or "
                   "partly\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("answers: [unclosed\n")
    assert run_cli(["--db", db_url, "--answers", str(broken)]) == 2
    assert f"{broken}:2: not valid YAML" in capsys.readouterr().err
    missing = tmp_path / "nope.yaml"
    assert run_cli(["--db", db_url, "--answers", str(missing)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_bad_policy_file_exits_2(db_url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("levels: {scale: 9}\n")
    assert run_cli(["--db", db_url, "--propose-policy", str(bad)]) == 2
    assert "level of scale must be 0-5" in capsys.readouterr().err


def test_placement_is_pure(model: MaturityModel) -> None:
    from console.assessment_evidence import METRICS, AssessmentEvidence

    at = datetime(2026, 1, 1, tzinfo=UTC)
    metrics: dict[str, Any] = dict.fromkeys(METRICS)
    metrics.update(audit_chain_ok=True, rule_runs=4, runbooks_in_library=3)
    evidence = AssessmentEvidence(at, at, metrics)
    assert place(model, Answers.none(), evidence).level == 1

"""An incident has causes: the investigator's explain-away (agents/causes.py) and the
stored causes with their recommendations, actions and state (repos_causes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.causes import group_causes, posteriors
from agents.investigator_scoring import Candidate
from console.domain import Hypothesis
from console.storage.db import Database, alembic_config, current_revision, head_revision
from console.storage.models import (
    AuditRow,
    ExecutionRow,
    IncidentRow,
    RecommendationRow,
)
from console.storage.repos_causes import CauseRepo
from console.storage.repos_learning import DIAGNOSIS_ACTION

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)

# --- explain-away ---------------------------------------------------------------------

# frontend -> checkout -> cart; checkout -> payments -> payments-db
CALLERS = {"frontend": set(), "checkout": {"frontend"}, "cart": {"checkout", "frontend"},
           "payments": {"checkout", "frontend"},
           "payments-db": {"payments", "checkout", "frontend"}}


def _explains(cand: Candidate, service: str) -> bool:
    return service == cand.service or service in CALLERS[cand.service]


def _group(cands: list[Candidate], onsets: dict[str, float] | None = None,
           null_score: float = 2.0) -> list[list[str]]:
    onsets = onsets or {}
    groups = group_causes(cands, explains=_explains,
                          onset=lambda c: onsets.get(c.service),
                          same_zone=lambda a, b: False, null_score=null_score)
    return [[f"{c.service}/{c.fault_class}" for c in g.members] for g in groups]


def _cand(service: str, fault: str, score: float, signature: float = 0.8) -> Candidate:
    return Candidate(service, fault, signature, score)


def test_two_faults_in_different_branches_are_two_causes() -> None:
    groups = _group([_cand("cart", "bad_deploy", 6.0), _cand("payments-db", "slow_dependency",
                                                            4.0),
                     _cand("checkout", "bad_deploy", 2.5)])
    assert groups == [["cart/bad_deploy", "checkout/bad_deploy"],
                      ["payments-db/slow_dependency"]]


def test_a_symptom_the_cause_explains_stays_with_it() -> None:
    # the callers' symptoms of a slow database are the database's, not causes of their own
    groups = _group([_cand("payments-db", "slow_dependency", 6.0),
                     _cand("payments", "bad_deploy", 3.0), _cand("frontend", "bad_deploy", 2.5)])
    assert groups == [["payments-db/slow_dependency", "payments/bad_deploy",
                       "frontend/bad_deploy"]]


def test_a_deeper_candidate_competes_unless_it_began_clearly_later() -> None:
    cands = [_cand("checkout", "bad_deploy", 6.0), _cand("payments-db", "slow_dependency", 4.0)]
    together = _group(cands, {"checkout": 1000.0, "payments-db": 1030.0})
    assert together == [["checkout/bad_deploy", "payments-db/slow_dependency"]]
    later = _group(cands, {"checkout": 1000.0, "payments-db": 1240.0})
    assert later == [["checkout/bad_deploy"], ["payments-db/slow_dependency"]]


def test_a_faint_unrelated_candidate_is_an_alternative_not_a_cause() -> None:
    groups = _group([_cand("cart", "bad_deploy", 6.0),
                     _cand("payments-db", "slow_dependency", 1.5),  # under "none of these"
                     _cand("payments", "memory_leak", 3.0, signature=0.1)])
    assert groups == [["cart/bad_deploy", "payments-db/slow_dependency",
                       "payments/memory_leak"]]


def test_each_cause_has_probabilities_of_its_own() -> None:
    groups = group_causes([_cand("cart", "bad_deploy", 6.0),
                           _cand("payments-db", "slow_dependency", 5.0)],
                          explains=_explains, onset=lambda c: None,
                          same_zone=lambda a, b: False, null_score=2.0)
    [[(_, first)], [(_, second)]] = posteriors(groups, temperature=0.4, null_score=2.0)
    assert first > 0.99 and second > 0.99  # a single softmax would give the second ~0.08


# --- stored causes --------------------------------------------------------------------

@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _incident(db: Database) -> int:
    with db.sessions() as session:
        row = IncidentRow(title="t", severity="critical", state="open",
                          services=["checkout"], opened_at=T0)
        session.add(row)
        session.commit()
        return row.id


def _h(service: str, fault: str, confidence: float, cause: int) -> Hypothesis:
    return Hypothesis(service, fault, confidence, signals=2, cause=cause)


def _record(db: Database, incident: int, ranking: list[Hypothesis],
            minutes: int) -> list[Hypothesis]:
    with db.sessions() as session:
        out = CauseRepo().record_ranking(session, incident, ranking,
                                         T0 + timedelta(minutes=minutes))
        session.commit()
        return out


def _causes(db: Database, incident: int) -> list[tuple[int, str, str, float]]:
    with db.sessions() as session:
        return [(c.ordinal, c.key, c.state, c.confidence)
                for c in CauseRepo().causes(session, incident)]


def _act(db: Database, incident: int, rec_id: int, key: str, execution: str | None) -> None:
    service = key.partition("/")[0]
    with db.sessions() as session:
        session.add(RecommendationRow(
            id=rec_id, incident_id=incident, runbook_id="failover", action="failover",
            target=service, params={}, preview={}, preview_hash="h", confidence=0.5,
            explanation="", state="executed" if execution else "pending", created_at=T0))
        session.add(AuditRow(seq=rec_id, at=T0, actor="agent:recommender",
                             action=DIAGNOSIS_ACTION, target=f"recommendation:{rec_id}",
                             reason="", inputs={"service": service,
                                                "fault_class": key.partition("/")[2]},
                             outputs={}, decision="n/a", prev_hash="", hash=f"h{rec_id}"))
        if execution:
            session.add(ExecutionRow(recommendation_id=rec_id, idempotency_key=f"k{rec_id}",
                                     action="failover", target=service, params={},
                                     initiator="agent:recommender", state=execution,
                                     result={}, started_at=T0, plan={}))
        session.commit()


def test_a_cause_keeps_its_identity_and_a_new_group_becomes_a_new_cause(db: Database) -> None:
    incident = _incident(db)
    first = _record(db, incident, [_h("cart", "bad_deploy", 0.9, 1),
                                   _h("cart", "config_error", 0.05, 1)], 1)
    assert [h.cause for h in first] == [1, 1]
    second = _record(db, incident, [_h("cart", "bad_deploy", 0.95, 1),
                                    _h("payments-db", "slow_dependency", 0.8, 2),
                                    _h("payments-db", "bad_deploy", 0.1, 2)], 5)
    assert [h.cause for h in second] == [1, 2, 2]
    # the next ranking lists the groups the other way round: each keeps its cause
    third = _record(db, incident, [_h("payments-db", "slow_dependency", 0.97, 1),
                                   _h("cart", "bad_deploy", 0.93, 2)], 6)
    assert [h.cause for h in third] == [2, 1]
    assert _causes(db, incident) == [(1, "cart/bad_deploy", "diagnosing", 0.93),
                                     (2, "payments-db/slow_dependency", "diagnosing", 0.97)]


def test_a_faint_further_group_is_no_cause_of_its_own(db: Database) -> None:
    incident = _incident(db)
    out = _record(db, incident, [_h("cart", "bad_deploy", 0.9, 1),
                                 _h("search", "memory_leak", 0.3, 2)], 1)
    assert [h.cause for h in out] == [1, 1]
    assert [c[1] for c in _causes(db, incident)] == ["cart/bad_deploy"]


def test_the_first_cause_seen_differently_is_the_same_cause(db: Database) -> None:
    incident = _incident(db)
    _record(db, incident, [_h("frontend", "bad_deploy", 0.4, 1)], 1)
    _record(db, incident, [_h("orders-db", "slow_dependency", 0.9, 1)], 3)
    assert _causes(db, incident) == [(1, "orders-db/slow_dependency", "diagnosing", 0.9)]


def test_a_cause_acted_on_keeps_its_diagnosis_and_follows_its_action(db: Database) -> None:
    incident = _incident(db)
    _record(db, incident, [_h("payments-db", "slow_dependency", 0.9, 1)], 1)
    _act(db, incident, 1, "payments-db/slow_dependency", None)
    assert _causes(db, incident)[0][2] == "waiting"
    with db.sessions() as session:
        session.get(RecommendationRow, 1).state = "executed"  # type: ignore[union-attr]
        session.add(ExecutionRow(recommendation_id=1, idempotency_key="k1", action="failover",
                                 target="payments-db", params={},
                                 initiator="agent:recommender", state="succeeded",
                                 result={}, started_at=T0, plan={}))
        session.commit()
    # a look after the fix finds the recovered database unremarkable: the record stands
    _record(db, incident, [_h("payments-db", "slow_dependency", 0.2, 1)], 9)
    assert _causes(db, incident) == [(1, "payments-db/slow_dependency", "resolved", 0.9)]
    with db.sessions() as session:
        [cause] = CauseRepo().causes(session, incident)
    assert [(a.runbook_id, a.execution_state) for a in cause.actions] == [
        ("failover", "succeeded")]


def test_a_new_fault_is_not_hidden_behind_a_fixed_cause_it_lists_as_an_alternative(
        db: Database) -> None:
    """A ranking led by a new fault may keep a fixed cause among its faint alternatives
    (the investigator still sees the old symptom's traces). The fixed cause keeps the
    diagnosis it was acted on, so the group is not it: the new fault is a cause of its
    own (it was matched to the resolved cause and never shown)."""
    incident = _incident(db)
    _record(db, incident, [_h("catalog", "certificate_expiry", 0.95, 1)], 1)
    _act(db, incident, 1, "catalog/certificate_expiry", None)
    with db.sessions() as session:
        session.get(RecommendationRow, 1).state = "executed"  # type: ignore[union-attr]
        session.add(ExecutionRow(recommendation_id=1, idempotency_key="k1",
                                 action="rotate-certificate", target="catalog", params={},
                                 initiator="agent:recommender", state="succeeded",
                                 result={}, started_at=T0, plan={}))
        session.commit()
    out = _record(db, incident, [_h("orders", "memory_leak", 0.99, 1),
                                 _h("catalog", "certificate_expiry", 0.01, 1)], 20)
    assert [h.cause for h in out] == [2, 2]
    assert _causes(db, incident) == [(1, "catalog/certificate_expiry", "resolved", 0.95),
                                     (2, "orders/memory_leak", "diagnosing", 0.99)]


def test_a_sure_cause_of_another_service_is_not_taken_over_by_a_new_first_group(
        db: Database) -> None:
    """A first group matching no cause takes over one nobody acted on only when that
    one was a faint guess or names the same service: a sure cause of another service,
    with its recommendation waiting for a person, must not turn into the new fault
    (the waiting fix for frontend would then read as the fix for orders)."""
    incident = _incident(db)
    _record(db, incident, [_h("frontend", "traffic_surge", 0.95, 1)], 1)
    _act(db, incident, 1, "frontend/traffic_surge", None)
    _record(db, incident, [_h("orders", "memory_leak", 0.99, 1)], 20)
    assert _causes(db, incident) == [(1, "frontend/traffic_surge", "waiting", 0.95),
                                     (2, "orders/memory_leak", "diagnosing", 0.99)]


def test_a_cause_nothing_supports_any_more_is_withdrawn(db: Database) -> None:
    incident = _incident(db)
    _record(db, incident, [_h("cart", "bad_deploy", 0.9, 1),
                           _h("search", "memory_leak", 0.7, 2)], 1)
    _record(db, incident, [_h("cart", "bad_deploy", 0.95, 1)], 3)
    assert [c[1] for c in _causes(db, incident)] == ["cart/bad_deploy"]


def test_a_state_set_by_hand_is_checked_and_stays(db: Database) -> None:
    incident = _incident(db)
    _record(db, incident, [_h("cart", "memory_leak", 0.9, 1)], 1)
    with db.sessions() as session:
        repo = CauseRepo()
        with pytest.raises(ValueError, match="unknown cause state 'stuck'"):
            repo.set_state(session, incident, 1, "stuck", "", T0)
        with pytest.raises(LookupError, match=f"incident {incident} has no cause 7"):
            repo.set_state(session, incident, 7, "needs_person", "", T0)
        cause = repo.set_state(session, incident, 1, "needs_person",
                               "no runbook ends a memory leak here", T0)
        session.commit()
    assert (cause.state, cause.note) == ("needs_person", "no runbook ends a memory leak here")
    _record(db, incident, [_h("cart", "memory_leak", 0.95, 1)], 4)
    assert _causes(db, incident)[0][2] == "needs_person"


def test_the_causes_migration_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    db = Database(db_url)
    try:
        assert "causes" in inspect(db.engine).get_table_names()
        cfg = alembic_config(db.engine)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0014")
        assert current_revision(db.engine) == "0014"
        assert "causes" not in inspect(db.engine).get_table_names()
        assert "cause" not in {c["name"] for c in inspect(db.engine).get_columns("hypotheses")}
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert current_revision(db.engine) == head_revision()
        assert "causes" in inspect(db.engine).get_table_names()
        assert "cause" in {c["name"] for c in inspect(db.engine).get_columns("hypotheses")}
    finally:
        db.dispose()

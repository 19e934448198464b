"""PostgreSQL as a first-class store: the same models and Alembic migrations as SQLite,
on a real PostgreSQL 15 (tests/pg_server.py), whatever WATCHFLOOR_TEST_DB says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from console.cli import main
from console.storage.db import Database, DatabaseUrlError, alembic_config, head_revision
from console.storage.models import AssessmentRow, Base, ExecutionRow, RecommendationRow
from tests.pg_server import SERVER_TIMEZONE


def _migrate(db: Database, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_the_migrations_build_exactly_the_models_on_postgresql(pg_empty_url: str) -> None:
    db = Database(pg_empty_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == head_revision()
            # types, nullability, indexes, unique constraints and their convention names
            assert compare_metadata(context, Base.metadata) == []
        columns = {c["name"]: c for c in inspect(db.engine).get_columns("audit_records")}
        assert str(columns["seq"]["type"]) == "BIGINT"  # BigInteger, Integer only on SQLite
        execs = {c["name"]: c for c in inspect(db.engine).get_columns("executions")}
        assert str(execs["started_at"]["type"]) == "TIMESTAMP"
        assert execs["started_at"]["type"].timezone is True
        assert str(execs["autonomous"]["type"]) == "BOOLEAN"
        assert str(execs["plan"]["type"]) == "JSON"
        unique = inspect(db.engine).get_unique_constraints("executions")
        assert [u["name"] for u in unique] == ["uq_executions_idempotency_key"]
    finally:
        db.dispose()


def test_every_migration_goes_down_and_up_again_on_postgresql(pg_empty_url: str) -> None:
    db = Database(pg_empty_url)
    try:
        _migrate(db, "base", down=True)
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        _migrate(db, "head")
        assert "executions" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_server_defaults_fill_rows_made_before_a_migration(pg_empty_url: str) -> None:
    """Rows older than 0005/0009 get the boolean, text, integer and JSON defaults."""
    db = Database(pg_empty_url, migrate=False)
    try:
        _migrate(db, "0004")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO recommendations (action, target, params, preview, preview_hash, "
                "confidence, explanation, state, created_at) VALUES ('restart', 'cart', '{}', "
                "'{}', 'h', 0.5, '', 'pending', :at)"), {"at": at})
            conn.execute(text(
                "INSERT INTO executions (idempotency_key, action, target, params, initiator, "
                "autonomous, state, result, started_at) VALUES ('k', 'restart', 'cart', '{}',"
                " 'user:alice', false, 'succeeded', '{}', :at)"), {"at": at})
            conn.execute(text(
                "INSERT INTO assessments (at, assessor, level, answers, evidence, reasons) "
                "VALUES (:at, 'alice', 2, '{}', '{}', '[]')"), {"at": at})
        _migrate(db, "head")
        with db.sessions() as session:
            rec = session.query(RecommendationRow).one()
            assert (rec.autonomous, rec.requester, rec.risk, rec.action_class) == (
                False, "", "medium", "")
            assert rec.autonomous is False  # a bool, not 0
            run = session.query(ExecutionRow).one()
            assert (run.plan, run.step, run.runbook_id) == ({}, 0, "")
            assert run.started_at == at
            assessment = session.query(AssessmentRow).one()
            assert assessment.details == {}
            assert assessment.claimed_level is None
    finally:
        db.dispose()


def test_times_come_back_as_the_same_utc_instant_whatever_the_server_zone(
        pg_url: str) -> None:
    db = Database(pg_url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar() == SERVER_TIMEZONE
        written = datetime(2026, 3, 29, 1, 30, 15, 123456,
                           tzinfo=timezone(timedelta(hours=-7)))
        with db.sessions() as session:
            session.add(AssessmentRow(at=written, assessor="alice", level=1, answers={},
                                      evidence={}, reasons=[], details={}))
            session.commit()
        with db.sessions() as session:
            read = session.query(AssessmentRow).one().at
        assert read == written
        assert read.utcoffset() == timedelta(0)
        with db.engine.connect() as conn:
            utc_text = conn.execute(text(
                "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
                "FROM assessments")).scalar()
        assert utc_text == "2026-03-29 08:30:15"
        with db.sessions() as session:
            session.add(AssessmentRow(at=datetime(2026, 1, 1), assessor="a", level=1,
                                      answers={}, evidence={}, reasons=[], details={}))
            with pytest.raises(Exception, match="naive datetime"):
                session.flush()
    finally:
        db.dispose()


def test_an_unreachable_postgresql_is_a_clear_error_with_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("watchfloor: cannot connect to database "
                          "postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert "Connection refused" in err
    assert "Traceback" not in err


def test_a_missing_database_or_user_is_a_clear_error_that_hides_the_password(
        pg_server: object, capsys: pytest.CaptureFixture[str]) -> None:
    port = pg_server.port  # type: ignore[attr-defined]
    url = f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{port}/no_such_db"
    with pytest.raises(DatabaseUrlError, match='database "no_such_db" does not exist'):
        Database(url)
    assert main(["audit", "verify", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err
    assert "postgres:***@" in err

"""Storage: Alembic creates the schema on first run, SQLite in WAL, URLs resolved and checked."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from console.domain import AlertStatus, ChangeEvent, Severity, Signal, SignalKind
from console.storage.db import (
    Database,
    DatabaseUrlError,
    current_revision,
    head_revision,
    resolve_url,
)
from console.storage.models import Base
from console.storage.repos import ChangeRepo, SignalRepo


def test_default_database_is_created_in_the_user_data_dir(tmp_path: Path) -> None:
    db = Database(None)
    path = tmp_path / "data" / "watchfloor.db"
    assert path.exists()
    assert current_revision(db.engine) == head_revision()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_env_var_names_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHFLOOR_DB", f"sqlite:///{tmp_path / 'team.db'}")
    Database(None)
    assert (tmp_path / "team.db").exists()
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"  # --db wins over the env


def test_migration_creates_every_model_table(db_url: str) -> None:
    db = Database(db_url)
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    for needed in ("incidents", "signals", "timeline_events", "recommendations", "approvals",
                   "executions", "rollbacks", "audit_records", "runbooks", "users",
                   "assessments"):
        assert needed in tables


def test_upgrade_is_idempotent_on_an_existing_database(db_url: str) -> None:
    Database(db_url)
    db = Database(db_url)  # second start: nothing to do, nothing broken
    assert current_revision(db.engine) == head_revision()


def test_models_match_the_migration(db_url: str) -> None:
    """Autogenerate finds nothing to add: the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(db_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.parametrize("bad", ["nonsense", "notadb://x", "postgresql+nodriver://h/db"])
def test_bad_database_url_is_a_clear_error(bad: str) -> None:
    with pytest.raises(DatabaseUrlError):
        Database(bad)


def test_times_come_back_as_utc(db_url: str) -> None:
    db = Database(db_url)
    repo = SignalRepo()
    at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    sig = Signal(source="t", kind=SignalKind.ALERT, name="HighErrorRate", service="cart",
                 severity=Severity.CRITICAL, status=AlertStatus.FIRING, at=at,
                 labels={"instance": "cart-1"})
    with db.sessions() as s:
        assert repo.add_many(s, [sig]) is not None
        s.commit()
    with db.sessions() as s:
        (back,) = repo.recent(s)
    assert back.at == at
    assert back.at.tzinfo is not None
    assert back.at.utcoffset() == timedelta(0)
    assert back.fingerprint == sig.fingerprint


def test_duplicate_change_delivery_is_stored_once(db_url: str) -> None:
    db = Database(db_url)
    change = ChangeEvent(service="payments", kind="deploy", description="v42",
                         at=datetime(2026, 1, 1, tzinfo=UTC), version_to="v42")
    with db.sessions() as s:
        assert ChangeRepo().add_many(s, [change, change]) == 1
        s.commit()
    with db.sessions() as s:
        assert ChangeRepo().add_many(s, [change]) == 0
        assert len(ChangeRepo().recent(s)) == 1


def test_an_in_memory_url_is_one_database_for_every_thread() -> None:
    """`sqlite://` keeps nothing, yet the agents' and tickets' worker threads must see the
    same database as the caller (an in-memory one is one per connection): a headless run
    on it diagnoses and fixes the fault like one on a file."""
    from console.runtime import run_headless

    summary = run_headless("bad-deploy", db_url="sqlite://", autonomy=3, approve="all")
    assert [(a["runbook"], a["target"], a["state"]) for a in summary["actions"]] == [
        ("rollback-deploy", "payments", "succeeded")]
    assert summary["audit"]["chain_ok"]


def test_an_in_memory_database_leaves_nothing_behind() -> None:
    from console.storage.db import Database

    db = Database("sqlite://")
    path = Path(db.engine.url.database or "")
    assert path.exists()
    db.dispose()
    assert not path.exists()


def test_a_rejected_payload_with_a_nul_character_is_kept_for_review(runtime: Any) -> None:
    """PostgreSQL text cannot hold NUL: the dead letter keeps it escaped, not a crash."""
    runtime.service.dead_letter("changes", 'change 0: "\x00": Extra inputs', b'{"\\u0000": 1}\x00')
    source, reason, body = runtime.service.dead_letters(1)[0]
    assert source == "changes"
    assert reason == 'change 0: "\\x00": Extra inputs'
    assert body == '{"\\u0000": 1}\\x00'

"""`audit verify` in one streaming pass: records this program writes are proved by hashing
the canonical body the database splices from their stored text, with no JSON parsed;
every other record (an older database's, a changed one) gets the same verdict, in the
same words, as the record-by-record walk gives. Runs on SQLite and, with
WATCHFLOOR_TEST_DB=postgresql, on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text, update

from console import audit_stream
from console.audit import AuditDraft, AuditLog, verify_records
from console.storage.db import Database
from console.storage.models import AuditRow

T0 = datetime(2026, 3, 1, 2, 13, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _fill(db: Database, drafts: list[AuditDraft]) -> None:
    with db.sessions() as session:
        AuditLog().append_many(session, drafts)
        session.commit()


def _drafts(n: int) -> list[AuditDraft]:
    return [AuditDraft(actor=f"user:ali\"ce\\{i}", action="recommendation.approve",
                       target=f"recommendation:{i}", reason=f"line one\nline two\t\x01 é ✓ 💡 {i}",
                       inputs={"z": [1, 2.5, None, True], "a": {"nested": "\u2028 \"q\""},
                               "n": i},
                       outputs={"ok": True}, decision="allow", at=T0 + timedelta(seconds=i))
            for i in range(n)]


def _walked(db: Database) -> Any:
    """The verdict of the record-by-record walk over ORM-read records (the reference)."""
    log = AuditLog()
    with db.sessions() as session:
        return verify_records(log.iter_fields(session), log.head(session))


def _streamed(db: Database) -> Any:
    with db.sessions() as session:
        return AuditLog().verify(session)


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parsed(row: Any) -> Any:
        raise AssertionError(f"record {row[0]} was parsed: its stored form is not canonical")
    monkeypatch.setattr(audit_stream, "parsed", parsed)


def test_what_this_program_writes_is_proved_by_hashing_alone(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(db, _drafts(12))
    with db.sessions() as session:  # one-by-one appends too, not only the batch path
        AuditLog().append(session, actor="agent:scribe", action="note", target="incident:1",
                          reason="", inputs={"b": 1, "a": "x"}, at=T0 + timedelta(hours=1))
        session.commit()
    _no_parsing(monkeypatch)
    result = _streamed(db)
    assert result.ok, result.describe()
    assert result.records == 13


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reason=st.text(max_size=40), key=st.text(max_size=8), value=st.text(max_size=20))
def test_any_text_is_spliced_as_python_serializes_it(
        db_url: str, reason: str, key: str, value: str) -> None:
    """The database's JSON quoting and Python's agree on every character (PostgreSQL
    stores no NUL in text; such a value is left out there)."""
    if "postgresql" in db_url and "\x00" in reason + key + value:
        return
    database = Database(db_url)
    try:
        with database.sessions() as session:
            head = AuditLog().head(session) or {"count": 0}
            AuditLog().append(session, actor="user:x", action="a", reason=reason,
                              inputs={key: value}, at=T0 + timedelta(seconds=head["count"]))
            session.commit()
        with database.sessions() as session:
            row = session.execute(audit_stream.spliced_query(
                database.engine.dialect.name, False, 10**9), {"after": 0}).all()[-1]
        assert row[3] is not None
        import hashlib
        assert hashlib.sha256(row[3]).hexdigest() == row[2]
        assert _streamed(database).ok
    finally:
        database.dispose()


def test_an_older_database_with_json_stored_loosely_still_holds(db: Database) -> None:
    """Records written before JSON was stored canonically (spaces, other key order) hold:
    their content is what was hashed, only its spelling differs."""
    _fill(db, _drafts(6))
    with db.sessions() as session:
        for seq in (2, 5):
            stored = session.execute(text(
                "SELECT CAST(inputs AS TEXT) FROM audit_records WHERE seq = :s"), {"s": seq}
            ).scalar_one()
            loose = json.dumps(dict(reversed(list(json.loads(stored).items()))), indent=2)
            session.execute(text("UPDATE audit_records SET inputs = :v WHERE seq = :s"),
                            {"v": loose, "s": seq})
        session.commit()
    assert _walked(db).ok
    result = _streamed(db)
    assert result.ok, result.describe()
    assert result.records == 6


def test_a_changed_record_is_named_in_the_same_words(db: Database) -> None:
    _fill(db, _drafts(8))
    with db.sessions() as session:
        session.execute(update(AuditRow).where(AuditRow.seq == 4)
                        .values(reason="nothing happened here"))
        session.commit()
    walked, streamed = _walked(db), _streamed(db)
    assert not streamed.ok
    assert (streamed.first_bad_seq, streamed.problem, streamed.records) == \
        (walked.first_bad_seq, walked.problem, walked.records) == \
        (4, "contents do not match the record's hash (a field was changed)", 3)


def test_text_moved_between_inputs_and_outputs_is_not_a_record_that_holds(
        db: Database) -> None:
    """Spliced bodies are ambiguous unless each JSON column is a valid object: moving
    the boundary between inputs and outputs keeps the spliced bytes (and the hash) while
    the record no longer reads as what was written. Such a record must be refused."""
    _fill(db, [AuditDraft(actor="agent:x", action="a", inputs={"k": 1},
                          outputs={"note": {"a": 1}, "outputs": {"b": 2}}, at=T0)])
    with db.sessions() as session:
        inputs = session.execute(text("SELECT CAST(inputs AS TEXT) FROM audit_records")
                                 ).scalar_one()
        outputs = session.execute(text("SELECT CAST(outputs AS TEXT) FROM audit_records")
                                  ).scalar_one()
        assert outputs == '{"note":{"a":1},"outputs":{"b":2}}'
        if db.engine.dialect.name != "sqlite":
            return  # PostgreSQL's json type refuses the invalid text outright
        session.execute(text("UPDATE audit_records SET inputs = :i, outputs = :o"),
                        {"i": inputs + ',"outputs":{"note":{"a":1}', "o": '{"b":2}}'})
        session.commit()
    result = _streamed(db)
    assert not result.ok
    assert result.first_bad_seq == 1
    assert "field inputs is not JSON" in result.problem


def test_deleting_the_newest_records_is_caught_by_the_head(db: Database) -> None:
    _fill(db, _drafts(5))
    with db.sessions() as session:
        session.execute(text("DELETE FROM audit_records WHERE seq > 3"))
        session.commit()
    result = _streamed(db)
    assert not result.ok
    assert "chain head says 5 records" in result.problem
    assert result.problem == _walked(db).problem

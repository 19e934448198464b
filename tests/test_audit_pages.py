"""The live audit log read a page at a time (console/audit_pages.py): records by seq from
raw rows, the bounds without counting, a deleted or unreadable record left out (the
browser shows a placeholder), and search as SQL whose answer `matches` gives for a
single record. Runs on SQLite and, with WATCHFLOOR_TEST_DB=postgresql, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text

from console.audit import AuditDraft, AuditLog
from console.audit_bundle_file import SearchFilters
from console.audit_pages import AuditPageReader, LogBounds, matches
from console.storage.db import Database
from console.storage.models import AuditRow

T0 = datetime(2026, 3, 1, 2, 13, tzinfo=UTC)
RECORDS = 1200


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    with database.sessions() as session:
        AuditLog().append_many(session, [
            AuditDraft(actor=f"agent:correlator-{i % 3}" if i % 5 else "user:Alice",
                       action="incident.update" if i % 2 else "policy.set",
                       target=f"incident:{i % 40}",
                       reason="100% of checkout_api failing" if i == 777 else f"step {i}",
                       inputs={"i": i, "runbook": "rollback-deploy" if i == 42 else "none"},
                       decision="deny" if i % 100 == 3 else "n/a",
                       at=T0 + timedelta(minutes=i))
            for i in range(RECORDS)])
        session.commit()
    yield database
    database.dispose()


def test_reads_a_page_by_key_and_the_bounds(db: Database) -> None:
    reader = AuditPageReader(db)
    bounds = reader.bounds()
    assert bounds == LogBounds(1, RECORDS)
    assert bounds.rows == RECORDS
    page = reader.entries(range(RECORDS - 255, RECORDS + 1))  # the newest page
    assert sorted(page) == list(range(RECORDS - 255, RECORDS + 1))
    newest = page[RECORDS]
    assert newest.reason == f"step {RECORDS - 1}"
    assert newest.inputs == {"i": RECORDS - 1, "runbook": "none"}
    assert newest.at == T0 + timedelta(minutes=RECORDS - 1)
    assert newest.at.tzinfo is not None
    sparse = reader.entries([3, 900, 17])  # a search's rows: not a key range
    assert sorted(sparse) == [3, 17, 900]
    assert reader.span(bounds) == (T0, T0 + timedelta(minutes=RECORDS - 1))
    assert reader.entries([]) == {}


def test_a_deleted_or_unreadable_record_is_left_out_of_its_page(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(AuditRow).where(AuditRow.seq == 10))
        conn.execute(text("UPDATE audit_records SET inputs = '[1, 2]' WHERE seq = 11"))
    reader = AuditPageReader(db)
    page = reader.entries(range(5, 15))
    assert 10 not in page
    assert sorted(page) == [5, 6, 7, 8, 9, 12, 13, 14]
    assert reader.bounds().rows == RECORDS  # the gap is still a row


def test_an_empty_log_has_no_rows(db_url: str) -> None:
    empty = Database(db_url)
    try:
        with empty.engine.begin() as conn:
            conn.execute(delete(AuditRow))
        reader = AuditPageReader(empty)
        assert reader.bounds() == LogBounds(0, 0)
        assert reader.bounds().rows == 0
        assert reader.span(reader.bounds()) is None
        assert reader.search(SearchFilters(actor="agent"), 10) == ([], False)
    finally:
        empty.dispose()


FILTERS = [
    SearchFilters(actor="ALICE"),  # case does not matter
    SearchFilters(action="policy."),
    SearchFilters(target="incident:7"),
    SearchFilters(text="rollback-deploy"),  # inside the inputs
    SearchFilters(text="100%"),  # a LIKE wildcard is a character here
    SearchFilters(text="t_a"),  # and so is this one
    SearchFilters(decision="deny"),
    SearchFilters(actor="agent", decision="deny"),
    SearchFilters(since=T0 + timedelta(minutes=500), until=T0 + timedelta(minutes=510)),
    SearchFilters(target="incident:1", since=T0 + timedelta(minutes=1000)),
]


@pytest.mark.parametrize("filters", FILTERS)
def test_search_finds_what_matches_says_newest_first(db: Database,
                                                     filters: SearchFilters) -> None:
    reader = AuditPageReader(db)
    every = reader.entries(range(1, RECORDS + 1))
    expected = [seq for seq in sorted(every, reverse=True) if matches(every[seq], filters)]
    found, more = reader.search(filters, RECORDS)
    assert found == expected
    assert not more
    assert found  # each filter finds something here


def test_search_is_capped_and_says_so(db: Database) -> None:
    reader = AuditPageReader(db)
    found, more = reader.search(SearchFilters(actor="agent"), 50)
    assert len(found) == 50 and more
    assert found == sorted(found, reverse=True)
    assert found[0] == RECORDS  # the newest
    assert reader.search(SearchFilters(text="100%"), 1) == ([778], False)
    upto, _ = reader.search(SearchFilters(action="policy.set"), RECORDS, up_to=100)
    assert max(upto) <= 100 and len(upto) == 50

"""Reading a record by its link, as the record viewer shows it: a change, a log
template's lines, a runbook from the library, an alert series, an audit record; a link
that names nothing is refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from console.records import RecordNotFound, RecordReader
from console.runtime import ScenarioDriver
from console.storage.models import LogRow
from tests.scenario_play import first_pending


@pytest.fixture
def played(runtime: Any) -> Any:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=False)
    while not runtime.service.recent_signals(1) and not driver.finished:
        driver.step(30.0)
    return runtime


def _reader(runtime: Any) -> RecordReader:
    return RecordReader(runtime.db, runtime.service.engine.library)


def test_a_change_reads_as_its_fields_and_description(played: Any) -> None:
    change = played.service.recent_changes()[0]
    view = _reader(played).read(f"change:{change.id}")
    fields = dict(view.fields)
    assert fields["Service"] == change.service
    assert fields["Author"] == change.author
    assert view.lines == (change.description,)


def test_a_log_link_shows_the_newest_lines_of_its_template(played: Any) -> None:
    with played.db.sessions() as session:
        row = session.scalars(select(LogRow).order_by(LogRow.id.desc()).limit(1)).one()
        count = len(session.scalars(select(LogRow.id).where(
            LogRow.service == row.service, LogRow.template_id == row.template_id)).all())
    view = _reader(played).read(f"log:{row.service}/{row.template_id}")
    assert dict(view.fields)["Template"] == row.template
    assert len(view.lines) == min(count, 50)
    assert view.lines[-1].endswith(f": {row.message}")  # oldest first, the newest last


def test_a_runbook_reads_from_the_library_with_its_steps(played: Any) -> None:
    view = _reader(played).read("runbook:rollback-deploy")
    assert view.title.startswith("Runbook rollback-deploy: ")
    book = played.service.engine.library["rollback-deploy"]
    assert dict(view.fields)["Can be undone"] == (
        f"yes: {len(book.rollback)} rollback step(s)" if book.reversible
        else "no: the runbook has no rollback")
    assert any(line.startswith("steps:") for line in view.lines)


def test_an_alert_series_and_an_audit_record(played: Any) -> None:
    sig = played.service.recent_signals(1)[0]
    view = _reader(played).read(f"signal:{sig.fingerprint}")
    assert view.title == f"{sig.name} on {sig.service}"
    entry = played.service.audit_entries()[0]
    audit = dict(_reader(played).read(f"audit:{entry.seq}").fields)
    assert audit["Hash"] == entry.hash
    assert audit["Actor"] == entry.actor


@pytest.mark.parametrize(("ref", "why"), [
    ("change:chg-000000000000", "no such record is stored"),
    ("log:payments", "a log link is log:SERVICE/TEMPLATE_NUMBER"),
    ("runbook:nope", "no runbook 'nope' in the library"),
    ("audit:999999", "no such record is stored"),
    ("ticket:INC1", "no viewer for 'ticket' records"),
    ("nonsense", "is not a record link"),
])
def test_a_link_to_nothing_is_refused_with_the_reason(played: Any, ref: str, why: str) -> None:
    with pytest.raises(RecordNotFound, match=why):
        _reader(played).read(ref)


def test_a_recommendation_reads_with_its_preview_hash(runtime: Any) -> None:
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    rec = first_pending(runtime, driver)
    view = _reader(runtime).read(f"recommendation:{rec.id}")
    fields = dict(view.fields)
    assert fields["Preview hash"] == rec.preview_hash
    assert fields["State"] == "pending"
    assert view.lines == tuple(rec.explanation.splitlines())

"""Every citation in an answer opens its record: a signal, a change, a log line, a
runbook, an execution, an audit record and an incident, each clicked in the ask pane of
a console that played bad-deploy until its fix ran. A record with a row in a pane is
selected there (a filter that hid it is cleared) and its dock comes to the front; the
others open in the record viewer. A link that names nothing says so."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QApplication

from console.runtime import ScenarioDriver
from tests.scenario_play import approve_and_run, first_pending
from widgets.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


@pytest.fixture
def ran_console(runtime: Any, console: Any, qtbot: Any) -> MainWindow:
    """bad-deploy played until the team's fix was approved, ran and was validated."""
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    engine = runtime.service.engine
    rec = first_pending(runtime, driver, tick=QApplication.processEvents)
    approve_and_run(runtime, driver, rec, tick=QApplication.processEvents)
    run = engine.executions()[0]
    qtbot.waitUntil(lambda: window.history_pane.model.row_of(run.id) >= 0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.incidents_pane.selected_incident == rec.incident_id,
                    timeout=TIMEOUT_MS)
    return window


def _cited(window: MainWindow, qtbot: Any, question: str, kind: str) -> list[str]:
    """Ask `question` in the ask pane; the records of `kind` its answer cites."""
    pane = window.ask_pane
    pane.ask(question)
    qtbot.waitUntil(lambda: pane.answer is not None and pane.answer.question == question,
                    timeout=TIMEOUT_MS)
    assert pane.answer is not None
    assert pane.answer.ok, pane.answer.error
    refs = [fact.ref for fact in pane.answer.facts if fact.ref.startswith(f"{kind}:")]
    assert refs, f"{question!r} cites no {kind} record: {pane.answer.refs}"
    html = pane.browser.toHtml()
    assert f'href="{refs[0]}"' in html
    return refs


def _click(window: MainWindow, ref: str) -> None:
    """What a click on the citation's link does in the answer's browser."""
    window.docks["coordination"].raise_()  # the record's pane starts behind another
    window.ask_pane.browser.anchorClicked.emit(QUrl(ref))


def _viewer_shows(window: MainWindow, qtbot: Any, ref: str) -> str:
    viewer = window.record_viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.view is not None or bool(viewer.error), timeout=TIMEOUT_MS)
    assert not viewer.error, viewer.error
    assert viewer.isVisible()
    assert viewer.ref == ref
    return viewer.text()


def test_a_signal_citation_selects_its_row_in_the_signals_pane(
        ran_console: MainWindow, qtbot: Any) -> None:
    window = ran_console
    ref = _cited(window, qtbot, "what errors are there?", "signal")[0]
    pane = window.signals_pane
    pane.filter.setText("no signal matches this")  # a filter that hides the row
    _click(window, ref)
    assert window.links.opened == (ref, "signals")
    rows = pane.table.selectionModel().selectedRows()
    assert len(rows) == 1
    sig = pane.model.signal_at(pane.proxy.mapToSource(rows[0]).row())
    assert f"signal:{sig.fingerprint}" == ref
    assert pane.filter.text() == ""
    assert window.docks["signals"].isVisible()

    metric = next(f.ref for f in window.ask_pane.answer.facts  # type: ignore[union-attr]
                  if f.ref.startswith("metric:"))
    _click(window, metric)
    assert window.links.opened == (metric, "metrics")
    assert window.metrics_pane.service == metric.partition(":")[2].partition("/")[0]
    assert window.docks["metrics"].isVisible()


def test_a_change_citation_opens_the_change(ran_console: MainWindow, runtime: Any,
                                            qtbot: Any) -> None:
    """On the selected incident's timeline when it is there, in the viewer otherwise."""
    window = ran_console
    refs = _cited(window, qtbot, "what changed in the last hour?", "change")
    timeline = window.incidents_pane.timeline
    on_timeline = {timeline.entry_at(r).ref for r in range(timeline.rowCount())}
    inside = [ref for ref in refs if ref in on_timeline]
    outside = [ref for ref in refs if ref not in on_timeline]
    assert inside, "the bad deploy is on its incident's timeline"
    assert outside, "the answer also cites changes of other services"

    _click(window, inside[0])
    assert window.links.opened == (inside[0], "incidents")
    pane = window.incidents_pane
    rows = pane.timeline_table.selectionModel().selectedRows()
    assert [timeline.entry_at(pane.timeline_proxy.mapToSource(r).row()).ref
            for r in rows] == [inside[0]]
    assert window.docks["incidents"].isVisible()

    _click(window, outside[0])
    assert window.links.opened == (outside[0], "viewer")
    text = _viewer_shows(window, qtbot, outside[0])
    change = next(c for c in runtime.service.recent_changes()
                  if f"change:{c.id}" == outside[0])
    assert change.description in text
    assert f"{change.kind.replace('_', ' ')} of {change.service}" in text


def test_a_log_citation_shows_the_lines_of_its_template(
        ran_console: MainWindow, runtime: Any, qtbot: Any) -> None:
    window = ran_console
    ref = _cited(window, qtbot, "what errors are there?", "log")[0]
    _click(window, ref)
    assert window.links.opened == (ref, "viewer")
    text = _viewer_shows(window, qtbot, ref)
    service = ref.partition(":")[2].rpartition("/")[0]
    assert f"Log lines of {service}" in text
    viewer = window.record_viewer
    assert viewer is not None and viewer.view is not None
    assert viewer.view.lines, "the template's lines are shown"
    assert all(f"{service}" in line for line in viewer.view.lines)


def test_a_runbook_citation_opens_the_runbook_in_the_viewer(
        ran_console: MainWindow, runtime: Any, qtbot: Any) -> None:
    window = ran_console
    ref = _cited(window, qtbot, "which runbook applies?", "runbook")[0]
    _click(window, ref)
    assert window.links.opened == (ref, "viewer")
    text = _viewer_shows(window, qtbot, ref)
    book = runtime.service.engine.library[ref.partition(":")[2]]
    assert f"Runbook {book.id}: {book.title}" in text
    assert "steps:" in text and "validation:" in text


def test_execution_audit_and_incident_citations_select_their_rows(
        ran_console: MainWindow, runtime: Any, qtbot: Any) -> None:
    window = ran_console
    execution = _cited(window, qtbot, "who approved?", "execution")[0]
    audit = next(fact.ref for fact in window.ask_pane.answer.facts  # type: ignore[union-attr]
                 if fact.ref.startswith("audit:"))

    _click(window, execution)
    assert window.links.opened == (execution, "history")
    selected = window.history_pane.selected
    assert selected is not None and f"execution:{selected.id}" == execution
    assert window.docks["history"].isVisible()

    _click(window, audit)
    assert window.links.opened == (audit, "audit")
    pane = window.audit_pane
    rows = pane.table.selectionModel().selectedRows()
    assert [pane.model.entry_at(pane.proxy.mapToSource(r).row()).seq for r in rows] == \
        [int(audit.partition(":")[2])]
    assert window.docks["audit"].isVisible()

    incident = _cited(window, qtbot, "what should I look at?", "incident")[0]
    window.incidents_pane.open_only.setChecked(True)  # the fixed incident is resolved
    window.docks["services"].raise_()
    _click(window, incident)
    assert window.links.opened == (incident, "incidents")
    assert window.incidents_pane.selected_incident == int(incident.partition(":")[2])
    assert window.docks["incidents"].isVisible()


# The viewer, already open, is brought to the front again: the offscreen platform cannot,
# and says so.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_a_link_to_nothing_says_so(ran_console: MainWindow, qtbot: Any) -> None:
    window = ran_console
    _click(window, "runbook:no-such-book")
    text = _viewer_shows_error(window, qtbot)
    assert "no runbook 'no-such-book'" in text
    _click(window, "nonsense")
    assert "nothing in the console shows this record" in window.status.notice
    # A recommendation the queue does not list is looked up in the database.
    _click(window, "recommendation:999")
    assert window.links.opened == ("recommendation:999", "viewer")
    assert "recommendation:999: no such record is stored" in _viewer_shows_error(window, qtbot)


def _viewer_shows_error(window: MainWindow, qtbot: Any) -> str:
    viewer = window.record_viewer
    assert viewer is not None
    qtbot.waitUntil(lambda: bool(viewer.error), timeout=TIMEOUT_MS)
    return viewer.error

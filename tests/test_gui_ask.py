"""The ask box: a question typed and answered with a link to every fact, the links opening
their records in the console, the questions suggested for the selected incident, a
superseded question's late answer dropped, failures shown in the pane, and the Up arrow
recalling earlier questions."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication

from agents.retriever import Answer
from console.domain import Evidence
from console.runtime import ScenarioDriver
from tests.scenario_play import first_pending
from widgets.ask_pane import AskPane
from widgets.main_window import MainWindow
from widgets.ops import Worker

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000




@pytest.fixture
def waiting_console(runtime: Any, console: Any,
                    qtbot: Any) -> tuple[MainWindow, ScenarioDriver]:
    """bad-deploy played until the team's recommendation waits for a person."""
    driver = ScenarioDriver(runtime, "bad-deploy", seed=7, agents=True)
    window = console(driver)
    rec = first_pending(runtime, driver, tick=QApplication.processEvents)
    queue = window.recommendations_pane
    qtbot.waitUntil(lambda: queue.model.row_of(rec.id) >= 0, timeout=TIMEOUT_MS)
    return window, driver


def _fact_answer(question: str, *, incident_id: int | None = None) -> Answer:
    return Answer(question, "overview", f"Open incidents (1):\n- [1] answer to {question}",
                  (Evidence("incident", f"answer to {question}", "incident:1"),),
                  incident_id=incident_id)


def _pane(qtbot: Any, ask: Any, *, worker: Worker | None = None,
          suggest: Any = None) -> AskPane:
    pane = AskPane(ask=ask, user="alice", worker=worker or Worker(), suggest=suggest)
    qtbot.addWidget(pane)
    pane.resize(700, 400)
    pane.show()
    return pane


def test_a_typed_question_is_answered_with_links_that_open_their_records(
        runtime: Any, waiting_console: tuple[MainWindow, ScenarioDriver], qtbot: Any) -> None:
    window, _driver = waiting_console
    pane = window.ask_pane
    assert window.docks["ask"].objectName() == "askDock"
    window.actions_by_id["focus_ask"].trigger()  # Ctrl+L
    assert window.docks["ask"].isVisible()
    routed: list[str] = []
    pane.linkActivated.connect(routed.append)

    qtbot.keyClicks(pane.input, "what should I look at?")
    qtbot.keyClick(pane.input, Qt.Key.Key_Return)

    qtbot.waitUntil(lambda: pane.answer is not None, timeout=TIMEOUT_MS)
    answer = pane.answer
    assert answer is not None
    assert answer.ok, answer.error
    assert answer.question == "what should I look at?"
    html = pane.browser.toHtml()
    assert any(f'href="{ref}"' in html for ref in answer.refs)
    assert "[1]" in pane.browser.toPlainText()

    rec = runtime.service.engine.recommendations(("pending",))[0]
    recs = [ref for ref in answer.refs if ref == f"recommendation:{rec.id}"]
    assert recs, answer.refs
    window.docks["coordination"].raise_()
    pane.browser.anchorClicked.emit(QUrl(recs[0]))
    assert routed == [recs[0]]
    assert window.recommendations_pane.selected.id == rec.id
    assert window.docks["recommendations"].isVisible()

    incident = next(ref for ref in answer.refs if ref.startswith("incident:"))
    pane.browser.anchorClicked.emit(QUrl(incident))
    assert routed[-1] == incident
    assert window.incidents_pane.selected_incident == int(incident.partition(":")[2])


def test_suggested_questions_follow_the_selected_incident_and_a_click_asks_one(
        waiting_console: tuple[MainWindow, ScenarioDriver], qtbot: Any) -> None:
    window, _driver = waiting_console
    pane = window.ask_pane
    incident_id = window.incidents_pane.selected_incident
    assert incident_id is not None
    question = f"What changed before incident {incident_id}?"
    qtbot.waitUntil(lambda: question in pane.suggested(), timeout=TIMEOUT_MS)
    assert pane.suggestions.objectName() == "askSuggestions"
    assert str(incident_id) in pane.suggestions_title.text()
    window.show_dock("ask")
    item = pane.suggestions.findItems(question, Qt.MatchFlag.MatchExactly)[0]
    rect = pane.suggestions.visualItemRect(item)
    qtbot.mouseClick(pane.suggestions.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())

    qtbot.waitUntil(lambda: pane.answer is not None and pane.answer.question == question,
                    timeout=TIMEOUT_MS)
    assert pane.answer is not None
    assert pane.answer.ok, pane.answer.error
    assert pane.answer.incident_id == incident_id
    assert pane.input.text() == question


def test_a_late_answer_to_a_superseded_question_is_dropped(qtbot: Any, qloop: Any) -> None:
    release = threading.Event()
    threads: list[str] = []

    def ask(question: str, *, user: str, incident_id: int | None = None) -> Answer:
        threads.append(threading.current_thread().name)
        if question == "slow one":
            release.wait(5)
        return _fact_answer(question)

    worker = Worker(offload=True)
    pane = _pane(qtbot, ask, worker=worker)
    pane.ask("slow one")
    pane.ask("fast one")
    qtbot.waitUntil(lambda: pane.answer is not None, timeout=TIMEOUT_MS)
    assert pane.answer is not None
    assert pane.answer.question == "fast one"
    release.set()
    qtbot.waitUntil(lambda: not worker.busy, timeout=TIMEOUT_MS)
    QApplication.processEvents()
    assert pane.answer.question == "fast one"
    assert "slow one" not in pane.browser.toPlainText()
    assert threading.main_thread().name not in threads  # never on the GUI thread


def test_a_failing_question_is_shown_in_the_pane_not_raised(qtbot: Any) -> None:
    def ask(question: str, *, user: str, incident_id: int | None = None) -> Answer:
        raise RuntimeError("the database went away")

    pane = _pane(qtbot, ask)
    failed: list[str] = []
    pane._worker.failed.connect(failed.append)
    qtbot.keyClicks(pane.input, "what changed today?")
    qtbot.mouseClick(pane.button, Qt.MouseButton.LeftButton)
    assert "the database went away" in pane.message.text()
    assert pane.message.property("level") == "error"
    assert "the database went away" in pane.browser.toPlainText()
    assert not failed  # shown here, not only in the status bar


def test_an_answer_with_an_error_is_shown(qtbot: Any) -> None:
    def ask(question: str, *, user: str, incident_id: int | None = None) -> Answer:
        return Answer(question, "none", "", error="'mallory' is not a known user")

    pane = _pane(qtbot, ask)
    pane.ask("what should I look at?")
    assert "not a known user" in pane.message.text()
    assert "not a known user" in pane.browser.toPlainText()


def test_the_up_arrow_recalls_earlier_questions(qtbot: Any) -> None:
    asked: list[tuple[str, int | None]] = []

    def ask(question: str, *, user: str, incident_id: int | None = None) -> Answer:
        asked.append((question, incident_id))
        return _fact_answer(question, incident_id=incident_id)

    pane = _pane(qtbot, ask, suggest=lambda incident_id, *, user: [f"about {incident_id}"])
    pane.show_incident(4)
    assert pane.suggested() == ["about 4"]
    for question in ("first question", "second question"):
        pane.input.clear()
        qtbot.keyClicks(pane.input, question)
        qtbot.keyClick(pane.input, Qt.Key.Key_Enter)
    assert asked == [("first question", 4), ("second question", 4)]
    pane.input.clear()
    qtbot.keyClicks(pane.input, "draft")
    qtbot.keyClick(pane.input, Qt.Key.Key_Up)
    assert pane.input.text() == "second question"
    qtbot.keyClick(pane.input, Qt.Key.Key_Up)
    assert pane.input.text() == "first question"
    qtbot.keyClick(pane.input, Qt.Key.Key_Down)
    qtbot.keyClick(pane.input, Qt.Key.Key_Down)
    assert pane.input.text() == "draft"

"""The maturity wizard walked to its report: answers, evidence read off the GUI thread,
placement with reasons and traps, shadow mode, the kept assessment and its trend, and
the HTML and PDF exports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QRadioButton

from console.assessment_service import AssessmentService
from tests.assessment_history import History
from widgets.assess_pages import EvidenceModel
from widgets.assess_wizard import AssessWizard

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


@pytest.fixture
def history(runtime: Any) -> History:
    h = History(runtime)
    h.policy()
    h.rule_run()
    for service in ("cart", "orders", "search"):
        h.approved_run("scale-out", service=service)
    h.approved_run("scale-out", service="checkout", fail=True)
    h.approved_run("restart-service", service="payments")
    return h


@pytest.fixture
def wizard(runtime: Any, history: History, qtbot: Any,
           tmp_path: Path) -> Iterator[AssessWizard]:
    def choose(kind: str) -> Path:
        return tmp_path / f"assessment.{kind}"

    w = AssessWizard(AssessmentService(runtime.service), "alice", choose_path=choose)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def click(qtbot: Any, wizard: AssessWizard, name: str) -> None:
    button = wizard.findChild(QPushButton, name)
    assert button is not None, name
    assert button.isEnabled(), f"{name} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_walk_to_the_report_and_export(wizard: AssessWizard, runtime: Any, qtbot: Any,
                                       tmp_path: Path) -> None:
    assert not wizard.isModal()
    claimed = wizard.findChild(QComboBox, "claimedLevel")
    claimed.setCurrentIndex(claimed.findData(3))
    click(qtbot, wizard, "assessNext")
    model = wizard.assessor.model
    for page in wizard.question_pages:
        assert wizard.currentPage() is page
        for q in model.questions_of(page.level):
            value = "no" if q.kind == "expectation" else "yes"
            radio = wizard.findChild(QRadioButton, f"answer_{q.id}_{value}")
            qtbot.mouseClick(radio, Qt.MouseButton.LeftButton)
            assert radio.isChecked()
        click(qtbot, wizard, "assessNext")
    assert wizard.answers["l3_rollback"] == "yes"

    # the evidence is read on a worker thread; Next waits for it
    assert wizard.currentPage() is wizard.evidence_page
    qtbot.waitUntil(wizard.evidence_page.isComplete, timeout=10000)
    assert wizard.evidence_page.model.rowCount() > 20
    assert "action(s)" in wizard.findChild(QLabel, "evidenceStatus").text()
    click(qtbot, wizard, "assessNext")

    # claims 3, but nothing ran on its own: the evidence wins, and says why
    assert wizard.currentPage() is wizard.placement_page
    level = wizard.findChild(QLabel, "placementLevel").text()
    assert "Level 2 &mdash; AI Agents" in level
    reasons = wizard.findChild(QLabel, "placementReasons").text()
    assert "You claim level 3; the evidence wins" in reasons
    assert "Where the evidence overrules your answers" in reasons
    assert "Level 3: nothing has run without approval yet" in reasons
    assert "Replay &#x27;scale&#x27; in shadow mode" in \
        wizard.findChild(QLabel, "placementSteps").text()

    # act on the "move up" step: shadow mode for the suggested class
    shadow_class = wizard.findChild(QComboBox, "shadowClass")
    assert shadow_class.currentData() == "scale"
    click(qtbot, wizard, "shadowButton")
    result = wizard.findChild(QLabel, "shadowResult")
    qtbot.waitUntil(lambda: "Shadow replay:" in result.text(), timeout=10000)
    assert wizard.assessment is not None
    assert wizard.assessment.shadow is not None
    summary = wizard.assessment.shadow.summary()
    assert (summary["recommendations"], summary["would_run"]) == (4, 4)
    assert (summary["fixed"], summary["made_worse"]) == (3, 1)
    assert "4 would have run without approval" in result.text()

    click(qtbot, wizard, "assessNext")
    assert wizard.currentPage() is wizard.report_page
    qtbot.waitUntil(lambda: wizard.recorded_id is not None, timeout=10000)
    assert "Kept as assessment #1" in wizard.findChild(QLabel, "recordStatus").text()
    _xs, ys = wizard.report_page.placed_curve.getData()
    assert list(ys) == [2]
    entries = [e for e in runtime.service.audit_entries() if e.action == "assessment.record"]
    assert [e.outputs["level"] for e in entries] == [2]
    assert entries[0].outputs["shadow"]["would_run"] == 4

    click(qtbot, wizard, "exportHtmlButton")
    click(qtbot, wizard, "exportPdfButton")
    html = (tmp_path / "assessment.html").read_text()
    assert "<h1>Level 2 &mdash; AI Agents</h1>" in html
    assert "Shadow replay" in html
    pdf = (tmp_path / "assessment.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(pdf) > 2000
    assert "assessment.pdf" in wizard.report_page.export_status.text()
    click(qtbot, wizard, "assessFinish")
    assert not wizard.isVisible()


def test_the_evidence_is_not_read_on_the_gui_thread(wizard: AssessWizard,
                                                    qtbot: Any) -> None:
    threads: list[str] = []
    real = wizard.assessor.evidence

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    wizard.assessor.evidence = spy  # type: ignore[method-assign]
    while wizard.currentPage() is not wizard.evidence_page:
        wizard.next()
    qtbot.waitUntil(wizard.evidence_page.isComplete, timeout=10000)
    assert threads
    assert threads[0].startswith("assess")
    assert threading.current_thread().name == "MainThread"


def test_a_viewer_walks_through_but_nothing_is_kept(runtime: Any, history: History,
                                                    qtbot: Any) -> None:
    runtime.service.add_user("victor", "viewer", as_user="alice")
    w = AssessWizard(AssessmentService(runtime.service), "victor")
    qtbot.addWidget(w)
    w.show()
    while w.currentPage() is not w.evidence_page:
        w.next()
    qtbot.waitUntil(w.evidence_page.isComplete, timeout=10000)
    w.next()
    w.next()
    status = w.findChild(QLabel, "recordStatus")
    qtbot.waitUntil(lambda: status.text().startswith("Not kept"), timeout=10000)
    assert "needs role operator" in status.text()
    assert w.assessor.history() == []
    w.close()


def test_evidence_model_passes_the_model_tester(runtime: Any, history: History,
                                                qtmodeltester: Any) -> None:
    model = EvidenceModel()
    qtmodeltester.check(model)
    model.set_evidence(AssessmentService(runtime.service).evidence())
    qtmodeltester.check(model)
    assert model.index(0, 0).data() == "executions_total"
    assert model.index(0, 1).data() == "6"


def test_the_evidence_page_shows_the_high_risk_grants_and_who_made_them(
        runtime: Any, history: History, qtbot: Any) -> None:
    from console.policy import Policy

    policy = runtime.service.policy()
    runtime.service.set_policy(policy.model_copy(update={
        "high_risk_autonomy": {"failover": ("orders-db", "cart-db")}}), as_user="alice",
        reason="drilled weekly")
    w = AssessWizard(AssessmentService(runtime.service), "alice")
    qtbot.addWidget(w)
    w.show()
    while w.currentPage() is not w.evidence_page:
        w.next()
    qtbot.waitUntil(w.evidence_page.isComplete, timeout=10000)
    text = w.findChild(QLabel, "highRiskGrants").text()
    assert "granted by an admin" in text
    assert "failover on cart-db, orders-db: granted by user:alice at " in text
    assert "(drilled weekly)" in text
    runtime.service.set_policy(Policy(), as_user="alice")
    w.back()
    w.next()
    qtbot.waitUntil(w.evidence_page.isComplete, timeout=10000)
    assert "no admin grant" in w.findChild(QLabel, "highRiskGrants").text()
    w.close()

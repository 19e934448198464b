"""Nothing that matters is cut off at 1366x768 (defect 8 of the night-shift review): the
plot's mark labels never sit on each other, table columns are as wide as what they hold
where the pane has the room (the rest elided, with the whole text in the tooltip), and
the details under the decision card grow with the window."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from console.runtime import ScenarioDriver
from widgets.history_model import ExecutionTableModel
from widgets.models import AuditTableModel
from widgets.plot_marks import MARGIN_PX

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

TIMEOUT_MS = 10_000


def _resolved_bad_deploy(runtime: Any, console: Any) -> Any:
    """bad-deploy approved at once and played until its incident resolved."""
    driver = ScenarioDriver(runtime, "bad-deploy", agents=True)
    window = console(driver)
    window.resize(1366, 768)
    engine, service = runtime.service.engine, runtime.service
    while driver.elapsed < 1800 and not driver.finished:
        driver.step(15.0)
        QApplication.processEvents()
        for rec in engine.recommendations(("pending",)):
            engine.approve(rec.id, as_user="alice", preview_hash=rec.preview_hash)
        if service.incidents() and service.incidents()[0].state != "open":
            break
    assert service.incidents()[0].state != "open"
    return window


def _text_width(view: Any, text: str) -> int:
    return QFontMetrics(view.font()).horizontalAdvance(text)


def test_labels_columns_and_details_keep_what_matters_in_sight(
        runtime: Any, console: Any, qtbot: Any) -> None:
    window = _resolved_bad_deploy(runtime, console)
    pane = window.incidents_pane
    qtbot.waitUntil(lambda: len(pane._marks) >= 4, timeout=TIMEOUT_MS)
    pane.draw_plot_now()
    QApplication.processEvents()

    # The deploy, the approval, the run and its validation fall within three minutes:
    # no two labels overlap.
    def boxes() -> list[Any]:
        return [line.label.sceneBoundingRect().adjusted(0, MARGIN_PX, 0, -MARGIN_PX)
                for line in pane._marks.values()]

    qtbot.waitUntil(lambda: not any(a.intersects(b) for i, a in enumerate(boxes())
                                    for b in boxes()[i + 1:]), timeout=TIMEOUT_MS)

    # In the history's narrow pane the short columns stay whole (a state, a time) and
    # the action keeps at least its header; the rest is elided, its tooltip whole.
    history = window.history_pane
    qtbot.waitUntil(lambda: history.model.rowCount() == 1, timeout=TIMEOUT_MS)
    QApplication.processEvents()
    for col in (ExecutionTableModel.STARTED, ExecutionTableModel.STATE,
                ExecutionTableModel.TOOK):
        text = history.model.index(0, col).data()
        assert history.table.columnWidth(col) >= _text_width(history.table, text), text
    header = history.model.headerData(ExecutionTableModel.ACTION, Qt.Orientation.Horizontal)
    assert history.table.columnWidth(ExecutionTableModel.ACTION) >= \
        _text_width(history.table, header)

    # Where the panes have the room, every column is as wide as its longest text.
    window.resize(2400, 1000)
    window.docks["audit"].raise_()
    audit = window.audit_pane
    actions = {audit.model.index(r, AuditTableModel.ACTION).data()
               for r in range(audit.model.rowCount())}
    longest = max(actions, key=lambda a: _text_width(audit.table, a))
    qtbot.waitUntil(lambda: audit.table.columnWidth(AuditTableModel.ACTION)
                    >= _text_width(audit.table, longest), timeout=TIMEOUT_MS)
    action = history.model.index(0, ExecutionTableModel.ACTION).data()
    qtbot.waitUntil(lambda: history.table.columnWidth(ExecutionTableModel.ACTION)
                    >= _text_width(history.table, action), timeout=TIMEOUT_MS)
    window.resize(1366, 768)

    # The details under the decision card grow with the window.
    details = window.recommendations_pane.details
    small = details.height()
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: details.height() > small + 60, timeout=TIMEOUT_MS)


def test_an_elided_label_carries_its_whole_text_as_its_tooltip(qtbot: Any) -> None:
    from widgets.elided import ElidedLabel

    label = ElidedLabel("Move payments-db's traffic to its replica (or away from an "
                        "unreachable zone)")
    qtbot.addWidget(label)
    label.resize(120, 20)
    label.show()
    qtbot.waitExposed(label)
    assert label.elided
    assert label.toolTip() == label.text()
    label.resize(2000, 20)
    qtbot.waitUntil(lambda: not label.elided)
    assert label.toolTip() == ""


def test_a_long_status_notice_is_elided_with_its_text_in_the_tooltip(
        runtime: Any, console: Any, qtbot: Any) -> None:
    window = console(None)
    window.resize(1366, 768)
    status = window.status
    long = ("Approval waiting for incident #1: Move payments-db's traffic to its replica "
            "(or away from an unreachable zone) on payments-db; four eyes: someone other "
            "than agent:recommender approves")
    status.notify(long, error=True)
    qtbot.waitUntil(lambda: status.notice_label.elided, timeout=TIMEOUT_MS)
    assert long in status.notice_label.toolTip()

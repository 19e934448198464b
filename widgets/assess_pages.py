"""The maturity wizard's pages before the report: introduction, questions, evidence,
placement. Views only: the numbers and the placement come from the core
(console/assessment_service.py), read off the GUI thread by the wizard's worker.

Keyboard: every answer is a row of three radio buttons (Tab moves between rows, the
arrow keys between Yes/No/Partly, Alt+N/Alt+B page), and every control a test or an
operator clicks has a stable objectName.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from console.assessment import fmt_metric
from console.assessment_evidence import METRICS, AssessmentEvidence
from console.assessment_model import MaturityModel

# No mnemonics: every row has the same three, and Alt+N and Alt+B page the wizard.
ANSWERS = (("yes", "Yes"), ("no", "No"), ("partly", "Partly"))
# The themes style check boxes but not radio buttons, whose default indicator all but
# disappears on the dark theme; these read on both themes and show keyboard focus.
RADIO_QSS = """
QRadioButton { spacing: 5px; padding: 2px 4px; border: 1px solid transparent;
               border-radius: 3px; }
QRadioButton:focus { border-color: #6e9be0; }
QRadioButton::indicator { width: 12px; height: 12px; border: 1px solid #7d8792;
                          border-radius: 7px; background: transparent; }
QRadioButton::indicator:hover { border-color: #6e9be0; }
QRadioButton::indicator:checked { border: 4px solid #3b6fb6; background: #ffffff;
                                  width: 6px; height: 6px; }
"""
Index = QModelIndex | QPersistentModelIndex


def _label(text: str, name: str = "", *, rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    if name:
        label.setObjectName(name)
    return label


class IntroPage(QWizardPage):
    """What the assessment does, the six levels, and the level the team believes it is at."""

    def __init__(self, model: MaturityModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("introPage")
        self.setTitle("How autonomous are your operations?")
        self.setSubTitle("Answer the questions for each level; the console then checks your "
                         "answers against its own record. Where the two disagree, the "
                         "record wins, and the result says why.")
        rows = "".join(f"<tr><td><b>{lv.level}</b></td><td><b>{escape(lv.name)}</b></td>"
                       f"<td>{escape(lv.does)}</td></tr>" for lv in model.levels)
        levels = _label(f"<table cellspacing='0' cellpadding='5'>{rows}</table>",
                        "levelsOverview", rich=True)
        levels.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.claimed = QComboBox(self)
        self.claimed.setObjectName("claimedLevel")
        self.claimed.addItem("not sure", None)
        for lv in model.levels:
            self.claimed.addItem(f"{lv.level} - {lv.name}", lv.level)
        form = QFormLayout()
        form.addRow("We believe we are at &level:", self.claimed)
        layout = QVBoxLayout(self)
        layout.addWidget(_scroll(levels), 1)
        layout.addLayout(form)

    def claimed_level(self) -> int | None:
        value = self.claimed.currentData()
        return int(value) if value is not None else None


class QuestionsPage(QWizardPage):
    """The prerequisite (and expectation) questions of one level."""

    def __init__(self, model: MaturityModel, level: int, answers: dict[str, str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lv = model.level(level)
        self.level = level
        self.setObjectName(f"questionsPage{level}")
        self.setTitle(f"Level {level}: {lv.name}")
        self.setSubTitle(f"It needs: {'; '.join(n.category for n in lv.needs)}. "
                         "Answer for what runs in production today.")
        self._answers = answers
        self.setStyleSheet(RADIO_QSS)
        self.groups: dict[str, QButtonGroup] = {}
        body = QWidget(self)
        grid = QVBoxLayout(body)
        for q in model.questions_of(level):
            row = QWidget(body)
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 4, 0, 4)
            tag = "" if q.kind == "prerequisite" else " (expectation: does not place you)"
            text = _label(f"<b>{escape(q.category)}</b>{escape(tag)}<br>{escape(q.text)}",
                          rich=True)
            line.addWidget(text, 1)
            group = QButtonGroup(row)
            for value, title in ANSWERS:
                button = QRadioButton(title, row)
                button.setObjectName(f"answer_{q.id}_{value}")
                button.setProperty("answer", value)
                group.addButton(button)
                line.addWidget(button)
            group.buttonToggled.connect(self._on_group_toggled)
            self.groups[q.id] = group
            grid.addWidget(row)
        grid.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(_scroll(body), 1)

    def _on_group_toggled(self, button: QRadioButton, checked: bool) -> None:
        if not checked:
            return
        for qid, group in self.groups.items():
            if group.checkedButton() is button:
                self._answers[qid] = str(button.property("answer"))

    def answer(self, qid: str, value: str) -> None:
        """Set an answer as a click would (tests and a loaded answers file use it)."""
        for button in self.groups[qid].buttons():
            if button.property("answer") == value:
                button.setChecked(True)


class EvidenceModel(QAbstractTableModel):
    """The evidence metrics as a read-only table: measure, value, meaning."""

    COLUMNS = ("Measure", "Value", "Meaning")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str, str]] = []

    def set_evidence(self, evidence: AssessmentEvidence | None) -> None:
        # One whole new evidence set per computation, never per event: a reset is right.
        self.beginResetModel()
        self._rows = [] if evidence is None else [
            (name, fmt_metric(name, evidence.get(name)), meaning)
            for name, meaning in METRICS.items()]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.UserRole:
            return self._rows[index.row()][0]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None


class EvidencePage(QWizardPage):
    """What the database says; complete once the worker has read it."""

    def __init__(self, load: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidencePage")
        self.setTitle("What the console's record says")
        self.setSubTitle("Computed from the actions, approvals, validations, rollbacks, "
                         "incidents, audit chain and policy of the last 30 days.")
        self._load = load
        self.evidence: AssessmentEvidence | None = None
        self.status = _label("Reading the record...", "evidenceStatus")
        # An admin's grant of high risk without an approver is a decision about trust:
        # it is shown apart from the measures, with who made it.
        self.grants = _label("", "highRiskGrants", rich=True)
        self.model = EvidenceModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("evidenceTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.grants)
        layout.addWidget(self.table, 1)

    def initializePage(self) -> None:
        self.evidence = None
        self.model.set_evidence(None)
        self.status.setText("Reading the record...")
        self.grants.setText("")
        self.completeChanged.emit()
        self._load()

    def show_evidence(self, evidence: AssessmentEvidence) -> None:
        self.evidence = evidence
        self.model.set_evidence(evidence)
        runs = evidence.get("executions_total") or 0
        chain = "verifies" if evidence.get("audit_chain_ok") else "DOES NOT verify"
        self.status.setText(f"{int(runs)} action(s) and {int(evidence.get('incidents') or 0)} "
                            f"incident(s) from {evidence.since:%Y-%m-%d} to "
                            f"{evidence.until:%Y-%m-%d}; the audit chain {chain}."
                            + "".join(f" {n.capitalize()}." for n in evidence.notes))
        self.grants.setText(_grants_html(evidence))
        self.completeChanged.emit()

    def show_error(self, message: str) -> None:
        self.status.setText(f"The record could not be read: {message}")

    def isComplete(self) -> bool:
        return self.evidence is not None


class PlacementPage(QWizardPage):
    """Level, reasons, traps, next steps; shadow mode offered to act on a step."""

    def __init__(self, model: MaturityModel, run_shadow: Callable[[str], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("placementPage")
        self.setTitle("Where you are")
        self._model = model
        self._run_shadow = run_shadow
        self.level_label = _label("", "placementLevel", rich=True)
        self.reasons = _label("", "placementReasons", rich=True)
        self.traps = _label("", "placementTraps", rich=True)
        self.steps = _label("", "placementSteps", rich=True)
        self.shadow_class = QComboBox(self)
        self.shadow_class.setObjectName("shadowClass")
        self.shadow_button = QPushButton("Replay in &shadow mode at level 3", self)
        self.shadow_button.setObjectName("shadowButton")
        self.shadow_button.setToolTip("Replays past recommendations of this action class "
                                      "under a policy that lets it run on its own. Nothing "
                                      "runs and nothing changes.")
        self.shadow_button.clicked.connect(self._on_shadow_button_clicked)
        self.shadow_result = _label("", "shadowResult", rich=True)
        class_label = QLabel("Action &class:", self)
        class_label.setBuddy(self.shadow_class)
        shadow_row = QHBoxLayout()
        shadow_row.addWidget(class_label)
        shadow_row.addWidget(self.shadow_class, 1)
        shadow_row.addWidget(self.shadow_button)
        body = QWidget(self)
        inner = QVBoxLayout(body)
        for widget in (self.level_label, self.reasons, self.traps, self.steps):
            inner.addWidget(widget)
        inner.addLayout(shadow_row)
        inner.addWidget(self.shadow_result)
        inner.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(_scroll(body), 1)

    def show_placement(self, result: Any, classes: list[str]) -> None:
        p = result.placement
        lv = self._model.level(p.level)
        answered = "no answers" if p.answers_level is None else \
            f"answers reach {p.answers_level}"
        claimed = "" if p.claimed_level is None else f", you claimed {p.claimed_level}"
        self.level_label.setText(
            f"<h2>Level {p.level} &mdash; {escape(p.name)}</h2>"
            f"<p>{escape(answered)}, evidence reaches {p.evidence_level}{escape(claimed)}."
            f"</p><p>{escape(lv.does)}</p>")
        overruled = ("<b>Where the evidence overrules your answers</b>"
                     + _ul(p.contradictions)) if p.contradictions else ""
        self.reasons.setText("<b>Why</b>" + _ul(p.reasons) + overruled)
        if p.traps:
            self.traps.setText("".join(
                f"<p style='background:#5a4416; color:#ffe9b8; padding:6px;'><b>Trap at "
                f"level {t.level}: {escape(t.title)}</b><br>{escape(t.description)}<br>"
                f"<i>Shown because {escape(t.because)}.</i></p>" for t in p.traps))
        else:
            self.traps.setText("<p><i>The data shows no trap at this level.</i></p>")
        self.steps.setText(f"<b>Next steps</b><p>{escape(p.move_up)}</p>" + _ul(p.next_steps))
        # The classes with a record come first (the candidates, then the most run): a
        # replay of a class that never ran has nothing to replay.
        self.shadow_class.clear()
        runs = {c.action_class: sum(c.runs.values()) for c in result.evidence.classes}
        with_runs = sorted((n for n, count in runs.items() if count), key=lambda n: -runs[n])
        for name in dict.fromkeys([*p.shadow_candidates, *with_runs, *classes]):
            count = runs.get(name, 0)
            self.shadow_class.addItem(
                f"{name} ({count} run{'s' if count != 1 else ''} recorded)" if count
                else f"{name} (no runs recorded)", name)
        self.shadow_result.setText("")

    def _on_shadow_button_clicked(self) -> None:
        name = str(self.shadow_class.currentData() or "")
        if name:
            self.shadow_button.setEnabled(False)
            self.shadow_result.setText(f"Replaying '{escape(name)}'...")
            self._run_shadow(name)

    def show_shadow(self, report: Any) -> None:
        self.shadow_button.setEnabled(True)
        s = report.summary()
        notes = "".join(f"<br><i>{escape(n)}</i>" for n in report.notes)
        self.shadow_result.setText(
            f"<b>Shadow replay:</b> {escape(report.headline())}{notes}"
            f"<br>Expected successes from past results: {s['expected_successes']:g} "
            f"of {s['would_run']}. It is kept with the assessment.")

    def show_error(self, message: str) -> None:
        self.shadow_button.setEnabled(True)
        self.shadow_result.setText(f"Shadow replay failed: {escape(message)}")


def _grants_html(evidence: AssessmentEvidence) -> str:
    if not evidence.grants:
        return ("<b>High risk on its own:</b> no admin grant; every high-risk action "
                "waits for an approver.")
    return ("<b>High risk on its own, granted by an admin</b> (policy high_risk_autonomy; "
            "these run without an approver at level 3):"
            + _ul(g.says() for g in evidence.grants))


def _ul(items: Any) -> str:
    return "<ul>" + "".join(f"<li>{escape(str(i))}</li>" for i in items) + "</ul>"


def _scroll(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(widget)
    return area


def answered(values: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v in ("yes", "no", "partly")}

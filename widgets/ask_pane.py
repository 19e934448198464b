"""The ask box: a question in plain language to the retriever (level 0), its answer with
a link to every fact it rests on, and the questions worth asking about the selected
incident.

The pane decides nothing: the retriever reads the question, runs the queries and writes
the answer; the pane only shows it, turning each `[n]` citation into a link to the
record of fact n (``linkActivated``, which the main window routes like every other
pane's links). Asking blocks on the database (and the language model, if one is set),
so every question and every suggestion read runs on the `Worker`. A new question
supersedes the one in flight: a late answer to an older question is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt, QUrl
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from widgets.ops import Worker, describe_error
from widgets.recommendation_view import REF, document_css
from widgets.theme import DEFAULT_THEME, STATE_COLORS

if TYPE_CHECKING:
    from agents.retriever import Answer

HISTORY_SIZE = 30  # questions the Up arrow recalls
CITE = re.compile(r"\[(\d+)\]")
GENERAL_QUESTIONS = ("What should I look at?", "What changed in the last hour?",
                     "Similar past incidents")


class AskFn(Protocol):
    """`Runtime.ask`: blocks; call it off the GUI thread."""

    def __call__(self, question: str, *, user: str,
                 incident_id: int | None = None) -> Answer: ...


SuggestFn = Callable[..., Sequence[str]]
"""`Retriever.suggest(incident_id, *, user=)`: the questions worth asking about one
incident; blocks on the database."""


class QuestionLine(QLineEdit):
    """A line edit whose Up and Down arrows walk through the questions asked before."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: list[str] = []
        self._at = 0  # == len(history): the line being typed
        self._draft = ""

    def remember(self, question: str) -> None:
        if question in self.history:
            self.history.remove(question)
        self.history.append(question)
        del self.history[:-HISTORY_SIZE]
        self._at, self._draft = len(self.history), ""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Up and self._at > 0:
            if self._at == len(self.history):
                self._draft = self.text()
            self._at -= 1
            self.setText(self.history[self._at])
        elif key == Qt.Key.Key_Down and self._at < len(self.history):
            self._at += 1
            self.setText(self.history[self._at] if self._at < len(self.history)
                         else self._draft)
        else:
            super().keyPressEvent(event)


class AskPane(QWidget):
    """Emits ``linkActivated(str)`` with the record link of a cited fact the operator
    clicked, and ``answered(object)`` with each `Answer` shown."""

    linkActivated = QtSignal(str)
    answered = QtSignal(object)

    def __init__(self, *, ask: AskFn, user: str, worker: Worker,
                 suggest: SuggestFn | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("askPane")
        self._ask, self._suggest, self._user, self._worker = ask, suggest, user, worker
        self._colors = STATE_COLORS[DEFAULT_THEME]
        self.incident_id: int | None = None
        self.answer: Answer | None = None
        self.error: str | None = None
        self._generation = 0  # the question in flight; older answers are dropped
        self.pending = False
        self._suggest_generation = 0
        self._links: dict[str, str] = {}  # a link as QUrl gives it back -> the fact's ref
        self.input = QuestionLine(self)
        self.input.setObjectName("askInput")
        self.input.setPlaceholderText("Ask about the estate, e.g. what changed in the "
                                      "last hour?  (Up: earlier questions)")
        self.input.setClearButtonEnabled(True)
        self.input.returnPressed.connect(self._on_input_return_pressed)
        self.button = QPushButton("Ask", self)
        self.button.setObjectName("askButton")
        self.button.setToolTip("Ask the retriever; every fact in the answer links to its "
                               "record. Nothing is ever executed by asking.")
        self.button.clicked.connect(self._on_button_clicked)
        self.message = QLabel(self)
        self.message.setObjectName("askMessage")
        self.message.setWordWrap(True)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("askAnswer")
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        self.suggestions_title = QLabel("Suggested questions", self)
        self.suggestions_title.setObjectName("paneHeading")
        self.suggestions = QListWidget(self)
        self.suggestions.setObjectName("askSuggestions")
        self.suggestions.setWordWrap(True)
        self.suggestions.setToolTip("Click to ask")
        self.suggestions.itemClicked.connect(self._on_suggestions_item_clicked)
        self._layout()
        self.set_theme(DEFAULT_THEME)
        self._set_suggestions("Suggested questions", GENERAL_QUESTIONS)

    def _layout(self) -> None:
        """The question on top, the answer beside the suggested questions."""
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 4, 4, 0)
        bar.setSpacing(6)
        bar.addWidget(self.input, 1)
        bar.addWidget(self.button)
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(2)
        side_layout.addWidget(self.suggestions_title)
        side_layout.addWidget(self.suggestions, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("askSplitter")
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setMinimumSize(160, 72)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(self.splitter, 1)

    def set_theme(self, name: str) -> None:
        self._colors = STATE_COLORS[name]
        self.browser.document().setDefaultStyleSheet(document_css(self._colors))
        self._show()

    def focus_input(self) -> None:
        self.input.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.input.selectAll()

    # --- the incident followed -------------------------------------------------------

    def show_incident(self, incident_id: int) -> None:
        """Questions are asked about this incident; read what is worth asking about it."""
        if incident_id == self.incident_id:
            return
        self.incident_id = incident_id
        if self._suggest is None:
            return
        self._suggest_generation += 1
        generation, suggest, user = self._suggest_generation, self._suggest, self._user

        def done(questions: Sequence[str]) -> None:
            if generation == self._suggest_generation:
                self._set_suggestions(f"Suggested for incident {incident_id}", questions)

        self._worker.submit(f"reading the questions for incident {incident_id}",
                            lambda: list(suggest(incident_id, user=user)), on_done=done)

    def _set_suggestions(self, title: str, questions: Sequence[str]) -> None:
        self.suggestions_title.setText(title)
        self.suggestions.clear()
        for question in questions or GENERAL_QUESTIONS:
            QListWidgetItem(question, self.suggestions)

    def suggested(self) -> list[str]:
        return [self.suggestions.item(row).text() for row in range(self.suggestions.count())]

    # --- asking ----------------------------------------------------------------------

    def ask(self, question: str) -> None:
        """Ask `question` (about the selected incident, if any); supersedes the last."""
        question = " ".join(question.split())
        if not question:
            return
        self.input.remember(question)
        self.input.setText(question)
        self._generation += 1
        generation, ask, user, incident_id = (self._generation, self._ask, self._user,
                                              self.incident_id)
        self.pending = True
        self._say(f"Asking: {question}\u2026", level="busy")

        def done(answer: Answer) -> None:
            if generation == self._generation:
                self.pending = False
                self._on_answer(answer)

        def failed(exc: BaseException) -> None:
            if generation == self._generation:
                self.pending = False
                self._on_failure(f"The question failed: {describe_error(exc)}")

        self._worker.submit(f"asking {question!r}",
                            lambda: ask(question, user=user, incident_id=incident_id),
                            on_done=done, on_error=failed)

    def _on_answer(self, answer: Answer) -> None:
        self.answer = answer
        self.error = answer.error
        if answer.error is not None:
            self._say(answer.error, level="error")
        else:
            scope = (f" about incident {answer.incident_id}"
                     if answer.incident_id is not None else "")
            how = "phrased by the language model" if answer.via == "llm" else "from the records"
            self._say(f"{len(answer.facts)} facts{scope}, {how}"
                      + (f" ({answer.note})" if answer.note else ""), level="info")
            if answer.suggestions:
                self._set_suggestions("Ask next", answer.suggestions)
        self._show()
        self.answered.emit(answer)

    def _on_failure(self, message: str) -> None:
        self.answer, self.error = None, message
        self._say(message, level="error")
        self._show()

    # --- showing ---------------------------------------------------------------------

    def _show(self) -> None:
        answer, colors = self.answer, self._colors
        self._links = {}
        if self.error is not None:
            self.browser.setHtml(f"<p style='color:{colors.red}'><b>"
                                 f"{escape(self.error)}</b></p>")
            return
        if answer is None:
            self.browser.setHtml(f"<p style='color:{colors.dimmed}'>Ask a question, or "
                                 "click a suggested one. Every fact in the answer links "
                                 "to its record; nothing is ever executed by asking.</p>")
            return
        facts = answer.facts
        refs = [fact.ref for fact in facts] + REF.findall(answer.text)
        self._links = {QUrl(ref).toString(): ref for ref in refs}

        def cite(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if not 1 <= n <= len(facts):
                return match.group(0)
            ref = escape(facts[n - 1].ref, quote=True)
            return f"[<a href=\"{ref}\" title=\"{ref}\">{n}</a>]"

        body = _body(answer.text, cite)
        sources = "".join(
            f"<li>[{n}] {escape(fact.kind)} \u2014 "
            f"<a href=\"{escape(fact.ref, quote=True)}\">{escape(fact.ref)}</a></li>"
            for n, fact in enumerate(facts, 1))
        queries = ", ".join(escape(str(query)) for query in answer.queries)
        self.browser.setHtml(
            f"<h3>{escape(answer.question)}</h3>{body or '<p>No facts found.</p>'}"
            + (f"<h4>Sources</h4><ul>{sources}</ul>" if sources else "")
            + (f"<p style='color:{colors.dimmed}'>Queries: {queries}</p>" if queries else ""))

    def _say(self, text: str, *, level: str) -> None:
        self.message.setText(text)
        self.message.setProperty("level", level)
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    # --- slots -----------------------------------------------------------------------

    def _on_input_return_pressed(self) -> None:
        self.ask(self.input.text())

    def _on_button_clicked(self) -> None:
        self.ask(self.input.text())

    def _on_suggestions_item_clicked(self, item: QListWidgetItem) -> None:
        self.ask(item.text())

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        text = url.toString()
        self.linkActivated.emit(self._links.get(text, text))


def _linked(text: str, cite: Callable[[re.Match[str]], str]) -> str:
    """One line of an answer, escaped, its [n] citations linked to the facts' records
    and any [kind:id] record link a fact quotes linked to that record."""
    out, last = [], 0
    for match in REF.finditer(text):
        out.append(CITE.sub(cite, escape(text[last:match.start()])))
        ref = match.group(1)
        out.append(f"[<a href=\"{escape(ref, quote=True)}\">{escape(ref)}</a>]")
        last = match.end()
    out.append(CITE.sub(cite, escape(text[last:])))
    return "".join(out)


def _body(text: str, cite: Callable[[re.Match[str]], str]) -> str:
    """The answer's lines as HTML: the template's "Heading (n):" lines as headings, its
    "- " lines as list items, anything else (a preface, a model's prose) as paragraphs."""
    out: list[str] = []
    in_list = False
    for line in text.splitlines():
        item = line.startswith("- ")
        if item != in_list:
            out.append("<ul>" if item else "</ul>")
            in_list = item
        if item:
            out.append(f"<li>{_linked(line[2:], cite)}</li>")
        elif line.endswith(":") and not CITE.search(line):
            out.append(f"<h4>{_linked(line, cite)}</h4>")
        elif line.strip():
            out.append(f"<p>{_linked(line, cite)}</p>")
    if in_list:
        out.append("</ul>")
    return "".join(out)

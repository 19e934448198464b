"""The maturity model and its questions as validated data, and the answers to them.

The levels, what each needs, its trap and the way up live in
`resources/maturity/levels.yaml`; the questions in `questions.yaml`. Keeping the model as
data lets the wording be reviewed (and corrected) without touching the placement code,
and lets the same model drive the CLI, the wizard and the report. Both files are
validated on load; a bad file is an error that names the file, the line and the field,
as every other YAML input of the console is (console/yamlpos.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from console.assessment_evidence import METRICS
from console.yamlpos import ScenarioError, load_model_text, load_yaml, read_config_text, validate

AnswerValue = Literal["yes", "no", "partly"]
Op = Literal["==", "!=", ">", ">=", "<", "<="]


class MaturityModelError(ValueError):
    """levels.yaml or questions.yaml cannot be used; the message names file, line, field."""


class AnswersError(ValueError):
    """An answers file cannot be used; the message names the question and the line."""


def _yes_no(value: Any) -> Any:
    """YAML reads a bare yes/no as a boolean: take it as the answer it spells."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return value.strip().lower() if isinstance(value, str) else value


Answer = Annotated[AnswerValue, BeforeValidator(_yes_no)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Need(_Strict):
    category: str = Field(min_length=2)
    requirement: str = Field(min_length=3)


class Gate(_Strict):
    """A fact the level needs from the database: `metric op value`, or `says` why not."""

    metric: str
    op: Op
    value: float | bool
    says: str = Field(min_length=3)

    @model_validator(mode="after")
    def _known_metric(self) -> Gate:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r} (known: {', '.join(METRICS)})")
        return self


class Condition(_Strict):
    """One way the data (or an answer) shows a trap: an answer, a metric, or `all`."""

    answer: str | None = None
    is_: Answer | None = Field(None, alias="is")
    metric: str | None = None
    op: Op | None = None
    value: float | bool | None = None
    all: tuple[Condition, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [self.answer is not None, self.metric is not None, bool(self.all)]
        if sum(kinds) != 1:
            raise ValueError("a condition is one of: answer + is, metric + op + value, all")
        if self.answer is not None and self.is_ is None:
            raise ValueError(f"answer {self.answer!r} needs `is: yes|no|partly`")
        if self.metric is not None:
            if self.metric not in METRICS:
                raise ValueError(f"unknown metric {self.metric!r}")
            if self.op is None or self.value is None:
                raise ValueError(f"metric {self.metric!r} needs op and value")
        return self


class Trap(_Strict):
    title: str = Field(min_length=3)
    description: str = Field(min_length=10)
    shows_when: tuple[Condition, ...] = ()


class Level(_Strict):
    level: int = Field(ge=0, le=5)
    name: str = Field(min_length=3)
    autonomy: str = Field(min_length=3)
    does: str = Field(min_length=10)
    needs: tuple[Need, ...] = Field(min_length=1)
    success: tuple[str, ...] = Field(min_length=1)
    trap: Trap
    move_up: str = Field(min_length=10)
    next_steps: tuple[str, ...] = Field(min_length=1)
    gates: tuple[Gate, ...] = ()


class LevelsFile(_Strict):
    version: Literal[1]
    levels: tuple[Level, ...]

    @model_validator(mode="after")
    def _all_six_in_order(self) -> LevelsFile:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(6)):
            raise ValueError(f"levels must be 0 to 5 in order, got {numbers}")
        return self


class Question(_Strict):
    id: str = Field(pattern=r"^l[0-5]_[a-z0-9_]{2,40}$")
    level: int = Field(ge=0, le=5)
    category: str = Field(min_length=2)
    text: str = Field(min_length=10)
    kind: Literal["prerequisite", "expectation"] = "prerequisite"
    meets: Answer = "yes"

    @model_validator(mode="after")
    def _id_names_its_level(self) -> Question:
        if not self.id.startswith(f"l{self.level}_"):
            raise ValueError(f"question {self.id!r} is at level {self.level}: its id must "
                             f"start with l{self.level}_")
        return self


class QuestionsFile(_Strict):
    version: Literal[1]
    questions: tuple[Question, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> QuestionsFile:
        seen: set[str] = set()
        for q in self.questions:
            if q.id in seen:
                raise ValueError(f"question {q.id!r} appears twice")
            seen.add(q.id)
        return self


@dataclass(frozen=True)
class MaturityModel:
    levels: tuple[Level, ...]
    questions: tuple[Question, ...]

    def level(self, number: int) -> Level:
        return self.levels[number]

    def questions_of(self, level: int) -> list[Question]:
        return [q for q in self.questions if q.level == level]

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)


def _load(model: type[Any], path: Path | None, name: str) -> Any:
    if path is None:
        text = resources.files("resources").joinpath("maturity", name).read_text("utf-8")
        source = f"resources/maturity/{name}"
    else:
        text, source = read_config_text(path, MaturityModelError), str(path)
    return load_model_text(model, text, source, MaturityModelError)


def load_maturity_model(levels: Path | None = None,
                        questions: Path | None = None) -> MaturityModel:
    """The shipped model, or the given files; traps may only ask questions that exist."""
    levels_file: LevelsFile = _load(LevelsFile, levels, "levels.yaml")
    questions_file: QuestionsFile = _load(QuestionsFile, questions, "questions.yaml")
    ids = {q.id for q in questions_file.questions}
    source = str(levels) if levels is not None else "resources/maturity/levels.yaml"
    for lv in levels_file.levels:
        for cond in _flatten(lv.trap.shows_when):
            if cond.answer is not None and cond.answer not in ids:
                raise MaturityModelError(f"{source}: levels.{lv.level}.trap.shows_when: "
                                         f"no question {cond.answer!r} in questions.yaml")
    return MaturityModel(levels_file.levels, questions_file.questions)


def _flatten(conditions: tuple[Condition, ...]) -> list[Condition]:
    out: list[Condition] = []
    for cond in conditions:
        out.append(cond)
        out.extend(_flatten(cond.all))
    return out


# --- answers ---------------------------------------------------------------------------


class AnswersFile(_Strict):
    assessor: str = Field("", max_length=200)
    claimed_level: int | None = Field(None, ge=0, le=5)
    answers: dict[str, Answer] = Field(default_factory=dict)


@dataclass(frozen=True)
class Answers:
    """What the team said: an answer per question id, and the level it believes it is at."""

    values: Mapping[str, AnswerValue]
    claimed_level: int | None = None
    assessor: str = ""
    given: bool = True  # False: nobody answered (a headless run without --answers)

    @classmethod
    def none(cls) -> Answers:
        return cls({}, None, "", given=False)


def check_answers(model: MaturityModel, values: Mapping[str, Any]) -> dict[str, AnswerValue]:
    """Answers from the wizard, validated as a file's would be (unknown id, bad value)."""
    out: dict[str, AnswerValue] = {}
    for qid, raw in values.items():
        if model.question(qid) is None:
            raise AnswersError(f"question {qid!r}: no such question")
        value = _yes_no(raw)
        if value not in ("yes", "no", "partly"):
            raise AnswersError(f"question {qid!r}: answer must be yes, no or partly, "
                               f"got {raw!r}")
        out[qid] = value
    return out


def load_answers_text(model: MaturityModel, text: str, source: str) -> Answers:
    """Parse and validate an answers file; errors say `file:line: question ID: why`."""
    try:
        data, lines = load_yaml(text, source)
        if data is None:
            data = {}
        parsed: AnswersFile = validate(AnswersFile, data, lines, source)
    except ScenarioError as exc:
        raise AnswersError(_name_questions(str(exc))) from None
    for qid in parsed.answers:
        if model.question(qid) is None:
            line = lines.get(("answers", qid), 1)
            known = ", ".join(q.id for q in model.questions)
            raise AnswersError(f"{source}:{line}: question {qid}: no such question "
                               f"(known: {known})")
    return Answers(dict(parsed.answers), parsed.claimed_level, parsed.assessor)


def _name_questions(message: str) -> str:
    """`answers.l1_owners: Input should be ...` reads better as `question l1_owners: ...`."""
    out = []
    for line in message.splitlines():
        head, sep, rest = line.partition(": answers.")
        if sep and ":" in rest:
            qid, _, why = rest.partition(":")
            why = why.strip()
            if why.startswith("Input should be"):
                why = "answer must be yes, no or partly"
            line = f"{head}: question {qid}: {why}"
        out.append(line)
    return "\n".join(out)


def load_answers(model: MaturityModel, path: Path) -> Answers:
    return load_answers_text(model, read_config_text(path, AnswersError), str(path))

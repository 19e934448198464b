"""The causes after an incident's first have a calibration of their own (issue 19,
honest confidence): a cause split off beside a stronger one is more often that one's
wake than a fault, so its probability comes from a temperature and a "none of these"
score fitted on such causes (benchmarks/fit_causes.py), shipped beside the first's."""

from __future__ import annotations

import json
import math
import random

import pytest

from agents.calibration import CalibrationError, load, parse
from agents.causes import CauseGroup, posteriors
from agents.investigator_scoring import Candidate
from benchmarks.fit_weights import Scored, fit_calibration


def _base(**extra: object) -> str:
    return json.dumps({"temperature": 0.4, "null_score": 2.0, **extra})


def test_the_later_causes_calibration_is_read() -> None:
    cal = parse(_base(later_causes={"temperature": 0.8, "null_score": 3.5,
                                    "fit": {"seeds": [1000]}}), "c.json")
    assert cal.later == (0.8, 3.5)
    assert parse(_base(), "c.json").later is None


@pytest.mark.parametrize(("later", "message"), [
    ({"temperature": 0, "null_score": 1.0}, "later_causes.temperature: must be above 0"),
    ({"temperature": 0.5, "null_score": "x"}, "later_causes.null_score: expected a finite"),
    ([0.5, 1.0], "later_causes: expected an object"),
])
def test_a_bad_later_causes_calibration_is_refused_by_name(later: object,
                                                            message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        parse(_base(later_causes=later), "c.json")


def test_the_shipped_file_holds_a_later_causes_calibration_and_where_it_came_from() -> None:
    cal = load()
    assert cal.later is not None
    fit = cal.fit["later_causes"]["fit"]
    assert 1000 <= fit["generated"]["seed"] <= 1999  # fit seeds only
    assert fit["generated"]["count"] > 0


def test_a_later_cause_is_scored_with_its_own_calibration() -> None:
    first = CauseGroup([Candidate("a", "bad_deploy", 1.0, score=4.0)])
    second = CauseGroup([Candidate("b", "memory_leak", 1.0, score=4.0)])
    [[(_, p1)], [(_, p2)]] = posteriors([first, second], 0.4, 2.0)
    assert p1 == p2  # one calibration for both, as before
    [[(_, q1)], [(_, q2)]] = posteriors([first, second], 0.4, 2.0, later=(0.8, 3.8))
    assert q1 == p1
    assert q2 == pytest.approx(1 / (1 + math.exp((3.8 - 4.0) / 0.8)))
    assert q2 < p2


def test_the_fit_gives_causes_the_probability_they_are_right_with() -> None:
    rng = random.Random(3)
    # strong raw scores, right four times in ten: a calibration that said 0.99 would lie
    cases = [Scored((4.0 + rng.random(),), (0,) if rng.random() < 0.4 else (), 1.0)
             for _ in range(400)]
    fitted = fit_calibration(cases, 0.4, 2.0)
    implied = [1 / (1 + math.exp((fitted["null_score"] - c.scores[0])
                                 / fitted["temperature"])) for c in cases]
    assert 0.35 < sum(implied) / len(implied) < 0.45
    sure = fit_calibration([Scored(c.scores, (0,), 1.0) for c in cases], 0.4, 2.0)
    assert sure["null_score"] < fitted["null_score"]


def test_nothing_to_fit_the_later_causes_on_is_said() -> None:
    with pytest.raises(ValueError, match="nothing to fit on"):
        fit_calibration([], 0.4, 2.0)


def test_the_generated_eval_gives_calibration_by_the_kind_a_diagnosis_names() -> None:
    from console.fault_scoring import EstateFacts, aggregate_faults, score_faults

    facts = EstateFacts({"cart": [], "frontend": ["cart"]}, {"cart": "app", "frontend": "app"})
    fault = {"kind": "bad_deploy", "service": "cart", "at_s": 600.0, "params": {},
             "fixed_at_s": None, "fixed_by": None, "actions": []}

    def summary(fault_class: str) -> dict:  # type: ignore[type-arg]
        cause = {"service": "cart", "fault_class": fault_class, "confidence": 0.9}
        return {"scenario": {"name": "s", "seed": 1, "description": "[single] x"},
                "faults": [fault], "actions": [],
                "incidents": [{"id": 1, "opened_at_s": 700.0, "resolved_at_s": None,
                               "services": ["cart"], "root_cause": cause,
                               "alternatives": [], "causes": [cause]}]}

    scores = aggregate_faults([score_faults(summary("bad_deploy"), facts),
                               score_faults(summary("config_error"), facts)])
    assert scores["by_kind"]["bad_deploy"]["top1"] == 0.5
    assert scores["by_kind"]["bad_deploy"]["ece"] == pytest.approx(0.1)
    assert scores["by_kind"]["config_error"]["ece"] == pytest.approx(0.9)
    assert scores["by_kind"]["config_error"]["faults"] == 0

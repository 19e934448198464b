"""The investigator's calibration is shipped as data with how it was fitted, loaded at
start, and a bad file is refused by name (issue 19, point 5)."""

from __future__ import annotations

import json

import pytest

from agents import investigator_scoring
from agents.calibration import CalibrationError, load, parse


def test_the_shipped_calibration_is_what_the_investigator_uses() -> None:
    shipped = load()
    assert (investigator_scoring.TEMPERATURE, investigator_scoring.NULL_SCORE) == \
        (shipped.temperature, shipped.null_score)
    assert shipped.fit["fitted_by"].startswith("python -m benchmarks.")
    seeds = shipped.fit["fit"].get("builtin_seeds") or shipped.fit["fit"].get("seeds")
    assert seeds and all(1000 <= s <= 1999 for s in seeds)  # fit seeds only


@pytest.mark.parametrize(("text", "message"), [
    ("{", "calib.json:1: not JSON"),
    ("[]", "calib.json: expected an object"),
    ('{"temperature": "hot", "null_score": 2}', "calib.json: temperature: expected a "
                                               "finite number, got 'hot'"),
    ('{"temperature": 0.4}', "calib.json: null_score: expected a finite number, got None"),
    ('{"temperature": 0, "null_score": 2}', "calib.json: temperature: must be above 0"),
    ('{"temperature": true, "null_score": 2}', "temperature: expected a finite number"),
])
def test_a_bad_calibration_file_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(CalibrationError, match=message.replace("(", r"\(")):
        parse(text, "calib.json")


def test_the_fit_description_is_kept() -> None:
    cal = parse(json.dumps({"temperature": 0.5, "null_score": 2.0,
                            "fit": {"seeds": [1000]}}), "x")
    assert (cal.temperature, cal.null_score, cal.fit) == (0.5, 2.0, {"fit": {"seeds": [1000]}})


def test_fitted_weights_are_read_and_bad_ones_refused_by_name() -> None:
    cal = parse(json.dumps({"temperature": 0.5, "null_score": 2.0,
                            "weights": {"metric": 3.0, "change": 1.5}}), "x")
    assert cal.weights == {"metric": 3.0, "change": 1.5}
    assert "weights" not in cal.fit
    for weights, message in (({"smell": 1.0}, "x: weights.smell: unknown kind"),
                             ({"log": -1.0}, "x: weights.log: expected a finite number of 0 "
                                             "or more, got -1.0"),
                             ([1, 2], "x: weights: expected an object")):
        with pytest.raises(CalibrationError, match=message):
            parse(json.dumps({"temperature": 0.5, "null_score": 2.0, "weights": weights}),
                  "x")


def test_the_investigator_scores_with_the_shipped_weights() -> None:
    shipped = load()
    for kind, name in (("metric", "W_METRIC"), ("change", "W_CHANGE"), ("log", "W_LOG"),
                       ("alert", "W_ALERT"), ("trend", "W_TREND"), ("deeper", "W_DEEPER")):
        expected = shipped.weights.get(kind, investigator_scoring.DEFAULT_WEIGHTS[kind])
        assert getattr(investigator_scoring, name) == expected

"""The investigator's weights are fitted, not set by hand (benchmarks/fit_weights.py):
on causes where one kind of evidence tells the right candidate from the wrong one, the
fit gives that kind more weight than one that tells nothing, keeps the metric weight as
the scale, and the probabilities it implies fit how often each is right."""

from __future__ import annotations

import math
import random

import pytest

from agents.calibration import WEIGHT_KINDS
from benchmarks.fit_weights import Case, fit, member

START = {"metric": 3.0, "change": 2.0, "log": 1.2, "alert": 0.8, "trend": 2.0, "deeper": 2.0}


def _cases(n: int = 300) -> list[Case]:
    """Two candidates per cause with the same metric evidence; the right one has a change
    80% of the time, and an alert fires on either at random."""
    rng = random.Random(7)
    out = []
    for _ in range(n):
        right_has_change = rng.random() < 0.8
        a = member("a/bad_deploy", {"metric": 0.8, "change": 1.0 if right_has_change else 0.0,
                                    "alert": float(rng.random() < 0.5)}, 1.0)
        b = member("b/bad_deploy", {"metric": 0.8, "change": 0.0 if right_has_change else 1.0,
                                    "alert": float(rng.random() < 0.5)}, 1.0)
        out.append(Case((a, b), (0,), 1.0))
    return out


def test_the_kind_of_evidence_that_tells_gets_the_weight() -> None:
    fitted = fit(_cases(), START, temperature=0.4, null_score=2.0)
    w = fitted["weights"]
    assert set(w) == set(WEIGHT_KINDS)
    assert w["metric"] == START["metric"]  # the scale
    assert w["change"] > 3 * w["alert"]
    # a change is on the right one 80% of the time: that is about how sure it makes
    implied = 1.0 / (1.0 + math.exp(-w["change"] / fitted["temperature"]))
    assert 0.7 < implied < 0.9


def test_none_of_these_is_learnt_from_causes_with_no_right_candidate() -> None:
    wrong = [Case((member("c/memory_leak", {"metric": 0.5}, 1.0),), (), 1.0)] * 50
    sure = fit(_cases(), START, temperature=0.4, null_score=2.0)
    humble = fit(_cases() + wrong, START, temperature=0.4, null_score=2.0)
    assert humble["null_score"] > sure["null_score"]


def test_nothing_to_fit_on_is_said() -> None:
    with pytest.raises(ValueError, match="nothing to fit on"):
        fit([], START, temperature=0.4, null_score=2.0)

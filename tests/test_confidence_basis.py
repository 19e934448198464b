"""One confidence per recommendation (issue 19, point 5): the diagnosis times the fix's
expected success, with what it rests on in words, and both parts readable back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.domain import Evidence, Hypothesis
from tests.test_recommender import World, make_world


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url, "quiet-day")
    yield w
    w.runtime.close()


def test_the_recommendation_carries_one_confidence_and_its_basis(world: World) -> None:
    h = Hypothesis("auth", "certificate_expiry", 0.8, (
        Evidence("metric", "the TLS certificate of auth expires in 2.0 h", "metric:auth/x", 2.5),
        Evidence("alert", "CertificateExpiringSoon firing on auth", "signal:1", 0.8)),
        signals=2)
    [rec_id] = world.recommend(world.incident("auth"), h)
    rec = world.rec(rec_id)
    assert rec.confidence == pytest.approx(0.4)
    assert rec.confidence_parts == (0.8, 0.5)
    assert rec.basis == (
        "diagnosis 0.80 (the TLS certificate of auth expires in 2.0 h; 2 independent "
        "signal(s)) x fix success 0.50 (rotate-certificate: no past runs on "
        "certificate_expiry, a neutral prior) = 0.40")
    assert world.recommender.last[0].basis == rec.basis


def test_the_basis_counts_the_runbook_record(world: World) -> None:
    world.learner.record = None  # type: ignore[assignment]  # not used below
    h = Hypothesis("auth", "certificate_expiry", 0.9, signals=3)
    stats = {("rotate-certificate", "certificate_expiry"): (3, 1)}
    world.recommender.learner = type("L", (), {"statistics": lambda self: stats})()
    [rec_id] = world.recommend(world.incident("auth"), h)
    rec = world.rec(rec_id)
    # Beta(1 + 3, 1 + 1) = 4/6
    assert rec.confidence_parts == (0.9, pytest.approx(0.67, abs=0.005))
    assert "rotate-certificate: 3 of 4 past runs succeeded" in rec.basis
    assert rec.confidence == pytest.approx(0.9 * 4 / 6, abs=1e-4)

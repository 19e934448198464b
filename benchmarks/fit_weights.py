"""Fit the investigator's evidence weights, temperature and "none of these" score at once.

A candidate's raw score is `keep * sum(weight[kind] * feature[kind])`
(agents/investigator_scoring.py `Candidate.features`), and each cause's candidates get
a softmax of their own against "none of these" (agents/causes.py). Divided by the
temperature, the score is linear in `theta = weight / temperature` and the "none" score
in `beta = null_score / temperature`, so the negative log-likelihood of the right answer
is convex in (theta, beta) (a conditional logit): projected gradient descent finds its
minimum from any start, with no hand-set weight left. The metric weight is then held at
its default to fix the scale (any multiple of every number gives the same
probabilities), which gives back the temperature.

The right answer of a cause is the candidates of it that name a fault of the incident;
a cause none of whose candidates does (a false alarm, or a cause split off from
symptoms another one explains) has "none of these" as its right answer. Each incident
weighs one, however many investigations it had; a small ridge towards the starting
weights keeps a kind of evidence that the fit set seldom shows from drifting away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.calibration import WEIGHT_KINDS

ANCHOR = "metric"  # its weight stays at its default: the scale of every other number
RIDGE = 0.01  # pull of the starting weights (per unit of theta squared)


@dataclass(frozen=True)
class Member:
    key: str  # service/fault_class
    features: tuple[float, ...]  # in WEIGHT_KINDS order, times the candidate's keep


@dataclass(frozen=True)
class Case:
    """One cause of one investigation: its candidates and which of them are right."""

    members: tuple[Member, ...]
    right: tuple[int, ...]  # empty: "none of these" is right
    weight: float  # 1 / the incident's number of cases


def member(key: str, features: Mapping[str, float], keep: float) -> Member:
    return Member(key, tuple(keep * features.get(k, 0.0) for k in WEIGHT_KINDS))


def cases_of(runs: Sequence[Any]) -> list[Case]:
    """The fit's cases from bench_rca runs whose checks kept `seen` (a list of causes,
    each a list of `Member`). An incident's investigations repeat themselves while
    nothing changes: the same cause seen again adds to its weight instead of a case."""
    weights: dict[tuple[tuple[Member, ...], tuple[int, ...]], float] = {}
    for run in runs:
        found = [(tuple(group), tuple(i for i, m in enumerate(group) if run.right(m.key)))
                 for check in run.checks for group in (check.seen or []) if group]
        for key in found:
            weights[key] = weights.get(key, 0.0) + 1.0 / len(found)
    return [Case(members, right, weight) for (members, right), weight in weights.items()]


class _Arrays:
    """The cases packed for numpy: one row per candidate, its case's index beside it."""

    def __init__(self, cases: Sequence[Case]) -> None:
        import numpy as np

        self.np = np
        rows = [(i, m.features, j in c.right) for i, c in enumerate(cases)
                for j, m in enumerate(c.members)]
        self.case = np.array([r[0] for r in rows], dtype=np.int64)
        self.x = np.array([r[1] for r in rows], dtype=float).reshape(len(rows), -1)
        self.right = np.array([r[2] for r in rows], dtype=bool)
        self.w = np.array([c.weight for c in cases], dtype=float)
        self.none_right = np.array([not c.right for c in cases], dtype=bool)
        self.n = len(cases)

    def loss_grad(self, theta: list[float], beta: float,
                  start: Sequence[float]) -> tuple[float, list[float], float]:
        np = self.np
        z = self.x @ np.asarray(theta)
        top = np.full(self.n, beta)
        np.maximum.at(top, self.case, z)
        ex = np.exp(z - top[self.case])
        ex_none = np.exp(beta - top)
        norm = ex_none + np.bincount(self.case, weights=ex, minlength=self.n)
        good = np.where(self.none_right, ex_none,
                        np.bincount(self.case, weights=np.where(self.right, ex, 0.0),
                                    minlength=self.n))
        total = self.w.sum() or 1.0
        loss = float(-(self.w * np.log(np.maximum(good / norm, 1e-300))).sum() / total)
        p = ex / norm[self.case]
        q = np.where(self.right, ex / good[self.case], 0.0)
        grad = (self.x * (self.w[self.case] * (p - q))[:, None]).sum(axis=0) / total
        g_beta = float((self.w * (ex_none / norm - self.none_right)).sum() / total)
        t, s0 = np.asarray(theta), np.asarray(start)
        loss += float(RIDGE * ((t - s0) ** 2).sum())
        grad = grad + 2 * RIDGE * (t - s0)
        return loss, [float(g) for g in grad], g_beta


def _loss_grad(cases: Sequence[Case], theta: list[float], beta: float,
               start: Sequence[float]) -> tuple[float, list[float], float]:
    total_w = sum(c.weight for c in cases) or 1.0
    loss = 0.0
    grad = [0.0] * len(theta)
    g_beta = 0.0
    for case in cases:
        logits = [sum(t * f for t, f in zip(theta, m.features, strict=True))
                  for m in case.members]
        top = max([*logits, beta])
        ex = [math.exp(z - top) for z in logits]
        ex_none = math.exp(beta - top)
        norm = sum(ex) + ex_none
        if case.right:
            good = sum(ex[i] for i in case.right)
            loss -= case.weight * math.log(max(good / norm, 1e-300))
        else:
            good = ex_none
            loss -= case.weight * math.log(max(ex_none / norm, 1e-300))
        # d(-log p)/d logit_j = p_j - q_j (q: the right answers' share of what is right)
        for j, m in enumerate(case.members):
            p = ex[j] / norm
            q = ex[j] / good if j in case.right else 0.0
            for k, f in enumerate(m.features):
                grad[k] += case.weight * (p - q) * f
        g_beta += case.weight * (ex_none / norm - (0.0 if case.right else 1.0))
    loss /= total_w
    grad = [g / total_w for g in grad]
    g_beta /= total_w
    for k, (t, s) in enumerate(zip(theta, start, strict=True)):
        loss += RIDGE * (t - s) ** 2
        grad[k] += 2 * RIDGE * (t - s)
    return loss, grad, g_beta


def fit(cases: Sequence[Case], weights: Mapping[str, float], temperature: float,
        null_score: float, *, steps: int = 400) -> dict[str, Any]:
    """The weights, temperature and "none" score of least loss, starting from the given
    ones (see the module docstring)."""
    if not cases:
        raise ValueError("nothing to fit on: no investigation found a candidate")
    start = [weights[k] / temperature for k in WEIGHT_KINDS]
    theta, beta = list(start), null_score / temperature
    try:  # numpy (which pyqtgraph brings) is some hundred times faster on many cases
        packed = _Arrays(cases)

        def loss_grad(th: list[float], b: float) -> tuple[float, list[float], float]:
            return packed.loss_grad(th, b, start)
    except ImportError:
        def loss_grad(th: list[float], b: float) -> tuple[float, list[float], float]:
            return _loss_grad(cases, th, b, start)
    loss, grad, g_beta = loss_grad(theta, beta)
    rate = 1.0
    for _ in range(steps):
        trial = [max(0.0, t - rate * g) for t, g in zip(theta, grad, strict=True)]
        trial_beta = beta - rate * g_beta
        new = loss_grad(trial, trial_beta)
        if new[0] <= loss:
            theta, beta = trial, trial_beta
            loss, grad, g_beta = new
            rate *= 1.2
        else:
            rate *= 0.5
            if rate < 1e-6:
                break
    anchor = WEIGHT_KINDS.index(ANCHOR)
    t_fit = weights[ANCHOR] / theta[anchor] if theta[anchor] > 0 else temperature
    return {"weights": {k: round(th * t_fit, 3) for k, th in zip(WEIGHT_KINDS, theta,
                                                                  strict=True)},
            "temperature": round(t_fit, 3), "null_score": round(beta * t_fit, 3),
            "mean_nll": round(loss, 5), "cases": len(cases)}


@dataclass(frozen=True)
class Scored:
    """One cause of one investigation by its candidates' raw scores (weights fixed)."""

    scores: tuple[float, ...]
    right: tuple[int, ...]  # empty: "none of these" is right
    weight: float


def fit_calibration(cases: Sequence[Scored], temperature: float, null_score: float, *,
                    steps: int = 500) -> dict[str, Any]:
    """The temperature and "none of these" score of least loss for causes whose raw
    scores are given (the evidence weights stay as they are). With `a = 1/temperature`
    and `b = null_score/temperature` the loss is that of a conditional logit, convex in
    (a, b); projected gradient descent from the given pair."""
    if not cases:
        raise ValueError("nothing to fit on: no cause of this rank was seen")
    total = sum(c.weight for c in cases) or 1.0
    a0, b0 = 1.0 / temperature, null_score / temperature

    def loss_grad(a: float, b: float) -> tuple[float, float, float]:
        # a small ridge towards the start: causes that one number tells apart
        # completely would otherwise drive it without end
        loss = RIDGE * ((a - a0) ** 2 + (b - b0) ** 2) * total
        g_a, g_b = 2 * RIDGE * (a - a0) * total, 2 * RIDGE * (b - b0) * total
        for case in cases:
            logits = [a * s for s in case.scores]
            top = max([*logits, b])
            ex = [math.exp(z - top) for z in logits]
            ex_none = math.exp(b - top)
            norm = sum(ex) + ex_none
            good = sum(ex[i] for i in case.right) if case.right else ex_none
            loss -= case.weight * math.log(max(good / norm, 1e-300))
            # d(-log p)/d logit_j = p_j - q_j; logit_j = a * s_j, logit_none = b
            for j, s in enumerate(case.scores):
                q = ex[j] / good if j in case.right else 0.0
                g_a += case.weight * (ex[j] / norm - q) * s
            g_b += case.weight * (ex_none / norm - (0.0 if case.right else 1.0))
        return loss / total, g_a / total, g_b / total

    a, b = a0, b0
    loss, g_a, g_b = loss_grad(a, b)
    rate = 1.0
    for _ in range(steps):
        trial = (max(1e-3, a - rate * g_a), b - rate * g_b)
        new = loss_grad(*trial)
        if new[0] <= loss:
            (a, b), (loss, g_a, g_b) = trial, new
            rate *= 1.2
        else:
            rate *= 0.5
            if rate < 1e-7:
                break
    return {"temperature": round(1.0 / a, 4), "null_score": round(b / a, 4),
            "mean_nll": round(loss, 5), "cases": len(cases)}

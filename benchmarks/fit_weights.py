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
    each a list of `Member`)."""
    out: list[Case] = []
    for run in runs:
        found = [(group, tuple(i for i, m in enumerate(group) if run.right(m.key)))
                 for check in run.checks for group in (check.seen or []) if group]
        for group, right in found:
            out.append(Case(tuple(group), right, 1.0 / len(found)))
    return out


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
    loss, grad, g_beta = _loss_grad(cases, theta, beta, start)
    rate = 1.0
    for _ in range(steps):
        trial = [max(0.0, t - rate * g) for t, g in zip(theta, grad, strict=True)]
        trial_beta = beta - rate * g_beta
        new = _loss_grad(cases, trial, trial_beta, start)
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

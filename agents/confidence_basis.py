"""One confidence per recommendation, and what it rests on, in words.

A recommendation's confidence is the diagnosis' confidence times the fix's expected
success; showing the two side by side (diagnosis 1.00 beside recommendation 0.50) reads
as a contradiction. So the recommendation carries one number, and a `Basis:` line in its
explanation says how it was made: "diagnosis 0.92 (deploy of cart 2 min before errors
on cart; 3 independent signals) x fix success 0.85 (rollback-deploy: 17 of 20 past runs
succeeded)". `console.domain.Recommendation.basis` reads that line back, with its two
parts, so every screen shows the same words.
"""

from __future__ import annotations

from console.domain import Hypothesis

BASIS_PREFIX = "Basis: "


def strongest(h: Hypothesis) -> str:
    """The evidence that weighs most in the diagnosis, in a few words."""
    top = max((e for e in h.evidence if e.weight > 0), key=lambda e: e.weight, default=None)
    if top is None:
        return ""
    text = top.summary.strip().rstrip(".")
    return text if len(text) <= 120 else text[:117] + "..."


def basis_line(h: Hypothesis, independent: int, runbook_id: str, success: float,
               wins: int, losses: int) -> str:
    """`diagnosis D (why) x fix success S (record) = C`, the text after `Basis: `."""
    why = "; ".join(part for part in (strongest(h), f"{independent} independent signal(s)")
                    if part)
    runs = wins + losses
    record = (f"{runbook_id}: {wins} of {runs} past runs succeeded" if runs else
              f"{runbook_id}: no past runs on {h.fault_class}, a neutral prior")
    combined = min(1.0, max(0.0, h.confidence * success))
    return (f"diagnosis {h.confidence:.2f} ({why}) x fix success "
            f"{success:.2f} ({record}) = {combined:.2f}")

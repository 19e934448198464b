"""Policy decisions per second over a mix of people and agents, risks, and histories."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any


def run(args: argparse.Namespace) -> dict[str, Any]:
    from console.policy import History, Policy, Request, decide

    policy = Policy.model_validate({
        "levels": {"disk_hygiene": 3, "cache_hygiene": 3, "restart": 2},
        "service_levels": {"payments": {"restart": 1}},
        "rate_limits": {"default": {"max": 5, "per": "1h"}},
        "freezes": [{"reason": "release", "start": "2026-01-06T00:00:00Z",
                     "end": "2026-01-07T00:00:00Z"}]})
    now = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
    history = History(runs=tuple(now - timedelta(minutes=m) for m in (5, 20, 40)),
                      failures=(now - timedelta(minutes=15),))
    requests = [
        Request("agent:recommender", None, "disk_hygiene", "search", "low", 1, 0.9),
        Request("agent:recommender", None, "restart", "payments", "medium", 1, 0.6),
        Request("user:olga", "operator", "deploy_rollback", "payments", "high", 1, 0.8),
        Request("user:abe", "approver", "scale", "frontend", "low", 2, 0.95),
        Request("user:vic", "viewer", "restart", "cart", "low", 1, 0.9),
    ]
    count = args.decisions
    outcomes: dict[str, int] = {}
    start = time.perf_counter()
    for i in range(count):
        d = decide(policy, requests[i % len(requests)], ceiling=3, kill_switch=False, now=now,
                   history=history)
        outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1
    elapsed = time.perf_counter() - start
    return {"decisions": count, "seconds": round(elapsed, 3),
            "decisions_per_second": round(count / elapsed, 1), "outcomes": outcomes}

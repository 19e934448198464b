"""Judgment on incidents the team was not built for (issue 19): what a fixed cause left
behind is not a new fault, and confidence says how often a cause is right."""

from __future__ import annotations

from pathlib import Path

from console.runtime import run_headless

# A cache's stampede fixed by its flag, then a connection leak on a service that calls a
# datastore the stampede's misses had loaded. The incident grows wide enough that the
# cache, calm again, is no longer among the suspects read.
STAMPEDE_THEN_LEAK = """\
name: stampede-then-leak
description: a cache stampede, fixed, then a connection leak beside its datastores
estate: default
duration: 20m
seed: 10000002
baselines:
  fulfilment-worker:
    request_rate: 39.7
  order-queue:
    request_rate: 47.1
  payments:
    request_rate: 73.6
timeline:
- at: 6m45s
  type: fault
  kind: cache_stampede
  service: product-cache
  params:
    hit_ratio: 0.19
- at: 10m10s
  type: fault
  kind: connection_pool_exhaustion
  service: orders
  params:
    rate_per_min: 0.112
"""


def test_datastores_a_fixed_stampede_loaded_are_not_scaled_out(tmp_path: Path) -> None:
    scenario = tmp_path / "stampede-then-leak.yaml"
    scenario.write_text(STAMPEDE_THEN_LEAK, encoding="utf-8")
    summary = run_headless(str(scenario), autonomy=3, approve="all")
    faulty = {f["service"] for f in summary["faults"]}
    assert [a for a in summary["actions"] if a["target"] not in faulty] == []
    causes = [(c["service"], c["fault_class"]) for i in summary["incidents"]
              for c in i["causes"]]
    assert ("product-cache", "cache_stampede") in causes
    assert ("orders", "connection_pool_exhaustion") in causes
    assert not [c for c in causes if c[1] == "traffic_surge"], causes

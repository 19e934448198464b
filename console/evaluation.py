"""Scores the correlator against a scenario's ground truth (never shown to agents).

An alert is attributed to the fault whose blast radius it falls in: raised after the
fault started (or, for a certificate, on the service whose certificate it is), no later
than 15 minutes after the fault was fixed, on a service within two hops of the faulty
one or on anything that calls such a service. Alerts no fault explains are noise.

compression = 1 - incidents / alerts; purity = share of each incident's alerts that
belong to its main fault (weighted by alerts); recall = share of fault alerts that
landed in an incident whose main fault is theirs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

AFTERMATH_S = 900.0


@dataclass(frozen=True, slots=True)
class Placement:
    """One firing alert and the incident the correlator put it in."""

    service: str
    at_s: float
    incident_id: int


def _impact(topology: Mapping[str, Iterable[str]]) -> tuple[nx.DiGraph, dict[str, dict[str, int]]]:
    graph = nx.DiGraph()
    for service, deps in topology.items():
        graph.add_node(service)
        graph.add_edges_from((service, dep) for dep in deps)
    near = dict(nx.all_pairs_shortest_path_length(graph.to_undirected(), cutoff=2))
    return graph, near


def attribute(placements: list[Placement], faults: Sequence[Mapping[str, Any]],
              topology: Mapping[str, Iterable[str]]) -> list[int | None]:
    """The index of the fault each alert belongs to, or None for noise."""
    graph, near = _impact(topology)
    reach: list[tuple[set[str], dict[str, int]]] = []
    for fault in faults:
        svc = fault["service"]
        if fault.get("params", {}).get("all_services"):
            reach.append((set(topology), {}))
            continue
        around = set(near.get(svc, {svc: 0}))
        if fault["kind"] == "traffic_surge" and svc in graph:  # load flows down the graph
            around |= nx.descendants(graph, svc)
        callers = set().union(*(nx.ancestors(graph, s) for s in around if s in graph))
        reach.append((around | callers, near.get(svc, {})))
    out: list[int | None] = []
    for p in placements:
        best: tuple[int, float, int] | None = None
        for index, fault in enumerate(faults):
            services, dist = reach[index]
            if p.service not in services:
                continue
            started = p.at_s >= fault["at_s"] or (
                fault["kind"] == "certificate_expiry" and p.service == fault["service"])
            fixed = fault.get("fixed_at_s")
            if not started or (fixed is not None and p.at_s > fixed + AFTERMATH_S):
                continue
            key = (dist.get(p.service, 3), -fault["at_s"], index)
            if best is None or key < best:
                best = key
        out.append(None if best is None else best[2])
    return out


def score(placements: list[Placement], faults: Sequence[Mapping[str, Any]],
          topology: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    labels = attribute(placements, faults, topology)
    by_incident: dict[int, Counter[int | None]] = {}
    for p, label in zip(placements, labels, strict=True):
        by_incident.setdefault(p.incident_id, Counter())[label] += 1
    main = {iid: counts.most_common(1)[0][0] for iid, counts in by_incident.items()}
    alerts = len(placements)
    pure = sum(counts.most_common(1)[0][1] for counts in by_incident.values())
    fault_alerts = sum(1 for label in labels if label is not None)
    recalled = sum(1 for p, label in zip(placements, labels, strict=True)
                   if label is not None and main[p.incident_id] == label)
    per_fault = Counter(label for label in main.values() if label is not None)
    return {
        "alerts": alerts,
        "incidents": len(by_incident),
        "compression": round(1 - len(by_incident) / alerts, 4) if alerts else None,
        "purity": round(pure / alerts, 4) if alerts else None,
        "recall": round(recalled / fault_alerts, 4) if fault_alerts else None,
        "noise_alerts": alerts - fault_alerts,
        "incidents_per_fault": [per_fault.get(i, 0) for i in range(len(faults))],
        "faults_without_incident": sum(1 for i in range(len(faults)) if not per_fault.get(i)),
    }


def reach(topology: Mapping[str, Iterable[str]], service: str) -> set[str]:
    """The services a fault on `service` can be seen at: within two hops either way, and
    every caller of those (the same reach `attribute` scores the correlator with)."""
    graph = nx.DiGraph()
    for caller, deps in topology.items():
        graph.add_node(caller)
        graph.add_edges_from((caller, d) for d in deps)
    if service not in graph:
        return {service}
    near = set(nx.single_source_shortest_path_length(graph.to_undirected(), service, cutoff=2))
    return near | set().union(*(nx.ancestors(graph, s) for s in near))

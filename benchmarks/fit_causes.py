"""Fit the calibration of the causes after an incident's first, on the team's own runs of
fit seeds.

An incident's first cause is calibrated with the investigator's temperature and "none of
these" score (benchmarks/bench_calibrate.py). A further cause is another matter: it is
split off beside a stronger one, and it is often that one's wake (a datastore its load
reached, a service its fix restarted) rather than a fault of its own. Scored with the
first cause's calibration, such causes were shown at 0.6-0.7 and were right about four
times in ten. They are also mostly made by what the team did, so they are fitted on the
team's own runs: generated scenarios of fit seeds (1000-1999) only, played headless as
`watchfloor eval --generated` plays them (autonomy 3, every recommendation approved).
Every cause a run lists is taken with the raw scores of the investigation that gave it
the confidence it is listed with; those that were a further cause there are the cases, a
case right when the cause names a fault its incident is about, as the eval judges it
(console/fault_scoring.py), else "none of these" is its answer. The temperature and
"none of these" score of least loss (benchmarks/fit_weights.py `fit_calibration`) are
then written, with the seeds they came from, as `later_causes` in
resources/calibration/investigator.json:

    python -m benchmarks.fit_causes --fit-count 60 --fit-seed 1000 [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "resources" / "calibration" / "investigator.json"
MAX_MEMBERS = 12  # a cause's best candidates read (the rest weigh nothing)


@contextlib.contextmanager
def keeping(seen: list[tuple[int, datetime, datetime, list[list[tuple[str, float]]]]]
            ) -> Iterator[None]:
    """While it is open, every investigation's causes (incident id, its opening, the
    moment, each cause's (key, raw score) best first) are appended to `seen`."""
    from agents import investigator as module

    lock = threading.Lock()
    cls = module.Investigator
    investigate, causes = cls._investigate, cls._causes
    moments: dict[int, tuple[int, datetime, datetime]] = {}

    def _investigate(self: Any, incident: Any, now: datetime, wake: Any) -> Any:
        moments[id(self)] = (incident.id, incident.opened_at, now)
        return investigate(self, incident, now, wake)

    def _causes(self: Any, ranked: Any, views: Any) -> Any:
        groups = causes(self, ranked, views)
        incident, opened, now = moments[id(self)]
        with lock:
            seen.append((incident, opened, now, [
                [(f"{c.service}/{c.fault_class}", c.score) for c in g.members[:MAX_MEMBERS]]
                for g in groups]))
        return groups

    cls._investigate, cls._causes = _investigate, _causes  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._investigate, cls._causes = investigate, causes  # type: ignore[method-assign]


def label(summary: Mapping[str, Any], seen: Sequence[Any], topology: Mapping[str, Any],
          calibration: tuple[float, float, tuple[float, float] | None],
          *, later: bool = True) -> list[Any]:
    """The causes one run lists as `Scored` cases, each by the raw scores of the
    investigation that gave it the confidence it is listed with (the last one whose group
    it led at that confidence, under `calibration`: temperature, null score, later pair):
    those that were a later group there (`later`), else the first ones. A cause is right
    when it names a fault its incident is about, as `eval --generated` judges it
    (console/fault_scoring.py)."""
    from agents.investigator_scoring import calibrate
    from benchmarks.fit_weights import Scored
    from console.evaluation import reach
    from console.fault_scoring import _names, causes_of, incident_faults

    temperature, null_score, pair = calibration
    faults = list(summary["faults"])
    reaches = [reach(topology, f["service"]) for f in faults]
    out = []
    for inc in summary["incidents"]:
        about = [faults[i] for i in incident_faults(inc, faults, reaches)]
        groups = [(index, group) for incident, _, _, found in seen
                  if str(incident) == str(inc.get("id")) for index, group in enumerate(found)
                  if group]
        for cause in causes_of(inc):
            key = f"{cause['cause']['service']}/{cause['cause']['fault_class']}"
            match = None
            for index, group in groups:
                if group[0][0] != key:
                    continue
                t, null = (temperature, null_score) if index == 0 or pair is None else pair
                p = calibrate([score for _, score in group], t, null)[0]
                if abs(p - cause["confidence"]) <= 5e-4 * max(1.0, p):
                    match = (index, group)
            if match is None or (match[0] > 0) != later:
                continue
            right = any(_names(cause["cause"], f) for f in about)
            scores = tuple(score for _, score in match[1])
            out.append(Scored(scores, (0,) if right else (), 1.0))
    return out


def _as_hypothesis(key: str) -> dict[str, str]:
    service, _, fault_class = key.rpartition("/")
    return {"service": service, "fault_class": fault_class}


def collect(count: int, seed: int, *, later: bool = True) -> tuple[list[Any], Any]:
    """Play `count` generated scenarios of `seed` with the team; the causes they list as
    cases (equal ones are one case with their weight) and the runs scored per fault as
    `eval --generated` scores them (as played, before any new fit)."""
    from agents.calibration import load
    from benchmarks.fit_weights import Scored
    from console.estate import load_estate_spec, load_scenario
    from console.fault_scoring import FaultTally
    from console.runtime import run_headless
    from console.scenario_gen import write

    tally = FaultTally()
    shipped = load()
    calibration = (shipped.temperature, shipped.null_score, shipped.later)
    weights: dict[tuple[tuple[float, ...], tuple[int, ...]], float] = {}
    with tempfile.TemporaryDirectory(prefix="watchfloor-fit-") as tmp:
        for path in write(count, seed, Path(tmp)):
            spec = load_estate_spec(load_scenario(str(path)).estate)
            topology = {n: list(s.depends_on) for n, s in spec.services.items()}
            seen: list[Any] = []
            with keeping(seen):
                summary = run_headless(str(path), autonomy=3, approve="all")
            tally(str(path), summary)
            for case in label(summary, seen, topology, calibration, later=later):
                key = (case.scores, case.right)
                weights[key] = weights.get(key, 0.0) + 1.0
    return [Scored(s, r, w) for (s, r), w in weights.items()], tally


def run(args: argparse.Namespace) -> dict[str, Any]:
    from agents.calibration import load
    from benchmarks.fit_weights import fit_calibration
    from console.scenario_gen import split_of

    if split_of(int(args.fit_seed)) != "fit":
        raise SystemExit(f"--fit-seed {args.fit_seed} is not a fit seed (1000-1999)")
    started = time.perf_counter()
    shipped = load()
    cases, tally = collect(int(args.fit_count), int(args.fit_seed))
    runs = len(tally.runs)
    played = tally.scores() or {}
    start = shipped.later or (shipped.temperature, shipped.null_score)
    fitted = fit_calibration(cases, *start)
    right = sum(c.weight for c in cases if c.right)
    out: dict[str, Any] = {
        "later_causes": {"temperature": fitted["temperature"],
                         "null_score": fitted["null_score"]},
        "fit": {"generated": {"seed": int(args.fit_seed), "count": runs},
                "cases": fitted["cases"], "right_share": round(right / max(
                    sum(c.weight for c in cases), 1e-9), 4),
                "mean_nll": fitted["mean_nll"],
                "started_from": {"temperature": start[0], "null_score": start[1]},
                "date": datetime.now(UTC).date().isoformat(),
                "fitted_by": "python -m benchmarks.fit_causes",
                "method": "maximum likelihood of the right answer of every cause the "
                          "team's headless runs list (autonomy 3, all approved) that was "
                          "a further cause in the investigation that gave it its "
                          "confidence, by that investigation's raw scores; the evidence "
                          "weights as shipped"},
        "as_played": {k: played.get(k) for k in ("accuracy", "calibration", "actions",
                                                  "escalations")},
        "wall_seconds": round(time.perf_counter() - started, 1)}
    if args.write:
        data = json.loads(OUT.read_text("utf-8"))
        data["later_causes"] = {**out["later_causes"], "fit": out["fit"]}
        OUT.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        out["written"] = str(OUT)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fit_causes")
    p.add_argument("--fit-seed", type=int, default=1000)
    p.add_argument("--fit-count", type=int, default=60)
    p.add_argument("--write", action="store_true",
                   help="store the fitted pair in resources/calibration/investigator.json")
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")
    return p


def _main() -> None:
    print(json.dumps(run(parser().parse_args()), indent=1))


if __name__ == "__main__":
    _main()

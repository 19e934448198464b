"""One Alertmanager delivery of 10,000 distinct alerts, while another sender keeps posting.

The receiver is wired as the leader wires it (console/leading.py: stored deliveries go
to the runtime's correlation worker) on a fresh SQLite database, with the storm
estate's topology for the correlator. A probe sender, a process of its own as a real
sender is, posts one-alert deliveries every 50 ms from just before the big delivery
until its correlation is over, and times each answer. Two deliveries are sent, each on
its own database:

  unrelated  10,000 alerts on 500 services the topology does not know: each opens an
             incident of its own (what stalled the receiver for 318 s: every alert was
             compared with every incident, on the receiver's thread)
  related    10,000 alerts on the storm estate's services: they fold into a few incidents

For each: the big delivery's answer time, the probe's p50/p95/max, and the correlation
throughput (signals per second the correlation worker was busy, the probe's deliveries
included; the batch that held the big delivery is also timed alone). The storm
benchmark's rate (benchmarks/bench_correlation.py, same process, same load) is the
floor they are compared with. `--cpu-load N` runs N busy processes meanwhile.

The process collects its cyclic garbage as `watchfloor node` does, the headless engine
that owns the receiver (console/collector.py, set by console/cli.py); the window's
receiver never collects on the correlation worker at all (widgets/process.py). Under
Python's defaults a full collection of the whole heap (100 ms and more) fell into
the correlation of each delivery, paying for the objects its parsing had made. Each
phase and the storm run start from a collected heap, so the first full collection of
the objects made at start-up (every benchmark module imported) falls in none of them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import bench_correlation

ALERTS = 10_000
PROBE_EVERY = 0.05
ANSWER_TARGET_S, PROBE_TARGET_S = 2.0, 1.0


def _alert(i: int, service: str, alertname: str) -> dict[str, Any]:
    """About 190 bytes: the reported delivery was 1.3 MB for 10,000 alerts."""
    return {"status": "firing",
            "labels": {"alertname": alertname, "service": service, "instance": f"{service}-{i}"},
            "annotations": {}, "startsAt": "2026-01-05T02:12:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{i:016x}"}


def _delivery(alerts: list[dict[str, Any]], group: str) -> bytes:
    return json.dumps({
        "version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "watchfloor", "groupLabels": {"alertname": group},
        "commonLabels": {"alertname": group}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "alerts": alerts}).encode()


class Probe:
    """Posts one-alert deliveries from a process of its own (as Alertmanager is) until
    stopped; keeps each answer's time."""

    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop, self._ready = ctx.Event(), ctx.Event()
        self._results = ctx.Queue()
        self._process = ctx.Process(target=_probe,
                                    args=(url, self._stop, self._ready, self._results),
                                    name="probe", daemon=True)
        self.times: list[float] = []
        self.errors: list[str] = []

    def start(self) -> None:
        """Returns once the probe has had its first answer."""
        self._process.start()
        if not self._ready.wait(timeout=60):
            raise RuntimeError("the probe sender did not start")

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.times, self.errors = self._results.get(timeout=60)
        self._process.join(timeout=30)

    def figures(self) -> dict[str, Any]:
        ms = sorted(t * 1000 for t in self.times)
        if not ms:
            return {"count": 0, "errors": self.errors[:5]}
        return {"count": len(ms), "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 1),
                "max_ms": round(ms[-1], 1), "errors": len(self.errors),
                "first_errors": self.errors[:3]}


def _probe(url: str, stop: Any, ready: Any, results: Any) -> None:
    times: list[float] = []
    errors: list[str] = []
    n = 0
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            n += 1
            body = _delivery([_alert(10_000_000 + n, "probe", "ProbeAlert")], "ProbeAlert")
            began = time.perf_counter()
            try:
                answer = client.post(url, content=body)
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text[:100]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            times.append(time.perf_counter() - began)
            ready.set()
            stop.wait(PROBE_EVERY)
    results.put((times, errors))


def _phase(body: bytes, topology: dict[str, list[str]], folder: Path) -> dict[str, Any]:
    from agents.correlator_agent import CorrelatorAgent
    from console.runtime import Runtime
    from console.sources.webhook import WebhookReceiver

    runtime = Runtime(f"sqlite:///{folder}/watchfloor.db")
    runtime.correlator = CorrelatorAgent(runtime.service, topology)  # as a leader has it
    busy: list[tuple[float, int]] = []
    correlate = runtime.deferred.correlate

    def timed(signals: list[Any], changes: list[Any]) -> None:
        began = time.perf_counter()
        correlate(signals, changes)
        busy.append((time.perf_counter() - began, len(signals)))

    runtime.deferred.correlate = timed
    receiver = WebhookReceiver(runtime.service, on_stored=runtime.deferred.submit).start()
    url = receiver.url + "/webhook/alertmanager"
    probe = Probe(url)
    try:
        probe.start()
        time.sleep(0.5)  # the probe's answers before the delivery are in its figures too
        began = time.perf_counter()
        answer = httpx.post(url, content=body, timeout=600)
        answered = time.perf_counter() - began
        if answer.status_code != 200:
            raise RuntimeError(f"the delivery was answered {answer.status_code}: "
                               f"{answer.text[:300]}")
        if not runtime.deferred.wait_idle(timeout=1800):
            raise RuntimeError("the correlation did not finish within 30 minutes")
        done = time.perf_counter() - began
        probe.stop()
        runtime.deferred.wait_idle(timeout=60)  # the probe's last deliveries
        seconds = sum(s for s, _n in busy)
        signals = sum(n for _s, n in busy)
        delivery_s, delivery_signals = max(busy, key=lambda b: b[1])
        incidents = len(runtime.service.incidents(limit=100_000))
    finally:
        probe.stop()
        receiver.close()
        runtime.close()
    return {"answer_s": round(answered, 3), "answered_within_target": answered <= ANSWER_TARGET_S,
            "correlated_after_s": round(done, 3), "incidents": incidents,
            "correlation_seconds": round(seconds, 3), "correlated_signals": signals,
            "correlation_alerts_per_s": round(signals / seconds, 1) if seconds else None,
            "delivery_batch": {"signals": delivery_signals, "seconds": round(delivery_s, 3)},
            "probe": probe.figures(),
            "probe_within_target": bool(probe.times) and max(probe.times) <= PROBE_TARGET_S}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gc

    from console import collector

    before = collector.tune()  # as `watchfloor node` runs (console/cli.py main)
    try:
        return _run(args)
    finally:
        gc.set_threshold(*before)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import gc

    from console.estate import ScenarioPlayer, load_scenario

    estate = ScenarioPlayer(load_scenario("storm")).estate
    topology = {name: list(deps) for name, deps in estate.topology().items()}
    services = sorted(topology)
    unrelated = _delivery([_alert(i, f"app-{i % 500:03d}", "HighErrorRate")
                           for i in range(ALERTS)], "HighErrorRate")
    related = _delivery([_alert(i, services[i % len(services)], "HighErrorRate")
                         for i in range(ALERTS)], "HighErrorRate")
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(getattr(args, "cpu_load", 0))]
    try:
        results: dict[str, Any] = {"alerts": ALERTS, "delivery_bytes": len(unrelated),
                                   "cpu_load_processes": len(load),
                                   "collector_thresholds": list(gc.get_threshold()),
                                   "targets": {"answer_s": ANSWER_TARGET_S,
                                               "probe_max_s": PROBE_TARGET_S}}
        for name, body in (("unrelated", unrelated), ("related", related)):
            with tempfile.TemporaryDirectory() as folder:
                gc.collect()  # what start-up or the phase before left is not paid here
                results[name] = _phase(body, topology, Path(folder))
        gc.collect()
        storm = bench_correlation.run(argparse.Namespace(alerts=ALERTS))
        results["storm_alerts_per_s"] = storm["alerts_per_second"]
        for name in ("unrelated", "related"):
            rate = results[name]["correlation_alerts_per_s"] or 0.0
            results[name]["ratio_to_storm_rate"] = round(rate / storm["alerts_per_second"], 3)
            batch = results[name]["delivery_batch"]
            rate = batch["signals"] / batch["seconds"] if batch["seconds"] else 0.0
            batch["alerts_per_s"] = round(rate, 1)
            batch["ratio_to_storm_rate"] = round(rate / storm["alerts_per_second"], 3)
        return results
    finally:
        for proc in load:
            proc.kill()
            proc.wait()

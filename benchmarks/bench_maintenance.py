"""What maintenance windows cost the correlation path: `hold_back` (one read of the
windows in force per correlated batch) on a one-alert delivery and on a 10,000-alert
storm, with no window and with five windows in force."""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> dict[str, Any]:
    from console.domain import AlertStatus, Severity, Signal, SignalKind
    from console.maintenance import MaintenanceOps, hold_back
    from console.runtime import Runtime

    with tempfile.TemporaryDirectory() as folder:
        runtime = Runtime(f"sqlite:///{Path(folder) / 'wf.db'}")
        try:
            runtime.service.bootstrap_admin("bench")
            now = runtime.clock.now()
            storm = [Signal("bench", SignalKind.ALERT, "HighErrorRate", f"svc{i % 300}",
                            Severity.CRITICAL, AlertStatus.FIRING,
                            now + timedelta(milliseconds=i), {"service": f"svc{i % 300}",
                                                              "n": str(i)})
                     for i in range(args.alerts)]
            figures: dict[str, Any] = {"alerts": len(storm)}
            ops = MaintenanceOps(runtime.service)
            for windows in (0, 5):
                for i in range(windows):
                    ops.start(service=f"svc{i}", reason="bench", minutes=60, as_user="bench")
                figures[f"{windows}_windows"] = _measure(runtime.service, storm, now,
                                                         hold_back)
            return figures
        finally:
            runtime.close()


def _measure(service: Any, storm: list[Any], now: Any, hold_back: Any) -> dict[str, Any]:
    one = storm[:1]
    start = time.perf_counter()
    for _ in range(200):
        hold_back(service, one, now)
    single_ms = (time.perf_counter() - start) / 200 * 1000
    start = time.perf_counter()
    for _ in range(10):
        kept = hold_back(service, storm, now)
    storm_ms = (time.perf_counter() - start) / 10 * 1000
    return {"one_alert_batch_ms": round(single_ms, 3), "storm_batch_ms": round(storm_ms, 3),
            "storm_correlated": len(kept)}

"""The console window's side of a long audit log: its export and its live browser.

Each runs as its own process over the benchmark's database (the facade, the bus and
the audit browser as the window builds them, offscreen), so its peak resident memory is
the kernel's count for that process alone, as for the command-line parts beside it
(benchmarks/bench_audit_bundle.py):

- `window_export`: the browser opened, then its export (the worker, progress, the
  version 2 writer) run to the end; the bundle is then checked by `audit verify
  --bundle` as any other.
- `live_browser`: the browser opened, dragged from the top to the end, searched (a
  narrow search and one that matches every record, cut at the newest 100,000), the
  chain verified on its worker, and 200 records appended live while it shows them
  (on a copy of the database, so every other part reads the same log).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WINDOW_CHILD = """
import json, sys, time
began = time.perf_counter()
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from console.bus import EventBus
from console.clock import RealClock
from console.service import WatchfloorService
from console.storage.db import Database
from widgets.audit_browser import AuditBrowser
from widgets.bridge import BusBridge
mode, url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
service = WatchfloorService(Database(url), EventBus(), RealClock())
bridge = BusBridge(service.bus)
opened = time.perf_counter()
browser = AuditBrowser.for_service(service, bridge)
browser.resize(1200, 700)
browser.show()
app.processEvents()
shown = time.perf_counter()
model = browser.model
said = {"imports_s": opened - began, "window_s": shown - opened, "rows": model.rowCount()}

def wait(done):
    while not done():
        app.processEvents()
        time.sleep(0.005)

if mode == "export":
    outcome, steps = [], []
    for signal in (browser.exported, browser.failed, browser.exportCancelled):
        signal.connect(outcome.append)
    browser.exporter.progressed.connect(lambda done, total: steps.append(done))
    t0 = time.perf_counter()
    browser.export_to(out)
    wait(lambda: outcome)
    said.update(export_s=time.perf_counter() - t0, progress_steps=len(steps),
                outcome=list(outcome[0][:2]) if isinstance(outcome[0], tuple)
                else str(outcome[0]))
else:
    table = browser.table
    bar = table.verticalScrollBar()
    t0 = time.perf_counter()
    for step in range(51):  # dragging the scroll bar from the top to the end
        bar.setValue(bar.maximum() * step // 50)
        app.processEvents()
    table.scrollToBottom()
    app.processEvents()
    said["scroll_s"] = time.perf_counter() - t0
    said["last_row_seq"] = model.entry_at(model.rowCount() - 1).seq
    for name, filters in (("narrow", {"target": "incident:996"}),
                          ("every_record", {"decision": "n/a"})):
        t0 = time.perf_counter()
        browser.set_filters(**filters)
        wait(lambda: not browser.proxy.searching)
        said[f"search_{name}_s"] = time.perf_counter() - t0
        said[f"search_{name}_rows"] = browser.proxy.rowCount()
        said[f"search_{name}_note"] = browser.proxy.note
        browser.clear_filters()
    t0 = time.perf_counter()
    browser.verify_chain()
    wait(lambda: browser.last_result is not None)
    said["verify_s"] = time.perf_counter() - t0
    said["holds"] = browser.last_result.ok
    before = model.rowCount()
    for i in range(200):
        service.record(actor="system", action="benchmark.append", target=f"t{i}")
        app.processEvents()
    said["appended_rows"] = model.rowCount() - before
    said["top_row"] = model.entry_at(0).target
    said["pages_read"] = model.pages_read
    said["records_kept"] = len(model.entries())
browser.shutdown()
print(json.dumps(said))
"""

Measure = Callable[[list[str], dict[str, str]], tuple[float, float, str]]


def measure(n: int, url: str, folder: Path, env: dict[str, str],
            measure_rss: Measure) -> dict[str, Any]:
    """Both window parts at one size (`measure_rss` runs a process under GNU time)."""
    py = sys.executable
    bundle = folder / f"window-{n}.wfaudit"
    wall, rss, out = measure_rss([py, "-c", WINDOW_CHILD, "export", url, str(bundle)], env)
    said = json.loads(out.strip().splitlines()[-1])
    if not isinstance(said["outcome"], list) or said["outcome"][0] != n:
        raise RuntimeError(f"the window's export did not write the log whole: {said}")
    _, _, verified = measure_rss([py, "-m", "console", "audit", "verify", "--bundle",
                                  str(bundle)], env)
    if f"holds: {n} records" not in verified:
        raise RuntimeError(f"the window's bundle does not verify: {verified}")
    export = {"peak_rss_mb": rss, "wall_s": round(wall, 2),
              "export_s": round(said["export_s"], 2),
              "records_per_s": round(n / max(said["export_s"], 1e-9)),
              "progress_steps": said["progress_steps"], "verified_by_cli": True,
              "bundle_mb": round(bundle.stat().st_size / 2**20, 1)}
    bundle.unlink()
    # the browser appends records: on a copy, so every part reads the same log
    copy = folder / "browse.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    try:
        wall, rss, out = measure_rss([py, "-c", WINDOW_CHILD, "browse", f"sqlite:///{copy}",
                                      "-"], env)
    finally:
        copy.unlink()
    said = json.loads(out.strip().splitlines()[-1])
    if not said["holds"] or said["last_row_seq"] != 1 or said["appended_rows"] != 200:
        raise RuntimeError(f"the live browser did not show the log whole: {said}")
    browse = {"peak_rss_mb": rss, "wall_s": round(wall, 2),
              "window_shown_s": round(said["window_s"], 3),
              "scroll_to_end_s": round(said["scroll_s"], 3),
              "verify_s": round(said["verify_s"], 2),
              "search_narrow_s": round(said["search_narrow_s"], 2),
              "search_narrow_rows": said["search_narrow_rows"],
              "search_every_record_s": round(said["search_every_record_s"], 2),
              "search_every_record_rows": said["search_every_record_rows"],
              "search_every_record_note": said["search_every_record_note"],
              "pages_read": said["pages_read"], "records_kept": said["records_kept"]}
    return {"window_export": export, "live_browser": browse}

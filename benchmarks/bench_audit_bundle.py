"""Export, verify and review of a long audit log: peak memory at two sizes, and speed.

`audit export`, `audit verify --bundle` and `review` (the window opened on the bundle,
verified, scrolled to the end and paged through), and the console window's own export
and live audit browser over the database (benchmarks/bench_audit_window.py; `--part
window` measures only these two) each run as their own process, at
`--records N` / 10 and at N records (`--records 1000000`: 100,000 and 1,000,000); each
one's peak resident memory is the kernel's count for that process (GNU time's %M), so
flatness shows as the difference between the two sizes (`rss_growth_mb`; SQLite's own
page cache, 2 MB, fills within the first few thousand records). Records/s are timed
inside each process, after its imports. Beside them, the version 1 JSON bundle at the
smaller size, as a reference of what memory a whole bundle in one object takes. With
`--cpu-load K` the same runs are taken again while K busy processes compete for the CPU
(`loaded`).

The log is written with `append_many` in batches (valid chained records, hashed as
every writer hashes them); the larger log is the smaller one grown, so the two share
their first records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import bench_audit_window
from console.audit import AuditDraft, AuditLog
from console.storage.db import Database

BATCH = 5000
ROOT = Path(__file__).resolve().parent.parent
FLAT_WITHIN_MB = 10.0  # what "flat" means here: growth from N/10 to N records
WINDOW_PARTS = ("window_export", "live_browser")
ALL_PARTS = ("export", "verify_bundle", "review", *WINDOW_PARTS)


def _draft(i: int, t0: datetime) -> AuditDraft:
    return AuditDraft(actor=f"agent:investigator-{i % 7}", action="hypothesis.rank",
                      target=f"incident:{i % 997}", reason="error rate above baseline",
                      inputs={"window_s": 300, "metrics": ["error_rate", "latency_p99_ms"],
                              "i": i},
                      outputs={"top": "payments", "confidence": 0.82},
                      decision="deny" if i % 501 == 0 else "n/a",
                      at=t0 + timedelta(milliseconds=i))


def _grow(url: str, start: int, end: int) -> float:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    db = Database(url)
    began = time.perf_counter()
    try:
        log = AuditLog()
        with db.sessions() as session:
            for first in range(start, end, BATCH):
                log.append_many(session, [_draft(i, t0)
                                          for i in range(first, min(end, first + BATCH))])
                session.commit()
    finally:
        db.dispose()
    return time.perf_counter() - began


def _measure_rss(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process, its peak as the kernel
    counted it (GNU time's %M: the child's ru_maxrss)."""
    timed = ["/usr/bin/time", "-f", "%M", *argv]
    began = time.perf_counter()
    proc = subprocess.run(timed, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:5])} exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-400:]}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return wall, round(peak_kb / 1024, 1), proc.stdout


# A command as `watchfloor` runs it, timed from after its imports: the pass's own speed,
# not the interpreter's start (which a loaded machine makes vary by seconds).
CLI_CHILD = """
import json, sys, time
from console.cli import main
import console.audit_bundle_export, console.audit_bundle_verify, console.audit_trust
import console.storage.db
began = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"pass_s": time.perf_counter() - began}))
sys.exit(code)
"""

REVIEW_CHILD = """
import json, sys, time
began = time.perf_counter()
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from widgets.audit_review import ReviewWindow
path = Path(sys.argv[1])
opened = time.perf_counter()
window = ReviewWindow(path)
window.show()
app.processEvents()
shown = time.perf_counter()
while window.review is None or window.browser.last_result is None:
    app.processEvents()
    time.sleep(0.005)
verified = time.perf_counter()
table, model = window.browser.table, window.browser.model
bar = table.verticalScrollBar()
for step in range(51):  # a reader dragging the scroll bar from the top to the end
    bar.setValue(bar.maximum() * step // 50)
    app.processEvents()
table.scrollToBottom()
app.processEvents()
scrolled = time.perf_counter()
last = model.entry_at(model.rowCount() - 1).seq
window.close()
print(json.dumps({"imports_s": opened - began, "window_s": shown - opened,
                  "verified_s": verified - shown, "scroll_s": scrolled - verified,
                  "holds": window.review.ok, "last_row_seq": last,
                  "pages_read": model.pages_read, "rows": model.rowCount()}))
"""


def _size(n: int, url: str, folder: Path, env: dict[str, str],
          parts: str | None = None) -> dict[str, Any]:
    window = bench_audit_window.measure(n, url, folder, env, _measure_rss)
    if parts == "window":
        return {"records": n, **window}
    bundle = folder / f"audit-{n}.wfaudit"
    py = sys.executable
    export_wall, export_rss, said = _measure_rss(
        [py, "-c", CLI_CHILD, "audit", "export", "--db", url, "--out", str(bundle)], env)
    export_s = _pass_s(said)
    verify_wall, verify_rss, said = _measure_rss(
        [py, "-c", CLI_CHILD, "audit", "verify", "--bundle", str(bundle)], env)
    verify_s = _pass_s(said)
    if f"holds: {n} records" not in said:
        raise RuntimeError(f"the benchmark bundle does not verify: {said}")
    review_wall, review_rss, out = _measure_rss([py, "-c", REVIEW_CHILD, str(bundle)], env)
    review = json.loads(out)
    if not review["holds"] or review["last_row_seq"] != 1 or review["rows"] != n:
        raise RuntimeError(f"the review did not show the bundle whole: {review}")
    return {
        "records": n, "bundle_mb": round(bundle.stat().st_size / 2**20, 1),
        "export": {"peak_rss_mb": export_rss, "wall_s": round(export_wall, 2),
                   "pass_s": round(export_s, 2), "records_per_s": round(n / export_s)},
        "verify_bundle": {"peak_rss_mb": verify_rss, "wall_s": round(verify_wall, 2),
                          "pass_s": round(verify_s, 2),
                          "records_per_s": round(n / verify_s)},
        "review": {"peak_rss_mb": review_rss, "wall_s": round(review_wall, 2),
                   "window_shown_s": round(review["window_s"], 3),
                   "verified_s": round(review["verified_s"], 2),
                   "verify_records_per_s": round(n / max(review["verified_s"], 1e-9)),
                   "scroll_to_end_s": round(review["scroll_s"], 3),
                   "pages_read": review["pages_read"]},
        **window,
    }


def _pass_s(stdout: str) -> float:
    return float(json.loads(stdout.strip().splitlines()[-1])["pass_s"])


def _json_reference(n: int, url: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    bundle = folder / f"audit-{n}.json"
    py = sys.executable
    _, export_rss, said = _measure_rss(
        [py, "-c", CLI_CHILD, "audit", "export", "--format", "json", "--db", url,
         "--out", str(bundle)], env)
    export_s = _pass_s(said)
    _, verify_rss, said = _measure_rss(
        [py, "-c", CLI_CHILD, "audit", "verify", "--bundle", str(bundle)], env)
    verify_s = _pass_s(said)
    bundle.unlink()
    return {"records": n, "export_peak_rss_mb": export_rss,
            "export_records_per_s": round(n / export_s),
            "verify_peak_rss_mb": verify_rss, "verify_records_per_s": round(n / verify_s)}


@contextmanager
def _cpu_load(count: int) -> Iterator[None]:
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in load:
            proc.kill()
            proc.wait()


def _pass(sizes: list[int], urls: dict[int, str], folder: Path,
          env: dict[str, str], parts: str | None = None) -> dict[str, Any]:
    by_size = {str(n): _size(n, urls[n], folder, env, parts) for n in sizes}
    small, large = by_size[str(sizes[0])], by_size[str(sizes[-1])]
    growth = {part: round(large[part]["peak_rss_mb"] - small[part]["peak_rss_mb"], 1)
              for part in (WINDOW_PARTS if parts == "window" else ALL_PARTS)}
    return {"sizes": by_size, "rss_growth_mb": growth,
            "flat": all(abs(g) <= FLAT_WITHIN_MB for g in growth.values())}


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = max(10 * BATCH, int(getattr(args, "records", 0) or 0))
    sizes = [n // 10, n]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "XDG_CONFIG_HOME": str(folder / "config"),
               "XDG_DATA_HOME": str(folder / "data"), "QT_QPA_PLATFORM": "offscreen",
               "PYTHONPATH": str(ROOT)}
        small_url = f"sqlite:///{folder / 'small.db'}"
        large_url = f"sqlite:///{folder / 'large.db'}"
        build_s = _grow(small_url, 0, sizes[0])
        results: dict[str, Any] = {"store": "sqlite-wal", "flat_within_mb": FLAT_WITHIN_MB}
        parts = "window" if getattr(args, "part", None) == "window" else None
        reference = None if parts else _json_reference(sizes[0], small_url, folder, env)
        # the larger log is the smaller grown: copy its file, then append the rest
        shutil.copyfile(folder / "small.db", folder / "large.db")
        build_s += _grow(large_url, sizes[0], sizes[1])
        results["build_s"] = round(build_s, 1)
        urls = {sizes[0]: small_url, sizes[1]: large_url}
        results["quiet"] = _pass(sizes, urls, folder, env, parts)
        if reference is not None:
            results["version_1_json_reference"] = reference
        load_n = int(getattr(args, "cpu_load", 0) or 0)
        if load_n:
            with _cpu_load(load_n):
                results["loaded"] = {"cpu_load_processes": load_n,
                                     **_pass(sizes, urls, folder, env, parts)}
        return results

"""How the processes without a window collect their cyclic garbage.

`watchfloor run --headless`, `eval`, `node` and the other commands set the collector's
thresholds once at start (`console.cli.main`); the window has its own collector on the
GUI thread (widgets/process.py) and keeps Python's defaults.

Why: a headless run makes many objects that live for a simulation step or two (stored
signals and their rows, the agents' evidence), so with Python's defaults (700, 10, 10)
enough of them survive two young collections that a full collection of the whole heap
follows about every half second. Measured over every built-in fault scenario with two
seeds in one process (what `python -m benchmarks team` runs): 55,000 collections took
50 s of a 187 s run, 309 of them full ones of about 100 ms each, and a full collection
that falls between an incident opening and its recommendation adds its 100-300 ms to
the operator's wait. With the young generation collected every 50,000 allocations
instead, short-lived objects are gone before it runs: 362 collections in 5.4 s, one
full one, a young collection 11 ms on average.

Nothing is kept longer than it would be otherwise: refcounting frees what has no cycle
at once; only garbage in cycles waits for the next collection.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 10)


def tune() -> tuple[int, int, int]:
    """Set the headless thresholds; returns the ones before (for a caller to restore)."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    return before

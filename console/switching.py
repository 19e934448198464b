"""How often Python's threads hand the interpreter lock to one another, in the processes
that play the estate: the window (widgets/process.py) and `watchfloor node`.

A thread that wants the lock asks its holder for it after this long, and Python's default
is 5 ms. A node that receives a storm parses a delivery on one thread while the
correlator handles the next alert on another: measured, a one-alert correlation behind a
thread parsing a 10,000-alert delivery took 74.7 ms (median) at the default and 3.3 ms at
0.5 ms. The busy thread loses little: it gets the lock back as soon as the short work is
done.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.0005  # Python's default is 0.005


def shorten() -> float:
    """Set the short interval for this process; returns the one before."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return before

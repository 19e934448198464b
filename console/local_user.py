"""Who runs this process, when nobody signed in otherwise ($WATCHFLOOR_USER first).

Light on purpose: the window asks before it knows whether it will run the agents."""

from __future__ import annotations

import getpass
import os


def local_user() -> str:
    return os.environ.get("WATCHFLOOR_USER") or getpass.getuser() or "operator"

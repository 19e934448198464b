"""Which family of recorded incidents a dataset case belongs to, for per-family figures.

A family is one kind of system under one kind of load, so that a method's weakness on
one of them is not averaged away by its strength on another: PetShop under low, high
and temporal (daily-cycle) traffic; each Nezha system (OnlineBoutique, TrainTicket),
whichever day it was recorded on. The family follows from the case's own data (the
Nezha manifest's `system`, the PetShop scenario folder), never from a list of cases, so
another day or split of the same datasets falls in the same families.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def family(case: Path, name: str) -> str:
    """The case's family: `petshop/<traffic>`, `nezha/<system>`, else the first two parts
    of the recording's name (a Watchfloor recording's folder and case)."""
    parts = name.split("/")
    if parts[0] == "petshop" and len(parts) > 1:
        traffic = re.sub(r"\d+$", "", parts[1])  # temporal_traffic1 and 2: one family
        return f"petshop/{traffic}"
    if parts[0] == "nezha":
        system = _nezha_system(Path(case))
        if system:
            return f"nezha/{system}"
    return "/".join(parts[:2])


def _nezha_system(case: Path) -> str:
    try:
        data = json.loads((case / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(data.get("system", "")) if isinstance(data, dict) else ""

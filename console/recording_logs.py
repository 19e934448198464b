"""A Nezha case's logs together with those of its fault-free window.

A new kind of log line is only new against what the service wrote while it was well.
Nezha ships, beside each case's window, a fault-free window of the same system
(`baseline/logs.jsonl`, at its own time, often after the case). Its lines are moved to
end one step before the case's window starts (as a baseline's metrics are moved before
the window they are the normal of) and mined into templates with the case's own lines,
in one pass, so that one kind of line gets one template id in both; the investigator is
told that what lies before the window is the fault-free history
(`InvestigatorSettings.log_quiet_until`).

Only WARN and ERROR lines are kept: the case's own file holds no others, and a kind of
line that one window could hold and the other could not proves nothing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.recording import RecordingError, _read_text

_LEVEL = re.compile(r"\b(ERROR|WARN|WARNING|FATAL|SEVERE|INFO|DEBUG|TRACE)\b")
_KEPT = {"ERROR": "ERROR", "FATAL": "ERROR", "SEVERE": "ERROR", "WARN": "WARN",
         "WARNING": "WARN"}


def _items(path: Path) -> list[tuple[float, dict[str, str]]]:
    """(epoch seconds, a `watchfloor ingest` log line without its time) per kept line."""
    out = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            message = str(item["message"]).strip()[:4000] or "(empty)"
            found = _LEVEL.search(message)
            word = found.group(1) if found else (
                "ERROR" if "exception" in message.lower() else "WARN")
            ts = float(item["ts"])
            service = str(item["service"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordingError(f"{path}: line {number}: {exc}") from None
        level = _KEPT.get(word)
        if level is not None:
            out.append((ts, {"service": service, "level": level, "message": message}))
    return out


def nezha_logs(folder: Path, window_start: datetime, step: float) -> list[Any]:
    """The case's logs (`logs.jsonl`) and its fault-free window's
    (`baseline/logs.jsonl`), the latter ending one `step` before `window_start`; []
    when the case has no logs."""
    from console.sources.alertmanager import PayloadError
    from console.sources.logs import parse_logs

    own = folder / "logs.jsonl"
    if not own.is_file():
        return []
    items = _items(own)
    base = folder / "baseline" / "logs.jsonl"
    quiet = _items(base) if base.is_file() else []
    if quiet:
        shift = window_start.timestamp() - step - max(ts for ts, _ in quiet)
        items += [(ts + shift, item) for ts, item in quiet]
    if not items:
        return []
    lines = [json.dumps({**item, "at": datetime.fromtimestamp(ts, UTC).isoformat()})
             for ts, item in sorted(items, key=lambda pair: pair[0])]
    try:
        return parse_logs("\n".join(lines))
    except PayloadError as exc:
        raise RecordingError(f"{own}: {exc}") from None

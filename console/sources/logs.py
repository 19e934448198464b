"""Log lines in: JSON lines or plain text, each line given its template by drain3.

Templates (`upstream <*> returned 503 for request <*>`) are what retrieval and the
investigator search on: they collapse a million lines into a few hundred kinds. The
whole file is mined first and each line then matched against the final templates, so
early lines get the same template as later ones.

Plain text lines look like `2026-01-05T02:12:00Z ERROR payments/payments-1: message`
(the instance part is optional).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.domain import LogRecord
from console.sources import jsonbody
from console.sources.alertmanager import PayloadError, Text, explain
from console.sources.timestamps import Timestamp

MAX_LINE = 16 * 1024
_PLAIN = re.compile(r"^(?P<at>\S+)\s+(?P<level>[A-Z]+)\s+(?P<service>[A-Za-z0-9_.-]+)"
                    r"(?:/(?P<instance>[A-Za-z0-9_.:-]+))?:\s(?P<message>.*)$")
_LEVELS = {"WARNING": "WARN", "ERR": "ERROR", "FATAL": "ERROR", "CRITICAL": "ERROR",
           "TRACE": "DEBUG"}


class LogIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    service: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")
    level: str = Field("INFO", max_length=16)
    message: Text = Field(min_length=1, max_length=MAX_LINE)
    at: Timestamp
    instance: Text = Field("", max_length=200)


@dataclass(frozen=True, slots=True)
class MinedLog:
    service: str
    level: Literal["DEBUG", "INFO", "WARN", "ERROR"]
    message: str
    at: datetime
    instance: str
    template: str
    template_id: int


def _level(text: str) -> Literal["DEBUG", "INFO", "WARN", "ERROR"]:
    up = _LEVELS.get(text.upper(), text.upper())
    if up not in ("DEBUG", "INFO", "WARN", "ERROR"):
        raise ValueError(f"unknown level {text[:16]!r}")
    return up  # type: ignore[return-value]


def _line(number: int, line: str) -> LogIn:
    if len(line) > MAX_LINE:
        raise PayloadError(f"line {number}: longer than {MAX_LINE} characters")
    if "\x00" in line:
        raise PayloadError(f"line {number}: contains a NUL character")
    try:
        if line.lstrip().startswith("{"):
            try:
                data: Any = jsonbody.decode(line)
                jsonbody.check(data)
            except json.JSONDecodeError as exc:
                raise PayloadError(f"line {number}: not valid JSON (column {exc.colno})") \
                    from None
            except PayloadError as exc:
                raise PayloadError(f"line {number}: {exc}") from None
        else:
            match = _PLAIN.match(line)
            if match is None:
                raise PayloadError(f"line {number}: expected JSON or 'TIME LEVEL service"
                                   "[/instance]: message'")
            data = {k: v for k, v in match.groupdict().items() if v is not None}
        record = LogIn.model_validate(data)
        _level(record.level)
        return record
    except ValidationError as exc:
        raise PayloadError(f"line {number}: " + explain(exc, "log record")) from None
    except PayloadError:
        raise  # already names the line
    except ValueError as exc:
        raise PayloadError(f"line {number}: {exc}") from None


def _miner() -> Any:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    logging.getLogger("drain3").setLevel(logging.ERROR)  # it warns about a missing ini
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_sim_th = 0.5
    return TemplateMiner(config=config)


def parse_logs(text: str) -> list[MinedLog]:
    """Validate every line, then mine templates; raise PayloadError naming the line."""
    records = [_line(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not records:
        raise PayloadError("the file holds no log lines")
    miner = _miner()
    for rec in records:
        miner.add_log_message(rec.message)
    out = []
    for rec in records:
        cluster = miner.match(rec.message, full_search_strategy="fallback")
        template = cluster.get_template() if cluster is not None else rec.message
        out.append(MinedLog(rec.service, _level(rec.level), rec.message, rec.at, rec.instance,
                            template, cluster.cluster_id if cluster is not None else 0))
    return out


class StreamMiner:
    """Templates for a live stream of log lines (the estate's, a tailed file): one drain3
    miner for the life of the stream, so a template keeps its id and a line never seen
    before shows up as a new template. Thread safe: sources deliver from their threads."""

    def __init__(self) -> None:
        import threading

        self._miner = _miner()
        self._lock = threading.Lock()

    def mine(self, records: Iterable[LogRecord]) -> list[MinedLog]:
        out = []
        with self._lock:
            for rec in records:
                result = self._miner.add_log_message(rec.message)
                out.append(MinedLog(rec.service, _level(rec.level), rec.message, rec.at,
                                    rec.instance, str(result["template_mined"]),
                                    int(result["cluster_id"])))
        return out

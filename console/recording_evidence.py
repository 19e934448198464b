"""The alerts, changes and log templates of a recording, answered as the store would
(the investigator's `EvidenceSource`), without a database.

Changes and logs use the files `watchfloor ingest` accepts (its validation and its
drain3 templates); alerts are a `query_range` body of `ALERTS{alertstate="firing"}`,
which is what a Prometheus holds about the alerts it fired: each series is one alert,
firing from its first sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.domain import AlertStatus, ChangeEvent, Severity, Signal, SignalKind
from console.recording import Recording, RecordingError, parse_query_range
from console.sources.alertmanager import PayloadError
from console.sources.logs import MinedLog
from console.storage.repos_evidence import TemplateStat


def read_changes(path: Path) -> list[ChangeEvent]:
    from console.recording import _read_text
    from console.sources.feeds import parse_changes

    text = _read_text(path).strip()
    try:
        if text.startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    try:
        changes = parse_changes(items)
    except PayloadError as exc:
        raise RecordingError(f"{path}: {exc}") from None
    return [ChangeEvent(c.service, c.kind, c.description, c.at, c.author, c.version_from,
                        c.version_to, id=c.id or f"rec-{i}") for i, c in enumerate(changes)]


def read_logs(path: Path) -> list[MinedLog]:
    from console.recording import _read_text
    from console.sources.logs import parse_logs

    try:
        return parse_logs(_read_text(path))
    except PayloadError as exc:
        raise RecordingError(f"{path}: {exc}") from None


def read_alerts(path: Path, service_label: str = "service") -> list[Signal]:
    from console.recording import _read_json

    out = []
    for labels, points in parse_query_range(_read_json(path), str(path)):
        firing = [ts for ts, value in points if value == value and value != 0]
        name = labels.get("alertname", "")
        service = labels.get(service_label, "")
        if not firing or not name or not service or labels.get("alertstate",
                                                               "firing") != "firing":
            continue
        kept = {k: v for k, v in labels.items() if k not in ("__name__", "alertstate")}
        try:
            severity = Severity(labels.get("severity", "warning"))
        except ValueError:
            severity = Severity.WARNING
        out.append(Signal("recording", SignalKind.ALERT, name, service, severity,
                          AlertStatus.FIRING, datetime.fromtimestamp(min(firing), UTC), kept))
    return out


def _among(service: str, services: Iterable[str] | None) -> bool:
    return services is None or service in services


class RecordedEvidence:
    """`EvidenceSource` over a recording's alerts, changes and logs."""

    def __init__(self, recording: Recording) -> None:
        self._alerts = sorted(recording.alerts, key=lambda a: a.at)
        self._changes = sorted(recording.changes, key=lambda c: c.at)
        self._logs: Sequence[MinedLog] = sorted(recording.logs, key=lambda r: r.at)

    def fired(self, start: datetime, end: datetime, services: Iterable[str] | None = None,
              *, limit: int = 500) -> list[Signal]:
        wanted = None if services is None else set(services)
        return [a for a in self._alerts if start <= a.at <= end
                and _among(a.service, wanted)][:limit]

    def firing(self, at: datetime, services: Iterable[str] | None = None, *,
               since: datetime | None = None, limit: int = 500) -> list[Signal]:
        wanted = None if services is None else set(services)
        return [a for a in self._alerts if a.at <= at and (since is None or a.at >= since)
                and _among(a.service, wanted)][:limit]

    def changes(self, start: datetime, end: datetime,
                services: Iterable[str] | None = None) -> list[ChangeEvent]:
        wanted = None if services is None else set(services)
        return [c for c in self._changes if start <= c.at <= end and _among(c.service, wanted)]

    def log_templates(self, start: datetime, end: datetime,
                      services: Iterable[str] | None = None, *,
                      history_from: datetime | None = None) -> list[TemplateStat]:
        wanted = None if services is None else set(services)
        horizon = start if history_from is None else min(history_from, start)
        rank = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}
        acc: dict[tuple[str, int], dict[str, Any]] = {}
        earliest: dict[tuple[str, int], datetime] = {}
        for rec in self._logs:
            if not _among(rec.service, wanted) or not horizon <= rec.at <= end:
                continue
            key = (rec.service, rec.template_id)
            earliest.setdefault(key, rec.at)
            if rec.at < start:
                continue
            row = acc.setdefault(key, {"level": rec.level, "lines": 0, "first": rec.at,
                                       "last": rec.at, "template": rec.template,
                                       "examples": set()})
            if rank[rec.level] > rank[row["level"]]:
                row["level"] = rec.level
            row["lines"] += 1
            row["last"] = rec.at
            row["template"] = rec.template
            if len(row["examples"]) < 4:
                row["examples"].add(rec.message)
        out = [TemplateStat(service, tid, row["template"], row["level"], row["lines"],
                            row["first"], row["last"], earliest[(service, tid)],
                            tuple(sorted(row["examples"])))
               for (service, tid), row in acc.items()]
        out.sort(key=lambda t: (t.first_seen, t.service, t.template_id))
        return out

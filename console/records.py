"""One stored record, read by its link, as a title, labelled fields and body lines.

Every citation the console shows (`change:chg-…`, `log:payments/7`, `runbook:rollback-
deploy`, `audit:12`…) must open the record it names. Most of them have a table row in a
pane; those that do not (a runbook, a log template's lines, a change outside the
selected incident, an imported document, a report) are shown in a read-only viewer, and
this module is what that viewer reads: plain data, no Qt, so the same text is shown in
the console and checked in a test. Reading blocks on the database: call it off the GUI
thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.storage.db import Database
from console.storage.models import AuditRow, LogRow, SignalRow
from console.storage.repos_retrieval import RetrievalRepo

LOG_LINES = 50  # the newest lines of a log template shown with it
SIGNAL_ROWS = 20  # the newest state changes of an alert series shown with it


class RecordNotFound(LookupError):
    """The link names no stored record (or is not a link the console knows)."""


@dataclass(frozen=True, slots=True)
class RecordView:
    """What the viewer shows of one record: `fields` as label/value pairs, then `lines`
    (log lines, a runbook's text, a document's sections) as they are."""

    ref: str
    title: str
    fields: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()


class RecordReader:
    """Reads the record a link names. `library`: the runbook library by id (the
    engine's), which a `runbook:` link names; the rest is in the database."""

    def __init__(self, db: Database, library: Mapping[str, Any]) -> None:
        self._db = db
        self._library = library
        self._repo = RetrievalRepo()
        self._readers: dict[str, Callable[[Session, str], RecordView | None]] = {
            "change": self._change, "log": self._log, "signal": self._signal,
            "audit": self._audit, "knowledge": self._knowledge, "report": self._report,
            "incident": self._incident, "execution": self._execution,
            "recommendation": self._recommendation,
        }

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("runbook", *self._readers)

    def read(self, ref: str) -> RecordView:
        """The record `ref` names; RecordNotFound saying why when there is none."""
        kind, _, ident = ref.partition(":")
        if not ident:
            raise RecordNotFound(f"{ref!r} is not a record link (kind:id)")
        if kind == "runbook":
            return self._runbook(ref, ident)
        reader = self._readers.get(kind)
        if reader is None:
            raise RecordNotFound(f"{ref}: no viewer for {kind!r} records")
        with self._db.sessions() as session:
            view = reader(session, ref)
        if view is None:
            raise RecordNotFound(f"{ref}: no such record is stored")
        return view

    # --- the library ---------------------------------------------------------------------

    def _runbook(self, ref: str, ident: str) -> RecordView:
        book = self._library.get(ident)
        if book is None:
            raise RecordNotFound(f"{ref}: no runbook {ident!r} in the library")
        undo = (f"yes: {len(book.rollback)} rollback step(s)" if book.reversible
                else "no: the runbook has no rollback")
        body = yaml.safe_dump(book.model_dump(mode="json", exclude_defaults=True),
                              sort_keys=False, allow_unicode=True, width=96)
        return RecordView(ref, f"Runbook {book.id}: {book.title}", (
            ("Action class", book.action_class), ("Risk", book.risk),
            ("Blast radius", f"{book.blast_radius} target(s) at most"),
            ("Can be undone", undo), ("Owner", book.owner), ("Version", str(book.version)),
            ("Applies to faults", ", ".join(book.applies_to.faults) or "-"),
            ("Applies to alerts", ", ".join(book.applies_to.alerts) or "-"),
            ("Description", book.description or "-")), tuple(body.splitlines()))

    # --- stored records ------------------------------------------------------------------

    def _change(self, session: Session, ref: str) -> RecordView | None:
        chg = self._repo.change(session, ref.partition(":")[2])
        if chg is None:
            return None
        version = (f"{chg.version_from or '?'} \u2192 {chg.version_to}" if chg.version_to
                   else "-")
        return RecordView(ref, f"{chg.kind.replace('_', ' ')} of {chg.service}", (
            ("When", chg.at.isoformat()), ("Service", chg.service), ("Kind", chg.kind),
            ("Version", version), ("Author", chg.author), ("Id", chg.id)),
            (chg.description,))

    def _log(self, session: Session, ref: str) -> RecordView | None:
        service, _, template = ref.partition(":")[2].rpartition("/")
        if not service or not template.isdigit():
            raise RecordNotFound(f"{ref}: a log link is log:SERVICE/TEMPLATE_NUMBER")
        rows = session.scalars(select(LogRow).where(
            LogRow.service == service, LogRow.template_id == int(template))
            .order_by(LogRow.at.desc(), LogRow.id.desc()).limit(LOG_LINES)).all()
        if not rows:
            return None
        first = session.scalar(select(LogRow.at).where(
            LogRow.service == service, LogRow.template_id == int(template))
            .order_by(LogRow.at).limit(1))
        lines = tuple(f"{r.at.isoformat()} {r.level:5} {r.instance or r.service}: {r.message}"
                      for r in reversed(rows))
        return RecordView(ref, f"Log lines of {service} like \u201c{rows[0].template}\u201d", (
            ("Service", service), ("Template", rows[0].template),
            ("Level", rows[0].level), ("First seen", first.isoformat() if first else "-"),
            ("Last seen", rows[0].at.isoformat()),
            ("Shown", f"the newest {len(rows)} line(s)")), lines)

    def _signal(self, session: Session, ref: str) -> RecordView | None:
        rows = session.scalars(select(SignalRow).where(
            SignalRow.fingerprint == ref.partition(":")[2])
            .order_by(SignalRow.at.desc(), SignalRow.id.desc()).limit(SIGNAL_ROWS)).all()
        if not rows:
            return None
        top = rows[0]
        labels = ", ".join(f"{k}={v}" for k, v in sorted(top.labels.items())) or "-"
        return RecordView(ref, f"{top.name} on {top.service}", (
            ("Status now", top.status), ("Severity", top.severity), ("Source", top.source),
            ("Labels", labels), *((k, str(v)) for k, v in sorted(top.annotations.items()))),
            tuple(f"{r.at.isoformat()} {r.status}" for r in reversed(rows)))

    def _audit(self, session: Session, ref: str) -> RecordView | None:
        ident = ref.partition(":")[2]
        row = session.get(AuditRow, int(ident)) if ident.isdigit() else None
        if row is None:
            return None
        return RecordView(ref, f"Audit record {row.seq}: {row.action}", (
            ("When", row.at.isoformat()), ("Actor", row.actor), ("Target", row.target or "-"),
            ("Decision", row.decision), ("Reason", row.reason or "-"),
            ("Inputs", _json_line(row.inputs)), ("Outputs", _json_line(row.outputs)),
            ("Hash", row.hash), ("Previous hash", row.prev_hash)))

    def _knowledge(self, session: Session, ref: str) -> RecordView | None:
        ident = ref.partition(":")[2]
        doc = next((d for d in self._repo.knowledge(session) if str(d.id) == ident), None)
        if doc is None:
            return None
        lines: list[str] = []
        for heading, text in doc.sections.items():
            lines += [f"## {heading}", *text.splitlines(), ""]
        return RecordView(ref, doc.title, (("Alert", doc.alert or "-"),
                                           ("Source", doc.source)), tuple(lines))

    def _report(self, session: Session, ref: str) -> RecordView | None:
        ident = ref.partition(":")[2]
        report = self._repo.report(session, int(ident)) if ident.isdigit() else None
        if report is None:
            return None
        return RecordView(ref, report.title, (
            ("Incident", str(report.incident_id)), ("Kind", report.kind.replace("_", " ")),
            ("Written", report.created_at.isoformat())), tuple(report.markdown.splitlines()))

    def _incident(self, session: Session, ref: str) -> RecordView | None:
        ident = ref.partition(":")[2]
        info = self._repo.incident(session, int(ident)) if ident.isdigit() else None
        if info is None:
            return None
        return RecordView(ref, f"Incident {info.id}: {info.title}", (
            ("Severity", info.severity.value), ("State", info.state),
            ("Services", ", ".join(info.services) or "-"),
            ("Opened", info.opened_at.isoformat()),
            ("Resolved", info.resolved_at.isoformat() if info.resolved_at else "-")))

    def _execution(self, session: Session, ref: str) -> RecordView | None:
        ident = ref.partition(":")[2]
        run = self._repo.execution(session, int(ident)) if ident.isdigit() else None
        if run is None:
            return None
        return RecordView(ref, f"Execution {run.id}: {run.runbook_id}", (
            ("State", run.state), ("Target", run.target), ("Started by", run.initiator),
            ("Recommendation", str(run.recommendation_id or "-")),
            ("Started", run.started_at.isoformat()),
            ("Finished", run.finished_at.isoformat() if run.finished_at else "-")))


    def _recommendation(self, session: Session, ref: str) -> RecordView | None:
        """One the queue no longer lists (decided, expired) is still a record."""
        ident = ref.partition(":")[2]
        rec = (self._repo.recommendation(session, int(ident), datetime.now(UTC))
               if ident.isdigit() else None)
        if rec is None:
            return None
        return RecordView(ref, f"Recommendation {rec.id}: {rec.runbook_id} on {rec.target}", (
            ("State", rec.state), ("Incident", str(rec.incident_id or "-")),
            ("Confidence", f"{rec.confidence:.2f}"), ("Risk", rec.risk),
            ("Preview hash", rec.preview_hash), ("Requested by", rec.requester),
            ("Made", rec.created_at.isoformat())), tuple(rec.explanation.splitlines()))


def _json_line(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, ensure_ascii=False, default=str)

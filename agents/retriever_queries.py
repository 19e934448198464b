"""The concrete queries behind each intent (agents/retriever_intents.py), each adding
one section of facts (agents/retriever_facts.py) to the answer.

Each intent runs a fixed set of queries; every one is recorded as a `Query` with what
it looked for and how many records it found, so the answer shows the work it did."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from agents.retriever_facts import (
    OPEN_RECS,
    SEVERITY_RANK,
    Ctx,
    Facts,
    Query,
    alert_fact,
    audit_fact,
    change_fact,
    change_facts,
    clip,
    duration,
    execution_fact,
    incident_fact,
    is_error_alert,
    latest_per_series,
    metric_facts,
    recommendation_fact,
    window_params,
)
from agents.retriever_intents import Intent, Window, describe, fmt_time, keywords, split_name
from console.actions.runbooks import Runbook
from console.domain import AlertStatus, Evidence, Execution, IncidentInfo, Recommendation, Severity
from console.storage.repos_retrieval import RetrievalRepo

DEFAULT_METRICS = ("error_rate", "latency_p99_ms", "saturation", "cpu", "memory", "disk")


# --- the intents ----------------------------------------------------------------------

def default_window(ctx: Ctx, intent: Intent, before: timedelta) -> Window:
    if intent.window is not None:
        return intent.window
    if ctx.incident is not None:
        start = ctx.incident.opened_at - before
        return Window(start, ctx.now, f"since {fmt_time(start, ctx.now)} "
                      f"({duration(before.total_seconds())} before incident "
                      f"{ctx.incident.id} opened)")
    return Window(ctx.now - timedelta(hours=1), ctx.now, "the last hour")


def scope_services(ctx: Ctx, intent: Intent) -> tuple[str, ...]:
    if intent.services:
        return intent.services
    return ctx.incident.services if ctx.incident is not None else ()


def errors(ctx: Ctx, facts: Facts, intent: Intent) -> None:
    services = scope_services(ctx, intent)
    window = default_window(ctx, intent, timedelta(minutes=15))
    where = f" on {', '.join(services)}" if services else ""
    span = describe(window, ctx.now)
    logs = ctx.repo.log_templates(ctx.session, window.start, window.end,
                                  services=services or None, limit=10)
    facts.section(f"Error log templates{where}, {span}", (
        Evidence("log", f"{h.count} {h.level} line(s) on {h.service} like “{clip(h.template, 200)}"
                 f"” ({fmt_time(h.first_at, ctx.now)} to {fmt_time(h.last_at, ctx.now)})",
                 f"log:{h.service}/{h.template_id}") for h in logs),
        f"No error log lines{where}, {span}.",
        Query("log_templates", {**window_params(window, services), "levels": "ERROR"}))
    alerts = [s for s in latest_per_series(ctx.repo.signals_between(
        ctx.session, window.start, window.end, services=services or None)) if is_error_alert(s)]
    facts.section(f"Error-rate alerts{where}, {span}",
                  (alert_fact(s, ctx.now) for s in alerts[:10]),
                  f"No error-rate alerts{where}, {span}.",
                  Query("signals", {**window_params(window, services), "filter": "error alerts"}))
    if ctx.metrics is not None:
        targets = services or tuple(dict.fromkeys(s.service for s in alerts))[:5]
        found = [f for svc in targets for f in metric_facts(ctx, svc, ("error_rate",), window)]
        facts.section(f"Error rate{where}, {span}", found, "",
                      Query("metrics.series", {**window_params(window, targets),
                                               "metric": "error_rate"}))


def changes(ctx: Ctx, facts: Facts, intent: Intent) -> tuple[str, ...]:
    """Returns the services that changed, newest change first."""
    window = default_window(ctx, intent, timedelta(hours=1))
    where = f" to {', '.join(intent.services)}" if intent.services else ""
    span = describe(window, ctx.now)
    found = ctx.repo.changes_between(ctx.session, window.start, window.end,
                                     services=intent.services or None, limit=20)
    facts.section(f"Changes{where}, {span}", (change_fact(c, ctx.now) for c in found),
                  f"No changes{where}, {span}.",
                  Query("changes", window_params(window, intent.services)))
    return tuple(dict.fromkeys(c.service for c in found))


def _runbook_words(book: Runbook) -> set[str]:
    words = split_name(book.id) | split_name(book.action_class)
    words |= keywords(f"{book.title} {book.description}")
    for name in (*book.applies_to.alerts, *book.applies_to.faults):
        words |= split_name(name)
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}


def runbook(ctx: Ctx, facts: Facts, intent: Intent) -> None:
    topic = set(intent.topic)
    alerts = set(intent.alerts)
    if not alerts and ctx.incident is not None:  # "the runbook for incident 3"
        names = ctx.repo.incident_alert_names(ctx.session, [ctx.incident.id])
        alerts = names.get(ctx.incident.id, set())
    for name in alerts:
        topic |= split_name(name)
    scored = []
    for book in ctx.library.values():
        score = len(topic & _runbook_words(book)) + 2 * len(alerts & set(book.applies_to.alerts))
        if score:
            scored.append((score, book))
    scored.sort(key=lambda sb: (-sb[0], sb[1].id))
    label = ", ".join(sorted(topic)) or "(nothing to match on)"
    facts.section(f"Runbooks matching {label}", (Evidence(
        "runbook", f"runbook {b.id} “{b.title}”: {clip(b.description, 200)} Applies to alerts "
        f"{', '.join(b.applies_to.alerts) or '-'}, faults {', '.join(b.applies_to.faults) or '-'}"
        f"; risk {b.risk}; {'reversible' if b.reversible else 'no rollback'}",
        f"runbook:{b.id}") for _, b in scored[:3]),
        f"No runbook in the library matches {label}.",
        Query("runbook_library", {"keywords": label}))
    docs = []
    for doc in ctx.repo.knowledge(ctx.session):
        text = " ".join((doc.title, doc.alert, *doc.sections.values()))
        score = len(topic & keywords(text)) + 3 * (doc.alert in alerts) + \
            2 * len(topic & split_name(doc.alert or doc.title))
        if score:
            docs.append((score, doc))
    docs.sort(key=lambda sd: (-sd[0], sd[1].id))
    found = []
    for _, doc in docs[:3]:
        section = next((s for s in ("mitigation", "diagnosis", "meaning", "impact")
                        if doc.sections.get(s)), None)
        body = f" — {section}: {clip(doc.sections[section], 240)}" if section else ""
        found.append(Evidence("knowledge", f"“{clip(doc.title, 120)}” ({clip(doc.source, 80)})"
                              + body, f"knowledge:{doc.id}"))
    facts.section(f"Imported runbook pages matching {label}", found,
                  f"No imported runbook page matches {label}.",
                  Query("knowledge_docs", {"keywords": label}))


def similar(ctx: Ctx, facts: Facts, intent: Intent) -> None:
    target = ctx.incident
    if target is None:
        open_now = ctx.repo.incidents(ctx.session, ("open",), limit=1)
        target = open_now[0] if open_now else None
    services = set(intent.services or (target.services if target else ()))
    alerts = set(intent.alerts)
    if target is not None:
        alerts |= ctx.repo.incident_alert_names(ctx.session, [target.id]).get(target.id, set())
    before = target.opened_at if target is not None else ctx.now
    past = [i for i in ctx.repo.incidents(ctx.session, limit=500)
            if (target is None or i.id != target.id) and i.opened_at <= before]
    names = ctx.repo.incident_alert_names(ctx.session, [i.id for i in past])
    scored = []
    for inc in past:
        shared_s, shared_a = services & set(inc.services), alerts & names.get(inc.id, set())
        if shared_s or shared_a:
            extra = "; ".join(part for part in (
                f"shared services: {', '.join(sorted(shared_s))}" if shared_s else "",
                f"shared alerts: {', '.join(sorted(shared_a))}" if shared_a else "") if part)
            scored.append((len(shared_s) + len(shared_a), inc, extra))
    scored.sort(key=lambda t: (-t[0], -t[1].id))
    about = (f"incident {target.id}" if target is not None else
             ", ".join(sorted(services | alerts)) or "(nothing to compare)")
    params = {"services": ",".join(sorted(services)), "alerts": ",".join(sorted(alerts))}
    facts.section(f"Past incidents like {about}",
                  (incident_fact(i, ctx.now, extra) for _, i, extra in scored[:5]),
                  f"No past incident shares a service or an alert with {about}.",
                  Query("incidents", params))
    reports = []
    for report in ctx.repo.reports(ctx.session, kind="postmortem"):
        if target is not None and report.incident_id == target.id:
            continue
        data = report.data
        cause = data.get("cause") or {}
        theirs = set(data.get("services", ())) | {cause.get("service")} - {None}
        score = len(services & theirs) + len(alerts & set(data.get("alerts", ())))
        if score:
            reports.append((score, report))
    reports.sort(key=lambda sr: (-sr[0], -sr[1].id))
    found = []
    for _, report in reports[:3]:
        data = report.data
        cause = data.get("cause") or {}
        said = (f"cause {cause.get('fault_class')} on {cause.get('service')} (confidence "
                f"{float(cause.get('confidence', 0)):.2f})" if cause else "no cause recorded")
        actions = ", ".join(f"{a.get('runbook')} {a.get('state')}"
                            for a in data.get("actions", ())) or "no actions"
        ttr = data.get("time_to_resolve_s")
        found.append(Evidence("postmortem", f"post-incident report of incident "
                              f"{report.incident_id}: {said}; actions: {actions}"
                              + (f"; resolved in {duration(float(ttr))}" if ttr else ""),
                              f"report:{report.id}"))
    facts.section(f"Post-incident reports like {about}", found,
                  f"No post-incident report matches {about}.",
                  Query("reports", {"kind": "postmortem", **params}))


def why(ctx: Ctx, facts: Facts, intent: Intent) -> tuple[Execution | None,
                                                         Recommendation | None]:
    repo, session = ctx.repo, ctx.session
    incident_id = ctx.incident.id if ctx.incident is not None else None
    execution: Execution | None = None
    rec: Recommendation | None = None
    if intent.execution_id is not None:
        execution = repo.execution(session, intent.execution_id)
    elif intent.recommendation_id is not None:
        rec = repo.recommendation(session, intent.recommendation_id, ctx.now)
    else:
        latest = repo.executions(session, incident_id=incident_id, limit=1)
        execution = latest[0] if latest else None
        if execution is None:
            recs = repo.recommendations(session, ctx.now, incident_id=incident_id, limit=1)
            rec = recs[0] if recs else None
    if execution is not None and execution.recommendation_id is not None:
        rec = repo.recommendation(session, execution.recommendation_id, ctx.now)
    subject = (f"execution {execution.id}" if execution is not None else
               f"recommendation {rec.id}" if rec is not None else "the action")
    found = ([execution_fact(execution, ctx.now)] if execution else []) + \
        ([recommendation_fact(rec, ctx.access, ctx.now)] if rec else [])
    facts.section(f"What {subject} is", found, "No action or recommendation matches the "
                  "question.", Query("executions+recommendations", {
                      "execution": str(getattr(execution, "id", intent.execution_id or "")),
                      "recommendation": str(getattr(rec, "id", intent.recommendation_id or "")),
                      "incident": str(incident_id or "")}))
    targets = ([f"execution:{execution.id}"] if execution else []) + \
        ([f"recommendation:{rec.id}"] if rec else [])
    entries = repo.audit_for(session, targets) if targets else []
    facts.section(f"Audit records of {subject} (policy decisions, approvals, runs)",
                  (audit_fact(e, ctx.access, ctx.now) for e in entries[:20]),
                  "No audit records." if targets else "",
                  Query("audit", {"targets": ",".join(targets)}))
    return execution, rec


def overview(ctx: Ctx, facts: Facts, intent: Intent) -> list[IncidentInfo]:
    repo, session, now = ctx.repo, ctx.session, ctx.now
    if ctx.incident is not None:
        incidents = [ctx.incident]
    else:
        incidents = sorted(repo.incidents(session, ("open",)),
                           key=lambda i: (-SEVERITY_RANK[i.severity], i.opened_at))
    facts.section("Open incidents, most severe first" if ctx.incident is None else
                  f"Incident {ctx.incident.id}", (incident_fact(i, now) for i in incidents[:10]),
                  "No open incidents.", Query("incidents", {"state": "open"}
                                              if ctx.incident is None
                                              else {"id": str(ctx.incident.id)}))
    services = ctx.incident.services if ctx.incident is not None else ()
    firing = [s for s in latest_per_series(repo.latest_states(session, now,
                                                              services=services or None))
              if s.status is AlertStatus.FIRING and s.severity is Severity.CRITICAL]
    facts.section("Critical alerts firing now", (alert_fact(s, now) for s in firing[:10]),
                  "No critical alert is firing.",
                  Query("latest_alert_states", {"until": now.isoformat(), "status": "firing",
                                                "severity": "critical",
                                                **({"services": ",".join(services)}
                                                   if services else {})}))
    start = min((i.opened_at for i in incidents), default=now) - timedelta(hours=1)
    window = Window(start, now, f"since {fmt_time(start, now)}")
    facts.section(f"Changes {window.label}", change_facts(ctx, window, limit=10),
                  f"No changes {window.label}.", Query("changes", window_params(window)))
    recs = repo.recommendations(session, now, states=OPEN_RECS,
                                incident_id=ctx.incident.id if ctx.incident else None)
    facts.section("Recommendations waiting for a decision",
                  (recommendation_fact(r, ctx.access, now) for r in recs[:10]),
                  "No recommendation is waiting.",
                  Query("recommendations", {"states": ",".join(OPEN_RECS)}))
    return incidents


def metrics(ctx: Ctx, facts: Facts, intent: Intent) -> tuple[str, ...]:
    services = scope_services(ctx, intent)
    if not services:
        open_now = ctx.repo.incidents(ctx.session, ("open",), limit=1)
        services = open_now[0].services[:3] if open_now else ()
    names = (intent.metric,) if intent.metric else DEFAULT_METRICS
    window = intent.window or Window(ctx.now - timedelta(hours=1), ctx.now, "the last hour")
    for service in services:
        facts.section(f"Metrics of {service}, {describe(window, ctx.now)}",
                      metric_facts(ctx, service, names, window),
                      f"No samples of {', '.join(names)} for {service}, "
                      f"{describe(window, ctx.now)}.",
                      Query("metrics.series", {**window_params(window, (service,)),
                                               "metrics": ",".join(names)}))
    return services


def alert_names(repo: RetrievalRepo, session: Session, now: datetime) -> list[str]:
    """Alert names seen in the last day (what a question may name)."""
    return sorted({s.name for s in repo.latest_states(session, now)
                   if s.at >= now - timedelta(days=1)})


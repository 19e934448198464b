"""The assessment as a self-contained HTML report (the PDF is printed from the same HTML).

Written for Qt's rich-text engine as much as for browsers: plain tables, inline styles
only, no scripts or external files, so the file a team lead mails round and the PDF the
wizard prints say the same thing. Every value is escaped: answers and reasons may hold
text from files.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from console.assessment import fmt_metric
from console.assessment_evidence import METRICS
from console.assessment_model import MaturityModel
from console.assessment_service import AssessmentResult, HistoryPoint

_CSS = """
body { font-family: sans-serif; font-size: 10pt; color: #1c2430; }
h1 { font-size: 18pt; margin-bottom: 2px; }
h2 { font-size: 13pt; margin-top: 16px; border-bottom: 1px solid #c9d1db; }
table { border-collapse: collapse; }
td, th { padding: 3px 8px; border: 1px solid #c9d1db; vertical-align: top; }
th { background: #eef2f6; text-align: left; }
.met { color: #1d7a36; } .unmet { color: #b81f27; } .muted { color: #5d6772; }
.trap { background: #fff4dc; border: 1px solid #e0b34a; padding: 6px; }
"""


def _list(items: Sequence[str]) -> str:
    if not items:
        return "<p class='muted'>None.</p>"
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _mark(ok: bool | None) -> str:
    if ok is None:
        return "<span class='muted'>not asked</span>"
    return "<span class='met'>met</span>" if ok else "<span class='unmet'>not met</span>"


def render_html(result: AssessmentResult, model: MaturityModel,
                history: Sequence[HistoryPoint] = ()) -> str:
    p = result.placement
    lv = model.level(p.level)
    parts = [f"<html><head><meta charset='utf-8'><title>Maturity assessment: level "
             f"{p.level}</title><style>{_CSS}</style></head><body>",
             f"<h1>Level {p.level} &mdash; {escape(p.name)}</h1>",
             f"<p class='muted'>Assessed {escape(result.at.strftime('%Y-%m-%d %H:%M UTC'))}"
             f" over the evidence from {escape(result.evidence.since.strftime('%Y-%m-%d'))}"
             f" to {escape(result.evidence.until.strftime('%Y-%m-%d'))}"
             + (f" by {escape(result.answers.assessor)}" if result.answers.assessor else "")
             + ".</p>",
             f"<p>{escape(lv.does)}</p>",
             "<table><tr><th>answers reach</th><th>evidence reaches</th><th>claimed</th>"
             "<th>placed</th></tr><tr>"
             f"<td>{_level(p.answers_level)}</td><td>{p.evidence_level}</td>"
             f"<td>{_level(p.claimed_level)}</td><td><b>{p.level}</b></td></tr></table>",
             "<h2>Why</h2>", _list(p.reasons)]
    if p.contradictions:
        parts += ["<h2>Where the evidence overrules the answers</h2>", _list(p.contradictions)]
    parts.append("<h2>Traps the data shows</h2>")
    if p.traps:
        for trap in p.traps:
            parts.append(f"<div class='trap'><b>Level {trap.level}: {escape(trap.title)}</b>"
                         f"<br>{escape(trap.description)}<br><i>Shown because "
                         f"{escape(trap.because)}.</i></div><br>")
    else:
        parts.append("<p class='muted'>None shown by the data.</p>")
    parts += ["<h2>Next steps</h2>", f"<p>{escape(p.move_up)}</p>", _list(p.next_steps)]
    if result.shadow is not None:
        parts += ["<h2>Shadow replay</h2>", f"<p>{escape(result.shadow.headline())}</p>",
                  _shadow_table(result)]
    parts += ["<h2>Levels</h2>", _levels_table(result, model),
              "<h2>Evidence</h2>", _evidence_table(result)]
    if result.evidence.classes:
        parts += ["<h2>Action classes</h2>", _classes_table(result)]
    parts += ["<h2>High risk on its own (admin grants)</h2>",
              _list([g.says() for g in result.evidence.grants])
              if result.evidence.grants else
              "<p class='muted'>None: every high-risk action waits for an approver.</p>"]
    if history:
        parts += ["<h2>Placements over time</h2>", _history_table(history)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _level(value: int | None) -> str:
    return "&ndash;" if value is None else str(value)


def _levels_table(result: AssessmentResult, model: MaturityModel) -> str:
    rows = ["<table width='100%'><tr><th>level</th><th>answers</th><th>evidence</th>"
            "<th>what is missing</th></tr>"]
    for check in result.placement.checks:
        missing = [f"{q.text} ({q.answer})" for q in check.unmet_questions]
        missing += [g.says for g in check.gates if not g.met]
        rows.append(f"<tr><td>{check.level} {escape(model.level(check.level).name)}</td>"
                    f"<td>{_mark(check.answers_met)}</td><td>{_mark(check.evidence_met)}</td>"
                    f"<td>{'<br>'.join(escape(m) for m in missing) or '&ndash;'}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _evidence_table(result: AssessmentResult) -> str:
    rows = ["<table width='100%'><tr><th>measure</th><th>value</th><th>meaning</th></tr>"]
    for name, meaning in METRICS.items():
        value = result.evidence.get(name)
        rows.append(f"<tr><td>{escape(name)}</td><td>{escape(fmt_metric(name, value))}</td>"
                    f"<td class='muted'>{escape(meaning)}</td></tr>")
    rows.append("</table>")
    if result.evidence.audit_problem:
        rows.append(f"<p class='unmet'>{escape(result.evidence.audit_problem)}</p>")
    return "".join(rows)


def _classes_table(result: AssessmentResult) -> str:
    rows = ["<table width='100%'><tr><th>action class</th><th>policy level</th><th>rule</th>"
            "<th>approved</th><th>autonomous</th><th>person</th><th>failed</th>"
            "<th>rolled back</th><th>rollback path</th></tr>"]
    for c in result.evidence.classes:
        rows.append(f"<tr><td>{escape(c.action_class)}</td><td>{c.policy_level}</td>"
                    + "".join(f"<td>{c.runs.get(k, 0)}</td>"
                              for k in ("rule", "approved", "autonomous", "person"))
                    + f"<td>{c.failed}</td><td>{c.rolled_back}</td>"
                    f"<td>{'yes' if c.reversible else 'no'}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _shadow_table(result: AssessmentResult) -> str:
    assert result.shadow is not None
    rows = ["<table width='100%'><tr><th>recommendation</th><th>class</th><th>target</th>"
            "<th>then</th><th>today</th><th>proposed</th><th>predicted</th><th>basis</th>"
            "</tr>"]
    for c in result.shadow.cases[:200]:
        rows.append(f"<tr><td>#{c.recommendation_id}</td><td>{escape(c.action_class)}</td>"
                    f"<td>{escape(c.target)}</td><td>{escape(c.what_happened)}</td>"
                    f"<td>{escape(c.current)}</td><td>{escape(c.proposed)}</td>"
                    f"<td>{escape(c.predicted)}</td><td>{escape(c.basis)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _history_table(history: Sequence[HistoryPoint]) -> str:
    rows = ["<table><tr><th>when</th><th>placed</th><th>evidence</th><th>claimed</th>"
            "<th>by</th></tr>"]
    for h in history:
        rows.append(f"<tr><td>{escape(h.at.strftime('%Y-%m-%d %H:%M'))}</td>"
                    f"<td>{h.level}</td><td>{_level(h.evidence_level)}</td>"
                    f"<td>{_level(h.claimed_level)}</td><td>{escape(h.assessor)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)

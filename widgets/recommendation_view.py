"""The detail of one recommendation as rich text: why, the evidence (each a link), the
execution preview (steps, targets, what changes, blast radius, validation, rollback) and
the policy decision with who may approve.

Plain functions over domain data, so the text is the same in the pane, in a snapshot and
in a test; nothing here decides anything, it spells out what the core said.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from console.domain import Recommendation
from widgets.decision_text import validation_words
from widgets.recommendation_model import Standing, preview_summary
from widgets.theme import StateColors

REF = re.compile(r"\[((?:signal|change|metric|log|incident|execution|recommendation|runbook|"
                 r"knowledge|audit|ticket):[^\]\s]+)\]")
STATE_FIELDS = ("version", "previous_version", "flags", "failed_over")


def document_css(colors: StateColors) -> str:
    """The rich-text panes' style: links in the theme's blue (Qt's default dark blue is
    unreadable on the dark theme), compact headings."""
    return (f"a {{ color: {colors.blue}; }} h3 {{ margin-bottom: 2px; }} "
            "h4 { margin-top: 8px; margin-bottom: 2px; } p { margin-top: 2px; "
            "margin-bottom: 4px; } ul { margin-top: 0px; margin-bottom: 4px; }")


def evidence_refs(text: str) -> list[str]:
    """The record links an explanation cites, in order, once each."""
    return list(dict.fromkeys(REF.findall(text)))


def _link(ref: str) -> str:
    return f'<a href="{escape(ref, quote=True)}">{escape(ref)}</a>'


def _linked(text: str) -> str:
    """Escape `text` and turn its [kind:ref] citations into links."""
    out, last = [], 0
    for match in REF.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append("[" + _link(match.group(1)) + "]")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out).replace("\n", "<br>")


def _args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items()) or "no arguments"


def _state(state: Mapping[str, Any]) -> str:
    """The parts of a target's state an approver weighs, in a line."""
    parts = []
    instances = state.get("instances")
    if isinstance(instances, list):
        versions = sorted({str(i.get("version")) for i in instances if isinstance(i, dict)})
        parts.append(f"{len(instances)} instance(s) on {', '.join(versions) or '?'}")
    for key in STATE_FIELDS:
        if key in state and state[key] not in (None, "", {}):
            value = state[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in value.items())
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def _steps(preview: Mapping[str, Any]) -> list[str]:
    lines = []
    for n, item in enumerate(preview.get("steps", []), 1):
        step = dict(item.get("step") or {})
        effect = item.get("effect")
        line = (f"{n}. <b>{escape(str(step.get('action', '?')))}</b> via "
                f"{escape(str(step.get('executor', '?')))} ({escape(_args(step.get('args', {})))})")
        if isinstance(effect, dict) and isinstance(effect.get("target_state"), dict):
            line += f"<br>&nbsp;&nbsp;&nbsp;now: {escape(_state(effect['target_state']))}"
        elif effect is None:
            line += "<br>&nbsp;&nbsp;&nbsp;<i>target state not known to this console</i>"
        lines.append(line)
    return lines


def _rollback(preview: Mapping[str, Any]) -> str:
    rollback = preview.get("rollback")
    if not rollback or rollback == "none":
        return "none \u2014 this action cannot be undone from the console"
    return "; ".join(f"{s.get('action')} ({_args(s.get('args', {}))})" for s in rollback
                     if isinstance(s, dict))


def recommendation_html(rec: Recommendation, standing: Standing | None, user: str,
                        colors: StateColors) -> str:
    red, amber, green, dim = colors.red, colors.amber, colors.green, colors.dimmed
    preview = rec.preview
    head = [f"<h3 style='margin:0'>#{rec.id} {escape(preview_summary(rec))}</h3>",
            f"<p style='color:{dim}'>{escape(rec.runbook_id)} on <b>{escape(rec.target)}</b>"
            f" \u00b7 requested by {escape(rec.requester)}"
            + (f" \u00b7 {_link(f'incident:{rec.incident_id}')}"
               if rec.incident_id is not None else "")
            + f" \u00b7 {rec.created_at:%H:%M:%S}"
            + (f" \u00b7 expires {rec.expires_at:%H:%M:%S}" if rec.expires_at else "")
            + "</p>"]
    # The confidence is the decision card's, once, with what it rests on: a second
    # number here read as a contradiction.
    head.append(f"<p>Risk <b>{escape(rec.risk)}</b> \u00b7 state <b>{escape(rec.state)}</b></p>")
    policy = ["<h4>Policy</h4>"]
    if standing is None:
        policy.append(f"<p style='color:{dim}'>"
                      + ("asking the policy engine\u2026" if rec.state == "pending"
                         else "decided") + "</p>")
    else:
        color = {"allow": green, "deny": red}.get(standing.outcome, amber)
        policy.append(f"<p><b style='color:{color}'>"
                      f"{escape(standing.outcome.replace('_', ' '))}</b> \u2014 may approve: "
                      f"{escape(standing.who)}</p>")
        if standing.four_eyes:
            mine = standing.approver_not == f"user:{user}"
            policy.append(f"<p style='color:{amber}'><b>Four-eyes:</b> an approver other "
                          f"than {escape(str(standing.approver_not))} must approve"
                          + (" (that is you)" if mine else "") + ".</p>")
        if standing.preview_current is False:
            policy.append(f"<p style='color:{red}'><b>Stale preview:</b> the target has "
                          "changed since this preview was made; approving is refused and "
                          "the preview is remade.</p>")
        policy.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in standing.reasons)
                      + "</ul>")
    if rec.approvals:
        policy.append("<p>Approved so far by " + ", ".join(
            f"{escape(u)} ({escape(r)})" for u, r in rec.approvals) + "</p>")
    body = ["<h4>Execution preview</h4>",
            f"<p>{escape(str(preview.get('summary', '')))}</p>",
            f"<p><b>Targets:</b> {escape(', '.join(map(str, preview.get('targets', []))))}"
            f" \u00b7 <b>blast radius:</b> {escape(str(preview.get('blast_radius', '?')))}"
            f" \u00b7 <b>action class:</b> {escape(str(preview.get('action_class', '')))}</p>",
            "<p><b>Steps</b><br>" + "<br>".join(_steps(preview)) + "</p>",
            f"<p><b>Validation:</b> {escape(validation_words(preview))}</p>",
            f"<p><b>Rollback:</b> {escape(_rollback(preview))}</p>",
            f"<p style='color:{dim}'>preview {escape(rec.preview_hash[:16])}\u2026 \u2014 "
            "an approval is bound to exactly this preview</p>"]
    refs = evidence_refs(rec.explanation)
    why = ["<h4>Why</h4>", f"<p>{_linked(rec.explanation)}</p>"]
    if refs:
        why.append("<p><b>Evidence:</b> " + " \u00b7 ".join(_link(r) for r in refs) + "</p>")
    return "".join(head + policy + body + why)

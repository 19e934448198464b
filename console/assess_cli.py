"""`watchfloor assess`: the maturity placement headless, with the wizard's evidence and reasons.

The same AssessmentService as the wizard computes it, so a team lead's terminal and the
console agree. By default each assessment is kept (an audited operation) so the trend
over time has its points; `--no-record` only looks. A bad answers or policy file exits 2
with the question (or field) and line at fault, and nothing is recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.assessment_service import AssessmentResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMAND = "assess"


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"days must be a number, got {text!r}") from None
    if not 0 < value <= 3650:
        raise argparse.ArgumentTypeError(f"days must be above 0 and at most 3650, got {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `assess` on the `watchfloor` subparsers; `handle` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND, help="place this team on the six-level maturity model",
        description="Place the team on the maturity model from its answers and the "
                    "console's own evidence (actions, approvals, validations, rollbacks, "
                    "incidents, audit chain, policy). Where they disagree the evidence wins, "
                    "and the output says why. With --propose-policy, past recommendations "
                    "are replayed under that policy (shadow mode: nothing runs).")
    parser.add_argument("--db", metavar="URL",
                        help="SQLAlchemy database URL (default: $WATCHFLOOR_DB, then SQLite "
                             "in the user data directory)")
    parser.add_argument("--answers", type=Path, metavar="FILE",
                        help="YAML answers: {assessor, claimed_level, answers: {ID: yes|no|"
                             "partly}}; without it the placement rests on the evidence alone")
    parser.add_argument("--propose-policy", type=Path, metavar="FILE", dest="propose_policy",
                        help="a policy YAML file to replay past recommendations under "
                             "(shadow mode)")
    parser.add_argument("--class", action="append", dest="classes", default=None,
                        metavar="ACTION_CLASS", help="shadow mode: only this action class; "
                                                     "repeatable")
    parser.add_argument("--days", type=_days, default=30.0,
                        help="the evidence window in days (default 30)")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML report")
    parser.add_argument("--as", dest="as_user", default=None, metavar="USER",
                        help="who records the assessment (default: the local user)")
    from console.cli_identity import add_proof_options

    add_proof_options(parser)
    parser.add_argument("--no-record", action="store_true",
                        help="do not keep this assessment (nothing is written)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=handle)
    return parser


def _fail(message: str) -> int:
    sys.stderr.write(f"watchfloor: {message}\n")
    return EXIT_BAD_INPUT


def handle(args: argparse.Namespace) -> int:
    """Run `watchfloor assess` from parsed arguments; returns the exit code."""
    from console.assessment_model import (
        Answers,
        AnswersError,
        MaturityModelError,
        load_answers,
        load_maturity_model,
    )
    from console.policy import PolicyError, load_policy
    from console.storage.db import DatabaseUrlError

    try:
        model = load_maturity_model()
        answers = load_answers(model, args.answers) if args.answers else Answers.none()
        proposed = load_policy(args.propose_policy) if args.propose_policy else None
    except (AnswersError, PolicyError, MaturityModelError) as exc:
        return _fail(str(exc))
    try:
        return _run(args, model, answers, proposed)
    except DatabaseUrlError as exc:
        return _fail(str(exc))


def _run(args: argparse.Namespace, model: Any, answers: Any, proposed: Any) -> int:
    from dataclasses import replace

    from console.assessment_report import render_html
    from console.assessment_service import AssessmentService
    from console.clock import RealClock
    from console.operations import PermissionDenied
    from console.runtime import Runtime, local_user

    from console.cli_identity import acting_user, prove

    runtime = Runtime(args.db, clock=RealClock())
    try:
        user = args.as_user or local_user()
        runtime.service.bootstrap_admin(local_user())
        acting = acting_user(args)
        if acting is not None:  # IdentityError: console/cli.py prints it and exits
            prove(runtime.service, acting, command="assess",
                  password_stdin=args.password_stdin)
        assessor = AssessmentService(runtime.service, model=model)
        window = timedelta(days=args.days)
        result = assessor.assess(answers, window=window)
        if proposed is not None:
            result = replace(result, shadow=assessor.shadow(
                proposed, window=window, action_classes=tuple(args.classes or ())))
        recorded = None
        if not args.no_record:
            try:
                recorded = assessor.record(result, as_user=user)
            except PermissionDenied as exc:
                sys.stderr.write(f"watchfloor: denied: {exc}\n")
                return EXIT_FAILED
        if args.html is not None:
            args.html.parent.mkdir(parents=True, exist_ok=True)
            args.html.write_text(render_html(result, model, assessor.history()),
                                 encoding="utf-8")
        if args.json:
            sys.stdout.write(json.dumps(result.as_dict() | {"recorded": recorded}) + "\n")
        else:
            sys.stdout.write(render_text(result, recorded) + "\n")
        return EXIT_OK
    finally:
        runtime.close()


def render_text(result: AssessmentResult, recorded: int | None = None) -> str:
    from console.assessment import fmt_metric
    from console.assessment_evidence import METRICS

    p = result.placement
    reach = (f"answers reach {p.answers_level}, " if p.answers_level is not None else
             "no answers, ")
    claimed = f", claimed {p.claimed_level}" if p.claimed_level is not None else ""
    lines = [f"Maturity level {p.level} - {p.name} ({reach}evidence reaches "
             f"{p.evidence_level}{claimed})", "", "Why:"]
    lines += [f"  - {r}" for r in p.reasons]
    if p.contradictions:
        lines += ["", "Evidence wins:"] + [f"  - {c}" for c in p.contradictions]
    for trap in p.traps:
        lines += ["", f"Trap at level {trap.level}: {trap.title}", f"  {trap.description}",
                  f"  (shown because {trap.because})"]
    lines += ["", "Next steps:"] + [f"  {i}. {s}" for i, s in enumerate(p.next_steps, 1)]
    ev = result.evidence
    lines += ["", f"Evidence ({ev.since:%Y-%m-%d} to {ev.until:%Y-%m-%d}):"]
    lines += [f"  {name:32} {fmt_metric(name, ev.get(name))}" for name in METRICS]
    if ev.audit_problem:
        lines.append(f"  {ev.audit_problem}")
    if result.shadow is not None:
        lines += ["", "Shadow mode: " + result.shadow.headline()]
        lines += [f"  note: {n}" for n in result.shadow.notes]
        for name, row in result.shadow.summary()["per_class"].items():
            lines.append(f"  {name:20} " + ", ".join(f"{k} {v}" for k, v in sorted(row.items())))
    if recorded is not None:
        lines += ["", f"Recorded as assessment #{recorded} (audited)."]
    return "\n".join(lines)

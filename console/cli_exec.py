"""Headless governed execution: `watchfloor recommendations | propose | approve | reject |
executions | rollback | reconcile | policy`.

Every command goes through the same service and lifecycle as the console, so the same
policy, previews, approvals and audit apply. A recommendation whose executor lives in
another process (the embedded estate lives in the console that plays it) is approved
here and queued; that console runs it on its next tick.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMANDS = ("recommendations", "propose", "approve", "reject", "executions", "rollback",
            "reconcile", "policy", "ask")


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    value: Any = raw
    if raw in ("true", "false"):
        value = raw == "true"
    elif raw.lstrip("-").isdigit():
        value = int(raw)
    return name, value


def _hash(text: str) -> str:
    """A preview hash as pasted (spaces and capitals are forgiven); anything that is not
    a whole SHA-256 is refused, so an empty one never stands for the current preview."""
    from console.execution import ExecutionError

    seen = text.strip().lower()
    if len(seen) != 64 or any(c not in "0123456789abcdef" for c in seen):
        raise ExecutionError(f"--preview-hash: expected the 64 hexadecimal digits of the "
                             f"preview you reviewed (`watchfloor recommendations --json` "
                             f"shows preview_hash), got {text!r}")
    return seen


def _positive_id(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive id, got {text!r}")
    return int(text)


def add_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    from console.cli_identity import add_actor_options, add_proof_options

    recs = sub.add_parser("recommendations", parents=[db_parent],
                          help="list recommendations with their previews and approvals")
    recs.add_argument("--state", action="append", metavar="STATE",
                      help="only these states (pending, queued, executed...); repeatable")
    recs.add_argument("--json", action="store_true", help="one JSON list on stdout")

    propose = sub.add_parser("propose", parents=[db_parent],
                             help="recommend a runbook run (shows its preview; runs nothing)")
    propose.add_argument("runbook", metavar="RUNBOOK")
    propose.add_argument("--param", type=_param, action="append", default=[],
                         metavar="NAME=VALUE")
    propose.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_proof_options(propose)
    propose.add_argument("--explain", default="", metavar="TEXT")

    approve = sub.add_parser("approve", parents=[db_parent],
                             help="approve a recommendation's preview (runs it when policy "
                                  "is satisfied)")
    approve.add_argument("id", type=_positive_id)
    approve.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_proof_options(approve)
    approve.add_argument("--preview-hash", default=None, metavar="SHA256",
                         help="the preview you reviewed; refused if it is no longer current")

    reject = sub.add_parser("reject", parents=[db_parent], help="reject a recommendation")
    reject.add_argument("id", type=_positive_id)
    reject.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_proof_options(reject)
    reject.add_argument("--reason", required=True, metavar="TEXT")

    execs = sub.add_parser("executions", parents=[db_parent],
                           help="list executed actions with their state and validation")
    execs.add_argument("--json", action="store_true")

    rollback = sub.add_parser("rollback", parents=[db_parent],
                              help="roll back an executed action")
    rollback.add_argument("id", type=_positive_id)
    rollback.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_proof_options(rollback)

    ask = sub.add_parser("ask", parents=[db_parent],
                         help="ask a question in plain language; every fact is cited")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--as", dest="as_user", default=None, metavar="USER",
                     help="who asks (answers follow that person's role; default: you)")
    add_proof_options(ask)
    ask.add_argument("--incident", type=_positive_id, default=None, metavar="ID")
    ask.add_argument("--json", action="store_true")

    reconcile = sub.add_parser("reconcile", parents=[db_parent],
                               help="settle executions a crash left in flight (never "
                                    "re-runs a step; a validation it resumes is waited "
                                    "for, up to its deadline)")
    add_actor_options(reconcile)

    policy = sub.add_parser("policy", help="show or replace the execution policy")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    show = policy_sub.add_parser("show", parents=[db_parent], help="print the policy as YAML")
    show.add_argument("--json", action="store_true")
    put = policy_sub.add_parser("set", parents=[db_parent],
                                help="replace the policy with a YAML file (admin)")
    put.add_argument("file", type=Path, metavar="FILE")
    put.add_argument("--as", dest="as_user", required=True, metavar="USER")
    put.add_argument("--reason", default="")
    add_proof_options(put)


def dispatch(args: argparse.Namespace, runtime: Any) -> int:
    from console.execution import ExecutionError
    from console.operations import PermissionDenied, Refused
    from console.policy import PolicyError

    try:
        return _run(args, runtime)
    except (ExecutionError, PolicyError) as exc:
        print(f"watchfloor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PermissionDenied as exc:
        print(f"watchfloor: denied: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Refused as exc:
        print(f"watchfloor: refused: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run(args: argparse.Namespace, runtime: Any) -> int:
    service = runtime.service
    engine = service.engine
    if args.command == "recommendations":
        recs = engine.recommendations(tuple(args.state) if args.state else None)
        if args.json:
            print(json.dumps([_rec_json(r) for r in recs], indent=2))
        for r in [] if args.json else recs:
            approvals = ", ".join(u for u, _ in r.approvals)
            print(f"#{r.id:<4} {r.state:9} conf {r.confidence:.2f} {r.risk:6} "
                  f"{r.preview.get('summary', r.runbook_id)}  [{r.requester}]"
                  f"{'  approved by ' + approvals if approvals else ''}")
        return EXIT_OK
    if args.command == "propose":
        rec_id = engine.propose(args.runbook, dict(args.param),
                                requester=f"user:{args.as_user}", explanation=args.explain)
        rec = engine.recommendation(rec_id)
        print(f"recommendation #{rec_id}: {rec.preview['summary']}")
        print(f"preview {rec.preview_hash}")
        return EXIT_OK
    if args.command == "approve":
        rec = engine.recommendation(args.id)
        if rec is None:
            from console.execution import ExecutionError

            raise ExecutionError(f"no recommendation {args.id}")
        seen = rec.preview_hash if args.preview_hash is None else _hash(args.preview_hash)
        print(f"approving #{rec.id}: {rec.preview.get('summary')} (preview {seen[:12]})")
        out = engine.approve(args.id, as_user=args.as_user, preview_hash=seen)
        print(f"policy: {out['decision']}: {'; '.join(out['reasons'])}")
        if out.get("execution"):
            execution = engine.execution(out["execution"])
            print(f"execution #{execution.id}: {execution.state}")
        elif out["state"] == "queued":
            print("queued: the console that owns its executor runs it next")
        return EXIT_OK
    if args.command == "reject":
        engine.reject(args.id, as_user=args.as_user, reason=args.reason)
        print(f"recommendation #{args.id} rejected")
        return EXIT_OK
    if args.command == "executions":
        execs = engine.executions()
        if args.json:
            print(json.dumps([_exec_json(e) for e in execs], indent=2))
        for e in [] if args.json else execs:
            rollback = "rollback available" if e.can_roll_back else ""
            print(f"#{e.id:<4} {e.state:14} {e.runbook_id:22} {e.target:14} "
                  f"{'auto' if e.autonomous else e.initiator:16} {rollback}")
        return EXIT_OK
    if args.command == "rollback":
        state = engine.rollback(args.id, as_user=args.as_user)
        print(f"execution #{args.id}: {state}")
        return EXIT_OK if state == "rolled_back" else EXIT_FAILED
    if args.command == "ask":
        return _ask(args, runtime)
    if args.command == "reconcile":
        # A validation it takes up again is seen to its end: nobody polls it after this.
        for exec_id, state in engine.reconcile(wait=True):
            print(f"execution #{exec_id}: {state}")
        return EXIT_OK
    return _policy(args, service)


def _policy(args: argparse.Namespace, service: Any) -> int:
    from console.policy import load_policy

    if args.policy_command == "show":
        data = service.policy().model_dump(mode="json")
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(data, sort_keys=False), end="")
        return EXIT_OK
    policy = load_policy(args.file)
    service.set_policy(policy, as_user=args.as_user, reason=args.reason)
    print(f"policy replaced from {args.file}")
    return EXIT_OK


def _rec_json(r: Any) -> dict[str, Any]:
    return {"id": r.id, "state": r.state, "runbook": r.runbook_id, "target": r.target,
            "params": dict(r.params), "confidence": r.confidence, "risk": r.risk,
            "requester": r.requester, "autonomous": r.autonomous,
            "explanation": r.explanation, "preview": dict(r.preview),
            "preview_hash": r.preview_hash, "approvals": [list(a) for a in r.approvals],
            "created_at": r.created_at.isoformat(),
            "expires_at": r.expires_at.isoformat() if r.expires_at else None}


def _exec_json(e: Any) -> dict[str, Any]:
    return {"id": e.id, "recommendation": e.recommendation_id, "runbook": e.runbook_id,
            "target": e.target, "state": e.state, "initiator": e.initiator,
            "autonomous": e.autonomous, "result": dict(e.result),
            "can_roll_back": e.can_roll_back, "started_at": e.started_at.isoformat(),
            "finished_at": e.finished_at.isoformat() if e.finished_at else None}


def _ask(args: argparse.Namespace, runtime: Any) -> int:
    from console.runtime import local_user

    answer = runtime.ask(args.question, user=args.as_user or local_user(),
                         incident_id=args.incident)
    if args.json:
        print(json.dumps({"question": answer.question, "intent": answer.intent,
                          "text": answer.text, "error": answer.error, "via": answer.via,
                          "facts": [{"kind": f.kind, "summary": f.summary, "ref": f.ref}
                                    for f in answer.facts],
                          "queries": [str(q) for q in answer.queries],
                          "suggestions": list(answer.suggestions)}, indent=2))
    elif answer.error:
        print(f"watchfloor: {answer.error}", file=sys.stderr)
    else:
        print(answer.text)
        for n, fact in enumerate(answer.facts, 1):
            print(f"  [{n}] {fact.ref}")
        if answer.suggestions:
            print("ask next: " + " | ".join(answer.suggestions))
    return EXIT_BAD_INPUT if answer.error else EXIT_OK

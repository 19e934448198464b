"""`watchfloor rules [--check FILE ...] [--dir DIR] [--json]`: the level-1 rules.

Listing shows what would run in this console (the shipped examples, then your folder,
where the same id wins) and whether each rule is on, so an operator can see what the
automation may do before it does it. `--check` validates files the way the console
will load them (the runbook library included) and exits 2 naming file, line and field,
so a rule can be checked in CI before it is deployed. Nothing here needs the database.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMANDS = ("rules",)


def add_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    rules = sub.add_parser("rules", parents=[db_parent],
                           help="list the level-1 rules, or check rule files")
    rules.add_argument("--check", nargs="+", type=Path, metavar="FILE",
                       help="validate these rule files (exit 2 naming file, line and field)")
    rules.add_argument("--dir", type=Path, default=None, metavar="DIR",
                       help="your rules folder (default: 'rules' in the user config "
                            "directory)")
    rules.add_argument("--json", action="store_true", help="one JSON list on stdout")


def dispatch(args: argparse.Namespace, runtime: Any = None) -> int:
    """Run `rules`; `runtime` is optional (its engine's runbook library is used if given)."""
    from console.rules_format import RuleError, load_rules, load_rules_file, user_rules_dir

    library = _library(runtime)
    try:
        if args.check:
            for path in args.check:
                checked = load_rules_file(path, library)
                _say(f"{path}: ok ({len(checked)} rule(s): "
                     f"{', '.join(r.id for r in checked)})")
            return EXIT_OK
        from console.settings_store import configured_packs

        folder = args.dir if args.dir is not None else user_rules_dir()
        packs = configured_packs()
        rules = load_rules(folder, library, packs)
    except RuleError as exc:
        sys.stderr.write(f"watchfloor: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        _say(json.dumps([_rule_json(r) for r in rules], indent=2))
        return EXIT_OK
    _say(f"# rules: shipped, then {folder} (the same id there wins)")
    _say(f"# rule packs on (settings.yaml rules.packs): {', '.join(packs) or 'none'}")
    for rule in rules:
        flags = ("on " if rule.enabled else "off") + (" dry-run" if rule.guardrails.dry_run
                                                      else "")
        _say(f"{rule.id:28} {flags:11} {_trigger(rule):44} "
             f"{' > '.join(s.do for s in rule.workflow)}  [{rule.source}]")
    return EXIT_OK


def _library(runtime: Any) -> Any:
    if runtime is not None:
        return runtime.service.engine.library
    from console.actions.runbooks import load_library

    return load_library()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _trigger(rule: Any) -> str:
    t = rule.trigger
    if t.type == "alert":
        names = ",".join(t.name)
        return f"alert {names} {'|'.join(t.state)} sev {','.join(t.severity)}"
    if t.type == "incident":
        return f"incident {'|'.join(t.state)} >= {t.min_severity.value}"
    at = ",".join(a.strftime("%H:%M") for a in t.at)
    every = f" every {t.every:g}s" if t.every else ""
    return f"schedule{' at ' + at if at else ''}{every} UTC"


def _rule_json(rule: Any) -> dict[str, Any]:
    data: dict[str, Any] = rule.model_dump(mode="json")
    data["source"] = rule.source
    return data

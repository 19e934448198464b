"""The `watchfloor` command. Exit codes: 0 success, 1 a failed check, 2 bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.cli_args import add_receiver_options, positive_float
from console.cli_identity import (
    IdentityError,
    add_actor_options,
    add_login_parsers,
    add_proof_options,
)
from console.storage.errors import DatabaseUrlError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line or in a file it names: exit 2 with the reason."""


def _http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s)://host[:port] URL, got {text!r}")
    return text.rstrip("/")


def _level(text: str) -> int:
    if text not in {"0", "1", "2", "3", "4", "5"}:
        raise argparse.ArgumentTypeError(f"autonomy level must be 0-5, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    db_parent = argparse.ArgumentParser(add_help=False)
    db_parent.add_argument("--db", metavar="URL",
                           help="SQLAlchemy database URL (default: $WATCHFLOOR_DB, then "
                                "SQLite in the user data directory)")
    parser = argparse.ArgumentParser(
        prog="watchfloor", parents=[db_parent],
        description="Watchfloor operator console. Without a command it opens the console "
                    "on the embedded demo estate.")
    parser.add_argument("--scenario", default="bad-deploy",
                        help="scenario the console plays on the embedded estate "
                             "(default: bad-deploy)")
    parser.add_argument("--speed", type=positive_float, default=10.0,
                        help="simulated seconds per wall second in the console (default 10)")
    add_receiver_options(parser, "while the console is open")
    parser.add_argument("--alertmanager", type=_http_url, default=None, metavar="URL",
                        help="poll this Alertmanager's API v2 for alerts while the console "
                             "is open (e.g. http://127.0.0.1:9093)")
    parser.add_argument("--prometheus", type=_http_url,
                        default=None, metavar="URL",
                        help="the Prometheus that runbooks' PromQL validations query "
                             "(default: $WATCHFLOOR_PROMETHEUS; headless commands use that)")
    parser.add_argument("--engine", choices=["process", "in-process"], default="process",
                        help="process (the default): the estate, the agents, the sources "
                             "and the actions run in an engine process the window starts "
                             "(or the one already leading this database), and the window "
                             "follows it; in-process: all of it runs in the window's own "
                             "process, as a console that may lead its team")
    parser.add_argument("--stay", action="store_true",
                        help="with --engine process: the engine this window starts keeps "
                             "running after the last window closes (stop it with SIGTERM)")
    parser.add_argument("--wallboard", action="store_true",
                        help="open the console with its read-only wallboard full screen: "
                             "open incidents, their states and the autonomy level in large "
                             "type, for a NOC video wall (Esc leaves it for the console)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", parents=[db_parent], help="run a scenario to its end",
                         description="Run a scenario on the simulated clock and print a "
                                     "summary (with --json, one JSON object; schema in README).")
    run.add_argument("--headless", action="store_true", help="no window (the only mode today)")
    run.add_argument("--scenario", required=True, metavar="NAME|FILE",
                     help="built-in scenario name (see `watchfloor scenarios`) or a YAML file")
    run.add_argument("--speed", type=positive_float, default=None,
                     help="pace: simulated seconds per wall second (default: as fast as it can)")
    run.add_argument("--seed", type=_seed, default=None, help="random seed (default: the file's)")
    run.add_argument("--autonomy", type=_level, default=None,
                     help="the run's autonomy: ceiling and every action class at 0-5")
    run.add_argument("--approve", choices=["all", "none"], default="none",
                     help="all: a person on call (role approver) approves every "
                          "recommendation as previewed; none (default): they wait")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--i-own-this-database", action="store_true", dest="own_database",
                     help="with --db: let the run use this database although people work "
                          "in it (an administrator, proved by password; audited). Without "
                          "it a database with users is refused")
    run.add_argument("--as", dest="as_user", default=None, metavar="ADMIN",
                     help="with --i-own-this-database: the administrator who gives the "
                          "database (default: the local user)")
    add_proof_options(run)

    from console import scenarios_cli

    scenarios_cli.add_parser(sub, db_parent)
    snap = sub.add_parser(
        "snapshot", parents=[db_parent],
        help="save PNGs of the console window and each pane at a moment of a scenario",
        description="Play the scenario (with the agent team) on a private database to "
                    "SIM_SECONDS and save the main window as screenshot.png and each pane "
                    "as pane-NAME.png in DIR, rendered offscreen (no display needed).")
    snap.add_argument("--scenario", required=True, metavar="NAME|FILE")
    snap.add_argument("--at", type=_non_negative, required=True, metavar="SIM_SECONDS")
    snap.add_argument("--out", type=Path, required=True, metavar="DIR")
    snap.add_argument("--seed", type=int, default=None)
    snap.add_argument("--theme", choices=["dark", "light"], default="dark")
    snap.add_argument("--window-only", action="store_true", help="no per-pane PNGs")

    from console import audit_cli, handoff_cli

    audit_cli.add_parser(sub, db_parent)
    handoff_cli.add_parser(sub, db_parent)

    kill = sub.add_parser("kill-switch", parents=[db_parent],
                          help="drop every agent to level 0 (on) or restore the ceiling (off)")
    kill.add_argument("state", choices=["on", "off"])
    kill.add_argument("--as", dest="as_user", required=True, metavar="USER")
    kill.add_argument("--reason", default="")
    add_proof_options(kill)

    ceiling = sub.add_parser("autonomy", parents=[db_parent],
                             help="set the global autonomy ceiling (admin)")
    ceiling.add_argument("level", type=_level)
    ceiling.add_argument("--as", dest="as_user", required=True, metavar="USER")
    ceiling.add_argument("--reason", default="")
    add_proof_options(ceiling)

    ingest = sub.add_parser("ingest", parents=[db_parent],
                            help="import alerts or changes from a file (all or nothing)",
                            description="Validate a whole file, then store what it holds in "
                                        "one transaction. Bad input: exit 2 with the reason, "
                                        "nothing stored. A file imported before stores nothing.")
    ingest.add_argument("--format", required=True, dest="fmt",
                        choices=["alertmanager", "prometheus-alerts", "pagerduty", "changes",
                                 "logs", "grafana", "zabbix", "datadog", "otlp"],
                        help="alertmanager: webhook payloads (version 4); prometheus-alerts: "
                             "GET /api/v1/alerts output; pagerduty: v3 webhook events; "
                             "changes: change events (JSON list or JSON lines); logs: JSON "
                             "lines or 'TIME LEVEL service[/instance]: message' lines; "
                             "grafana, zabbix, datadog, otlp: deliveries as those systems "
                             "send them to /providers/NAME (one per document or line)")
    ingest.add_argument("file", type=Path, metavar="FILE")
    add_actor_options(ingest)

    books = sub.add_parser("runbooks", parents=[db_parent],
                           help="list the runbook library, or check runbook files",
                           description="Without --check: the shipped runbooks. With --check: "
                                       "validate files (exit 2 naming file, line and field).")
    books.add_argument("--check", nargs="+", type=Path, metavar="FILE", default=None)

    knowledge = sub.add_parser("knowledge", help="import Markdown runbooks for retrieval")
    knowledge_sub = knowledge.add_subparsers(dest="knowledge_command", metavar="ACTION",
                                             required=True)
    k_import = knowledge_sub.add_parser(
        "import", parents=[db_parent],
        help="import '# Alert' pages with Meaning/Impact/Diagnosis/Mitigation sections "
             "(all files or none)")
    k_import.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_actor_options(k_import)
    knowledge_sub.add_parser("list", parents=[db_parent], help="list imported documents")

    from console import (
        assess_cli,
        cli_exec,
        eval_cli,
        investigate_cli,
        node_cli,
        record_cli,
        review_cli,
        rules_cli,
        users_cli,
    )
    from console.itsm import cli as itsm_cli
    from console.mcp import cli as mcp_cli

    cli_exec.add_parsers(sub, db_parent)
    eval_cli.add_parsers(sub, db_parent)
    rules_cli.add_parsers(sub, db_parent)
    itsm_cli.add_parsers(sub, db_parent)
    review_cli.add_parser(sub, db_parent)
    assess_cli.add_parser(sub)
    record_cli.add_parser(sub)
    investigate_cli.add_parser(sub)
    users_cli.add_parser(sub, db_parent)
    node_cli.add_parser(sub)
    from console import providers_cli

    providers_cli.add_parser(sub)
    from console import maintenance_cli

    maintenance_cli.add_parsers(sub, db_parent)
    mcp_cli.add_parser(sub, db_parent)

    user = sub.add_parser("user", parents=[db_parent], help="add a user or change a role (admin)")
    user.add_argument("name")
    user.add_argument("role", choices=["viewer", "operator", "approver", "admin"])
    user.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_proof_options(user)
    add_login_parsers(sub, db_parent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is not None:  # the window collects on its own terms (widgets/process.py)
        from console import collector

        collector.tune()
    try:
        return _dispatch(args)
    except (UsageError, DatabaseUrlError) as exc:
        print(f"watchfloor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except IdentityError as exc:
        print(f"watchfloor: {exc}", file=sys.stderr)
        return exc.code


def _engine_options(args: argparse.Namespace) -> Any:
    """What the engine process a window starts is asked to run; None: in-process."""
    if args.engine != "process":
        return None
    from console.engine_process import EngineOptions

    return EngineOptions(scenario=args.scenario, speed=args.speed, listen=args.listen,
                         token=args.webhook_token,
                         mappings_file=args.webhook_mappings.resolve()
                         if args.webhook_mappings is not None else None,
                         alertmanager=args.alertmanager,
                         prometheus=args.prometheus or _prometheus_from_env(),
                         zabbix=args.zabbix, stay=args.stay)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command is None:
        from console.app import run_gui  # the GUI root is imported only when it is asked for

        mappings = None
        if args.webhook_mappings is not None:
            from console.estate import ScenarioError
            from console.sources.mapping import load_mappings

            try:
                mappings = load_mappings(args.webhook_mappings)
            except ScenarioError as exc:
                raise UsageError(str(exc)) from None
        from console.cli_args import zabbix_source

        try:
            zabbix = zabbix_source(args.zabbix)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        # Settings -> Sources fill in what the flags and the environment leave open; read
        # off the GUI thread once the window is on screen (a bad file: exit 2 from there).
        return run_gui(db_url=args.db, scenario=args.scenario, speed=args.speed,
                       listen=args.listen, token=args.webhook_token, mappings=mappings,
                       alertmanager=args.alertmanager,
                       prometheus=args.prometheus or _prometheus_from_env(),
                       saved_sources=_saved_sources,
                       on_ready=_open_wallboard if args.wallboard else None,
                       zabbix=zabbix, engine=_engine_options(args))
    if args.command == "run":
        from console.estate import ScenarioError

        try:
            return _cmd_run(args)
        except ScenarioError as exc:
            raise UsageError(str(exc)) from exc
    if args.command == "snapshot":
        from console.estate import ScenarioError, load_scenario

        try:
            load_scenario(args.scenario)  # a bad name or file: exit 2 before any window
        except ScenarioError as exc:
            raise UsageError(str(exc)) from None
        from console.app import run_snapshot  # the GUI root, only when asked for

        for path in run_snapshot(args.scenario, args.at, args.out, seed=args.seed,
                                 theme=args.theme, panes=not args.window_only):
            print(path)
        return 0
    if args.command == "scenarios":
        from console import scenarios_cli

        return scenarios_cli.dispatch(args)  # files only, no database
    if args.command == "audit":
        from console import audit_cli

        return audit_cli.dispatch(args)  # opens the database itself, read-only for verify
    if args.command == "incident":
        from console import handoff_cli

        return handoff_cli.dispatch(args, _handoff_pdf_writer)  # opens the database itself
    if args.command == "ingest":
        return _cmd_ingest(args)
    if args.command == "runbooks":
        return _cmd_runbooks(args)
    if args.command == "knowledge":
        return _cmd_knowledge(args)
    if args.command == "providers":
        from console import providers_cli

        return providers_cli.run(args, _saved_sources())  # no database
    if args.command in ("login", "logout"):
        from console.cli_identity import run_session

        return run_session(args, _runtime)
    from console import (
        assess_cli,
        cli_exec,
        eval_cli,
        investigate_cli,
        node_cli,
        record_cli,
        review_cli,
        rules_cli,
        users_cli,
    )
    from console.itsm import cli as itsm_cli

    if args.command in record_cli.COMMANDS:
        return record_cli.dispatch(args)  # Prometheus and files only, no database
    if args.command in investigate_cli.COMMANDS:  # a recording only, no database
        from agents.investigator import Investigator, InvestigatorSettings

        return investigate_cli.dispatch(args, Investigator, InvestigatorSettings)
    if args.command == assess_cli.COMMAND:
        return assess_cli.handle(args)  # opens its own runtime from --db
    if args.command in review_cli.COMMANDS:
        return review_cli.dispatch(args)  # a bundle file only, no database
    if args.command in rules_cli.COMMANDS:
        return rules_cli.dispatch(args, None)  # files only, no database
    if args.command == "credentials":
        return itsm_cli.dispatch(args, None)  # the OS keyring only, no database
    if args.command == users_cli.COMMAND:
        return users_cli.run(args)  # opens its own database from --db
    if args.command == node_cli.COMMAND:
        return node_cli.run(args)  # a headless team member until SIGTERM
    if args.command == "mcp":
        from console.mcp import cli as mcp_cli

        return mcp_cli.run(args)  # proves --as, then serves until the client leaves
    from console import maintenance_cli

    for module in (cli_exec, itsm_cli, eval_cli, maintenance_cli):
        if args.command in module.COMMANDS:
            runtime = _runtime(args)
            try:
                return module.dispatch(args, runtime)
            finally:
                runtime.close()
    return _cmd_admin(args)


def _cmd_run(args: argparse.Namespace) -> int:
    from console.runtime import run_headless

    def progress(fraction: float) -> None:
        print(f"\r{fraction:6.1%}", end="", file=sys.stderr, flush=True)

    scenario = args.scenario
    if scenario.endswith((".yaml", ".yml")) and not Path(scenario).is_file():
        raise UsageError(f"{scenario}: no such scenario file")
    from console.run_guard import DatabaseInUse

    from console.cli_identity import database_owner

    owner = database_owner(args) if args.own_database else None
    try:
        summary = run_headless(scenario, db_url=args.db, seed=args.seed, speed=args.speed,
                               autonomy=args.autonomy, approve=args.approve, owner=owner,
                               progress=None if args.json or not sys.stderr.isatty()
                               else progress)
    except DatabaseInUse as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(summary))
        return EXIT_OK
    s = summary["signals"]
    print(f"scenario {summary['scenario']['name']}: {summary['sim_seconds']:.0f} s simulated "
          f"in {summary['wall_seconds']:.2f} s")
    print(f"signals: {s['total']} ({s['firing']} firing, {s['resolved']} resolved); "
          f"by severity {s['by_severity']}")
    print(f"logs: {summary['logs']['total']} ({summary['logs']['errors']} errors)")
    for c in summary["changes"]:
        print(f"change  +{c['at_s']:>7.0f}s {c['service']:18} {c['kind']:12} {c['description']}")
    for f in summary["faults"]:
        print(f"fault   +{f['at_s']:>7.0f}s {f['service']:18} {f['kind']}")
    return EXIT_OK


def _cmd_ingest(args: argparse.Namespace) -> int:
    from console.sources.alertmanager import PayloadError
    from console.sources.feeds import parse_file

    try:
        signals, changes, items, logs = parse_file(args.file, args.fmt)
    except PayloadError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    runtime = _runtime(args)
    try:
        stored = runtime.service.accept_payload(f"import:{args.fmt}", items, signals, changes,
                                                logs)
    finally:
        runtime.close()
    if not stored:
        print(f"{args.file}: imported before; nothing stored")
        return EXIT_OK
    if logs and not signals:
        templates = len({rec.template_id for rec in logs})
        print(f"{args.file}: stored {len(logs)} log line(s) in {templates} template(s)")
        return EXIT_OK
    firing = sum(1 for s in signals if s.status.value == "firing")
    print(f"{args.file}: stored {len(signals)} signal(s) ({firing} firing, "
          f"{len(signals) - firing} resolved) and {len(changes)} change(s)"
          + (f", with {len(logs)} log line(s)" if logs else ""))
    return EXIT_OK


def _cmd_runbooks(args: argparse.Namespace) -> int:
    from console.actions.runbooks import RunbookError, load_library, load_runbook

    try:
        if args.check:
            for path in args.check:
                book = load_runbook(path)
                print(f"{path}: ok ({book.id}, {book.risk} risk, {book.action_class})")
            return EXIT_OK
        for book in load_library().values():
            undo = "reversible" if book.reversible else "irreversible"
            print(f"{book.id:22} {book.risk:6} {book.action_class:16} {undo:12} {book.title}")
    except RunbookError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def _cmd_knowledge(args: argparse.Namespace) -> int:
    from console.knowledge import KnowledgeError, parse_markdown

    if args.knowledge_command == "import":
        docs = []
        for path in args.files:
            try:
                docs.append(parse_markdown(path.read_text(encoding="utf-8"), str(path)))
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{path}: cannot read: {exc}") from None
            except KnowledgeError as exc:
                raise UsageError(str(exc)) from None
    runtime = _runtime(args)
    try:
        if args.knowledge_command == "import":
            added = runtime.service.import_knowledge(docs)
            print(f"imported {added} new document(s) of {len(docs)}")
        else:
            for title, source, sections in runtime.service.knowledge():
                print(f"{title:40} {', '.join(sections):40} {source}")
    finally:
        runtime.close()
    return EXIT_OK


def _cmd_admin(args: argparse.Namespace) -> int:
    from console.operations import PermissionDenied

    runtime = _runtime(args)
    try:
        service = runtime.service
        if args.command == "kill-switch":
            status = service.set_kill_switch(args.state == "on", as_user=args.as_user,
                                             reason=args.reason)
            print(f"kill switch {'ON' if status.kill_switch else 'off'}; effective autonomy "
                  f"ceiling {status.effective_ceiling}")
        elif args.command == "autonomy":
            status = service.set_autonomy_ceiling(args.level, as_user=args.as_user,
                                                  reason=args.reason)
            print(f"autonomy ceiling {status.autonomy_ceiling}")
        elif args.command == "user":
            service.add_user(args.name, args.role, as_user=args.as_user)
            print(f"{args.name} is now {args.role}")
        return EXIT_OK
    except PermissionDenied as exc:
        print(f"watchfloor: denied: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        runtime.close()


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _handoff_pdf_writer() -> Any:
    from console.app import write_handoff_pdf  # the GUI root draws PDFs, only when asked

    return write_handoff_pdf


def _open_wallboard(window: Any) -> None:
    """`--wallboard`: once the panes are in, the wallboard goes full screen over them."""
    window.open_wallboard()


def _saved_sources() -> Any:
    from console.settings_store import SettingsError, SettingsStore

    try:
        return SettingsStore().load().sources
    except SettingsError as exc:
        raise UsageError(f"settings: {exc}") from None


def _prometheus_from_env() -> str | None:
    value = os.environ.get("WATCHFLOOR_PROMETHEUS")
    if not value:
        return None
    try:
        return _http_url(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"$WATCHFLOOR_PROMETHEUS: {exc}") from None


def _runtime(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The runtime on `--db`, once the person the command acts as is proved
    (console/cli_identity.py); IdentityError (nothing done) when they are not."""
    from console.clock import RealClock
    from console.cli_identity import acting_user, prove
    from console.runtime import Runtime, local_user

    runtime = Runtime(args.db, clock=RealClock(), prometheus=_prometheus_from_env())
    try:
        runtime.service.bootstrap_admin(local_user())
        user = acting_user(args)
        if user is not None:
            prove(runtime.service, user, command=args.command,
                  password_stdin=getattr(args, "password_stdin", False))
    except BaseException:
        runtime.close()
        raise
    return runtime


if __name__ == "__main__":
    raise SystemExit(main())

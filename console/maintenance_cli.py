"""`watchfloor maintenance start | list | extend | end`: maintenance windows, headless.

The same operations as the console's Maintenance... dialog (console/maintenance.py), so
the same roles, audit and silences apply. `start --silence` also silences the services
in the configured Alertmanager: `--alertmanager URL`, else $WATCHFLOOR_ALERTMANAGER,
else Settings -> Sources. Extending and ending a window reach the Alertmanager that
holds its silence.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
COMMANDS = ("maintenance",)
ENV_ALERTMANAGER = "WATCHFLOOR_ALERTMANAGER"


def _positive_id(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive id, got {text!r}")
    return int(text)


def _minutes(text: str) -> float:
    from console.maintenance import MAX_MINUTES

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not 1 <= value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"minutes must be 1 to {MAX_MINUTES}, got {text}")
    return value


def http_url(text: str) -> str:
    """An Alertmanager URL, checked as Settings -> Sources checks one."""
    from pydantic import ValidationError

    from console.settings_store import SourceSettings

    try:
        url = SourceSettings(alertmanager_url=text).alertmanager_url
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc.errors()[0]["msg"])) from None
    assert url is not None
    return url


def add_parsers(sub: Any, db_parent: argparse.ArgumentParser) -> None:
    from console.cli_identity import add_proof_options

    top = sub.add_parser("maintenance", help="maintenance windows: alerts kept, no "
                         "incidents, no autonomous action on the services",
                         description="Planned work on a service: while its window "
                                     "applies, the service's alerts are stored but open no "
                                     "incident and no agent or rule acts on it on its own.")
    verbs = top.add_subparsers(dest="maintenance_command", required=True, metavar="VERB")
    start = verbs.add_parser("start", parents=[db_parent], help="start a window now")
    what = start.add_mutually_exclusive_group(required=True)
    what.add_argument("--service", metavar="S", help="the service under maintenance")
    what.add_argument("--incident", type=_positive_id, metavar="N",
                      help="every service of incident N")
    start.add_argument("--reason", required=True, metavar="TEXT", help="what is being done")
    start.add_argument("--minutes", type=_minutes, required=True, metavar="M",
                       help="how long the window lasts from now")
    start.add_argument("--silence", action="store_true",
                       help="also silence the services in Alertmanager for the window")
    start.add_argument("--alertmanager", type=http_url, default=None, metavar="URL",
                       help=f"the Alertmanager for --silence (default: ${ENV_ALERTMANAGER}, "
                            "then Settings -> Sources)")
    listing = verbs.add_parser("list", parents=[db_parent],
                               help="the windows that apply or are still to come")
    listing.add_argument("--all", action="store_true", dest="include_over",
                         help="also the windows that expired or were ended")
    listing.add_argument("--json", action="store_true", help="one JSON list on stdout")
    extend = verbs.add_parser("extend", parents=[db_parent],
                              help="push a window's expiry further (its silence too)")
    extend.add_argument("id", type=_positive_id)
    extend.add_argument("--minutes", type=_minutes, required=True, metavar="M")
    end = verbs.add_parser("end", parents=[db_parent],
                           help="end a window now (its silence is expired)")
    end.add_argument("id", type=_positive_id)
    end.add_argument("--reason", default="", metavar="TEXT")
    for verb in (start, extend, end):
        verb.add_argument("--as", dest="as_user", default=None, metavar="USER",
                          help="who acts (default: the local user, $WATCHFLOOR_USER)")
        add_proof_options(verb)


def configured_alertmanager(flag: str | None) -> str | None:
    """--alertmanager, else $WATCHFLOOR_ALERTMANAGER, else Settings -> Sources; a bad
    value is a ValueError naming where it came from."""
    if flag:
        return flag
    env = os.environ.get(ENV_ALERTMANAGER)
    if env:
        try:
            return http_url(env)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"${ENV_ALERTMANAGER}: {exc}") from None
    from console.settings_store import SettingsError, SettingsStore

    try:
        return SettingsStore().load().sources.alertmanager_url
    except SettingsError as exc:
        raise ValueError(f"settings: {exc}") from None


def dispatch(args: argparse.Namespace, runtime: Any) -> int:
    from console.maintenance import MaintenanceError, MaintenanceOps
    from console.operations import PermissionDenied, Refused
    from console.runtime import local_user

    try:
        url = configured_alertmanager(getattr(args, "alertmanager", None)) \
            if getattr(args, "silence", False) else None
    except ValueError as exc:
        _err(f"watchfloor: {exc}")
        return EXIT_BAD_INPUT
    ops = MaintenanceOps(runtime.service, url)
    user = getattr(args, "as_user", None) or local_user()
    try:
        return _run(args, ops, user)
    except MaintenanceError as exc:
        _err(f"watchfloor: {exc}")
        return EXIT_BAD_INPUT
    except PermissionDenied as exc:
        _err(f"watchfloor: denied: {exc}")
        return EXIT_FAILED
    except Refused as exc:
        _err(f"watchfloor: refused: {exc}")
        return EXIT_FAILED
    finally:
        ops.close()


def _run(args: argparse.Namespace, ops: Any, user: str) -> int:
    verb = args.maintenance_command
    now = ops.service.clock.now()
    if verb == "list":
        windows = ops.windows(include_over=args.include_over)
        if args.json:
            _say(json.dumps([window_json(w, now) for w in windows], indent=2))
            return EXIT_OK
        if not windows:
            _say("no maintenance window applies" + ("" if args.include_over else
                                                    " (--all shows the past ones)"))
        for w in windows:
            _say(line(w, now))
        return EXIT_OK
    if verb == "start":
        window = ops.start(service=args.service, incident_id=args.incident,
                           reason=args.reason, minutes=args.minutes, as_user=user,
                           silence=args.silence)
    elif verb == "extend":
        window = ops.extend(args.id, args.minutes, as_user=user)
    else:
        window = ops.end(args.id, as_user=user, reason=args.reason)
    _say(line(window, ops.service.clock.now()))
    if window.silence.get("error"):
        _err(f"watchfloor: the silence was not expired: {window.silence['error']}")
    return EXIT_OK


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def line(window: Any, now: datetime) -> str:
    silence = window.silence.get("id")
    kept = f"  {window.kept} alert(s) kept" if window.kept else ""
    return (f"#{window.id:<4} {window.state(now):9} {', '.join(window.services):30} "
            f"until {_at(window.until)}  by {window.created_by}: {window.reason}"
            + (f"  [silence {silence}]" if silence else "") + kept)


def window_json(window: Any, now: datetime) -> dict[str, Any]:
    return {"id": window.id, "state": window.state(now), "services": list(window.services),
            "incident": window.incident_id, "reason": window.reason,
            "created_by": window.created_by, "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "ended_at": window.ended_at.isoformat() if window.ended_at else None,
            "ended_by": window.ended_by, "silence": window.silence or None,
            "alerts_kept": window.kept}

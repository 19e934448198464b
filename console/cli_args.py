"""Argument types the command lines share: a time, a positive number, a bounded integer. Light on purpose:
`watchfloor` builds every command's parser on its way to the console's window."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

_RELATIVE = re.compile(r"^now(?:-(\d+(?:\.\d+)?)([smhd]))?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """Unix seconds, ISO 8601 with a timezone, `now` or `now-30m` (s, m, h, d)."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        base = now or datetime.now(UTC)
        amount, unit = match.groups()
        return base - timedelta(seconds=float(amount or 0) * _UNITS[unit or "s"])
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected unix seconds, ISO 8601 or now[-N(s|m|h|d)]"
                                         f", got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. ...Z)")
    return value


def listen_address(text: str) -> tuple[str, int]:
    """[HOST:]PORT for a receiver to listen on; the host is loopback unless given."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {number}")
    return host or "127.0.0.1", number


def bounded_int(flag: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer argument from `low` (to `high`), refused naming its flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") \
                from None
        if value < low or (high is not None and value > high):
            span = f"{low}-{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{flag} must be {span}, got {value}")
        return value

    return parse


def add_receiver_options(parser: argparse.ArgumentParser, while_: str) -> None:
    """--listen, --webhook-token and --webhook-mappings, as the window and a team member
    (`watchfloor node`) both take them; `while_` says when the receiver runs."""
    parser.add_argument("--listen", type=listen_address, default=None, metavar="[HOST:]PORT",
                        help="run the webhook receiver on this port (host 127.0.0.1 unless "
                             f"given) {while_}")
    parser.add_argument("--webhook-token", default=os.environ.get("WATCHFLOOR_WEBHOOK_TOKEN"),
                        help="bearer token senders must present (default: "
                             "$WATCHFLOOR_WEBHOOK_TOKEN; none: no token needed)")
    parser.add_argument("--webhook-mappings", type=Path, default=None, metavar="FILE",
                        help="YAML file of generic JSON webhook mappings (see README)")
    parser.add_argument("--zabbix", type=http_url, default=None, metavar="URL",
                        help="poll this Zabbix frontend's API for open problems (problem.get) "
                             f"{while_}; its API token is read from $WATCHFLOOR_ZABBIX_TOKEN")


def zabbix_source(url: str | None) -> tuple[str, str] | None:
    """`--zabbix URL` with its API token from the environment (never a flag: flags show
    in the process list); ValueError, to be shown, when the token is missing."""
    if url is None:
        return None
    token = os.environ.get("WATCHFLOOR_ZABBIX_TOKEN", "").strip()
    if not token:
        raise ValueError("--zabbix needs the API token in $WATCHFLOOR_ZABBIX_TOKEN")
    return url, token


def http_url(text: str) -> str:
    """An http(s)://host[:port] address, as the sources' flags take."""
    parts = urlsplit(text.strip())
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s)://host[:port] URL, got "
                                         f"{text!r}")
    return text.strip().rstrip("/")

"""`watchfloor providers [--json]`: which monitoring systems this console can hear from.

Lists every provider found (console/sources/providers/registry.py): its name, whether
the system pushes to the receiver or is pulled, where it came from (the package and its
version: one installed with pip shows up here by itself), the receiver paths it answers
at, and its health. A pull provider given an address (`--alertmanager`, `--prometheus`,
`--zabbix`, or Settings -> Sources for the first two) is asked how it is. Exit 0 when
every provider loaded and every one asked answered; 1 when one is unusable or degraded
(the reason is in the listing); 2 on bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli_args import http_url

if TYPE_CHECKING:  # the window's parser is built before asyncio and httpx are loaded
    from console.sources.providers.base import Health, ProviderConfig
    from console.sources.providers.registry import Discovered

COMMAND = "providers"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
_BAD_STATES = ("unusable", "degraded")


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser(COMMAND, help="list the monitoring systems the console can hear "
                         "from (the watchfloor.providers entry points)",
                         description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    cmd.add_argument("--json", action="store_true", help="one JSON object on stdout")
    for name in ("alertmanager", "prometheus", "zabbix"):
        cmd.add_argument(f"--{name}", type=http_url, default=None, metavar="URL",
                         help=f"ask this {name.title()} how it is (default for Alertmanager "
                              "and Prometheus: Settings -> Sources)"
                         if name != "zabbix" else "ask this Zabbix frontend's API how it is")
    cmd.add_argument("--webhook-mappings", type=Path, default=None, metavar="FILE",
                     help="the generic JSON mappings, to list their receiver paths")


def config_from(args: argparse.Namespace, saved: Any | None) -> ProviderConfig:
    """The addresses given, the saved settings filling what the flags leave open."""
    from console.sources.providers.base import ProviderConfig

    urls = {}
    for name in ("alertmanager", "prometheus", "zabbix"):
        url = getattr(args, name, None) or getattr(saved, f"{name}_url", None)
        if url:
            urls[name] = url
    mappings: dict[str, Any] = {}
    if args.webhook_mappings is not None:
        from console.sources.mapping import load_mappings

        mappings = load_mappings(args.webhook_mappings)  # ScenarioError: bad input
    return ProviderConfig(mappings=mappings, urls=urls)


async def _checked(found: list[Discovered]) -> list[Health | None]:
    """Each usable provider's answer to `check`, asked all at once with one client."""
    import asyncio

    import httpx

    async with httpx.AsyncClient() as client:

        async def one(item: Discovered) -> Health | None:
            return await item.provider.check(client) if item.provider is not None else None

        return list(await asyncio.gather(*(one(item) for item in found)))


def listing(config: ProviderConfig) -> list[dict[str, Any]]:
    """What the command prints (and the Settings dialog shows), health asked where an
    address was given."""
    import asyncio

    from console.sources.providers.registry import discover

    found = discover(config)
    healths = asyncio.run(_checked(found)) if config.urls else [None] * len(found)
    return [item.describe(health) for item, health in zip(found, healths, strict=True)]


def run(args: argparse.Namespace, saved: Any | None = None) -> int:
    from console.yamlpos import ScenarioError

    try:
        rows = listing(config_from(args, saved))
    except ScenarioError as exc:
        sys.stderr.write(f"watchfloor providers: {exc}\n")
        return EXIT_BAD_INPUT
    if args.json:
        sys.stdout.write(json.dumps({"providers": rows}, indent=2) + "\n")
    else:
        width = max(len(row["name"]) for row in rows)
        for row in rows:
            sys.stdout.write(f"{row['name']:<{width}}  {row['kind'] or '-':<4}  "
                             f"{row['origin']:<24}  {row['health']['state']}\n")
            detail = row["health"]["detail"]
            if detail:
                sys.stdout.write(f"{'':<{width}}  {detail}\n")
    bad = any(row["health"]["state"] in _BAD_STATES for row in rows)
    return EXIT_FAILED if bad else EXIT_OK

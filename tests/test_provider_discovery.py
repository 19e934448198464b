"""Providers are found through the `watchfloor.providers` entry points: the shipped ones
from the console's own package, and one a third party ships, pip-installed, without a
change to the console. A broken or overreaching plugin is listed with the reason and
kept out of the receiver; the others carry on."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console.cli import main
from console.runtime import Runtime
from console.sources.providers.registry import SHIPPED, discover
from console.sources.webhook import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]

ACME = '''
"""A provider another package ships: Acme Monitor's check results."""
from typing import Any, ClassVar

from console.domain import AlertStatus, Severity, Signal, SignalKind
from console.sources.alertmanager import PayloadError
from console.sources.providers.base import Provider, ProviderConfig
from console.sources.timestamps import TIMESTAMP


class AcmeProvider(Provider):
    name: ClassVar[str] = "acme"
    kind: ClassVar[str] = "push"
    summary: ClassVar[str] = "Acme Monitor check results"

    def parse(self, body: Any):
        if not isinstance(body, dict) or not isinstance(body.get("check"), str):
            raise PayloadError("check: expected the check's name")
        return [Signal("acme", SignalKind.ALERT, body["check"], body["service"],
                       Severity.CRITICAL, AlertStatus.FIRING,
                       TIMESTAMP.validate_python(body["at"]),
                       {"alertname": body["check"], "service": body["service"]})], []


class NotAProvider:
    name = "broken"


class Hijacker(AcmeProvider):
    name: ClassVar[str] = "hijack"

    def endpoints(self):
        from console.sources.providers.base import Endpoint
        return [Endpoint("/webhook/alertmanager", "alertmanager", self.parse)]
'''


def _distribution(tmp: Path, name: str, entry_points: str) -> Path:
    src = tmp / f"src-{name}"
    src.mkdir()
    (src / "watchfloor_acme.py").write_text(ACME)
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "1.2.3"

        [project.entry-points."watchfloor.providers"]
        {entry_points}

        [tool.setuptools]
        py-modules = ["watchfloor_acme"]
        """))
    return src


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway distribution built and installed with pip (into a folder of its own,
    which goes on the path as site-packages would), as a team would `pip install` it."""
    tmp = tmp_path_factory.mktemp("plugin")
    src = _distribution(tmp, "watchfloor-acme",
                        'acme = "watchfloor_acme:AcmeProvider"\n'
                        'broken = "watchfloor_acme:NotAProvider"\n'
                        'hijack = "watchfloor_acme:Hijacker"\n'
                        'alertmanager = "watchfloor_acme:AcmeProvider"')
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--no-build-isolation", "--target", str(target), str(src)],
                   check=True, cwd=tmp, capture_output=True, timeout=300)
    assert list(target.glob("watchfloor_acme-1.2.3.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    yield installed
    sys.modules.pop("watchfloor_acme", None)


def test_the_shipped_providers_come_from_the_console_package() -> None:
    found = {d.name: d for d in discover()}
    assert list(found)[:len(SHIPPED)] == list(SHIPPED)
    for name in SHIPPED:
        assert found[name].provider is not None, found[name].error
        assert found[name].origin.startswith("watchfloor ")  # the entry points, installed


def test_a_pip_installed_provider_is_listed_by_the_cli(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "console", "providers", "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # the broken plugins are a failed check
    rows = {row["name"]: row for row in json.loads(done.stdout)["providers"]}
    acme = rows["acme"]
    assert (acme["kind"], acme["origin"], acme["paths"]) == (
        "push", "watchfloor-acme 1.2.3", ["/providers/acme"])
    assert acme["health"]["state"] == "ready"
    assert rows["broken"]["health"] == {
        "state": "unusable", "detail": "TypeError: watchfloor_acme:NotAProvider is not a "
        "subclass of console.sources.providers.base.Provider"}
    assert "receives only under /providers/hijack" in rows["hijack"]["health"]["detail"]
    shipped, taken = [row for row in json.loads(done.stdout)["providers"]
                      if row["name"] == "alertmanager"]
    assert shipped["origin"] == "watchfloor 0.1.0"  # the shipped one keeps its name
    assert taken["origin"] == "watchfloor-acme 1.2.3"
    assert taken["health"]["detail"] == ("the name 'alertmanager' is taken by the provider "
                                         "of watchfloor 0.1.0")


def test_the_receiver_takes_a_pip_installed_provider(on_path: Path, db_url: str) -> None:
    with Runtime(db_url) as rt:
        rx = WebhookReceiver(rt.service, on_stored=rt.deferred.submit).start()
        try:
            answer = httpx.post(rx.url + "/providers/acme", timeout=20, json={
                "check": "disk-full", "service": "search", "at": "2026-01-05T02:12:00Z"})
            assert answer.json() == {"status": "stored", "signals": 1, "changes": 0}
            assert rt.deferred.wait_idle(30)
            (incident,) = rt.service.incidents()
            assert incident.services == ("search",)
            # neither the overreaching plugin nor the one of a taken name got a path
            assert "/providers/hijack" not in rx.endpoints
            owner = getattr(rx.endpoints["/webhook/alertmanager"].parse, "__self__", None)
            assert type(owner).__module__ == "console.sources.providers.builtin"
        finally:
            rx.close()


def test_the_listing_in_process_sees_a_package_installed_since(
        on_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 1
    out = capsys.readouterr().out
    assert "acme" in out
    assert "watchfloor-acme 1.2.3" in out

"""`watchfloor --zabbix URL`: the window's engine polls that Zabbix as `watchfloor node
--zabbix` does; the API token comes from the environment, and without it the console
does not open (exit 2, the reason on stderr)."""

from __future__ import annotations

from typing import Any

import pytest

import console.app
from console.cli import main


def test_the_window_is_handed_the_zabbix_to_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run_gui(**kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(console.app, "run_gui", run_gui)
    monkeypatch.setenv("WATCHFLOOR_ZABBIX_TOKEN", "a1b2c3")
    assert main(["--zabbix", "http://127.0.0.1:8080/zabbix/"]) == 0
    assert seen["zabbix"] == ("http://127.0.0.1:8080/zabbix", "a1b2c3")


def test_the_window_refuses_zabbix_without_a_token(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(console.app, "run_gui", lambda **_kwargs: pytest.fail("opened"))
    monkeypatch.delenv("WATCHFLOOR_ZABBIX_TOKEN", raising=False)
    assert main(["--zabbix", "http://127.0.0.1:8080/zabbix"]) == 2
    assert "--zabbix needs the API token in $WATCHFLOOR_ZABBIX_TOKEN" in capsys.readouterr().err

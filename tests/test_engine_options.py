"""`watchfloor` hands what it was asked to run to the engine process it starts (the
default), or runs it in the window's own process with `--engine in-process`; secrets go
to the engine in its environment, never on its command line; and the node an engine
runs as takes every source option the window does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import console.app
from console.cli import build_parser, main
from console.engine_process import EngineOptions
from console.node_cli import add_parser


def _handed(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def run_gui(**kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(console.app, "run_gui", run_gui)
    assert main(argv) == 0
    return seen


def test_the_window_starts_an_engine_process_by_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mappings = tmp_path / "map.yaml"
    mappings.write_text(
        "mappings:\n  grafana:\n    items: alerts\n    fields: {name: labels.alertname, "
        "service: labels.service, severity: labels.severity, status: status, at: startsAt, "
        "summary: annotations.summary}\n    firing: [firing]\n")
    seen = _handed(monkeypatch, ["--scenario", "storm", "--speed", "30", "--listen", "9011",
                                 "--webhook-token", "s3cret", "--alertmanager",
                                 "http://127.0.0.1:9093", "--webhook-mappings",
                                 str(mappings)])
    engine = seen["engine"]
    assert isinstance(engine, EngineOptions)
    assert (engine.scenario, engine.speed, engine.listen) == ("storm", 30.0,
                                                              ("127.0.0.1", 9011))
    assert not engine.stay
    argv = engine.argv()
    assert argv[1:4] == ["-m", "console", "node"]
    assert "--while-windows" in argv  # it ends with the last window
    assert argv[argv.index("--alertmanager") + 1] == "http://127.0.0.1:9093"
    assert argv[argv.index("--webhook-mappings") + 1] == str(mappings.resolve())
    assert "s3cret" not in " ".join(argv)
    env = engine.env("postgresql+psycopg://wf:pw@db/wf")
    assert env["WATCHFLOOR_WEBHOOK_TOKEN"] == "s3cret"
    assert env["WATCHFLOOR_DB"] == "postgresql+psycopg://wf:pw@db/wf"
    assert "--db" not in argv  # the URL's password stays out of the process list


def test_stay_keeps_the_engine_after_the_last_window(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _handed(monkeypatch, ["--stay"])["engine"]
    assert engine.stay
    assert "--while-windows" not in engine.argv()


def test_in_process_runs_everything_in_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _handed(monkeypatch, ["--engine", "in-process"])["engine"] is None


def test_help_names_the_default() -> None:
    text = build_parser().format_help()
    assert "--engine {process,in-process}" in text
    assert "process (the default)" in " ".join(text.split())


def test_the_engine_parses_what_the_window_hands_it() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    argv = EngineOptions(scenario="storm", speed=2.5, listen=("0.0.0.0", 9011),
                         alertmanager="http://127.0.0.1:9093",
                         prometheus="http://127.0.0.1:9090",
                         zabbix="http://127.0.0.1:8080/zabbix").argv()
    args = parser.parse_args(argv[3:])
    assert (args.scenario, args.speed, args.listen) == ("storm", 2.5, ("0.0.0.0", 9011))
    assert (args.alertmanager, args.prometheus) == ("http://127.0.0.1:9093",
                                                    "http://127.0.0.1:9090")
    assert args.zabbix == "http://127.0.0.1:8080/zabbix"
    assert args.while_windows and args.name == "engine"


@pytest.mark.parametrize("value", ["-3", "20", "low"])
def test_a_bad_nice_is_refused_by_name(value: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A priority the node cannot take (raising it needs privileges; 19 is the lowest)
    is refused naming the flag, not silently ignored."""
    with pytest.raises(SystemExit) as exited:
        main(["node", "--scenario", "quiet-day", "--nice", value])
    assert exited.value.code == 2
    assert "--nice must be" in capsys.readouterr().err

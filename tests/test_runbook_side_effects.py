"""Runbooks declare what running them does to metrics for a while (their side effects),
so the team can tell its own action's wake from a new fault; the declaration is checked
like the rest of the format, with file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from console.actions.runbooks import RunbookError, load_library, load_runbook
from console.cli import main

GOOD: dict[str, Any] = {
    "id": "my-restart", "title": "Restart it", "action_class": "restart",
    "parameters": {"service": {"type": "service"}, "note": {"type": "str", "default": "x"}},
    "steps": [{"executor": "estate", "action": "restart", "args": {"service": "{service}"}}],
    "preview": "Restart {service}",
    "validation": {"check": {"service": "{service}", "metric": "error_rate", "op": "<",
                             "threshold": 0.02}, "deadline": "5m"},
    "rollback": "none", "risk": "medium", "blast_radius": 1, "owner": "me",
    "side_effects": [{"metric": "instances_ready", "change": "drops", "window": "90s"},
                     {"metric": "error_rate", "change": "rises", "window": "2m",
                      "scope": "callers"}],
}


def _write(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **changes}, sort_keys=False), encoding="utf-8")
    return path


def test_every_shipped_runbook_declares_its_side_effects() -> None:
    library = load_library()
    for book in library.values():
        if book.id != "free-disk":
            assert book.side_effects, f"{book.id} declares no side effects"
    restart = library["restart-service"]
    drops = {(e.metric, e.change, e.scope) for e in restart.side_effects}
    assert ("instances_ready", "drops", "target") in drops
    assert ("error_rate", "rises", "callers") in drops
    assert all(e.window > 0 for e in restart.side_effects)


def test_a_declared_side_effect_is_read_with_its_window(tmp_path: Path) -> None:
    book = load_runbook(_write(tmp_path))
    first, second = book.side_effects
    assert (first.metric, first.change, first.window, first.scope, first.service) == \
        ("instances_ready", "drops", 90.0, "target", "{service}")
    assert (second.scope, second.window) == ("callers", 120.0)


@pytest.mark.parametrize(("effect", "message"), [
    ({"metric": "instances_ready", "change": "vanishes", "window": "90s"}, "change"),
    ({"metric": "instances_ready", "change": "drops", "window": "0s"}, "window"),
    ({"metric": "instances_ready", "change": "drops", "window": "2d"}, "window"),
    ({"metric": "Instances Ready", "change": "drops", "window": "90s"}, "metric"),
    ({"metric": "cpu", "change": "rises", "window": "1m", "scope": "zone"}, "scope"),
    ({"metric": "cpu", "change": "rises", "window": "1m", "service": "{note}"},
     "declared service parameter"),
    ({"metric": "cpu", "change": "rises", "window": "1m", "service": "orders"},
     "declared service parameter"),
    ({"metric": "cpu", "change": "rises", "window": "1m", "colour": "red"}, "colour"),
    ({"change": "rises", "window": "1m"}, "metric"),
])
def test_a_bad_side_effect_is_named_by_file_line_and_field(tmp_path: Path,
                                                           effect: dict[str, Any],
                                                           message: str) -> None:
    path = _write(tmp_path, side_effects=[effect])
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    text = str(caught.value)
    assert str(path) in text
    assert "side_effects" in text
    assert message in text
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("side_effects"))
    reported = int(text.split(str(path) + ":", 1)[1].split(":", 1)[0])
    assert first <= reported <= len(lines)


def test_runbooks_check_refuses_a_bad_side_effect(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, side_effects=[{"metric": "cpu", "change": "up", "window": "1m"}])
    assert main(["runbooks", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "side_effects" in err and "change" in err

"""The runbook library: its format is enforced at load, its parameters are checked before
anything can use them, and every shipped runbook really works on the estate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from console.actions.runbooks import (
    RunbookError,
    check_arguments,
    load_library,
    load_runbook,
    render_step,
)
from console.cli import main
from console.estate import ACTIONS, ScenarioPlayer, load_scenario
from console.knowledge import KnowledgeError, parse_markdown
from console.runtime import Runtime
from tests.helpers import readme_yaml

GOOD = {
    "id": "my-restart", "title": "Restart it", "action_class": "restart",
    "parameters": {"service": {"type": "service"}},
    "steps": [{"executor": "estate", "action": "restart", "args": {"service": "{service}"}}],
    "preview": "Restart {service}",
    "validation": {"check": {"service": "{service}", "metric": "error_rate", "op": "<",
                             "threshold": 0.02}, "deadline": "5m"},
    "rollback": "none", "risk": "medium", "blast_radius": 1, "owner": "me",
}


def test_the_library_covers_every_estate_action() -> None:
    library = load_library()
    used = {step.action for book in library.values() for step in book.steps}
    assert used == set(ACTIONS)
    for book in library.values():
        assert book.owner
        assert book.validation.deadline > 0
        assert book.preview


def player_with(tmp_path: Path, fault: dict[str, Any] | None) -> ScenarioPlayer:
    doc = {"name": "t", "duration": "2h", "timeline": [fault] if fault else []}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    player = ScenarioPlayer(load_scenario(path))
    while player.estate.elapsed < 8 * 60:
        player.advance(60.0)
    return player


CASES = {
    "rollback-deploy": ({"service": "payments"},
                        {"at": "1m", "type": "fault", "kind": "bad_deploy", "service": "payments"}),
    "restart-service": ({"service": "inventory"}, None),
    "scale-out": ({"service": "search", "count": 3}, None),
    "scale-in": ({"service": "frontend", "count": 2}, None),
    "clear-queue": ({"service": "order-queue"},
                    {"at": "1m", "type": "fault", "kind": "queue_backlog",
                     "service": "fulfilment-worker"}),
    "flush-cache": ({"service": "product-cache"}, None),
    "failover": ({"service": "orders-db"},
                 {"at": "1m", "type": "fault", "kind": "slow_dependency", "service": "orders-db"}),
    "toggle-feature-flag": ({"service": "payments", "flag": "dynamic-pricing", "enabled": False},
                            {"at": "1m", "type": "fault", "kind": "cpu_saturation",
                             "service": "payments"}),
    "free-disk": ({"service": "search"},
                  {"at": "0s", "type": "fault", "kind": "disk_filling", "service": "search",
                   "params": {"rate_pct_per_hour": 200}}),
    "rotate-certificate": ({"service": "auth"},
                           {"at": "10m", "type": "fault", "kind": "certificate_expiry",
                            "service": "auth"}),
}


@pytest.mark.parametrize("book_id", sorted(CASES))
def test_each_shipped_runbook_runs_validates_and_rolls_back(tmp_path: Path, book_id: str) -> None:
    book = load_library()[book_id]
    given, fault = CASES[book_id]
    player = player_with(tmp_path, fault)
    params = check_arguments(book, given, set(player.estate.services))
    for step in book.steps:
        concrete = render_step(step, params)
        args = dict(concrete["args"])
        player.apply_action(concrete["action"], args.pop("service"), args)
    deadline = player.estate.elapsed + book.validation.deadline
    check = book.validation.check
    assert check is not None
    target = check.service.format(**params)
    ok = False
    while player.estate.elapsed < deadline and not ok:
        player.advance(15.0)
        value = player.estate.metrics(target)[check.metric]
        ok = {"<": value < check.threshold, ">": value > check.threshold,
              "<=": value <= check.threshold, ">=": value >= check.threshold}[check.op]
    assert ok, f"{book_id}: {check.metric} of {target} did not pass within the deadline"
    if book.reversible:
        assert book.rollback != "none"
        for step in book.rollback:
            concrete = render_step(step, params)
            args = dict(concrete["args"])
            player.apply_action(concrete["action"], args.pop("service"), args)


def test_rolling_back_a_scale_out_restores_the_instance_count(tmp_path: Path) -> None:
    book = load_library()["scale-out"]
    player = player_with(tmp_path, None)
    before = len(player.estate.services["search"].instances)
    params = check_arguments(book, {"service": "search", "count": 2})
    for steps in (book.steps, book.rollback):
        assert steps != "none"
        for step in steps:
            concrete = render_step(step, params)
            args = dict(concrete["args"])
            player.apply_action(concrete["action"], args.pop("service"), args)
    assert len(player.estate.services["search"].instances) == before


@pytest.mark.parametrize(("given", "message"), [
    ({"service": "search; rm -rf /"}, "not a plain name"),
    ({"service": "$(reboot)"}, "not a plain name"),
    ({"service": "no-such-service"}, "no service"),
    ({"service": "search", "count": 99}, "outside 1..10"),
    ({"service": "search", "count": "3"}, "expected an integer"),
    ({"service": "search", "count": True}, "expected an integer"),
    ({"service": "search", "extra": 1}, "unknown parameter"),
    ({}, "service is required"),
])
def test_parameters_are_checked_against_their_declared_types(given: dict[str, Any],
                                                             message: str) -> None:
    book = load_library()["scale-out"]
    with pytest.raises(ValueError, match=message):
        check_arguments(book, given, {"search", "cart"})


@pytest.mark.parametrize(("change", "line_key", "field"), [
    ({"steps": [{"executor": "estate", "action": "reboot", "args": {"service": "x"}}]},
     "steps", "steps.0"),
    ({"preview": "Restart {svc}"}, None, "not declared parameters"),
    ({"steps": [{"executor": "command", "argv": ["systemctl", "restart", "x{service}"]}]},
     "steps", "whole"),
    ({"steps": [{"executor": "command", "argv": ["{service}", "--now"]}]}, "steps",
     "program"),
    ({"steps": [{"executor": "estate", "action": "restart",
                 "args": {"service": "{service}", "force": "yes"}}]}, "steps", "force"),
    ({"validation": {"promql": "up == 0", "check": GOOD["validation"]["check"]}},
     "validation", "exactly one"),
    ({"risk": "extreme"}, "risk", "risk"),
    ({"blast_radius": 0}, "blast_radius", "blast_radius"),
    ({"rollback": None}, "rollback", "rollback"),
])
def test_invalid_runbooks_are_refused_with_file_line_and_field(
        tmp_path: Path, change: dict[str, Any], line_key: str | None, field: str) -> None:
    doc = {**GOOD, **change}
    path = tmp_path / "book.yaml"
    text = yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text)
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    assert field in message
    if line_key is not None:
        line = next(n for n, row in enumerate(text.splitlines(), 1)
                    if row.startswith(f"{line_key}:"))
        assert int(message.split(":")[1]) >= line


def test_cli_lists_and_checks_runbooks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["runbooks"]) == 0
    assert "rollback-deploy" in capsys.readouterr().out
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert main(["runbooks", "--check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, "risk": "extreme"}))
    assert main(["runbooks", "--check", str(good), str(bad)]) == 2
    assert f"{bad}:" in capsys.readouterr().err


# --- Markdown runbooks as knowledge --------------------------------------------------------

PAGE = """# HighErrorRate

## Meaning
The service fails more than 5% of its requests.

## Impact
Users see errors.

## Diagnosis
Compare with recent deploys.

```
## not a heading, this is inside a code block
```

## Mitigation
Roll back the last deploy if it lines up with the jump.

## Owner
payments team
"""


def test_markdown_runbook_becomes_a_document() -> None:
    doc = parse_markdown(PAGE, "HighErrorRate.md")
    assert doc.alert == "HighErrorRate"
    assert set(doc.sections) == {"meaning", "impact", "diagnosis", "mitigation"}
    assert "inside a code block" in doc.sections["diagnosis"]
    assert doc.extra == {"owner": "payments team"}


@pytest.mark.parametrize(("text", "message"), [
    ("no title\n## Meaning\nx\n", "expected a '# Title'"),
    ("# T\n## Notes\nx\n", "none of the sections"),
    ("# T\n## Meaning\nx\n## Meaning\ny\n", "appears twice"),
    ("# T\n## Meaning\n\x00\n", "NUL"),
])
def test_bad_markdown_is_refused(text: str, message: str) -> None:
    with pytest.raises(KnowledgeError, match=message):
        parse_markdown(text, "page.md")


def test_knowledge_import_is_all_or_nothing_and_idempotent(tmp_path: Path, db_url: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "HighErrorRate.md"
    good.write_text(PAGE)
    bad = tmp_path / "bad.md"
    bad.write_text("# only a title\n")
    assert main(["knowledge", "import", str(good), str(bad), "--db", db_url]) == 2
    assert str(bad) in capsys.readouterr().err
    with Runtime(db_url) as rt:
        assert rt.service.knowledge() == []
    assert main(["knowledge", "import", str(good), "--db", db_url]) == 0
    assert main(["knowledge", "import", str(good), "--db", db_url]) == 0
    assert "imported 0 new document(s) of 1" in capsys.readouterr().out
    with Runtime(db_url) as rt:
        assert [title for title, _, _ in rt.service.knowledge()] == ["HighErrorRate"]


def test_the_readme_runbook_example_is_valid(tmp_path: Path) -> None:
    block = readme_yaml("id: scale-out")
    path = tmp_path / "example.yaml"
    path.write_text(block)
    assert load_runbook(path).id == "scale-out"

"""Generated scenarios (console/scenario_gen.py) and `watchfloor scenarios generate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.estate import load_estate_spec, load_scenario
from console.estate.faults import FAULT_KINDS
from console.estate.player import ScenarioPlayer
from console.estate.spec import ChangeEntry, FaultEntry, LoadEntry, Scenario
from console.fault_scoring import no_safe_fix
from console.scenario_gen import (
    FAMILIES,
    GeneratorError,
    family_of,
    generate,
    split_of,
    write,
)

COUNT = 35  # five of each family


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Scenario]:
    folder = tmp_path_factory.mktemp("generated")
    return [load_scenario(str(p)) for p in write(COUNT, 2000, folder)]


def _faults(s: Scenario) -> list[FaultEntry]:
    return [e for e in s.timeline if isinstance(e, FaultEntry)]


def _by_family(generated: list[Scenario], family: str) -> list[Scenario]:
    return [s for s in generated if family_of(s.description) == family]


def _kinds() -> dict[str, str]:
    return {n: s.kind for n, s in load_estate_spec("default").services.items()}


def test_every_file_loads_validates_and_names_its_family(generated: list[Scenario]) -> None:
    assert len(generated) == COUNT
    assert len({s.name for s in generated}) == COUNT
    for s in generated:
        assert family_of(s.description) in FAMILIES, s.description
        assert s.name.endswith(family_of(s.description) or "?")


def test_the_same_seed_writes_the_same_files_and_another_seed_others(tmp_path: Path) -> None:
    first = [p.read_bytes() for p in write(12, 2001, tmp_path / "a")]
    again = [p.read_bytes() for p in write(12, 2001, tmp_path / "b")]
    other = [p.read_bytes() for p in write(12, 2002, tmp_path / "c")]
    assert first == again
    assert first != other


def test_a_modest_count_covers_every_family_and_fault_kind(generated: list[Scenario]) -> None:
    assert {family_of(s.description) for s in generated} == set(FAMILIES)
    assert {f.kind for s in generated for f in _faults(s)} == set(FAULT_KINDS)


def test_double_faults_overlap_on_two_services(generated: list[Scenario]) -> None:
    doubles = _by_family(generated, "double")
    assert doubles
    for s in doubles:
        first, second = _faults(s)
        assert first.service != second.service
        assert 60 <= second.at - first.at <= 6 * 60  # before the first can be over
        if first.kind == second.kind == "network_partition":
            assert first.params["zone"] != second.params["zone"]


def test_triple_faults_come_minutes_apart_on_three_services(generated: list[Scenario]) -> None:
    for s in _by_family(generated, "triple"):
        faults = _faults(s)
        assert len({f.service for f in faults}) == 3
        gaps = [b.at - a.at for a, b in zip(faults, faults[1:], strict=False)]
        assert all(8 * 60 - 5 <= g <= 12 * 60 + 5 for g in gaps), gaps


def test_faultless_families_inject_no_fault(generated: list[Scenario]) -> None:
    for family in ("quiet", "pulse"):
        for s in _by_family(generated, family):
            assert not _faults(s)
            assert any(isinstance(e, LoadEntry) for e in s.timeline)


def test_herrings_put_a_harmless_deploy_elsewhere_just_before_the_fault(
        generated: list[Scenario]) -> None:
    for s in _by_family(generated, "herring"):
        (fault,) = _faults(s)
        deploys = [e for e in s.timeline if isinstance(e, ChangeEntry) and e.kind == "deploy"]
        assert any(d.service != fault.service and 0 < fault.at - d.at <= 3 * 60 + 5
                   for d in deploys)


def test_remedyless_faults_have_no_safe_fix_and_no_action_ends_them(
        generated: list[Scenario]) -> None:
    """Every remediation the estate knows, tried on the faulty service: the fault goes on."""
    from console.estate.actions import ACTIONS, ActionRefused

    kinds = _kinds()
    remedyless = _by_family(generated, "remedyless")
    assert remedyless
    params: dict[str, dict[str, Any]] = {"toggle_feature_flag": {"flag": "x", "enabled": False}}
    for s in remedyless:
        (fault,) = _faults(s)
        assert no_safe_fix({"kind": fault.kind, "service": fault.service,
                            "params": fault.params}, kinds)
        for action in ACTIONS:
            player = ScenarioPlayer(s)
            player.advance(fault.at + 120)
            try:
                player.apply_action(action, fault.service, params.get(action))
            except ActionRefused:
                pass
            player.advance(600)
            (live,) = player.estate.faults
            assert live.active, f"{s.name}: {action} ended {fault.kind}"


def test_every_injected_fault_raises_an_alert(generated: list[Scenario]) -> None:
    """Generated faults are visible: while each one is active, some alert fires."""
    for s in generated:
        if not _faults(s):
            continue
        player = ScenarioPlayer(s)
        fired: set[str] = set()
        while not player.finished:
            for sig in player.advance(60).signals:
                if sig.status.value == "firing":
                    fired.add(sig.service)
        assert fired, f"{s.name}: no alert fired"


def test_pulses_stay_under_capacity(generated: list[Scenario]) -> None:
    """A pulse or a quiet day's bump never drives a service past what it can serve."""
    for s in [*_by_family(generated, "pulse"), *_by_family(generated, "quiet")]:
        player = ScenarioPlayer(s)
        worst = 0.0
        while not player.finished:
            player.advance(30)
            worst = max(worst, *(svc.metrics.get("saturation", 0.0)
                                 for svc in player.estate.services.values()))
        assert worst < 1.0, f"{s.name}: saturation {worst:.2f}"


def test_the_seed_split() -> None:
    assert split_of(1000) == split_of(1999) == "fit"
    assert split_of(2000) == split_of(123456) == "report"
    assert split_of(7) == "other"


def test_bad_requests_are_named(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="--count"):
        generate(0, 2000)
    (tmp_path / "file").write_text("x")
    with pytest.raises(GeneratorError, match="not a folder"):
        write(2, 2000, tmp_path / "file")
    with pytest.raises(GeneratorError, match="unknown estate"):
        generate(2, 2000, estate="nowhere")


# --- the command -------------------------------------------------------------------------

def test_generate_command_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    out = tmp_path / "gen"
    assert main(["scenarios", "generate", "--count", "3", "--seed", "1500",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert len(sorted(out.glob("*.yaml"))) == 3
    assert printed.out.split() == [str(p) for p in sorted(out.glob("*.yaml"))]
    assert "fit split" in printed.err


def test_generate_command_bad_input_exits_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad_count:
        main(["scenarios", "generate", "--count", "0", "--out", str(tmp_path)])
    assert bad_count.value.code == 2
    assert "--count must be 1-" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["scenarios", "generate", "--count", "2", "--out",
                 str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_scenarios_without_an_action_still_lists(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    assert "bad-deploy" in capsys.readouterr().out

"""The proactive check pack on the embedded estate: a certificate near expiry, a disk
filling and an error budget burning each open a low-severity incident, with the numbers
behind it, before the estate's own alert fires (or where it never would)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from console.cli import main
from console.domain import AlertStatus, Severity, Signal
from console.rules_format import RuleError, load_rules, load_rules_text
from console.runtime import Runtime, ScenarioDriver
from console.settings_store import SettingsError, SettingsStore

PACK = Path(__file__).resolve().parents[1] / "resources" / "rule_packs" / "proactive-checks.yaml"


@pytest.fixture
def packs_on(tmp_path: Path) -> None:
    """settings.yaml switches the pack on, as Tools -> Settings writes it."""
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "settings.yaml").write_text(yaml.safe_dump(
        {"rules": {"packs": ["proactive-checks"]}}))


def _scenario(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)


def _alerts(runtime: Runtime, source_prefix: str) -> list[Signal]:
    return [s for s in runtime.service.recent_signals(5000)
            if s.source.startswith(source_prefix)]


def _run_until(driver: ScenarioDriver, done: Callable[[], Any], limit_s: float) -> float:
    """Step a minute at a time until `done()`; returns the simulated seconds it took."""
    elapsed = 0.0
    while not done():
        assert elapsed < limit_s, "the condition never came"
        driver.step(60)
        elapsed += 60
    return elapsed


def _warning_incident(runtime: Runtime, name: str, service: str) -> Any:
    warned = [s for s in _alerts(runtime, "rule:") if s.name == name and s.service == service
              and s.status is AlertStatus.FIRING]
    if not warned:
        return None
    return next((i for i in runtime.service.incidents() if service in i.services), None)


@pytest.mark.usefixtures("packs_on")
def test_a_filling_disk_opens_an_incident_before_its_alert(runtime: Runtime) -> None:
    driver = ScenarioDriver(runtime, "disk-filling", seed=13)
    found_at = _run_until(
        driver, lambda: _warning_incident(runtime, "DiskWillFill", "search"), 3600)
    incident = _warning_incident(runtime, "DiskWillFill", "search")
    assert incident.severity is Severity.INFO
    assert not [s for s in _alerts(runtime, "estate") if s.service == "search"]  # no alert yet
    [warning] = [s for s in _alerts(runtime, "rule:disk-filling-forecast")]
    assert 30 < float(warning.annotations["per_hour"]) < 60  # the fault fills 45 %/h
    assert 0 < float(warning.annotations["hours_left"]) < 6
    assert "reaches 97" in warning.annotations["summary"]
    # The estate's own alert comes later.
    alert_at = found_at + _run_until(driver, lambda: [
        s for s in _alerts(runtime, "estate") if s.name == "DiskSpaceLow"], 3 * 3600)
    assert found_at < alert_at
    run = next(e for e in runtime.service.audit_entries()
               if e.action == "rule.run" and e.actor == "rule:disk-filling-forecast"
               and e.outputs["steps"][0]["findings"])
    assert run.outputs["steps"][0]["findings"] == ["search"]


@pytest.mark.usefixtures("packs_on")
def test_a_certificate_near_expiry_opens_an_incident_days_before_its_alert(
        runtime: Runtime, tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "name: cert-soon\nestate: default\nduration: 1h\n"
                                   "baselines: {auth: {cert_days: 5}}\n")
    driver = ScenarioDriver(runtime, scenario)
    _run_until(driver, lambda: _warning_incident(
        runtime, "CertificateExpiresWithin14Days", "auth"), 1800)
    incident = _warning_incident(runtime, "CertificateExpiresWithin14Days", "auth")
    assert (incident.severity, incident.services) == (Severity.INFO, ("auth",))
    [warning] = _alerts(runtime, "rule:certificate-expiry-check")
    assert 110 < float(warning.annotations["value"]) < 120  # hours left: 5 days
    # The estate's alert waits until 72 hours are left: nothing from it.
    assert not [s for s in _alerts(runtime, "estate") if s.name == "CertificateExpiringSoon"]


@pytest.mark.usefixtures("packs_on")
def test_an_error_budget_burning_under_every_alert_threshold_opens_an_incident(
        runtime: Runtime, tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "name: slow-burn\nestate: default\nduration: 3h\n"
                                   "seed: 5\ntimeline:\n  - {at: 0s, type: fault, kind: "
                                   "bad_deploy, service: payments, params: {error: 0.012, "
                                   "latency_ms: 0}}\n")
    driver = ScenarioDriver(runtime, scenario)
    _run_until(driver, lambda: _warning_incident(runtime, "ErrorBudgetBurning", "payments"),
               2 * 3600)
    incident = _warning_incident(runtime, "ErrorBudgetBurning", "payments")
    assert incident.severity is Severity.INFO
    warning = next(s for s in _alerts(runtime, "rule:error-budget-burn")
                   if s.service == "payments")
    assert float(warning.annotations["burn_long"]) >= 2
    assert float(warning.annotations["burn_short"]) >= 2
    assert not [s for s in _alerts(runtime, "estate") if "ErrorRate" in s.name]


@pytest.mark.usefixtures("packs_on")
def test_a_quiet_day_warns_of_nothing(runtime: Runtime) -> None:
    driver = ScenarioDriver(runtime, "quiet-day", seed=3)
    for _ in range(75):
        driver.step(60)
    assert _alerts(runtime, "rule:") == []
    runs = [e for e in runtime.service.audit_entries() if e.action == "rule.run"]
    assert runs
    assert all(e.outputs["result"] == "completed" for e in runs)


def test_a_warning_that_clears_resolves_its_signal(runtime: Runtime,
                                                   tmp_path: Path) -> None:
    from console.rules import RuleEngine

    rules = load_rules_text("rules:\n  - id: hot\n    trigger: {type: schedule, every: 1m}\n"
                            "    workflow:\n      - {do: expiry, alert: Low, metric: x, "
                            "below: 10}\n", "hot.yaml")

    class Metrics:
        value = 5.0

        def services(self) -> list[str]:
            return ["a"]

        def latest(self, service: str) -> dict[str, float]:
            return {"x": self.value}

        def series(self, *_args: Any) -> list[Any]:
            return []

    sent: list[Signal] = []
    engine = RuleEngine(runtime.service, rules)
    engine.metrics, engine.emit = Metrics(), sent.extend
    from datetime import timedelta

    engine.tick(runtime.clock.now() + timedelta(minutes=1))
    engine.tick(runtime.clock.now() + timedelta(minutes=2))  # still low: nothing new
    engine.metrics.value = 50.0
    engine.tick(runtime.clock.now() + timedelta(minutes=3))
    assert [(s.service, s.status) for s in sent] == [("a", AlertStatus.FIRING),
                                                     ("a", AlertStatus.FIRING),
                                                     ("a", AlertStatus.RESOLVED)]
    # A restart remembers what is still firing from the audit, so a clear resolves it.
    engine.metrics.value = 5.0
    engine.tick(runtime.clock.now() + timedelta(minutes=4))
    restarted = RuleEngine(runtime.service, rules)
    restarted.metrics, restarted.emit = Metrics(), sent.extend
    restarted.metrics.value = 50.0
    restarted.tick(runtime.clock.now() + timedelta(minutes=5))
    assert sent[-1].status is AlertStatus.RESOLVED


def test_the_pack_passes_rules_check_and_bad_checks_are_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--check", str(PACK)]) == 0
    assert "3 rule(s)" in capsys.readouterr().out
    with pytest.raises(RuleError, match="short window must be shorter"):
        load_rules_text("rules:\n  - id: b\n    trigger: {type: schedule, every: 5m}\n"
                        "    workflow:\n      - {do: burn_rate, alert: B, objective: 0.99, "
                        "factor: 2, long: 5m, short: 1h}\n", "bad.yaml")
    with pytest.raises(RuleError, match="no rule pack 'nope'"):
        load_rules(None, None, packs=["nope"])


def test_packs_are_switched_on_in_settings_and_listed(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    store = SettingsStore(tmp_path / "config" / "settings.yaml")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("rules: {packs: [nope]}\n")
    with pytest.raises(SettingsError, match="no rule pack 'nope'"):
        store.load()
    store.path.write_text("rules: {packs: [proactive-checks]}\n")
    assert store.load().rules.packs == ("proactive-checks",)
    assert main(["rules"]) == 0
    listed = capsys.readouterr().out
    assert "disk-filling-forecast" in listed
    assert "rule_packs/proactive-checks.yaml" in listed

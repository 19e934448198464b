"""The embedded estate: a simulated production estate that stands in for a real one.

Agents never import this package (an import-linter contract checks it); they see the
estate only through sources (its alerts, metrics, logs, changes) and executors.
"""

from console.estate.actions import ACTIONS, ActionRefused, ActionResult
from console.estate.faults import FAULT_KINDS
from console.estate.model import Estate
from console.estate.player import PlayerOutput, ScenarioPlayer
from console.estate.spec import (
    EstateSpec,
    Scenario,
    builtin_scenarios,
    load_estate_spec,
    load_scenario,
)
from console.yamlpos import ScenarioError

__all__ = ["ACTIONS", "FAULT_KINDS", "ActionRefused", "ActionResult", "Estate", "EstateSpec",
           "PlayerOutput", "Scenario", "ScenarioError", "ScenarioPlayer", "builtin_scenarios",
           "load_estate_spec", "load_scenario"]

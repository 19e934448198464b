"""A partition of one zone is one cause named as that zone: the investigator sees, in
the zone labels its alert sources carry, several services losing instances in the
same zone at once, and the stored cause keeps the zone, whichever service led."""

from __future__ import annotations

from console.runtime import Runtime, ScenarioDriver
from console.storage.repos_causes import CauseRepo


def _causes_when_recommended(runtime: Runtime, scenario: str) -> list:  # type: ignore[type-arg]
    driver = ScenarioDriver(runtime, scenario, agents=True)
    engine = runtime.service.engine
    while not engine.recommendations(("pending",)) and driver.elapsed < 1800:
        driver.step(30.0)
    [rec] = engine.recommendations(("pending",))
    assert rec.incident_id is not None
    with runtime.service.db.sessions() as session:
        return CauseRepo().causes(session, rec.incident_id)


def test_a_zone_wide_partition_is_stored_as_the_zones_cause(runtime: Runtime) -> None:
    [cause] = _causes_when_recommended(runtime, "storm")
    assert cause.fault_class == "network_partition"
    assert cause.zone == "b"


def test_one_services_cause_names_no_zone(runtime: Runtime) -> None:
    [cause] = _causes_when_recommended(runtime, "bad-deploy")
    assert (cause.service, cause.zone) == ("payments", "")

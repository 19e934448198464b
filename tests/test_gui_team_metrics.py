"""A following console draws the leading console's metrics (widgets/remote_metrics.py): its
Services table, Metrics pane and incident plot show the samples the leader stored, both
those stored before the window opened and those the change feed names afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication
from sqlalchemy import select

from console.events import EstateSnapshot, RemoteChange
from console.metric_samples import SampleRecorder
from console.runtime import Runtime, ScenarioDriver
from console.storage.models import ChangeFeedRow
from console.team_sync import changes_from_dict

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")
TIMEOUT_MS = 10_000


@contextmanager
def leading(db_url: str) -> Iterator[tuple[Runtime, ScenarioDriver, list[EstateSnapshot]]]:
    """Another console on the same database playing bad-deploy, storing its samples as a
    leading console does (console/leading.py); yields what it published."""
    with Runtime(db_url) as other:
        driver = ScenarioDriver(other, "bad-deploy", seed=7)
        recorder = SampleRecorder(other.db).start()
        published: list[EstateSnapshot] = []
        other.bus.subscribe(EstateSnapshot, recorder.offer)
        other.bus.subscribe(EstateSnapshot, published.append)
        try:
            yield other, driver, published
        finally:
            recorder.stop()


def _feed(runtime: Any, after: int = 0) -> list[RemoteChange]:
    """The leader's feed rows as this console's listener would republish them."""
    with runtime.db.sessions() as session:
        rows = session.execute(select(ChangeFeedRow).where(ChangeFeedRow.seq > after)
                               .order_by(ChangeFeedRow.seq)).scalars().all()
        return [RemoteChange(r.operation, changes_from_dict(r.changes), r.initiator,
                             origin=r.origin, seq=r.seq, committed_at=r.at) for r in rows]


def _shows(window: Any, qtbot: Any, published: list[EstateSnapshot],
           incident_services: Any) -> None:
    latest = published[-1]
    services = window.services_pane.model
    assert sorted(services.service_at(r) for r in range(services.rowCount())) == \
        sorted(latest.metrics)
    for name, values in latest.metrics.items():
        assert services.metrics_of(name) == pytest.approx(dict(values))
    history = window.metrics_pane.history
    for name in latest.metrics:
        t, errors, _p99 = history.series(name)
        assert list(t) == [e.at.timestamp() for e in published]
        assert errors[-1] == pytest.approx(latest.metrics[name]["error_rate"] * 100.0)
    window.show_dock("metrics")  # drawn when on screen
    window.services_pane.select_service("payments")
    pane = window.metrics_pane
    qtbot.waitUntil(lambda: len(pane.error_curve.xData if pane.error_curve.xData is not None
                                else ()) == len(published),
                    timeout=TIMEOUT_MS)  # redrawn within a second of the newest
    assert pane.title.text().startswith("payments \u2014 error ")
    incidents = window.incidents_pane
    window.show_dock("incidents")
    incidents.draw_plot_now()
    assert incidents._curves, "the incident's services are plotted"
    assert set(incidents._curves) <= set(incident_services)
    for name, curve in incidents._curves.items():
        x, y = curve.getData()
        assert x[-1] == published[-1].at.timestamp()
        assert np.allclose(y, history.series(name)[1], equal_nan=True)


def test_a_following_window_draws_the_leaders_metrics_as_the_feed_names_them(
        runtime: Any, console: Any, qtbot: Any, db_url: str, qtmodeltester: Any) -> None:
    window = console(None)  # no estate here: another console leads
    services = window.services_pane.model
    assert services.rowCount() == 0
    with leading(db_url) as (other, driver, published):
        while not other.service.incidents():
            driver.step(15.0)
        for _ in range(3):
            driver.step(15.0)
    opened = other.service.incidents()[0]
    QApplication.processEvents()
    assert services.rowCount() == 0  # nothing of it here until the feed says so
    for change in _feed(runtime):  # the incident, its records and the samples
        runtime.bus.publish(change)
    qtbot.waitUntil(lambda: window.incidents_pane.model.rowCount() == 1, timeout=TIMEOUT_MS)
    window.incidents_pane.select_incident(opened.id)
    qtbot.waitUntil(lambda: len(window.metrics_pane.history.series("payments")[0])
                    == len(published), timeout=TIMEOUT_MS)
    _shows(window, qtbot, published, opened.services)
    qtmodeltester.check(services)
    # The same feed told twice (a catch-up after a reconnect) draws nothing twice.
    for change in _feed(runtime):
        runtime.bus.publish(change)
    qtbot.wait(300)
    assert len(window.metrics_pane.history.series("payments")[0]) == len(published)


def test_a_window_opening_as_a_follower_draws_the_stored_past_at_once(
        runtime: Any, console: Any, qtbot: Any, db_url: str) -> None:
    with leading(db_url) as (other, driver, published):
        while not other.service.incidents():
            driver.step(15.0)
        driver.step(15.0)
    opened = other.service.incidents()[0]
    seen = max(c.seq for c in _feed(runtime))
    window = console(None)
    window.incidents_pane.select_incident(opened.id)
    qtbot.waitUntil(lambda: len(window.metrics_pane.history.series("payments")[0])
                    == len(published), timeout=TIMEOUT_MS)
    _shows(window, qtbot, published, opened.services)
    # What the leader stores next comes after the past, in order.
    with Runtime(db_url) as other:
        recorder = SampleRecorder(other.db).start()
        later = EstateSnapshot(published[-1].at + (published[-1].at - published[-2].at),
                               dict(published[-1].metrics))
        recorder.offer(later)
        recorder.stop()
    for change in _feed(runtime, after=seen):
        runtime.bus.publish(change)
    qtbot.waitUntil(lambda: len(window.metrics_pane.history.series("payments")[0])
                    == len(published) + 1, timeout=TIMEOUT_MS)
    assert window.metrics_pane.history.series("payments")[0][-1] == later.at.timestamp()

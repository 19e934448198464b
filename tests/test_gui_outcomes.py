"""The outcomes dashboard over a known history: current figures, plots over time,
the latest eval, and refreshes when operations change what the KPIs count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from console.events import OpChanges, OperationDone
from console.kpis import Kpis
from console.service import WatchfloorService
from console.storage.models import IncidentRow
from tests.test_kpis import NOW, at, history, service  # noqa: F401  (fixtures)
from widgets.bridge import BusBridge
from widgets.outcomes_pane import OutcomesPane, duration, percent

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


@pytest.fixture
def pane(history: WatchfloorService, qtbot: Any) -> Iterator[OutcomesPane]:  # noqa: F811
    bridge = BusBridge(history.bus)
    widget = OutcomesPane(Kpis(history), bridge, debounce_ms=10)
    bridge.setParent(widget)
    qtbot.addWidget(widget)
    widget.resize(1100, 800)
    widget.show()
    qtbot.waitUntil(lambda: widget.report is not None, timeout=10_000)
    yield widget
    widget.shutdown()
    bridge.close()


def test_formats() -> None:
    assert [duration(v) for v in (None, 45, 245, 4800, 2 * 86400 + 3 * 3600)] == \
        ["\u2014", "45s", "4m 05s", "1h 20m", "2d 3h"]
    assert (percent(None), percent(0.3333), percent(1.0)) == ("\u2014", "33%", "100%")


def test_shows_the_current_numbers_and_the_latest_eval(pane: OutcomesPane) -> None:
    values = {key: tile.value.text() for key, tile in pane.tiles.items()}
    assert values == {"mttr": "20m 00s", "detect": "2m 20s", "diagnose": "1m 30s",
                      "auto": "50%", "rollback": "33%", "noise": "4", "repeat": "33%",
                      "approvals": "1"}
    assert pane.tiles["approvals"].detail.text() == "oldest 15m 00s"
    assert pane.tiles["noise"].detail.text() == "12 alerts \u2192 3 incident(s)"
    assert pane.tiles["auto"].detail.text() == "1 of 2 resolved"
    assert "Latest eval #1" in pane.eval_label.text()
    assert "top-1 <b>90%</b>" in pane.eval_label.text()
    assert "2 scenario(s)" in pane.eval_label.text()


def test_plots_the_buckets(pane: OutcomesPane) -> None:
    x, y = pane.curves["mttr_s"].getData()
    assert len(x) == 25
    hour = pane.report.bucket_s if pane.report else 0
    by_x = dict(zip(x.tolist(), y.tolist(), strict=True))
    assert by_x[at(3600).timestamp() + hour / 2] == 30.0  # minutes
    assert by_x[at(3 * 3600).timestamp() + hour / 2] == 10.0
    assert np.isnan(by_x[at(5 * 3600).timestamp() + hour / 2])  # a quiet hour is a gap
    _, rates = pane.curves["rollback_rate"].getData()
    assert np.nanmax(rates) == 50.0  # percent
    heights = pane.noise_bars.opts["height"]
    assert sorted(h for h in heights if h) == [4.0, 4.0]


def test_refreshes_when_an_operation_changes_incidents(pane: OutcomesPane, qtbot: Any,
                                                       history: WatchfloorService  # noqa: F811
                                                       ) -> None:
    with history.db.sessions() as s:
        s.add(IncidentRow(title="cart down", severity="critical", state="open",
                          services=["cart"], opened_at=NOW - timedelta(minutes=10)))
        s.commit()
    with qtbot.waitSignal(pane.reportShown, timeout=10_000) as blocker:
        history.bus.publish(OperationDone("incident.open", OpChanges(incidents=True), "x"))
    assert blocker.args[0].totals.incidents == 4
    assert pane.updated_label.text().endswith("4 incident(s)")
    with qtbot.assertNotEmitted(pane.reportShown, wait=100):  # users changed: not ours
        history.bus.publish(OperationDone("user.set_role", OpChanges(users=True), "x"))


def test_window_and_bucket_choices(pane: OutcomesPane, qtbot: Any) -> None:
    with qtbot.waitSignal(pane.reportShown, timeout=10_000) as blocker:
        pane.window_choice.setCurrentIndex(1)  # last 7 days
    report = blocker.args[0]
    assert report.bucket_s == 86400
    assert len(report.buckets) == 8
    assert pane.bucket_choice.currentData() == "day"
    with qtbot.waitSignal(pane.reportShown, timeout=10_000) as blocker:
        pane.bucket_choice.setCurrentIndex(0)
    assert blocker.args[0].bucket_s == 3600


def test_without_an_eval(service: WatchfloorService, qtbot: Any) -> None:  # noqa: F811
    widget = OutcomesPane(Kpis(service))
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.report is not None, timeout=10_000)
    assert "No <i>watchfloor eval</i> run yet" in widget.eval_label.text()
    assert widget.tiles["mttr"].value.text() == "\u2014"
    widget.shutdown()

"""Settings -> Providers lists what `watchfloor providers` lists, read only, found off the
GUI thread; a provider installed since shows up on Refresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QTableView

from console.providers_cli import listing
from console.settings_store import SettingsStore
from console.sources.providers.base import ProviderConfig
from tests.test_provider_discovery import installed, on_path  # noqa: F401 (fixtures)
from widgets.settings_dialog import SettingsDialog

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


@pytest.fixture
def dialog(runtime: Any, qtbot: Any, tmp_path: Path) -> Iterator[SettingsDialog]:
    store = SettingsStore(tmp_path / "config" / "settings.yaml")
    opened = SettingsDialog(runtime.service, store, user="alice")
    qtbot.addWidget(opened)
    opened.show()
    yield opened
    opened.shutdown()
    opened.close()


def _table(dialog: SettingsDialog) -> list[list[str]]:
    model = dialog.findChild(QTableView, "providersTable").model()
    return [[model.data(model.index(r, c)) for c in range(model.columnCount())]
            for r in range(model.rowCount())]


def test_the_providers_tab_shows_the_cli_listing_read_only(dialog: SettingsDialog, qtbot: Any,
                                                          qtmodeltester: Any) -> None:
    qtbot.waitUntil(lambda: dialog.providers_tab.model.rowCount() > 0, timeout=20_000)
    expected = listing(ProviderConfig())
    rows = _table(dialog)
    assert [r[0] for r in rows] == [row["name"] for row in expected]
    grafana = next(r for r in rows if r[0] == "grafana")
    assert grafana == ["grafana", "push", "watchfloor 0.1.0", "ready", "/providers/grafana"]
    model = dialog.providers_tab.model
    assert not model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable
    assert not model.setData(model.index(0, 0), "x", Qt.ItemDataRole.EditRole)
    qtmodeltester.check(model)
    assert dialog.findChild(QPushButton, "providersRefresh") is not None
    assert model.rowCount(QModelIndex()) == len(expected)


@pytest.mark.usefixtures("on_path")
def test_a_pip_installed_provider_shows_on_refresh(dialog: SettingsDialog, qtbot: Any) -> None:
    """No change to the console: the package's entry point is all it takes."""
    qtbot.waitUntil(lambda: dialog.providers_tab.model.rowCount() > 0, timeout=20_000)
    button = dialog.findChild(QPushButton, "providersRefresh")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    status = dialog.findChild(QLabel, "providersStatus")
    qtbot.waitUntil(lambda: not dialog.providers_tab._job.running
                    and "providers; needs a look" in status.text(), timeout=20_000)
    acme = next(r for r in _table(dialog) if r[0] == "acme")
    assert acme == ["acme", "push", "watchfloor-acme 1.2.3", "ready", "/providers/acme"]
    broken = next(r for r in _table(dialog) if r[0] == "broken")
    assert broken[3] == "unusable"
    assert status.text() == (
        "14 providers; needs a look: alertmanager (watchfloor-acme 1.2.3), "
        "broken (watchfloor-acme 1.2.3), hijack (watchfloor-acme 1.2.3)")

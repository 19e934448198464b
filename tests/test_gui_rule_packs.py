"""Saving Tools -> Settings keeps the rule packs settings.yaml switches on (the dialog
does not show them, so a save must not switch them off)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_gui_settings import Open, click_and_wait, open_dialog  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")


def test_saving_the_sources_keeps_the_rule_packs(open_dialog: Open,  # noqa: F811
                                                 qtbot: Any) -> None:
    dialog = open_dialog()
    dialog.store.path.parent.mkdir(parents=True, exist_ok=True)
    dialog.store.path.write_text("rules: {packs: [proactive-checks]}\n")
    dialog.prometheus_url.setText("http://127.0.0.1:9090")
    _, saved = click_and_wait(qtbot, dialog, "saveSourcesButton")
    assert saved
    stored = dialog.store.load()
    assert stored.rules.packs == ("proactive-checks",)
    assert stored.sources.prometheus_url == "http://127.0.0.1:9090"

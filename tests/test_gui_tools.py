"""The window's tools: the outcomes and audit browser docks, the Tools menu (settings,
maturity assessment) and File > Open audit bundle; each opens without blocking, is
reused while open, and goes with the window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from console.app import build_window
from widgets.assess_wizard import AssessWizard
from widgets.audit_browser import AuditBrowser
from widgets.audit_review import ReviewWindow
from widgets.main_window import MainWindow
from widgets.outcomes_pane import OutcomesPane
from widgets.settings_dialog import SettingsDialog

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

OpenWindow = Callable[..., MainWindow]
# Bringing an open window back to the front: the offscreen platform cannot, and says so.
offscreen_raise = pytest.mark.qt_log_ignore("This plugin does not support raise")


@pytest.fixture
def open_window(runtime: Any, tmp_path: Path, qtbot: Any,
                qloop: Any) -> Iterator[OpenWindow]:
    settings = QSettings(str(tmp_path / "watchfloor.ini"), QSettings.Format.IniFormat)
    windows: list[MainWindow] = []

    def open_(user: str = "alice") -> MainWindow:
        runtime.service.bootstrap_admin(user)
        window = build_window(runtime, None, user, settings=settings)
        window.show()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_the_new_docks_hold_their_panes_and_are_in_the_view_menu(
        open_window: OpenWindow) -> None:
    window = open_window()
    view = {a.text() for a in window.menus["&View"].actions()}
    for name, object_name, title, pane_type in (
            ("outcomes", "outcomesDock", "Outcomes", OutcomesPane),
            ("audit_browser", "auditBrowserDock", "Audit browser", AuditBrowser)):
        dock = window.docks[name]
        assert dock.objectName() == object_name
        assert dock.windowTitle() == title
        assert title in view
        assert dock.findChild(pane_type) is not None
        # Tabbed behind a pane that is in front by default, a click away.
        assert window.tabifiedDockWidgets(dock)
    assert window.findChild(OutcomesPane) is window.outcomes_pane
    assert window.findChild(AuditBrowser) is window.audit_browser


def test_tools_and_file_menus_hold_the_new_actions(open_window: OpenWindow) -> None:
    window = open_window()
    actions = window.actions_by_id
    assert [a.objectName() for a in window.menus["&Tools"].actions()] == [
        "action_settings", "action_assess"]
    assert actions["open_bundle"] in window.menus["&File"].actions()
    assert actions["open_bundle"].shortcut().toString() == "Ctrl+O"
    assert actions["settings"].shortcut().toString() == "Ctrl+,"


@offscreen_raise
def test_settings_open_non_modal_and_are_reused(open_window: OpenWindow,
                                                 qtbot: Any) -> None:
    window = open_window()
    action = window.findChild(QAction, "action_settings")
    assert action is not None
    action.trigger()
    dialog = window.settings_dialog
    assert isinstance(dialog, SettingsDialog)
    assert dialog.isVisible()
    assert not dialog.isModal()
    assert window.isEnabled()  # the console keeps running behind it
    action.trigger()
    assert window.settings_dialog is dialog
    assert window.findChildren(SettingsDialog) == [dialog]
    dialog.close()
    action.trigger()  # closed, then asked for again: the same dialog, shown again
    assert window.settings_dialog is dialog
    assert dialog.isVisible()


@offscreen_raise
def test_maturity_assessment_opens_non_modal_and_is_reused_while_open(
        open_window: OpenWindow, qtbot: Any) -> None:
    window = open_window()
    action = window.actions_by_id["assess"]
    action.trigger()
    wizard = window.assess_wizard
    assert isinstance(wizard, AssessWizard)
    assert wizard.isVisible()
    assert not wizard.isModal()
    action.trigger()
    assert window.assess_wizard is wizard
    wizard.reject()  # cancelled: its worker is shut down, so the next one is new
    action.trigger()
    assert window.assess_wizard is not wizard
    assert window.assess_wizard is not None
    assert window.assess_wizard.isVisible()


def test_a_record_followed_in_the_audit_browser_opens_where_links_go(
        open_window: OpenWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    window = open_window()
    followed: list[str] = []
    monkeypatch.setattr(window, "open_link", followed.append)
    window.audit_browser.recordFollowed.emit("incident", "12")
    assert followed == ["incident:12"]
    monkeypatch.undo()
    window.audit_browser.recordFollowed.emit("user", "bob")  # no pane: named instead
    assert window.status.notice_label.text() == \
        "record user:bob: nothing in the console shows this record"


def test_open_audit_bundle_asks_without_blocking_then_reviews_read_only(
        open_window: OpenWindow, runtime: Any, tmp_path: Path, qtbot: Any) -> None:
    window = open_window()
    bundle = tmp_path / "night.json"
    runtime.service.export_audit(bundle)
    window.actions_by_id["open_bundle"].trigger()
    dialog = window.findChild(QFileDialog, "bundleDialog")
    assert dialog is not None
    assert dialog.isVisible()
    assert window.isEnabled()
    dialog.fileSelected.emit(str(bundle))
    dialog.close()
    assert len(window.review_windows) == 1
    review = window.review_windows[0]
    assert isinstance(review, ReviewWindow)
    assert review.isVisible()
    assert review.browser.read_only
    assert review.browser.model.rowCount() == len(runtime.service.audit_entries())
    qtbot.waitUntil(lambda: review.browser.last_result is not None, timeout=10_000)

    bad = tmp_path / "not-a-bundle.json"
    bad.write_text('{"hello": 1}')
    assert window.open_bundle(bad) is None
    assert "not a Watchfloor audit bundle" in window.status.notice_label.text()
    assert len(window.review_windows) == 1


def test_the_window_closes_its_tools_with_it(open_window: OpenWindow, runtime: Any,
                                             tmp_path: Path) -> None:
    window = open_window()
    bundle = tmp_path / "night.json"
    runtime.service.export_audit(bundle)
    window.actions_by_id["settings"].trigger()
    window.actions_by_id["assess"].trigger()
    review = window.open_bundle(bundle)
    assert review is not None
    tools = [window.settings_dialog, window.assess_wizard, review]
    assert all(tool is not None and tool.isVisible() for tool in tools)
    window.close()
    assert not window.isVisible()
    assert not any(tool is not None and tool.isVisible() for tool in tools)
    assert not window.review_windows

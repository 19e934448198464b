"""The settings dialog: every change through the facade, audited, with clear refusals
(bad YAML names line and field, a bad table row names the row, a bad URL its field)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from console.policy import Policy, PolicyError
from console.policy_rows import LevelRow, RateRow, WindowRow, apply_rows, policy_yaml, rows_of
from console.settings_store import SettingsError, SettingsStore, parse_settings
from widgets.settings_dialog import SettingsDialog

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

Open = Callable[..., SettingsDialog]


@pytest.fixture
def open_dialog(runtime: Any, qtbot: Any, tmp_path: Path) -> Iterator[Open]:
    opened: list[SettingsDialog] = []
    store = SettingsStore(tmp_path / "config" / "settings.yaml")

    def open_(user: str = "alice") -> SettingsDialog:
        dialog = SettingsDialog(runtime.service, store, user=user)
        qtbot.addWidget(dialog)
        dialog.show()
        opened.append(dialog)
        return dialog

    yield open_
    for dialog in opened:
        dialog.shutdown()
        dialog.close()


def actions(runtime: Any) -> list[tuple[str, str, str]]:
    return [(e.action, e.actor, e.decision) for e in runtime.service.audit_entries()]


def click_and_wait(qtbot: Any, dialog: SettingsDialog, name: str) -> tuple[str, bool]:
    """Click a button; return (what was shown, whether it was saved)."""
    from PySide6.QtWidgets import QPushButton

    button = dialog.findChild(QPushButton, name)
    assert button is not None, name
    seen: list[tuple[str, bool]] = []
    dialog.saved.connect(lambda what: seen.append((what, True)))
    dialog.refused.connect(lambda message: seen.append((message, False)))
    try:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    finally:
        dialog.saved.disconnect()
        dialog.refused.disconnect()
    return seen[0]


def test_models_are_valid_and_the_dialog_is_not_modal(open_dialog: Open,
                                                      qtmodeltester: Any) -> None:
    dialog = open_dialog()
    assert not dialog.isModal()
    dialog.levels_model.append_row(("payments", "restart", 3))
    dialog.windows_model.append_row()
    for model in (dialog.levels_model, dialog.rates_model, dialog.windows_model,
                  dialog.users_model):
        qtmodeltester.check(model)
    assert dialog.users_model.rows() == [("alice", "admin")]
    assert "alice (admin)" in dialog.role_label.text()


def test_adds_a_user_with_a_role(open_dialog: Open, runtime: Any, qtbot: Any) -> None:
    dialog = open_dialog()
    dialog.new_user.setText("carol")
    dialog.new_role.setCurrentText("approver")
    what, saved = click_and_wait(qtbot, dialog, "addUserButton")
    assert saved
    assert what == "user"
    assert runtime.service.role_of("carol") == "approver"
    assert ("carol", "approver") in dialog.users_model.rows()
    assert ("user.set_role", "user:alice", "allow") in actions(runtime)
    assert "carol is now approver" in dialog.users_status.text()
    message, saved = click_and_wait(qtbot, dialog, "addUserButton")  # no name typed
    assert not saved
    assert message == "name the user to add"


def test_policy_yaml_errors_name_the_line_and_field(open_dialog: Open, runtime: Any,
                                                    qtbot: Any) -> None:
    dialog = open_dialog()
    dialog.policy_tabs.setCurrentWidget(dialog.policy_text)
    before = runtime.service.policy()
    dialog.policy_text.setPlainText("default_level: 2\nlevels:\n  restart: lots\n")
    message, saved = click_and_wait(qtbot, dialog, "applyPolicyYamlButton")
    assert not saved
    assert message.startswith("policy:3: levels.restart: ")
    assert message in dialog.policy_status.text()
    assert dialog.policy_text.textCursor().selectedText() == "  restart: lots"
    dialog.policy_text.setPlainText("default_level: 2\nlevels: [unclosed\n")
    message, saved = click_and_wait(qtbot, dialog, "applyPolicyYamlButton")
    assert not saved
    assert "not valid YAML" in message
    assert message.startswith("policy:")
    dialog.policy_text.setPlainText("default_level: 2\nlevel_of_doom: 3\n")
    message, _ = click_and_wait(qtbot, dialog, "applyPolicyYamlButton")
    assert message.startswith("policy:2: level_of_doom: ")
    assert runtime.service.policy() == before
    assert not any(a == "policy.set" for a, _, _ in actions(runtime))

    dialog.policy_text.setPlainText(policy_yaml(before).replace("default_level: 2",
                                                                "default_level: 1"))
    dialog.policy_reason.setText("night shift: fewer agents")
    _, saved = click_and_wait(qtbot, dialog, "applyPolicyYamlButton")
    assert saved
    assert runtime.service.policy().default_level == 1
    entry = runtime.service.audit_entries()[-1]
    assert (entry.action, entry.reason) == ("policy.set", "night shift: fewer agents")


def test_policy_tables_edit_levels_rate_limits_and_windows(open_dialog: Open, runtime: Any,
                                                           qtbot: Any) -> None:
    dialog = open_dialog()
    levels = dialog.levels_model
    row = levels.append_row()
    for col, value in enumerate(("payments", "deploy_rollback", "3")):  # as a view types
        assert levels.setData(levels.index(row, col), value)
    dialog.rates_model.append_row(("restart", 2, "30m"))
    dialog.windows_model.append_row(("deploy_rollback, failover", "22:00", "06:00"))
    _, saved = click_and_wait(qtbot, dialog, "applyPolicyTablesButton")
    assert saved
    policy = runtime.service.policy()
    assert policy.service_levels == {"payments": {"deploy_rollback": 3}}
    assert policy.rate_limits["restart"].per == 1800
    assert policy.rate_limits["restart"].max == 2
    assert policy.change_windows[0].action_classes == ("deploy_rollback", "failover")
    assert "service_levels:\n  payments:\n    deploy_rollback: 3" in \
        dialog.policy_text.toPlainText()  # the YAML view follows the stored policy

    levels.setData(levels.index(0, 2), "9")
    message, saved = click_and_wait(qtbot, dialog, "applyPolicyTablesButton")
    assert not saved
    assert message == "autonomy row 1: level: must be 0-5, got 9"
    dialog.windows_model.setData(dialog.windows_model.index(0, 1), "25:00")
    levels.setData(levels.index(0, 2), "3")
    message, _ = click_and_wait(qtbot, dialog, "applyPolicyTablesButton")
    assert message == "change window row 1: start: expected HH:MM (UTC), got '25:00'"
    assert runtime.service.policy() == policy


def test_sources_and_model_are_validated_saved_and_audited(open_dialog: Open, runtime: Any,
                                                           qtbot: Any) -> None:
    dialog = open_dialog()
    dialog.prometheus_url.setText("prometheus:9090")
    dialog.llm_timeout.setText("0")
    message, saved = click_and_wait(qtbot, dialog, "saveSourcesButton")
    assert not saved
    assert "sources.prometheus_url: expected an http(s)://host[:port] URL" in message
    assert "llm.timeout: Input should be greater than 0" in message
    assert not dialog.store.path.exists()
    dialog.prometheus_url.setText("http://127.0.0.1:9090/")
    dialog.llm_timeout.setText("45")
    dialog.llm_enabled.setChecked(True)
    dialog.llm_model.setText("qwen2.5:7b")
    _, saved = click_and_wait(qtbot, dialog, "saveSourcesButton")
    assert saved
    stored = dialog.store.load()
    assert stored.sources.prometheus_url == "http://127.0.0.1:9090"
    assert (stored.llm.enabled, stored.llm.model, stored.llm.timeout) == (True, "qwen2.5:7b",
                                                                         45.0)
    entry = runtime.service.audit_entries()[-1]
    assert (entry.action, entry.decision) == ("settings.set", "allow")
    assert entry.outputs["changed"] == ["llm.enabled", "llm.model", "llm.timeout",
                                        "sources.prometheus_url"]


def test_someone_not_admin_is_refused_and_the_refusal_audited(open_dialog: Open,
                                                              runtime: Any,
                                                              qtbot: Any) -> None:
    runtime.service.add_user("bob", "operator", as_user="alice")
    dialog = open_dialog("bob")
    assert "need the admin role" in dialog.role_label.text()
    dialog.policy_tabs.setCurrentWidget(dialog.policy_text)
    message, saved = click_and_wait(qtbot, dialog, "applyPolicyYamlButton")
    assert not saved
    assert "policy.set needs role admin; 'bob' is operator" in message
    dialog.llm_model.setText("other")
    message, _ = click_and_wait(qtbot, dialog, "saveSourcesButton")
    assert "settings.set needs role admin" in message
    assert not dialog.store.path.exists()  # a refused save leaves no file behind
    denied = [(a, d) for a, actor, d in actions(runtime) if actor == "user:bob"]
    assert denied == [("policy.set", "deny"), ("settings.set", "deny")]


def test_rows_round_trip_and_settings_parse_without_qt() -> None:
    policy = apply_rows(Policy(), [LevelRow("*", "restart", 3), LevelRow("search", "disk", 4)],
                        [RateRow("default", 5, "1h")], [WindowRow("failover", "01:00", "05:30")])
    levels, rates, windows = rows_of(policy)
    # The default level is a row of its own (every service, every action class).
    assert levels == [LevelRow("*", "*", 2), LevelRow("*", "restart", 3),
                      LevelRow("search", "disk", 4)]
    assert rates == [RateRow("default", 5, "1h")]
    assert windows == [WindowRow("failover", "01:00", "05:30")]
    assert apply_rows(policy, [LevelRow("*", "*", 1), *levels[1:]], rates,
                      windows).default_level == 1
    with pytest.raises(PolicyError, match="autonomy row 2: action class: restart on \\* is"):
        apply_rows(Policy(), [LevelRow("*", "restart", 3), LevelRow("*", "restart", 1)], [], [])
    with pytest.raises(PolicyError, match="rate limit row 1: per: expected a duration"):
        apply_rows(Policy(), [], [RateRow("x", 1, "soon")], [])
    with pytest.raises(SettingsError, match=r"llm\.url: must not hold a user or password"):
        parse_settings({"llm": {"url": "http://me:secret@host:1"}})
    with pytest.raises(SettingsError, match=r"llm\.colour: Extra inputs are not permitted"):
        parse_settings({"llm": {"colour": "red"}})


def test_require_passwords_creates_the_first_administrator(open_dialog: Open, runtime: Any,
                                                           qtbot: Any) -> None:
    """Defect 6: while nobody has a password the console asks nothing at start; this is
    where the window opts a team into passwords."""
    from console.auth import Authenticator, ScryptParams

    runtime.service._auth = Authenticator(runtime.service, params=ScryptParams(ln=10))
    dialog = open_dialog()
    dialog.findChild(QPushButton, "requirePasswordsButton").click()
    first = dialog.first_admin_dialog
    assert first is not None and first.isVisible()
    assert first.windowTitle() == "Create the administrator"
    first.password.setText("alice-pass-1")
    first.confirm.setText("alice-pass-1")
    with qtbot.waitSignal(first.finished, timeout=10_000):
        first.attempt()
    assert runtime.service.auth.passwords_in_use()
    assert "Passwords are in use from now on" in dialog.users_status.text()

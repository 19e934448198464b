"""The settings dialog: sources, the language model, the policy, users and roles.

Non-modal (the console keeps running behind it). Every change is a facade operation:
`set_policy`, `add_user`, and `SettingsStore.save` for the sources and the model, so
each one is role-checked and audited, and a refusal is shown, not raised. What is valid
is decided in the core (`console.policy_rows`, `console.settings_store`, the policy
loader): this dialog only collects what the operator typed, sends it on a worker thread
and shows the verdict; a bad YAML line is named and the cursor put on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from console.operations import PermissionDenied
from console.policy import Policy, PolicyError
from console.policy_rows import (
    ALL_SERVICES,
    LevelRow,
    RateRow,
    WindowRow,
    apply_rows,
    policy_from_yaml,
    policy_yaml,
    rows_of,
)
from console.settings_store import ConsoleSettings, SettingsError, SettingsStore, parse_settings
from console.sources.providers.base import ProviderConfig
from console.storage.repos import ROLES
from widgets.offthread import BackgroundJob
from widgets.providers_view import ProvidersTab
from widgets.settings_models import RowsModel
from widgets.theme import DEFAULT_THEME, STATE_COLORS

if TYPE_CHECKING:
    from console.service import WatchfloorService

REFUSALS = (PolicyError, SettingsError, PermissionDenied, ValueError)
_LINE = re.compile(r"^[^:\n]*:(\d+):", re.MULTILINE)


class SettingsDialog(QDialog):
    """Emits ``saved(str)`` with what was saved (settings | policy | user) and
    ``refused(str)`` with the message shown, after each attempt."""

    saved = Signal(str)
    refused = Signal(str)

    def __init__(self, service: WatchfloorService, store: SettingsStore, *, user: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Watchfloor settings")
        self.setModal(False)
        self.service, self.store, self.user = service, store, user
        colors = STATE_COLORS[DEFAULT_THEME]
        self._red, self._green, self._dim = colors.red, colors.green, colors.dimmed
        self._job = BackgroundJob("settings-ops", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self._on_job_failed)
        self._pending: QLabel | None = None

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("settingsTabs")
        self.tabs.addTab(self._sources_tab(), "Sources")
        self.tabs.addTab(self._llm_tab(), "Language model")
        self.tabs.addTab(self._policy_tab(), "Policy")
        self.tabs.addTab(self._users_tab(), "Users")
        self.providers_tab = ProvidersTab(self._provider_config, self)
        self.tabs.addTab(self.providers_tab, "Providers")
        role = service.role_of(user)
        self.role_label = QLabel(self)
        self.role_label.setObjectName("settingsRole")
        self.role_label.setWordWrap(True)
        note = "" if role == "admin" else \
            " Changes here need the admin role: yours will be refused, and the refusal audited."
        self.role_label.setText(f"Signed in as {user} ({role or 'not a user'}). Every change "
                                f"is audited.{note}")
        self.role_label.setStyleSheet(f"color: {self._dim if role == 'admin' else self._red};")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.role_label)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(close)
        self.resize(820, 620)
        self._load_settings(self._read_settings())
        self._load_policy(service.policy())
        self.users_model.set_rows(service.users())

    # --- building ---------------------------------------------------------------------

    def _status(self, name: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setWordWrap(True)
        return label

    def _button(self, name: str, text: str, slot: Callable[[], Any]) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        return edit

    def _sources_tab(self) -> QWidget:
        page = QWidget(self)
        self.prometheus_url = self._line("prometheusUrl", "http://127.0.0.1:9090 (none)")
        self.alertmanager_url = self._line("alertmanagerUrl", "http://127.0.0.1:9093 (none)")
        self.sources_status = self._status("sourcesStatus")
        form = QFormLayout(page)
        form.addRow("Prometheus URL", self.prometheus_url)
        form.addRow("Alertmanager URL", self.alertmanager_url)
        form.addRow(QLabel("The command line and the environment still win over these; "
                           "they apply the next time the console starts.", page))
        form.addRow(self._button("saveSourcesButton", "Save sources", self.save_settings))
        form.addRow(self.sources_status)
        return page

    def _llm_tab(self) -> QWidget:
        page = QWidget(self)
        self.llm_enabled = QCheckBox("Ask a language model (every agent works without one)",
                                     page)
        self.llm_enabled.setObjectName("llmEnabled")
        self.llm_url = self._line("llmUrl", "http://127.0.0.1:11434")
        self.llm_model = self._line("llmModel", "llama3.1:8b")
        self.llm_timeout = self._line("llmTimeout", "seconds, e.g. 20")
        self.llm_status = self._status("llmStatus")
        form = QFormLayout(page)
        form.addRow(self.llm_enabled)
        form.addRow("Endpoint URL", self.llm_url)
        form.addRow("Model", self.llm_model)
        form.addRow("Time limit (s)", self.llm_timeout)
        form.addRow(self._button("saveLlmButton", "Save model settings", self.save_settings))
        form.addRow(self.llm_status)
        return page

    def _table(self, name: str, model: RowsModel) -> QTableView:
        view = QTableView(self)
        view.setObjectName(name)
        view.setModel(model)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.verticalHeader().setVisible(False)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        view.setAlternatingRowColors(True)
        return view

    def _editable(self, name: str, model: RowsModel, hint: str) -> QWidget:
        page = QWidget(self)
        view = self._table(name, model)
        add = self._button(f"{name}Add", "Add row", lambda: self._add_row(view, model))
        remove = self._button(f"{name}Remove", "Remove row",
                              lambda: self._remove_row(view, model))
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel(hint, page), 1)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(view, 1)
        layout.addLayout(buttons)
        return page

    def _policy_tab(self) -> QWidget:
        page = QWidget(self)
        self.levels_model = RowsModel(("Service (* = every one)",
                                       "Action class (* = every one)", "Level 0-5"),
                                      int_columns=(2,), defaults=(ALL_SERVICES, "", 2),
                                      parent=self)
        self.rates_model = RowsModel(("Action class (default = any)", "Max runs", "Per"),
                                     int_columns=(1,), defaults=("", 5, "1h"), parent=self)
        self.windows_model = RowsModel(("Action classes (comma-separated)", "From (UTC)",
                                        "To (UTC)"), defaults=("", "22:00", "06:00"),
                                       parent=self)
        self.policy_tabs = QTabWidget(page)
        self.policy_tabs.setObjectName("policyTabs")
        self.policy_tabs.addTab(self._editable("levelsTable", self.levels_model,
                                               "Autonomy per service and action class"),
                                "Autonomy")
        self.policy_tabs.addTab(self._editable("ratesTable", self.rates_model,
                                               "Runs per action class and service"),
                                "Rate limits")
        self.policy_tabs.addTab(self._editable("windowsTable", self.windows_model,
                                               "These classes run only inside the window"),
                                "Change windows")
        self.policy_text = QPlainTextEdit(page)
        self.policy_text.setObjectName("policyYaml")
        self.policy_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.policy_tabs.addTab(self.policy_text, "YAML (all of it)")
        self.policy_reason = self._line("policyReason", "Why (kept in the audit record)")
        self.policy_status = self._status("policyStatus")
        buttons = QHBoxLayout()
        buttons.addWidget(self.policy_reason, 1)
        buttons.addWidget(self._button("applyPolicyTablesButton", "Apply tables",
                                       self.apply_policy_tables))
        buttons.addWidget(self._button("applyPolicyYamlButton", "Apply YAML",
                                       self.apply_policy_yaml))
        layout = QVBoxLayout(page)
        layout.addWidget(self.policy_tabs, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.policy_status)
        return page

    def _users_tab(self) -> QWidget:
        page = QWidget(self)
        self.users_model = RowsModel(("User", "Role"), editable=False, parent=self)
        self.users_table = self._table("usersTable", self.users_model)
        self.new_user = self._line("newUserName", "login name")
        self.new_role = QComboBox(page)
        self.new_role.setObjectName("newUserRole")
        self.new_role.addItems(list(ROLES))
        self.new_role.setCurrentText("operator")
        self.users_status = self._status("usersStatus")
        row = QHBoxLayout()
        row.addWidget(self.new_user, 1)
        row.addWidget(self.new_role)
        row.addWidget(self._button("addUserButton", "Add user / set role", self.add_user))
        # While nobody has a password the console signs in as the local login without
        # asking; this is where a team opts into passwords from the window.
        self.first_admin_dialog: Any = None
        passwords = QHBoxLayout()
        passwords.addWidget(self._button("requirePasswordsButton", "Require passwords\u2026",
                                         self.require_passwords))
        passwords.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addWidget(self.users_table, 1)
        layout.addLayout(row)
        layout.addLayout(passwords)
        layout.addWidget(self.users_status)
        return page

    def require_passwords(self) -> None:
        """Create the first administrator with a password: from then on everyone signs
        in, at every console (until then nobody is asked)."""
        from widgets.sign_in import FIRST_RUN, SignInDialog

        auth = self.service.auth
        if auth.passwords_in_use():
            self._say(self.users_status, "Passwords are in use already: everyone signs in. "
                      "Set a person's password with watchfloor users passwd.")
            return
        dialog = SignInDialog(auth, mode=FIRST_RUN, name=self.user, parent=self)
        dialog.signedIn.connect(self._on_first_admin_signed_in)
        self.first_admin_dialog = dialog
        dialog.open()

    def _on_first_admin_signed_in(self, who: Any) -> None:
        self._say(self.users_status, f"Passwords are in use from now on: {who.name} is an "
                  "administrator with a password, and everyone signs in when a console "
                  "starts.")

    # --- loading ----------------------------------------------------------------------

    def _read_settings(self) -> ConsoleSettings:
        try:
            return self.store.load()
        except SettingsError as exc:  # a hand-edited file: say so, start from defaults
            self._say(self.sources_status, f"Settings file not used: {exc}", error=True)
            return ConsoleSettings()

    def _load_settings(self, settings: ConsoleSettings) -> None:
        self.prometheus_url.setText(settings.sources.prometheus_url or "")
        self.alertmanager_url.setText(settings.sources.alertmanager_url or "")
        self.llm_enabled.setChecked(settings.llm.enabled)
        self.llm_url.setText(settings.llm.url)
        self.llm_model.setText(settings.llm.model)
        self.llm_timeout.setText(f"{settings.llm.timeout:g}")

    def _load_policy(self, policy: Policy) -> None:
        self._policy = policy
        levels, rates, windows = rows_of(policy)
        self.levels_model.set_rows((r.service, r.action_class, r.level) for r in levels)
        self.rates_model.set_rows((r.action_class, r.max, r.per) for r in rates)
        self.windows_model.set_rows((w.action_classes, w.start, w.end) for w in windows)
        self.policy_text.setPlainText(policy_yaml(policy))

    def _add_row(self, view: QTableView, model: RowsModel) -> None:
        row = model.append_row()
        view.setCurrentIndex(model.index(row, 0))
        view.edit(model.index(row, 0))

    def _remove_row(self, view: QTableView, model: RowsModel) -> None:
        index = view.currentIndex()
        if index.isValid():
            model.remove_row(index.row())

    # --- operations -------------------------------------------------------------------

    def save_settings(self) -> None:
        """Validate the sources and model fields, then save them (admin, audited)."""
        status = self.sources_status if self.tabs.currentIndex() == 0 else self.llm_status
        data = {"sources": {"prometheus_url": self.prometheus_url.text(),
                            "alertmanager_url": self.alertmanager_url.text()},
                "llm": {"enabled": self.llm_enabled.isChecked(), "url": self.llm_url.text(),
                        "model": self.llm_model.text(),
                        "timeout": self.llm_timeout.text().strip() or "20"}}
        store, service, user = self.store, self.service, self.user

        def work() -> ConsoleSettings:
            # What the dialog does not show (rules.packs) stays as the file has it.
            try:
                kept = store.load().model_dump(mode="json")
            except SettingsError:
                kept = {}
            settings = parse_settings({**kept, **data})
            store.save(settings, service=service, as_user=user, reason="settings dialog")
            return settings

        self._submit("settings", status, work)

    def apply_policy_tables(self) -> None:
        levels = [LevelRow(str(s), str(c), lvl) for s, c, lvl in self.levels_model.rows()]
        rates = [RateRow(str(c), n, str(p)) for c, n, p in self.rates_model.rows()]
        windows = [WindowRow(str(c), str(a), str(b)) for c, a, b in self.windows_model.rows()]
        base = self._policy
        self._set_policy(lambda: apply_rows(base, levels, rates, windows))

    def apply_policy_yaml(self) -> None:
        text = self.policy_text.toPlainText()
        self._set_policy(lambda: policy_from_yaml(text, "policy"))

    def _set_policy(self, build: Callable[[], Policy]) -> None:
        service, user = self.service, self.user
        reason = self.policy_reason.text().strip() or "settings dialog"

        def work() -> Policy:
            service.set_policy(build(), as_user=user, reason=reason)
            return service.policy()

        self._submit("policy", self.policy_status, work)

    def add_user(self) -> None:
        name, role = self.new_user.text().strip(), self.new_role.currentText()
        service, user = self.service, self.user

        def work() -> list[tuple[str, str]]:
            if not name:
                raise ValueError("name the user to add")
            service.add_user(name, role, as_user=user)
            return service.users()

        self._submit("user", self.users_status, work)

    def _submit(self, what: str, status: QLabel, work: Callable[[], Any]) -> None:
        def guarded() -> tuple[str, QLabel, Any, str | None]:
            try:
                return what, status, work(), None
            except REFUSALS as exc:  # refusals are answers, shown in the dialog
                return what, status, None, str(exc)

        self._pending = status
        self._say(status, "Saving\u2026", error=False)
        self._job.submit(guarded)

    def _on_job_finished(self, outcome: tuple[str, QLabel, Any, str | None]) -> None:
        what, status, result, error = outcome
        if error is not None:
            self._say(status, error, error=True)
            if what == "policy":
                self._point_at_line(error)
            self.refused.emit(error)
            return
        if what == "settings":
            self._load_settings(result)
            self._say(status, f"Saved to {self.store.path.name} (audited as settings.set)")
        elif what == "policy":
            self._load_policy(result)
            self._say(status, "Policy in force (audited as policy.set)")
        else:
            self.users_model.set_rows(result)
            self._say(status, f"{self.new_user.text().strip()} is now "
                              f"{self.new_role.currentText()} (audited as user.set_role)")
            self.new_user.clear()
        self.saved.emit(what)

    def _on_job_failed(self, message: str) -> None:
        if self._pending is not None:
            self._say(self._pending, f"Not saved: {message}", error=True)
        self.refused.emit(message)

    def _point_at_line(self, error: str) -> None:
        match = _LINE.match(error)
        if not match or self.policy_tabs.currentWidget() is not self.policy_text:
            return
        block = self.policy_text.document().findBlockByLineNumber(int(match.group(1)) - 1)
        if block.isValid():
            cursor = QTextCursor(block)
            cursor.select(QTextCursor.SelectionType.LineUnderCursor)
            self.policy_text.setTextCursor(cursor)

    def _say(self, label: QLabel, text: str, *, error: bool = False) -> None:
        label.setText(text)
        label.setStyleSheet(f"color: {self._red if error else self._green};"
                            + (" font-weight: bold;" if error else ""))

    def shutdown(self) -> None:
        """Wait for a save in flight (call before the dialog is deleted)."""
        self._job.shutdown()
        self.providers_tab.shutdown()

    def _provider_config(self) -> ProviderConfig:
        """The saved sources' addresses: the Providers tab asks those how they are."""
        try:
            sources = self.store.load().sources
        except SettingsError:
            return ProviderConfig()
        return ProviderConfig(urls={name: url for name, url in (
            ("alertmanager", sources.alertmanager_url),
            ("prometheus", sources.prometheus_url)) if url})

"""The sign-in dialog: who sits at this console, a second person for four eyes, and the
first administrator of a new database.

Never waited on: it is opened with `open()` and answers with ``signedIn(object)`` (a
`console.auth.SignedIn`) or Qt's ``rejected()``. The scrypt check runs on the `Worker`
(off the GUI thread in the console). When the core says to wait after failed attempts
(`SignInRefused.wait_s`), the dialog counts down with a QTimer and keeps the button off
until then; the core refuses an early attempt anyway, so the countdown is a courtesy.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from console.auth import Authenticator, AuthError, SignedIn, SignInRefused
from widgets.ops import Worker, describe_error
from widgets.theme import DEFAULT_THEME, STATE_COLORS, load_stylesheet

SIGN_IN, FIRST_RUN, SECOND_PERSON = "sign_in", "first_run", "second_person"
TICK_MS = 200

_TEXT = {
    SIGN_IN: ("Sign in to Watchfloor",
              "Sign in with your own name and password. What the console offers you "
              "follows your role.", "Sign in"),
    FIRST_RUN: ("Create the administrator",
                "Nobody has a password on this database yet. Choose the first "
                "administrator's name and password; from then on everyone signs in, with "
                "the password an administrator sets for them.", "Create and sign in"),
    SECOND_PERSON: ("Sign in a second person",
                    "Four eyes: a second person signs in here to approve. Their own role "
                    "decides whether the approval counts.", "Sign in and approve"),
}


_PRIMARY = {
    "dark": "QPushButton#signInButton { background: #1f3d66; border: 1px solid #3b6fb6; "
            "color: #eef4fc; font-weight: bold; }"
            "QPushButton#signInButton:hover { background: #264a7a; }"
            "QPushButton#signInButton:disabled { background: #1b2027; border-color: #2f3540; "
            "color: #5c6570; }",
    "light": "QPushButton#signInButton { background: #2f5fb8; border: 1px solid #2359c4; "
             "color: #ffffff; font-weight: bold; }"
             "QPushButton#signInButton:disabled { background: #e3e6ea; color: #8a929c; }",
}


def worker_for(service: Any) -> Worker:
    """A worker as the console makes it: off the GUI thread when the bus hands events
    back to the loop, inline headless and on an in-memory database (one per thread)."""
    in_memory = service.db.engine.url.database in (None, "", ":memory:")
    return Worker(offload=service.bus.bound and not in_memory)


class SignInDialog(QDialog):
    """Emits ``signedIn(object)`` with the `SignedIn` person, then closes (accepted)."""

    signedIn = QtSignal(object)

    def __init__(self, auth: Authenticator, *, worker: Worker | None = None,
                 mode: str = SIGN_IN,
                 name: str = "", exclude: str | None = None, purpose: str = "console",
                 detail: str = "", theme: str = DEFAULT_THEME,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if mode not in _TEXT:
            raise ValueError(f"unknown sign-in mode {mode!r}")
        self.setObjectName("signInDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # Without a worker of its caller's, it makes (and closes) its own.
        self._own_worker = worker is None
        self.auth, self.mode = auth, mode
        self.worker = worker if worker is not None else worker_for(auth.service)
        if self._own_worker:
            self.worker.setParent(self)
        self.exclude, self.purpose = exclude, purpose
        self._colors = STATE_COLORS[theme]
        self._busy = False
        self._closed = False  # a sign-in may finish after the dialog was closed
        self._base = ""
        self._wait_until = 0.0  # time.monotonic() before which the button stays off
        self._locked = False
        title, intro, action = _TEXT[mode]
        self.setWindowTitle(title)

        heading = QLabel(title, self)
        heading.setObjectName("signInHeading")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        heading.setFont(font)
        self.intro = QLabel(intro + (f"<br><br>{escape(detail)}" if detail else ""), self)
        self.intro.setObjectName("signInIntro")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        self.intro.setStyleSheet(f"color: {self._colors.dimmed};")
        self.user = QLineEdit(name, self)
        self.user.setObjectName("signInUser")
        self.user.setPlaceholderText("user name")
        self.password = self._secret("signInPassword", "password")
        self.confirm = self._secret("signInConfirm", "the same password again")
        self.message = QLabel(self)
        self.message.setObjectName("signInMessage")
        self.message.setWordWrap(True)
        self.message.setMinimumHeight(self.fontMetrics().lineSpacing() * 2)
        self.message.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        buttons = QDialogButtonBox(self)
        self.submit = buttons.addButton(action, QDialogButtonBox.ButtonRole.AcceptRole)
        self.submit.setObjectName("signInButton")
        self.submit.setDefault(True)  # Enter in any field submits
        self.cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel.setObjectName("signInCancel")
        buttons.accepted.connect(self.attempt)
        buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        if mode == FIRST_RUN:
            form.addRow("Again", self.confirm)
        else:
            self.confirm.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 18, 20, 14)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)
        # At start there is no window yet to take the theme from; the submit button is
        # the dialog's primary action in either theme. Set once the children are named.
        own = load_stylesheet(theme) if parent is None else ""
        self.setStyleSheet(own + _PRIMARY[theme])

        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._on_tick_timeout)
        self.user.textEdited.connect(self._on_user_edited)
        (self.password if name else self.user).setFocus()

    def _secret(self, name: str, placeholder: str) -> QLineEdit:
        field = QLineEdit(self)
        field.setObjectName(name)
        field.setEchoMode(QLineEdit.EchoMode.Password)
        field.setPlaceholderText(placeholder)
        return field

    # --- showing --------------------------------------------------------------------

    def say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("level", "error" if error else "info")
        color = self._colors.red if error else self._colors.blue
        self.message.setStyleSheet(f"color: {color};" + (" font-weight: bold;" if error
                                                         else ""))

    @property
    def waiting_s(self) -> float:
        """Seconds until the next attempt is looked at (0: now)."""
        return max(0.0, self._wait_until - time.monotonic())

    def _update_enabled(self) -> None:
        idle = not self._busy
        for field in (self.user, self.password, self.confirm):
            field.setEnabled(idle)
        self.submit.setEnabled(idle and self.waiting_s <= 0)

    # --- attempting -----------------------------------------------------------------

    def attempt(self) -> None:
        """Sign in (or create the administrator) with what is typed; Enter does this."""
        if self._busy or self.waiting_s > 0:
            return
        name, password = self.user.text().strip(), self.password.text()
        if not name or not password:
            self.say("Type a user name and a password.", error=True)
            (self.user if not name else self.password).setFocus()
            return
        if self.exclude is not None and name == self.exclude:
            self.say(f"That is {name}, who is signed in already: four eyes need a second "
                     "person.", error=True)
            self.password.clear()
            self.user.selectAll()
            self.user.setFocus()
            return
        auth, purpose, confirm = self.auth, self.purpose, self.confirm.text()
        if self.mode == FIRST_RUN:
            def call() -> SignedIn:
                return auth.create_first_admin(name, password, confirm)
        else:
            def call() -> SignedIn:
                return auth.sign_in(name, password, purpose=purpose)
        self._busy = True
        self._update_enabled()
        self.say("Checking\u2026")
        self.worker.submit(f"signing in {name}", call, on_done=self._on_signed_in,
                           on_error=self._on_refused)

    def _on_signed_in(self, who: SignedIn) -> None:
        if self._closed:
            return
        self._busy = False
        self.password.clear()
        self.confirm.clear()
        self.signedIn.emit(who)
        self.accept()

    def _on_refused(self, exc: BaseException) -> None:
        if self._closed:
            return
        self._busy = False
        self.password.clear()
        self.confirm.clear()
        if isinstance(exc, SignInRefused) and exc.wait_s > 0:
            self._wait_until = time.monotonic() + exc.wait_s
            self._locked = exc.locked
            self._base = exc.reason
            self._tick.start()
            self._show_wait()
        else:
            self.say(describe_error(exc) if isinstance(exc, SignInRefused | AuthError)
                     else f"Sign-in failed: {describe_error(exc)}", error=True)
        self._update_enabled()
        self.password.setFocus()

    def _show_wait(self) -> None:
        left = self.waiting_s
        if left <= 0:
            self._tick.stop()
            self.say(self._base + " You may try again now.", error=True)
        else:
            minutes, seconds = divmod(int(left + 0.999), 60)
            clock = f"{minutes}:{seconds:02d}" if minutes else f"{seconds} s"
            self.say(f"{self._base} Wait {clock} before trying again.", error=True)
        self._update_enabled()

    def _on_tick_timeout(self) -> None:
        self._show_wait()

    def _on_user_edited(self, _text: str) -> None:
        # The wait was for the name typed before; another name (or this workstation's own
        # delay, which the core still applies) is for the core to say.
        if self._wait_until and not self._busy:
            self._wait_until = 0.0
            self._tick.stop()
            self.message.clear()
            self._update_enabled()

    def done(self, result: int) -> None:
        self._closed = True
        if self._own_worker:
            self.worker.close()
        self._tick.stop()
        self.password.clear()
        self.confirm.clear()
        super().done(result)


def sign_in_at_start(service: Any, on_signed_in: Callable[[str], None],
                     parent: QWidget | None = None, *,
                     on_cancelled: Callable[[], None] | None = None,
                     environ: Mapping[str, str] | None = None,
                     theme: str = DEFAULT_THEME) -> SignInDialog | None:
    """Who the console runs as, without waiting: `on_signed_in(name)` is called once they
    are known; `on_cancelled()` when the person closes the dialog instead. Returns the
    dialog (keep a reference while it is open), or None when nobody had to type anything.

    On a database where *nobody* has a password yet (a new one, or a single workstation
    that has not opted into passwords) the console signs in as the local login
    ($WATCHFLOOR_USER, else the operating system's login) without asking, audited as
    such: a first run goes straight to the panes. Once anyone has a password (Settings
    -> Users -> Require passwords, or `watchfloor users passwd`), everyone signs in,
    whatever the environment says."""
    env = os.environ if environ is None else environ
    auth: Authenticator = service.auth
    login = env.get("WATCHFLOOR_USER") or getpass.getuser() or "operator"
    if (who := auth.sign_in_trusted(login)) is not None:
        on_signed_in(who.name)
        return None
    dialog = SignInDialog(auth, mode=SIGN_IN, name=login, theme=theme, parent=parent)
    dialog.signedIn.connect(lambda who: on_signed_in(who.name))
    if on_cancelled is not None:
        dialog.rejected.connect(on_cancelled)
    dialog.open()
    return dialog

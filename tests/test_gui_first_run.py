"""First run and start, through the composition root (`console.app.main`) as `watchfloor`
runs it: on a new database nobody is asked anything (what the README says: while
nobody has a password the console signs in as the local login) and the panes come;
once passwords are in use, cancelling the sign-in says in the window what that means
and offers to sign in again or quit, and quitting says so on stderr."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from console import app as console_app
from console.auth import Authenticator, ScryptParams
from console.runtime import Runtime
from tests.test_gui_e2e import thread_executor
from widgets.main_window import MainWindow
from widgets.sign_in import SignInDialog

pytestmark = pytest.mark.usefixtures("no_real_settings", "no_leaked_windows")

PASSWORD = "alice-pass-1"


def test_a_first_run_opens_the_panes_without_asking_anything(
        tmp_path: Path, qloop: asyncio.AbstractEventLoop, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 6: the README says nobody is asked while nobody has a password, but a new
    database asked for an administrator in a modal dialog first."""
    monkeypatch.delenv("WATCHFLOOR_USER")
    db_url = f"sqlite:///{tmp_path / 'new.db'}"
    ready: list[MainWindow] = []
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "bad-deploy", 1.0,
                                                  on_ready=ready.append))
        qtbot.waitUntil(lambda: bool(ready) or task.done(), timeout=30_000)
        assert ready, "the panes never came"
        window = ready[0]
        assert not window.findChildren(SignInDialog)
        me = getpass.getuser()
        assert window.status.user_label.text() == f"{me} (admin)"
        window.close()
        qtbot.waitUntil(task.done, timeout=10_000)
        assert task.result() == 0


def _with_passwords(db_url: str) -> None:
    runtime = Runtime(db_url)
    try:
        runtime.service.bootstrap_admin("alice")
        Authenticator(runtime.service, params=ScryptParams(ln=10)).create_first_admin(
            "alice", PASSWORD, PASSWORD)
    finally:
        runtime.close()


def _dialog(window: MainWindow) -> SignInDialog | None:
    found = [d for d in window.findChildren(SignInDialog) if d.isVisible()]
    return found[0] if found else None


def test_cancelling_the_sign_in_says_what_happens_and_offers_to_try_again(
        tmp_path: Path, qloop: asyncio.AbstractEventLoop, qtbot: Any,
        capsys: pytest.CaptureFixture) -> None:
    """Defect 6: Esc or Cancel in the sign-in quit without a word."""
    db_url = f"sqlite:///{tmp_path / 'team.db'}"
    _with_passwords(db_url)
    shown: list[MainWindow] = []
    ready: list[MainWindow] = []
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "bad-deploy", 1.0,
                                                  on_window=shown.append,
                                                  on_ready=ready.append))
        qtbot.waitUntil(lambda: bool(shown) and _dialog(shown[0]) is not None,
                        timeout=30_000)
        window = shown[0]
        dialog = _dialog(window)
        assert dialog is not None
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # Esc cancels
        qtbot.waitUntil(lambda: window.starting.title.text() == "Nobody is signed in",
                        timeout=10_000)
        assert "nothing was changed" in window.starting.step.text()
        assert not task.done()  # the window says so and waits for the person
        again = window.findChild(QPushButton, "signInAgain")
        assert again is not None and again.isVisible()
        qtbot.mouseClick(again, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _dialog(window) is not None, timeout=10_000)
        dialog = _dialog(window)
        assert dialog is not None
        qtbot.keyClicks(dialog.password, PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(ready), timeout=30_000)
        assert window.status.user_label.text() == "alice (admin)"
        window.close()
        qtbot.waitUntil(task.done, timeout=10_000)
        assert task.result() == 0

    shown.clear()
    with thread_executor(qloop):
        task = qloop.create_task(console_app.main(db_url, "bad-deploy", 1.0,
                                                  on_window=shown.append))
        qtbot.waitUntil(lambda: bool(shown) and _dialog(shown[0]) is not None,
                        timeout=30_000)
        window = shown[0]
        cancel = _dialog(window).findChild(QPushButton, "signInCancel")  # type: ignore[union-attr]
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
        quit_button = None

        def offered() -> bool:
            nonlocal quit_button
            quit_button = window.findChild(QPushButton, "quitWatchfloor")
            return quit_button is not None and quit_button.isVisible()

        qtbot.waitUntil(offered, timeout=10_000)
        qtbot.mouseClick(quit_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(task.done, timeout=10_000)
        assert task.result() == 0
        assert "nobody signed in" in capsys.readouterr().err
        qtbot.waitUntil(lambda: not shiboken6.isValid(window), timeout=2000)


def test_the_start_shows_the_steps_done_without_an_animation(qtbot: Any) -> None:
    """A busy indicator repainted the window many times a second while the start's
    work waited for the interpreter lock; the bar counts the steps instead."""
    from PySide6.QtCore import QSettings

    from widgets.starting import START_STEPS

    window = MainWindow(settings=QSettings(), title="Watchfloor",
                        make_recording_window=console_app.recording_window)
    qtbot.addWidget(window)
    window.show_progress("Opening the database\u2026")
    bar = window.starting.bar
    assert (bar.minimum(), bar.maximum()) == (0, START_STEPS)  # determinate: no animation
    assert bar.value() == 0
    window.show_progress("Signing in\u2026")
    window.show_progress("Loading the scenario bad-deploy\u2026")
    assert bar.value() == 2
    assert window.starting.step.text() == "Loading the scenario bad-deploy\u2026"

"""Shared fixtures: an isolated user directory per test, a temporary database, and a
qasync loop for GUI tests (STYLE.md 11)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config: pytest.Config) -> None:
    # As in the console (widgets/process.py GuiThreadCollector): Python's cyclic collector
    # would otherwise run on whichever thread allocates past a threshold (an agent's, a
    # reader's) and free the Qt objects an earlier test left in cycles there, which Qt
    # forbids ("Timers cannot be stopped from another thread", or a crash).
    del config
    gc.disable()


@pytest.fixture(autouse=True)
def _collect_on_the_test_thread() -> Iterator[None]:
    """Between tests, on the main thread, as far as the collector's thresholds say (the
    test's: a command run in it sets the headless ones, console/collector.py)."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if counts[generation] > thresholds[generation]:
            gc.collect(generation)
            break


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever touches the real user's database, keys or settings."""
    monkeypatch.setenv("WATCHFLOOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WATCHFLOOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WATCHFLOOR_USER", "alice")
    monkeypatch.delenv("WATCHFLOOR_DB", raising=False)


TEST_DB_ENV = "WATCHFLOOR_TEST_DB"  # "postgresql": db_url is a fresh PostgreSQL database


def _test_db_backend() -> str:
    backend = os.environ.get(TEST_DB_ENV, "sqlite").strip().lower() or "sqlite"
    if backend not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"{TEST_DB_ENV} must be sqlite or postgresql, not {backend!r}")
    return backend


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One throwaway PostgreSQL 15 for the whole session (tests/pg_server.py); a missing
    server package fails the tests that need it, naming the apt package."""
    from tests.pg_server import PgServerError, start_server

    problem = ""
    try:
        server = start_server()
    except PgServerError as exc:
        problem = str(exc)
    if problem:  # outside the except: the message alone, not a chained traceback
        pytest.fail(f"no test PostgreSQL: {problem}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: Any) -> str:
    """A database migrated to head once; each test's database is a copy of it."""
    from console.storage.db import Database

    name = pg_server.create_database("wf_template")
    db = Database(pg_server.url(name))
    db.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
    return name


@pytest.fixture
def pg_url(pg_server: Any, pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database at the newest schema, dropped after the test."""
    name = pg_server.create_database(template=pg_template)
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture
def pg_empty_url(pg_server: Any) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema at all (for the migrations)."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


class DbUrls:
    """Fresh databases on demand, for tests that need more than one (or one per example
    or per module): SQLite files in the given folder, or PostgreSQL databases copied
    from the template; `drop_all` removes the PostgreSQL ones."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._made: list[str] = []

    def __call__(self, folder: Path, name: str = "wf") -> str:
        if _test_db_backend() != "postgresql":
            return f"sqlite:///{folder / f'{name}.db'}"
        server = self._request.getfixturevalue("pg_server")
        made = server.create_database(template=self._request.getfixturevalue("pg_template"))
        self._made.append(made)
        return str(server.url(made))

    def drop_all(self) -> None:
        if self._made:
            server = self._request.getfixturevalue("pg_server")
            for name in self._made:
                server.drop_database(name)
            self._made.clear()


@pytest.fixture
def make_db_url(request: pytest.FixtureRequest) -> Iterator[DbUrls]:
    """`make_db_url(folder, name)`: a fresh database per call, dropped after the test."""
    urls = DbUrls(request)
    yield urls
    urls.drop_all()


@pytest.fixture(scope="session")
def make_db_url_session(request: pytest.FixtureRequest) -> Iterator[DbUrls]:
    """The same for module- and session-scoped fixtures; dropped at the end of the run."""
    urls = DbUrls(request)
    yield urls
    urls.drop_all()


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database per test: a SQLite file, or with WATCHFLOOR_TEST_DB=postgresql a
    PostgreSQL database on the session's server (the core tests run against both)."""
    if _test_db_backend() == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'wf.db'}"


@pytest.fixture
def runtime(db_url: str) -> Iterator[object]:
    from console.runtime import Runtime

    rt = Runtime(db_url)
    rt.service.bootstrap_admin("alice")
    yield rt
    rt.close()


@pytest.fixture
def qloop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop set as the current loop for one test; never stopped (that would quit
    the QApplication for every later test), only cleaned of leftover tasks."""
    import qasync

    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)  # Qt's own event processing now drives asyncio
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    asyncio.events._set_running_loop(None)
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.set_event_loop(None)
    loop.close()  # while the QApplication lives; a loop closed by GC after it is noisy


@pytest.fixture
def no_real_settings(tmp_path: Path) -> Iterator[None]:
    """Even a QSettings() made without a path lands in the test's directory."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))
    yield
    QSettings.setDefaultFormat(QSettings.Format.NativeFormat)


@pytest.fixture
def no_leaked_windows(qapp: Any) -> Iterator[None]:
    """Fails a test that leaves a visible top-level window behind (STYLE.md 12)."""
    before = {id(w) for w in qapp.topLevelWidgets()}
    yield
    leaked = [w for w in qapp.topLevelWidgets() if id(w) not in before and w.isVisible()]
    for widget in leaked:
        widget.close()
    assert not leaked, f"test left windows open: {leaked}"


@pytest.fixture
def console(runtime: Any, tmp_path: Path, qtbot: Any) -> Iterator[Any]:
    """Opens main windows over `runtime` (`console(driver, user)`), 1600x1000, each with
    its own settings file; closes them at teardown. The test makes the driver it needs."""
    from PySide6.QtCore import QCoreApplication, QEvent, QSettings

    from console.app import build_window

    windows: list[Any] = []

    def open_(driver: Any, user: str = "alice") -> Any:
        settings = QSettings(str(tmp_path / "wf.ini"), QSettings.Format.IniFormat)
        window = build_window(runtime, driver, user, settings=settings)
        window.resize(1600, 1000)
        window.show()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)

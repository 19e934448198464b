"""A throwaway PostgreSQL 15 server for tests and benchmarks, from Debian's packages.

`initdb` into a fresh folder, listen on 127.0.0.1 (a free port) and on a unix socket in
that folder, trust authentication (nothing but this machine can reach it), durability
off for speed; `stop()` shuts it down and removes the folder. `initdb` refuses to run as
root, so as root the server runs as the `postgres` system user, in a folder under /tmp
that user owns (a pytest tmp_path under a 0700 /root or /tmp/pytest-of-root is out of
its reach).

Not part of the product: the console never imports this. Benchmarks, run from the
source tree, import it as `tests.pg_server`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PG_BIN_ENV = "WATCHFLOOR_PG_BIN"
DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
APT_PACKAGE = "postgresql"
SUPERUSER = "postgres"
# A zone far from UTC with a 45-minute offset: a datetime that loses or misreads its zone
# anywhere between the product and the server shows up as a wrong time in the tests.
SERVER_TIMEZONE = "Pacific/Chatham"
SPEED = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PgServerError(RuntimeError):
    """The test PostgreSQL could not be found, initialised or started."""


def pg_bin() -> Path:
    folder = Path(os.environ.get(PG_BIN_ENV) or DEFAULT_PG_BIN)
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (folder / name).exists()]
    if missing:
        raise PgServerError(
            f"PostgreSQL server binaries {', '.join(missing)} not found in {folder}: install "
            f"the Debian package `{APT_PACKAGE}` (apt-get install {APT_PACKAGE}), or point "
            f"{PG_BIN_ENV} at the folder that holds initdb and pg_ctl")
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One running cluster; `url(name)` is a SQLAlchemy URL to one of its databases."""

    def __init__(self, root: Path, port: int, *, as_postgres: bool) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._as_postgres = as_postgres
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None
        self._created = 0

    # --- lifecycle ------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            argv = ["runuser", "-u", SUPERUSER, "--", *argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False, cwd=self.root)
        except subprocess.TimeoutExpired as exc:
            raise PgServerError(f"{argv[0]} did not finish in {timeout:.0f}s: "
                                f"{self._log_tail()}") from exc
        return done

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"

    def init(self, timeout: float) -> None:
        bin_ = pg_bin()
        done = self._run([str(bin_ / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                          "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"],
                         timeout)
        if done.returncode != 0:
            raise PgServerError(f"initdb failed ({done.returncode}): "
                                f"{(done.stderr or done.stdout)[-2000:]}")

    def start(self, timeout: float) -> None:
        bin_ = pg_bin()
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.root} -c max_connections=300 "
                   f"-c timezone={SERVER_TIMEZONE} {SPEED}")
        done = self._run([str(bin_ / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-w", "-t", str(int(timeout)), "-o", options, "start"],
                         timeout + 10)
        if done.returncode != 0:
            raise PgServerError(f"pg_ctl start failed ({done.returncode}): "
                                f"{(done.stderr or done.stdout)[-1000:]}\n{self._log_tail()}")

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(psycopg.Error):
                self._admin.close()
            self._admin = None
        with contextlib.suppress(PgServerError):
            if (self.data / "postmaster.pid").exists():
                self._run([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                           "-w", "-t", "30", "stop"], 40)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                          dbname="postgres", autocommit=True)
        return self._admin

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new, empty (or copied from `template`) database; returns its name."""
        if name is None:
            self._created += 1
            name = f"wf_{os.getpid()}_{self._created}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template))
        self.admin().execute(query)
        return name

    def drop_database(self, name: str) -> None:
        self.admin().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def _scratch_folder(as_postgres: bool) -> Path:
    if not as_postgres:
        return Path(tempfile.mkdtemp(prefix="watchfloor-pg-"))
    folder = Path(tempfile.mkdtemp(prefix="watchfloor-pg-", dir="/tmp"))
    entry = pwd.getpwnam(SUPERUSER)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def start_server(timeout: float = 60.0) -> PgServer:
    """Initialise and start a fresh cluster; the caller must `stop()` it."""
    pg_bin()  # fail first, and clearly, when the package is not installed
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise PgServerError(f"running as root needs the `{SUPERUSER}` system user that "
                                f"the Debian package `{APT_PACKAGE}` creates") from exc
    last: PgServerError | None = None
    for _attempt in range(3):  # the free port can be taken between probe and listen
        server = PgServer(_scratch_folder(as_postgres), free_port(), as_postgres=as_postgres)
        try:
            server.init(timeout)
            server.start(timeout)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    server.admin()
                    return server
                except psycopg.OperationalError as exc:
                    if time.monotonic() > deadline:
                        raise PgServerError(f"server started but refuses connections: "
                                            f"{exc}") from exc
                    time.sleep(0.1)
        except PgServerError as exc:
            last = exc
            server.stop()
            if "could not bind" not in str(exc) and "Address already in use" not in str(exc):
                raise
    assert last is not None
    raise last


@contextlib.contextmanager
def running_server(timeout: float = 60.0) -> Iterator[PgServer]:
    server = start_server(timeout)
    try:
        yield server
    finally:
        server.stop()


# --- the PostgreSQL run of the core tests ---------------------------------------------
# scripts/bootstrap.sh loads this module as a pytest plugin (`-p tests.pg_server`) for its
# second run, with WATCHFLOOR_TEST_DB=postgresql. A test that asks for none of these
# fixtures cannot reach PostgreSQL (WATCHFLOOR_DB is cleared for every test): it would
# only repeat, on SQLite, what the first run did, so that run leaves it out.
DB_FIXTURES = frozenset({"db_url", "make_db_url", "make_db_url_session", "pg_url"})


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if os.environ.get("WATCHFLOOR_TEST_DB", "").strip().lower() != "postgresql":
        return
    keep = [i for i in items if DB_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep

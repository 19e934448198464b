"""Database location, engine and schema upgrade.

The default store is SQLite (WAL) in the user data directory, created on first run;
any SQLAlchemy URL can be given with `--db` or `WATCHFLOOR_DB`. The schema always comes
from Alembic, so a database made by an older Watchfloor is upgraded on start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from console.audit_form import stored_json
from console.storage.errors import DatabaseUrlError
from console.storage.sqlite_gate import GatedConnection

APP_NAME = "watchfloor"
DB_ENV = "WATCHFLOOR_DB"


def data_dir() -> Path:
    override = os.environ.get("WATCHFLOOR_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    override = os.environ.get("WATCHFLOOR_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def default_url() -> str:
    return f"sqlite:///{data_dir() / 'watchfloor.db'}"


def resolve_url(url: str | None) -> str:
    """`--db` wins, then `WATCHFLOOR_DB`, then the per-user SQLite file."""
    chosen = url or os.environ.get(DB_ENV) or default_url()
    try:
        parsed = make_url(chosen)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"not a database URL: {chosen!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return chosen


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


PG_CONNECT_TIMEOUT_S = 10


def make_engine(url: str | None = None) -> Engine:
    resolved = resolve_url(url)
    connect_args: dict[str, Any] = {}
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        connect_args["factory"] = GatedConnection  # console/storage/sqlite_gate.py
    elif parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # a server that drops packets must not hang a command for minutes
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    try:
        # JSON columns are written canonically, so the audit chain's stored records are
        # the very bytes their hashes cover and verifying them is hashing (audit_stream)
        engine = create_engine(resolved, future=True, connect_args=connect_args,
                               json_serializer=stored_json)
    except (ArgumentError, ImportError) as exc:
        hint = ""
        if isinstance(exc, ImportError) and parsed.get_backend_name() == "postgresql":
            hint = " (Watchfloor ships the psycopg 3 driver: use postgresql+psycopg://...)"
        shown = parsed.render_as_string(hide_password=True)
        raise DatabaseUrlError(f"cannot open database {shown!r}: {exc}{hint}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once, so that a wrong host, port, user, password or database name is a
    clear DatabaseUrlError (the CLI's exit 2) rather than a traceback from deep inside a
    migration. Errors after a connection was made are not about the URL and pass."""
    try:
        with engine.connect():
            pass
    except (OperationalError, InterfaceError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise DatabaseUrlError(
            f"cannot connect to database {engine.url.render_as_string(hide_password=True)}: "
            f"{' '.join(line.strip() for line in reason[:2])}") from exc


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "console.storage:migrations")
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates everything on an empty DB)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class Database:
    """An upgraded engine plus its session factory; one per process and URL."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        # SQLite's in-memory database is one database per connection, so the console's
        # worker threads (agents, tickets) would each write into a database of their own
        # and their work would be lost. `sqlite://` (nothing kept) gets a private file
        # instead, removed at dispose: the same promise, and every thread sees it.
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        resolved = resolve_url(url)
        parsed = make_url(resolved)
        if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
            self._scratch = tempfile.TemporaryDirectory(prefix="watchfloor-memory-")
            resolved = parsed.set(database=str(Path(self._scratch.name) / "memory.db")) \
                .render_as_string(hide_password=False)
        self.engine = make_engine(resolved)
        try:
            check_connection(self.engine)
        except DatabaseUrlError:
            self.dispose()
            raise
        if migrate:
            upgrade(self.engine)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

"""Storage errors that callers catch without importing the storage stack itself (the
console's command line names them before SQLAlchemy and Alembic are loaded)."""

from __future__ import annotations


class DatabaseUrlError(ValueError):
    """The database URL given on the command line or in the environment is unusable."""

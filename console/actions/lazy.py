"""An executor made when first used: the HTTP executor's stack (httpx, its TLS and
connection pool, about 15 MB) is loaded only once a runbook step or probe needs it,
not by every console and command that opens the execution engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyExecutor:
    """Stands for the executor `make` returns, made on first attribute access (once,
    whichever thread asks first)."""

    def __init__(self, kind: str, make: Callable[[], Any], *,
                 target: str | None = None) -> None:
        """`target`: what the made executor will name (default: its kind), readable
        without making it."""
        self.kind = kind
        self.target = target if target is not None else kind
        self._make = make
        self._made: Any = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._made is not None

    def _target(self) -> Any:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def close(self) -> None:
        if self._made is not None:
            self._made.close()

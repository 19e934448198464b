"""Ticketing credentials live in the OS keyring and nowhere else.

Not in the database, not in the config file, not in the audit log: the adapters ask
for the secret when they send a request (`CredentialStore.getter`), so it is never a
field of anything that gets stored or printed. On Linux desktops the keyring is the
Secret Service (gnome-keyring, KWallet); on macOS the Keychain; on Windows the
Credential Locker — whichever `keyring` finds. Entries are stored under the service
name "watchfloor" with the user name "<system>:<account>", e.g.
"servicenow:acme.service-now.com".
"""

from __future__ import annotations

from collections.abc import Callable

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from console.itsm.base import TicketError

SERVICE = "watchfloor"
SYSTEMS = ("servicenow", "jira", "pagerduty")  # the builtin store needs none


class CredentialError(TicketError):
    """No usable credential: none stored, or no OS keyring to ask."""


def entry_name(system: str, account: str) -> str:
    return f"{system}:{account}"


def set_command(system: str, account: str) -> str:
    return f"watchfloor credentials set {system} --account {account}"


class CredentialStore:
    """The OS keyring (or the backend given, for a caller that must choose one)."""

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._backend = backend

    @property
    def backend(self) -> KeyringBackend:
        return self._backend or keyring.get_keyring()

    def describe(self) -> str:
        backend = self.backend
        return f"{type(backend).__module__}.{type(backend).__name__}"

    def get(self, system: str, account: str) -> str:
        secret = self._get(system, account)
        if not secret:
            raise CredentialError(
                f"no credential stored for {system} account {account!r} in the OS keyring "
                f"(service {SERVICE!r}, entry {entry_name(system, account)!r}); store it "
                f"with: {set_command(system, account)}")
        return secret

    def has(self, system: str, account: str) -> bool:
        return bool(self._get(system, account))

    def set(self, system: str, account: str, secret: str) -> None:
        _check(system, account)
        if not secret:
            raise CredentialError("the secret is empty; nothing was stored")
        try:
            self.backend.set_password(SERVICE, entry_name(system, account), secret)
        except keyring.errors.KeyringError as exc:
            raise self._unusable(exc) from None

    def getter(self, system: str, account: str) -> Callable[[], str]:
        """A function that reads the secret when a request needs it, not before."""
        return lambda: self.get(system, account)

    def _get(self, system: str, account: str) -> str | None:
        _check(system, account)
        try:
            return self.backend.get_password(SERVICE, entry_name(system, account))
        except keyring.errors.KeyringError as exc:
            raise self._unusable(exc) from None

    def _unusable(self, exc: Exception) -> CredentialError:
        return CredentialError(
            f"the OS keyring ({self.describe()}) cannot be used: {exc}. Watchfloor keeps "
            "ticketing credentials only there: on Linux run a Secret Service such as "
            "gnome-keyring in your session and unlock it")


def _check(system: str, account: str) -> None:
    if system not in SYSTEMS:
        raise CredentialError(f"unknown ticket system {system!r} "
                              f"(credentials are kept for: {', '.join(SYSTEMS)})")
    if not account or not account.isprintable() or len(account) > 200:
        raise CredentialError(f"account {account!r} must be 1-200 printable characters")

"""Whose signatures count: the workstation's own key and a list of trusted keys.

A signature only says that *some* key signed; anyone can re-sign an edited bundle with a
key of their own and embed it. What makes a bundle or a checkpoint evidence is that the
key which signed it is one the reader already trusts: this workstation's key, or a key
listed in a trusted-keys file. The default file sits in the config directory beside the
key and starts out listing the workstation's own key; a reviewer adds the keys of the
workstations whose bundles they accept.

File format: one key per line, `KEY [label]`, where KEY is a public key (base64 of the
32 raw Ed25519 bytes, as bundles carry it) or a fingerprint (16 to 64 hex digits of the
SHA-256 of those bytes, as `watchfloor` prints it); blank lines and `#` comments are
ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.audit import key_fingerprint, load_or_create_key, public_key_b64
from console.storage.db import config_dir

KEY_FILE = "audit_ed25519.pem"
TRUSTED_FILE = "trusted_keys.txt"
_HEX = re.compile(r"[0-9a-fA-F]{16,64}")


class TrustError(ValueError):
    """A trusted-keys file or an expected fingerprint that cannot be read (bad input)."""


def key_path() -> Path:
    """The workstation's Ed25519 signing key (bundles and checkpoints)."""
    return config_dir() / KEY_FILE


def default_trusted_path() -> Path:
    return config_dir() / TRUSTED_FILE


def full_fingerprint(public_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()


def workstation_key(path: Path | None = None) -> Ed25519PrivateKey:
    """Load (or make, once) the signing key, and make sure the default trusted-keys file
    exists and names it, so that this workstation's own bundles and checkpoints verify."""
    path = path or key_path()
    key = load_or_create_key(path)
    if path.name == KEY_FILE:  # the workstation's key, wherever its config directory is
        ensure_trusted(key, path.parent / TRUSTED_FILE)
    return key


def existing_public_key(path: Path | None = None) -> str | None:
    """The workstation key's public half (base64), or None when there is no key yet; a
    verification must never make a new key (its checkpoints would all fail against it)."""
    path = path or key_path()
    if not path.exists():
        return None
    return public_key_b64(load_or_create_key(path).public_key())


def ensure_trusted(key: Ed25519PrivateKey, path: Path) -> Path:
    """A trusted-keys file at `path` naming `key`, unless there is one already."""
    if path.exists():
        return path  # the user's list: never rewritten
    public = public_key_b64(key.public_key())
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Keys whose audit bundles and checkpoints this workstation trusts: one per "
            "line,\n# KEY [label], KEY a base64 public key or a hex fingerprint.\n"
            f"{public} this workstation (fingerprint {key_fingerprint(public)})\n")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path  # another process made it first
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


@dataclass(frozen=True, slots=True)
class TrustedKey:
    token: str  # base64 key or hex fingerprint, as written
    label: str
    where: str  # FILE:LINE

    def matches(self, public_b64: str) -> bool:
        try:
            raw = base64.b64decode(public_b64, validate=True)
        except (binascii.Error, ValueError):
            return False
        if _HEX.fullmatch(self.token):
            return hashlib.sha256(raw).hexdigest().startswith(self.token.lower())
        return base64.b64decode(self.token) == raw


def parse_fingerprint(text: str, where: str = "--expect-key") -> TrustedKey:
    token = text.strip()
    if not _HEX.fullmatch(token):
        raise TrustError(f"{where}: expected a key fingerprint (16 to 64 hex digits, as "
                         f"`watchfloor audit export` prints it), got {text!r}")
    return TrustedKey(token, "expected key", where)


def read_trusted(path: Path) -> list[TrustedKey]:
    """The keys a file lists; TrustError naming FILE:LINE for a line that is no key."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TrustError(f"{path}: no such trusted-keys file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot read the trusted-keys file ({exc})") from None
    keys = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        token, _, label = text.partition(" ")
        where = f"{path}:{number}"
        if not _HEX.fullmatch(token) and not _is_public_key(token):
            raise TrustError(f"{where}: {token[:60]!r} is neither a base64 Ed25519 public "
                             f"key nor a hex fingerprint")
        keys.append(TrustedKey(token, label.strip(), where))
    return keys


def _is_public_key(token: str) -> bool:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 32


@dataclass(frozen=True, slots=True)
class TrustVerdict:
    """Whether the signer of something is trusted, in words for the terminal."""

    checked: bool  # some trust list applied
    trusted: bool
    text: str


def judge_signer(public_b64: str, *, expect: TrustedKey | None = None,
                 trusted_file: Path | None = None) -> TrustVerdict:
    """Check a signer against `--expect-key`, then `--trusted-keys FILE`, else the default
    trusted-keys file when it exists; with none of them, say that nothing was checked.
    TrustError for an unreadable list."""
    try:
        fingerprint = key_fingerprint(public_b64)
    except (binascii.Error, ValueError):
        fingerprint = "unreadable"
    if expect is not None:
        if expect.matches(public_b64):
            return TrustVerdict(True, True, f"signer {fingerprint} is the expected key")
        return TrustVerdict(True, False, f"signed by key {fingerprint}, not by the expected "
                                         f"key {expect.token}: not trusted")
    path = trusted_file
    if path is None and default_trusted_path().exists():
        path = default_trusted_path()
    if path is None:
        return TrustVerdict(False, False,
                            f"signer {fingerprint} NOT CHECKED against any trusted key "
                            "(no trusted-keys file; use --expect-key FINGERPRINT or "
                            "--trusted-keys FILE)")
    for key in read_trusted(path):
        if key.matches(public_b64):
            label = f" ({key.label})" if key.label else ""
            return TrustVerdict(True, True, f"signer {fingerprint} is trusted by "
                                            f"{key.where}{label}")
    return TrustVerdict(True, False, f"signed by key {fingerprint}, which is not in the "
                                     f"trusted keys of {path}: not trusted")

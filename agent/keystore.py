"""Signing keys that hold no funds (the machine identity, the marketplace operator): where they live.

On a desktop a key lives in the OS keyring (the Secret Service on Linux). A headless machine has no
Secret Service, so the owner names a key file explicitly; like an SSH host key it must be readable
by its owner only (0600), and a file anyone else can read is refused rather than used. A key is
never logged, never put in config, and never passed on a command line. Plaintext and "fail" keyring
backends are refused with an explanation, not silently used.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

KEYRING_SERVICE = "SpareCycles"


def backend_name(backend: object) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def primary_backend(backend: object) -> object:
    """The one backend keys go to. keyring chains every installed backend when there are several, and its
    chain falls back to the next on failure: a locked Secret Service would then quietly put a key in a
    plaintext file (keyrings.alt). Keys go only to the highest-priority backend, or nowhere."""
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        chained = list(ChainerBackend.backends)
        return chained[0] if chained else backend
    return backend


def unsafe_keyring(backend: object) -> Literal["none", "plaintext", "alternative"] | None:
    """Why a keyring backend must not hold keys: it keeps nothing ("none"), keeps them unencrypted
    ("plaintext"), or is one of keyrings.alt's other stand-ins ("alternative": a password-encrypted file of its
    own, or a retired library), not the OS keyring's own service; None for a real OS keyring. Shared with
    `sparecycles doctor`, which says which of these it found."""
    lowered = backend_name(backend).lower()
    if "fail" in lowered or "null" in lowered:
        return "none"
    if "plaintext" in lowered:
        return "plaintext"
    if "keyrings.alt" in lowered:
        return "alternative"
    return None


def unsafe_keyring_words(problem: Literal["plaintext", "alternative"]) -> str:
    """What such a backend does with secrets, for a message that names it."""
    if problem == "plaintext":
        return "keeps secrets unencrypted"
    return "is a keyrings.alt stand-in (its own password-encrypted file, or a retired library), not the OS keyring"


class KeyStoreError(Exception):
    """A key cannot be kept or read safely; the message says what to do."""


@dataclass(frozen=True)
class KeySource:
    """Where one key lives: a key file (headless), else the OS keyring under ``keyring_name``."""

    keyring_name: str
    key_file: Path | None = None

    def describe(self) -> str:
        return (
            f"key file {self.key_file}" if self.key_file else f"the OS keyring ({KEYRING_SERVICE}/{self.keyring_name})"
        )


def _from_text(text: str, where: str) -> LocalAccount:
    from eth_account import Account

    try:
        account: LocalAccount = Account.from_key(text.strip())
        return account
    except Exception:  # never echo what was in the file: it might be a key with a typo
        raise KeyStoreError(f"{where} does not hold a valid key (64 hexadecimal digits)") from None


def _read_key_file(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"key file {path} can be read by other users; run `chmod 600 {path}` and start again")
    return path.read_text(encoding="utf-8")


def _write_key_file(path: Path, key_hex: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key_hex + "\n")


def _keyring() -> object:
    import keyring

    backend = primary_backend(keyring.get_keyring())
    if unsafe_keyring(backend) is not None:
        raise KeyStoreError(
            f"no usable OS keyring here ({backend_name(backend)}); on a machine without "
            "a desktop session give a key file instead (readable only by this user)"
        )
    return backend


def load_key(source: KeySource, *, create: bool) -> LocalAccount:
    """The key at ``source``; a new one is made there when none exists and ``create`` allows it."""
    from eth_account import Account  # imported where a key is used: `sparecycles doctor` shares this module

    if source.key_file is not None:
        text = _read_key_file(source.key_file)
        if text is None:
            if not create:
                raise KeyStoreError(f"key file {source.key_file} does not exist")
            account: LocalAccount = Account.create()
            _write_key_file(source.key_file, account.key.hex())
            log.info("Created a new key in %s (address %s)", source.key_file, account.address)
            return account
        return _from_text(text, f"key file {source.key_file}")
    try:
        backend = _keyring()
        stored = backend.get_password(KEYRING_SERVICE, source.keyring_name)  # type: ignore[attr-defined]
        if stored is None:
            if not create:
                raise KeyStoreError(f"no key named {source.keyring_name} in the OS keyring")
            account = Account.create()
            backend.set_password(KEYRING_SERVICE, source.keyring_name, account.key.hex())  # type: ignore[attr-defined]
            log.info("Created a new key in %s (address %s)", source.describe(), account.address)
            return account
    except KeyStoreError:
        raise
    except Exception as exc:  # the Secret Service is locked, refused, or gone
        raise KeyStoreError(
            f"the OS keyring cannot keep the key ({type(exc).__name__}: {exc}); unlock it, or give a key file"
        ) from None
    return _from_text(str(stored), source.describe())

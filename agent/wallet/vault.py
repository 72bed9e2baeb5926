"""Where a wallet's secret lives: the OS keyring, and nowhere else.

A secret (a BIP-39 mnemonic, or a private key) is stored through ``keyring`` in the OS store: the Secret
Service or KWallet on Linux, the Credential Locker on Windows. A backend that keeps nothing (``fail``,
``null``: a headless machine with no Secret Service) or keeps secrets unencrypted (plaintext backends of
keyrings.alt) is refused, naming the backend and what to do; so is a store that is locked and cannot be
unlocked. There is no fallback to a file. Secrets are passed in memory only: never logged, never in the
config, never in a process's arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sparecycles.agent.keystore import (
    KEYRING_SERVICE,
    backend_name,
    primary_backend,
    unsafe_keyring,
    unsafe_keyring_words,
)

WATCH_ONLY_ADVICE = (
    "add a watch-only payout address instead (`sparecycles wallet watch NAME ADDRESS`): its key stays in "
    "your hardware wallet or on another computer, and payouts still reach it"
)


class VaultError(Exception):
    """The keyring cannot keep or give a secret safely; the message says which backend and what to do."""


@dataclass(frozen=True)
class Secret:
    """A wallet's secret: a mnemonic (with its derivation path) or a raw private key (0x-hex)."""

    mnemonic: str | None = None
    derivation_path: str | None = None
    private_key: str | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in vars(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> Secret:
        data = json.loads(text)
        return cls(data.get("mnemonic"), data.get("derivation_path"), data.get("private_key"))

    def __repr__(self) -> str:  # a secret never reaches a log line or a traceback by accident
        return "Secret(<hidden>)"


def _entry(name: str) -> str:
    return f"wallet:{name}"


class KeyringVault:
    """The OS keyring, refused when it would not keep a secret safely."""

    def __init__(self, backend: Any | None = None) -> None:
        self._given = backend  # tests may pass one; the agent uses keyring's choice

    def backend(self) -> Any:
        if self._given is not None:
            backend = self._given
        else:
            import keyring

            backend = primary_backend(keyring.get_keyring())  # never a chain that falls back to a file
        problem = unsafe_keyring(backend)
        name = backend_name(backend)
        if problem == "none":
            raise VaultError(
                f"there is no OS keyring to keep a wallet's key in (keyring backend {name}: on Linux a Secret "
                f"Service such as gnome-keyring or KWallet must be running in your session); {WATCH_ONLY_ADVICE}"
            )
        if problem is not None:
            raise VaultError(
                f"the keyring backend {name} {unsafe_keyring_words(problem)}, so no wallet key is stored in it: "
                f"use the Secret Service, KWallet or the Windows Credential Locker, or {WATCH_ONLY_ADVICE}"
            )
        return backend

    def _call(self, what: str, action: Any) -> Any:
        backend = self.backend()
        try:
            return action(backend)
        except VaultError:
            raise
        except Exception as exc:  # locked and not unlockable, refused, the service went away
            raise VaultError(
                f"the OS keyring ({backend_name(backend)}) could not {what} ({type(exc).__name__}); unlock it "
                f"(log in to the desktop session, or unlock it in your keyring app) and try again, or "
                f"{WATCH_ONLY_ADVICE}"
            ) from None

    def check(self) -> None:
        """Refuse now, before a secret is made or shown, if it could not be stored."""
        self._call("be reached", lambda backend: backend.get_password(KEYRING_SERVICE, _entry("__probe__")))

    def store(self, name: str, secret: Secret) -> None:
        self._call(
            "store the key", lambda backend: backend.set_password(KEYRING_SERVICE, _entry(name), secret.to_json())
        )

    def load(self, name: str) -> Secret:
        stored = self._call("give the key", lambda backend: backend.get_password(KEYRING_SERVICE, _entry(name)))
        if stored is None:
            raise VaultError(f"the OS keyring holds no key for wallet {name!r} (was it removed there?)")
        return Secret.from_json(str(stored))

    def delete(self, name: str) -> None:
        def remove(backend: Any) -> None:
            if backend.get_password(KEYRING_SERVICE, _entry(name)) is not None:
                backend.delete_password(KEYRING_SERVICE, _entry(name))

        self._call("remove the key", remove)

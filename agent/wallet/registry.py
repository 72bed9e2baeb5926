"""The wallets the owner has, without their secrets: names, addresses, kinds, and which one is active.

Kept as ``wallets.json`` in the agent's state folder, replaced atomically. It holds nothing secret (a
test greps every file under SPARECYCLES_HOME for keys), so it may be backed up or shown freely.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from sparecycles.fileio import atomic_write_text

WalletKind = Literal["mnemonic", "key", "watch"]


class RegistryError(Exception):
    """A wallet name or address that cannot be used; the message says why."""


@dataclass(frozen=True)
class WalletEntry:
    name: str
    address: str
    kind: WalletKind
    confirmed: bool = True  # a created wallet is unconfirmed until its owner repeats words of its mnemonic

    @property
    def can_sign(self) -> bool:
        return self.kind != "watch"


@dataclass(frozen=True)
class Wallets:
    entries: tuple[WalletEntry, ...] = ()
    active: str | None = None

    def get(self, name: str) -> WalletEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        known = ", ".join(entry.name for entry in self.entries) or "none yet"
        raise RegistryError(f"no wallet named {name!r} (wallets: {known})")

    def active_entry(self) -> WalletEntry | None:
        return self.get(self.active) if self.active is not None else None


def check_name(name: str) -> str:
    if not (1 <= len(name) <= 40 and all(c.isalnum() or c in "-_." for c in name)):
        raise RegistryError("a wallet name is 1-40 letters, digits, '-', '_' or '.'")
    return name


class WalletRegistry:
    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> Wallets:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Wallets()
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self._path} cannot be read ({exc}); fix or remove it") from None
        entries = tuple(WalletEntry(**entry) for entry in data.get("wallets", []))
        return Wallets(entries, data.get("active"))

    def write(self, wallets: Wallets) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {"active": wallets.active, "wallets": [asdict(entry) for entry in wallets.entries]}
        atomic_write_text(self._path, json.dumps(document, indent=1) + "\n")

    def add(self, entry: WalletEntry) -> Wallets:
        wallets = self.read()
        check_name(entry.name)
        if any(existing.name == entry.name for existing in wallets.entries):
            raise RegistryError(f"a wallet named {entry.name!r} exists already; choose another name")
        if any(existing.address.lower() == entry.address.lower() for existing in wallets.entries):
            raise RegistryError(f"the address {entry.address} is already a wallet here")
        updated = Wallets((*wallets.entries, entry), wallets.active)
        self.write(updated)
        return updated

    def replace_entry(self, entry: WalletEntry) -> Wallets:
        wallets = self.read()
        wallets.get(entry.name)
        updated = Wallets(tuple(entry if e.name == entry.name else e for e in wallets.entries), wallets.active)
        self.write(updated)
        return updated

    def remove(self, name: str) -> Wallets:
        wallets = self.read()
        wallets.get(name)
        active = None if wallets.active == name else wallets.active
        updated = Wallets(tuple(e for e in wallets.entries if e.name != name), active)
        self.write(updated)
        return updated

    def set_active(self, name: str) -> Wallets:
        wallets = self.read()
        entry = wallets.get(name)
        if not entry.confirmed:
            raise RegistryError(f"wallet {name!r} is not confirmed yet: repeat the words of its recovery phrase first")
        updated = replace(wallets, active=name)
        self.write(updated)
        return updated

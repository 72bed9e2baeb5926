"""The session tokens and API keys a server process has checked, remembered so that requests need not read
the database to know who sends them.

Every provider request carries a session token and every requester request an API key; reading each from the
database cost about as much as the work the request asked for. A credential found once is trusted until it
expires (a session) or is withdrawn. Withdrawals made through this process (a ban, a revoked or rotated key)
forget it at once; those made elsewhere (another server process, the operator's CLI) are caught by one bulk
check every ``recheck_s``, which reads the banned providers and the remembered requesters' current key hashes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

_REMEMBERED = 100_000  # past this many, the remembered ones are dropped and read again as they come


@dataclass(frozen=True)
class Withdrawn:
    """What the database says now: the banned providers, and the current key hash of each requester asked about."""

    banned_providers: Collection[str]
    key_hashes: Mapping[str, str]


@dataclass(frozen=True)
class _Session:
    address: str
    expires_at: datetime


class KnownCredentials:
    def __init__(self, recheck_s: float, clock: Callable[[], datetime]) -> None:
        self._recheck_s = recheck_s
        self._clock = clock
        self._sessions: dict[str, _Session] = {}  # by the token's hash
        self._keys: dict[str, str] = {}  # requester id, by the key's hash
        self._checked_at = clock()
        self._checking = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._recheck_s > 0

    def provider(self, digest: str, now: datetime) -> str | None:
        """The provider whose unexpired session this is, if remembered."""
        known = self._sessions.get(digest)
        if known is None or known.expires_at <= now:
            return None
        return known.address

    def requester(self, digest: str) -> str | None:
        return self._keys.get(digest)

    def remember_session(self, digest: str, address: str, expires_at: datetime) -> None:
        if self.enabled:
            if len(self._sessions) >= _REMEMBERED:
                self._sessions.clear()
            self._sessions[digest] = _Session(address, expires_at)

    def remember_key(self, digest: str, requester_id: str) -> None:
        if self.enabled:
            if len(self._keys) >= _REMEMBERED:
                self._keys.clear()
            self._keys[digest] = requester_id

    def forget_session(self, digest: str) -> None:
        self._sessions.pop(digest, None)

    def forget_key(self, digest: str) -> None:
        self._keys.pop(digest, None)

    def forget(self, *, provider: str | None = None, requester_id: str | None = None) -> None:
        """Stop trusting a provider's sessions (banned) or a requester's key (revoked or rotated)."""
        if provider is not None:
            self._drop_sessions({provider.lower()})
        if requester_id is not None:
            for digest in [digest for digest, who in list(self._keys.items()) if who == requester_id]:
                self._keys.pop(digest, None)

    def recheck_if_due(self, read: Callable[[Collection[str]], Withdrawn]) -> None:
        """Every ``recheck_s``, ask the database (``read``, given the remembered requesters) what was withdrawn
        elsewhere, and forget it. One thread checks; the others go on with what is remembered meanwhile."""
        if not self._due():
            return
        if not self._checking.acquire(blocking=False):
            return
        try:
            if not self._due():
                return
            withdrawn = read(set(self._keys.values()))  # one C call: a copy made under the GIL
            self._drop_sessions({address.lower() for address in withdrawn.banned_providers})
            for digest, who in list(self._keys.items()):
                if withdrawn.key_hashes.get(who) != digest:
                    self._keys.pop(digest, None)
            self._checked_at = self._clock()
        finally:
            self._checking.release()

    def _due(self) -> bool:
        """Whether ``recheck_s`` passed since the last check (or the clock was set back: check now)."""
        elapsed = (self._clock() - self._checked_at).total_seconds()
        return self.enabled and not 0 <= elapsed < self._recheck_s

    def _drop_sessions(self, addresses: set[str]) -> None:
        if addresses:
            for digest, known in list(self._sessions.items()):
                if known.address.lower() in addresses:
                    self._sessions.pop(digest, None)

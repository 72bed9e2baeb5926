"""Which payout vault vouchers must be for, and which operator key must sign them: read from the vault.

With ``[chain] vault`` set, a voucher counts only when it is for that vault on the configured chain and
signed by the vault's current ``signer()``: the key the vault will pay for, whatever the marketplace or
the settings say. The signer is read from the chain and kept for a minute (it changes only when the
operator rotates its key).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sparecycles.agent.chain.client import ChainClient
from sparecycles.agent.chain.vault import VaultReader
from sparecycles.config import ChainSettings

SIGNER_TTL_S = 60.0


@dataclass(frozen=True)
class TrustedVault:
    """The vault vouchers must name, on ``chain_id``, and the operator key that must have signed them."""

    address: str
    chain_id: int
    signer: str


class VaultTrust:
    """The configured vault and its current signer (None when no vault is configured).

    Raises :class:`~sparecycles.agent.chain.client.ChainError` (``RpcUnavailableError`` among them) when
    the signer cannot be read: then no voucher can be checked, and none should be taken on trust.
    """

    def __init__(
        self,
        settings: Callable[[], ChainSettings],
        *,
        timeout_s: float = 10.0,
        ttl_s: float = SIGNER_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reader: VaultReader | None = None
        self._key: tuple[str, int, str] | None = None
        self._cached: tuple[float, TrustedVault] | None = None

    def reader(self) -> VaultReader | None:
        """A reader of the configured vault (kept while the settings stay the same)."""
        settings = self._settings()
        if settings.vault is None or settings.rpc_url is None or settings.chain_id is None:
            return None
        key = (settings.rpc_url, settings.chain_id, settings.vault.lower())
        with self._lock:
            if self._reader is None or self._key != key:
                client = ChainClient(settings.rpc_url, settings.chain_id, self._timeout_s)
                self._reader, self._key, self._cached = VaultReader(client, settings.vault), key, None
            return self._reader

    def current(self, *, fresh: bool = False) -> TrustedVault | None:
        """The vault and its signer now (read again after ``ttl_s``, or when ``fresh``)."""
        reader = self.reader()
        if reader is None:
            return None
        now = self._monotonic()
        cached = self._cached
        if cached is not None and not fresh and now - cached[0] < self._ttl_s and cached[1].address == reader.address:
            return cached[1]
        trusted = TrustedVault(reader.address, reader.chain.expected_chain_id, reader.signer())
        self._cached = (now, trusted)
        return trusted

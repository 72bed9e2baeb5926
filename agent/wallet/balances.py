"""A wallet's balances for the API: the native coin and the payout token, from the chain in the settings.

Read in a worker thread (web3 is synchronous, and imported only here, on the first balance asked). What
cannot be known is said, never shown as zero: no chain configured, the RPC unreachable, a chain id that
is not the expected one, an address that holds no ERC-20 contract.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from sparecycles.agent.chain.balance import Balance
from sparecycles.agent.chain.client import ChainClient, ChainError
from sparecycles.config import ChainSettings
from sparecycles.control.wallet import BalanceView

NO_CHAIN = "balance unknown (no chain set: [chain] rpc_url and chain_id in the settings)"


class BalanceReader:
    def __init__(self, settings: Callable[[], ChainSettings], timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._client: ChainClient | None = None
        self._lock = threading.Lock()

    def _chain(self, settings: ChainSettings) -> ChainClient | None:
        if settings.rpc_url is None or settings.chain_id is None:
            return None
        with self._lock:
            client = self._client
            if client is None or (client.rpc_url, client.expected_chain_id) != (settings.rpc_url, settings.chain_id):
                client = self._client = ChainClient(settings.rpc_url, settings.chain_id, self._timeout_s)
            return client

    def read(self, address: str) -> BalanceView:
        settings = self._settings()
        client = self._chain(settings)
        if client is None:
            return BalanceView(address=address, native=None, token=None, problem=NO_CHAIN)
        problems: list[str] = []
        shown: list[str | None] = []
        try:
            native = client.native_balance(address)
            token = client.token_balance(settings.payout_token, address) if settings.payout_token else None
        except ChainError as exc:
            return BalanceView(address=address, native=None, token=None, problem=f"balance unknown: {exc}")
        for result in (native, token):
            if result is None:
                shown.append(None)
            elif isinstance(result, Balance):
                shown.append(str(result))
            else:
                shown.append(None)
                problems.append(str(result))
        return BalanceView(
            address=address, native=shown[0], token=shown[1], problem="; ".join(dict.fromkeys(problems)) or None
        )

    def reader(self) -> Callable[[str], Awaitable[BalanceView]]:
        async def read(address: str) -> BalanceView:
            return await asyncio.to_thread(self.read, address)

        return read

"""Read the payout vault (agent/chain/contracts/PayoutVault.sol) and encode claims to it.

The agent trusts the operator key the vault names (``signer()``), not only its own config; it shows
claimable = latest verified voucher - ``claimed(provider)``; and it sends a claim as a transaction
whose data is :meth:`VaultReader.claim_call_data`. Everything uses the committed ABI (build/
PayoutVault.json), so it matches the deployed bytecode. web3 is imported on the first read, as in
:mod:`sparecycles.agent.chain.client`; encoding a claim needs no RPC at all.

(Not to be confused with :mod:`sparecycles.agent.wallet.vault`, which keeps the wallet's keys.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from sparecycles.agent.chain.client import ChainClient, ChainError, _checksum, _import_web3

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from web3 import Web3

log = logging.getLogger(__name__)


class VaultContractError(ChainError):
    """The vault address holds no payout vault on this chain (no code, or a contract that answers otherwise)."""


@cache
def vault_abi() -> list[dict[str, Any]]:
    """The PayoutVault ABI from the committed build output."""
    text = resources.files("sparecycles.agent.chain.contracts.build").joinpath("PayoutVault.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)["abi"]
    return abi


def _signature_bytes(signature: bytes | str) -> bytes:
    if isinstance(signature, bytes):
        return signature
    try:
        return bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise ValueError("the voucher's signature is not hexadecimal") from None


class VaultReader:
    """The reads of one payout vault that the agent needs, through a :class:`ChainClient`.

    ``chain`` is a client already set up for the configured chain, or an RPC URL; a URL needs
    ``chain_id``, the chain the vault was deployed on, which is checked before the first read. Reads
    raise :class:`~sparecycles.agent.chain.client.RpcUnavailableError` when the RPC cannot be asked
    (a claimable amount is then unknown, never zero) and :class:`VaultContractError` when the address
    holds no vault.
    """

    def __init__(self, chain: ChainClient | str, vault_address: str, *, chain_id: int | None = None) -> None:
        if isinstance(chain, str):
            if chain_id is None:
                raise ValueError("a VaultReader made from an RPC URL needs the vault's chain_id")
            chain = ChainClient(chain, chain_id)
        elif chain_id is not None and chain_id != chain.expected_chain_id:
            raise ValueError(f"chain_id {chain_id} differs from the client's chain id {chain.expected_chain_id}")
        self.chain = chain
        self.address: ChecksumAddress = _checksum(vault_address, "the vault address")

    def signer(self) -> str:
        """The operator key whose vouchers the vault pays now (checksummed)."""
        return str(self._read("signer", lambda functions: functions.signer()))

    def claimed(self, provider: str) -> int:
        """What the vault has paid ``provider`` so far, in the token's smallest unit."""
        holder = _checksum(provider, "the provider address")
        return int(self._read("claimed", lambda functions: functions.claimed(holder)))

    def token(self) -> str:
        """The ERC-20 token the vault pays out (checksummed)."""
        return str(self._read("token", lambda functions: functions.token()))

    def claim_call_data(self, provider: str, cumulative_amount: int, signature: bytes | str) -> bytes:
        """The data of a ``claim(provider, cumulativeAmount, signature)`` transaction to this vault."""
        from eth_abi.abi import encode
        from eth_utils.crypto import keccak

        if not 0 <= cumulative_amount < 2**256:
            raise ValueError(f"cumulative amount {cumulative_amount} is not a uint256")
        (function,) = (entry for entry in vault_abi() if entry.get("type") == "function" and entry["name"] == "claim")
        types = [argument["type"] for argument in function["inputs"]]
        arguments = (_checksum(provider, "the provider address"), cumulative_amount, _signature_bytes(signature))
        selector = keccak(text=f"claim({','.join(types)})")[:4]  # the inputs are plain types, no tuples
        return selector + encode(types, arguments)

    def _read(self, name: str, call: Callable[[Any], Any]) -> Any:
        _import_web3()
        from web3.exceptions import BadFunctionCallOutput, ContractLogicError

        def request(web3: Web3) -> Any:
            return call(web3.eth.contract(address=self.address, abi=vault_abi()).functions).call()

        try:
            return self.chain.read(request)
        except (BadFunctionCallOutput, ContractLogicError) as exc:
            log.debug("%s() on %s failed: %s", name, self.address, exc)
            raise VaultContractError(
                f"the vault address {self.address} holds no payout vault on chain {self.chain.expected_chain_id} "
                f"({name}() did not answer): check the vault address"
            ) from None

"""The marketplace against a payout vault on chain (agent/chain/contracts/PayoutVault.sol).

- :func:`connect_vault`: the RPC's chain id and a check that the address holds a payout vault; a server
  run with ``--chain-rpc``/``--vault`` signs its vouchers for that chain and vault.
- :class:`DepositWatcher`: credits requesters with their deposits to the vault, read from its Deposited
  events once they have ``confirmations`` blocks on top. Each deposit is recorded under its (transaction
  hash, log index) with an insert that does nothing when the row exists, in the transaction that credits
  it: a restart, or a second server process reading the same blocks, never credits one twice.
- :func:`relay_claims`: the operator sends ``claim(provider, cumulative, signature)`` for each payout
  address whose latest voucher exceeds what the vault paid it, from a gas-paying key, so a watch-only
  payout address with no coin for gas is paid too (the tokens always go to the payout address).
  :class:`ClaimRelayer` does it in a running server, on a schedule and when a provider asks.
- :func:`deploy_vault`: deploys the committed build of PayoutVault.

web3 is imported on first use, never when this module is imported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparecycles.agent.chain.client import ChainClient, ChainError, ChainMismatchError, _checksum, _import_web3
from sparecycles.agent.chain.vault import VaultReader, vault_abi
from sparecycles.agent.market_server.market import ChainDepositEvent, Marketplace
from sparecycles.protocol.market import Voucher
from sparecycles.protocol.signing import SignatureError, voucher_signer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

log = logging.getLogger(__name__)

DEFAULT_CONFIRMATIONS = 2
BLOCKS_PER_QUERY = 2_000  # eth_getLogs ranges hosted RPCs accept
_DEPOSITED = "Deposited(address,uint256)"


def chain_id_of(rpc_url: str, timeout_s: float = 10.0) -> int:
    """The chain id the RPC at ``rpc_url`` serves (:class:`RpcUnavailableError` when it cannot be asked)."""
    probe = ChainClient(rpc_url, 0, timeout_s)  # no chain has id 0: the check reports the real one
    try:
        probe.check()
    except ChainMismatchError as exc:
        return exc.reported
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class VaultLink:
    """A payout vault on a checked chain."""

    client: ChainClient
    vault: str  # checksummed
    chain_id: int

    @property
    def reader(self) -> VaultReader:
        return VaultReader(self.client, self.vault)

    @property
    def cursor_name(self) -> str:
        return f"{self.chain_id}:{self.vault}"


def connect_vault(rpc_url: str, vault: str, *, expected_chain_id: int | None = None) -> VaultLink:
    """The vault at ``vault`` on the chain ``rpc_url`` serves, checked: the chain is ``expected_chain_id``
    when one is given, and the address answers as a payout vault. Raises :class:`ChainError` saying what
    to change."""
    address = _checksum(vault, "the vault address")
    reported = chain_id_of(rpc_url)
    if expected_chain_id is not None and reported != expected_chain_id:
        raise ChainMismatchError(ChainClient(rpc_url, expected_chain_id).url, reported, expected_chain_id)
    link = VaultLink(ChainClient(rpc_url, reported), address, reported)
    link.reader.signer()  # VaultContractError when no vault is there
    return link


def send_transaction(client: ChainClient, account: LocalAccount, transaction: dict[str, Any]) -> dict[str, Any]:
    """Sign ``transaction`` (to, data) with ``account`` here, fill in nonce, gas and EIP-1559 fees, send it
    raw and wait for its receipt; a reverted transaction raises :class:`ChainError`."""

    def send(web3: Web3) -> dict[str, Any]:
        latest = web3.eth.get_block("latest")
        try:
            tip = int(web3.eth.max_priority_fee)
        except Exception:  # an RPC without eth_maxPriorityFeePerGas
            tip = 10**9
        filled: dict[str, Any] = {
            "chainId": client.expected_chain_id,
            "nonce": web3.eth.get_transaction_count(account.address, "pending"),
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * int(latest.get("baseFeePerGas", 0)) + tip,
            **transaction,
        }
        if "gas" not in filled:
            estimate = web3.eth.estimate_gas({**filled, "from": account.address})  # type: ignore[typeddict-item]
            filled["gas"] = estimate * 6 // 5
        signed = account.sign_transaction(filled)
        tx_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
        return dict(web3.eth.wait_for_transaction_receipt(tx_hash, timeout=120))

    receipt = client.read(send)
    if receipt.get("status") != 1:
        raise ChainError(f"transaction {receipt['transactionHash'].hex()} reverted")
    return receipt


# --- deposits ---------------------------------------------------------------------------------------------


class DepositWatcher:
    """Reads the vault's Deposited events ``confirmations`` blocks behind the chain's head and credits them.

    Where it got to is kept in the database (chain_cursors), so a restart goes on from there; the first run
    starts at ``from_block`` (the vault's deployment block saves reading the chain from its start).
    """

    def __init__(
        self,
        market: Marketplace,
        link: VaultLink,
        *,
        confirmations: int = DEFAULT_CONFIRMATIONS,
        from_block: int = 0,
        poll_s: float = 5.0,
    ) -> None:
        if confirmations < 0:
            raise ValueError("confirmations must be 0 or more")
        self.market = market
        self.link = link
        self.confirmations = confirmations
        self.from_block = from_block
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scan_once(self) -> int:
        """Read every confirmed block not yet read; returns the base units credited."""
        _import_web3()
        from eth_utils.crypto import keccak

        topic = "0x" + keccak(text=_DEPOSITED).hex()
        head = self.link.client.read(lambda web3: int(web3.eth.block_number))
        last = head - self.confirmations
        start = self.market.deposit_cursor(self.link.cursor_name)
        start = self.from_block if start is None else start
        credited = 0
        while start <= last:
            end = min(last, start + BLOCKS_PER_QUERY - 1)
            query = {"address": self.link.vault, "topics": [topic], "fromBlock": start, "toBlock": end}
            logs = self.link.client.read(lambda web3, query=query: web3.eth.get_logs(query))  # type: ignore[misc]
            events = [self._event(entry) for entry in logs]
            credited += self.market.record_deposits(self.link.cursor_name, events, end + 1)
            start = end + 1
        return credited

    def _event(self, entry: Any) -> ChainDepositEvent:
        from eth_utils.address import to_checksum_address

        topics = entry["topics"]
        data = bytes(entry["data"])
        return ChainDepositEvent(
            tx_hash="0x" + bytes(entry["transactionHash"]).hex(),
            log_index=int(entry["logIndex"]),
            vault=self.link.vault,
            block_number=int(entry["blockNumber"]),
            from_address=to_checksum_address(bytes(topics[1])[-20:]),
            amount=int.from_bytes(data[:32], "big"),
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vault-deposits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
            except Exception as exc:  # an RPC down for a while: try again next time
                log.warning("Reading the vault's deposits failed (retrying in %g s): %s", self.poll_s, exc)
            self._stop.wait(self.poll_s)


# --- relayed claims ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayedClaim:
    payout_address: str
    amount: int  # what the claim paid
    cumulative: int
    tx_hash: str


def relay_claims(
    market: Marketplace,
    link: VaultLink,
    gas_payer: LocalAccount,
    *,
    min_amount: int = 1,
    only: Collection[str] | None = None,
    actor: str = "operator",
    say: Callable[[str], object] = lambda _line: None,
) -> list[RelayedClaim]:
    """Claim, for each payout address (of ``only``, when given), what its latest voucher has earned beyond
    what the vault paid it, sending the transactions from ``gas_payer``; addresses owed less than
    ``min_amount`` are left for later. Vouchers for another chain or vault, or signed by a key the vault does
    not trust now, are skipped (``market resign-vouchers`` renews them)."""
    reader = link.reader
    signer = reader.signer()
    wanted = None if only is None else {address.lower() for address in only}
    relayed: list[RelayedClaim] = []
    for voucher in market.vouchers():
        if wanted is not None and voucher.payout_address.lower() not in wanted:
            continue
        why = _unclaimable(voucher, link, signer)
        if why:
            say(f"{voucher.payout_address}: skipped, {why}")
            continue
        owed = voucher.cumulative_amount - reader.claimed(voucher.payout_address)
        if owed < max(1, min_amount):
            continue
        data = reader.claim_call_data(voucher.payout_address, voucher.cumulative_amount, voucher.signature)
        receipt = send_transaction(link.client, gas_payer, {"to": link.vault, "data": "0x" + data.hex()})
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        claim = RelayedClaim(voucher.payout_address, owed, voucher.cumulative_amount, tx_hash)
        market.record_relayed_claim(claim.payout_address, claim.amount, tx_hash, actor=actor)
        say(f"{claim.payout_address}: claimed {claim.amount} (cumulative {claim.cumulative}), tx {tx_hash}")
        relayed.append(claim)
    return relayed


class ClaimRelayer:
    """`market serve --relay-gas-key-file`: relays claims on a schedule (``every_s``; None: never) and when a
    provider asks (:meth:`request`), one at a time on its own thread, so the API never waits on a block.

    A request is honoured only when the provider's payout address is owed at least ``min_amount`` (the
    operator pays the gas of every claim it relays); requests for one address coalesce until it is served.
    """

    def __init__(
        self,
        market: Marketplace,
        link: VaultLink,
        gas_payer: LocalAccount,
        *,
        every_s: float | None,
        min_amount: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.link = link
        self.gas_payer = gas_payer
        self.every_s = every_s
        self.min_amount = max(1, min_amount)
        self._clock = clock
        self._asked: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_run = None if every_s is None else clock() + every_s

    def owed(self, voucher: Voucher) -> tuple[int, str | None]:
        """What the vault owes ``voucher``'s payout address on it now, and why it cannot be relayed (or None)."""
        why = _unclaimable(voucher, self.link, self.link.reader.signer())
        if why:
            return 0, why
        return max(0, voucher.cumulative_amount - self.link.reader.claimed(voucher.payout_address)), None

    def request(self, voucher: Voucher) -> RelayRequest:
        """A provider's request to relay the claim of its latest ``voucher`` now; queued when enough is owed."""
        owed, why = self.owed(voucher)
        if why is None and owed < self.min_amount:
            why = f"{owed} base units are owed, below the {self.min_amount} this marketplace relays a claim for"
        if why is not None:
            return RelayRequest(queued=False, owed=owed, detail=why)
        payout_address = voucher.payout_address
        with self._lock:
            self._asked.add(payout_address)
        self._wake.set()
        return RelayRequest(queued=True, owed=owed, detail="queued: the operator sends the claim and pays the gas")

    def run_once(self) -> list[RelayedClaim]:
        """Relay what was asked for, and everything when the schedule is due."""
        with self._lock:
            asked, self._asked = self._asked, set()
        due = self._next_run is not None and self._clock() >= self._next_run
        relayed: list[RelayedClaim] = []
        if asked and not due:
            relayed += relay_claims(
                self.market, self.link, self.gas_payer, min_amount=self.min_amount, only=asked, actor="relay (asked)"
            )
        if due:
            assert self.every_s is not None  # noqa: S101 - due only with a schedule
            self._next_run = self._clock() + self.every_s
            relayed += relay_claims(
                self.market, self.link, self.gas_payer, min_amount=self.min_amount, actor="relay (scheduled)"
            )
        return relayed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vault-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for claim in self.run_once():
                    log.info("Relayed a claim of %d to %s: %s", claim.amount, claim.payout_address, claim.tx_hash)
            except Exception as exc:  # an RPC down, a gas key without coin: the next round tries again
                log.warning("Relaying claims failed (tried again at the next request or round): %s", exc)
            wait = None if self._next_run is None else max(0.0, self._next_run - self._clock())
            self._wake.wait(wait)
            self._wake.clear()


@dataclass(frozen=True)
class RelayRequest:
    queued: bool
    owed: int
    detail: str


def _unclaimable(voucher: Voucher, link: VaultLink, signer: str) -> str | None:
    if voucher.chain_id != link.chain_id or voucher.verifying_contract.lower() != link.vault.lower():
        return f"its voucher is for chain {voucher.chain_id} and vault {voucher.verifying_contract}"
    try:
        signed_by = voucher_signer(voucher)
    except SignatureError as exc:
        return str(exc)
    if signed_by.lower() != signer.lower():
        return f"its voucher is signed by {signed_by}, and the vault now trusts {signer} (`market resign-vouchers`)"
    return None


# --- deployment -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedVault:
    address: str
    block_number: int
    chain_id: int
    tx_hash: str
    signer: str


def deploy_vault(rpc_url: str, token: str, deployer: LocalAccount, signer: str | None = None) -> DeployedVault:
    """Deploy PayoutVault (the committed build) for ``token``, trusting ``signer``'s vouchers (default: the
    deployer's address); the deployer owns it (it may rotate the signer) and pays the gas."""
    import json
    from importlib import resources

    _import_web3()
    token_address = _checksum(token, "the token address")
    signer_address = _checksum(signer or deployer.address, "the signer address")
    build = json.loads(
        resources.files("sparecycles.agent.chain.contracts.build").joinpath("PayoutVault.json").read_text()
    )
    client = ChainClient(rpc_url, chain_id_of(rpc_url))

    def constructor_data(web3: Web3) -> str:
        factory = web3.eth.contract(abi=vault_abi(), bytecode=build["bytecode"])
        return str(
            factory.constructor(token_address, signer_address).build_transaction({"from": deployer.address})["data"]
        )

    if client.read(lambda web3: len(web3.eth.get_code(token_address))) == 0:
        raise ChainError(f"the token address {token_address} holds no contract on chain {client.expected_chain_id}")
    receipt = send_transaction(client, deployer, {"data": client.read(constructor_data)})
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError("the deployment transaction created no contract")
    return DeployedVault(
        address=str(address),
        block_number=int(receipt["blockNumber"]),
        chain_id=client.expected_chain_id,
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        signer=signer_address,
    )

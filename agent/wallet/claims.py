"""Claims of the provider's voucher from the payout vault: what is claimable, and the claim transaction.

claimable = the latest verified voucher's cumulative amount - what the vault has paid its payout address.
A claim is sent from the active wallet (signed by :class:`WalletService`, so its key never leaves the
keyring's side), after its gas was estimated and found worth it (:func:`gas_refusal`). The signed
transaction is kept in the ledger *before* it is sent; every later look (:meth:`ClaimService.settle`, run
before any claimable figure or claim) settles it: mined, its payout is recorded once (the transaction hash
is unique); still pending, no second claim is sent; gone from the node with its nonce unused, it is sent
again (the same transaction: it cannot pay twice); gone with its nonce used by another, it is forgotten.

Each claim and payout belongs to the vault that pays it: a claim sent to an earlier vault on the same chain
is settled against that vault and holds back no claim from the configured one, and a payout counts only
towards its own vault's ``claimed()``.

All of it is synchronous (web3 is): the API runs it in a worker thread, one claim at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sparecycles.agent.chain.client import ERC20_READ_ABI, NATIVE_DECIMALS, ChainError, _import_web3
from sparecycles.agent.chain.trust import TrustedVault, VaultTrust
from sparecycles.agent.chain.vault import VaultReader, vault_abi
from sparecycles.agent.ledger.store import Payout, PendingClaim
from sparecycles.agent.wallet.service import WalletService
from sparecycles.config import ChainSettings
from sparecycles.protocol.market import Voucher
from sparecycles.protocol.signing import VoucherTerms, voucher_problem

if TYPE_CHECKING:
    from web3 import Web3

log = logging.getLogger(__name__)

RECEIPT_WAIT_S = 30.0
CLAIMED_EVENT = "Claimed(address,uint256,uint256)"
BLOCKS_PER_QUERY = 2_000  # eth_getLogs ranges hosted RPCs accept
MAX_PAYOUT_QUERIES = 50  # a look for payouts sent from elsewhere reads at most the latest 100,000 blocks


class ClaimError(Exception):
    """A claim cannot be made now; ``str()`` says why and what to do."""


class ClaimLedger(Protocol):
    """The ledger's side of claims (agent/ledger/store.py); each call commits."""

    def add_pending_claim(self, claim: PendingClaim) -> None: ...
    def pending_claims(self) -> list[PendingClaim]: ...
    def claim_mined(self, tx_hash: str, payout: Payout | None) -> bool: ...
    def payouts(self) -> list[Payout]: ...
    def set_payout_vault(self, tx_hash: str, vault: str) -> None: ...


@dataclass(frozen=True)
class Claimable:
    payout_address: str | None
    voucher_amount: int  # the latest verified voucher's cumulative amount (0: none)
    claimed: int  # what the vault paid the payout address so far
    claimable: int
    decimals: int
    pending_tx: str | None  # a claim sent and not mined yet
    problem: str | None  # why the voucher cannot be claimed (e.g. signed by a key the vault no longer trusts)


@dataclass(frozen=True)
class ClaimOutcome:
    tx_hash: str
    state: Literal["mined", "pending"]
    payout_address: str
    amount: int  # mined: what the vault paid (its Claimed event); pending: what the claim should pay


def units(amount: int, decimals: int) -> str:
    """An amount of base units as a decimal figure ("12.5")."""
    return format((Decimal(amount) / Decimal(10) ** decimals).normalize(), "f")


def gas_refusal(
    *, gas: int, gas_price_wei: int, amount: int, decimals: int, native_price: Decimal, max_share: Decimal
) -> str | None:
    """Why the claim's gas is not worth it, or None.

    The rule: gas x gas price is the cost in the native coin (wei); valued at ``native_price`` (whole payout
    tokens per native coin) it must not exceed ``max_share`` of the amount claimed. A claim that passes at
    today's price is signed with a max fee no higher than the share allows (:func:`max_fee_within_share`).
    """
    cost_native = Decimal(gas * gas_price_wei) / Decimal(10) ** NATIVE_DECIMALS
    cost_tokens = cost_native * native_price
    amount_tokens = Decimal(amount) / Decimal(10) ** decimals
    limit = amount_tokens * max_share
    if cost_tokens <= limit:
        return None
    return (
        f"the claim's gas would cost more than {(max_share * 100).normalize():f} % of the amount: {gas} gas x "
        f"{Decimal(gas_price_wei) / Decimal(10) ** 9:f} gwei = {cost_native.normalize():f} native coin, worth "
        f"{cost_tokens.normalize():f} tokens at chain.native_price {native_price:f}, against "
        f"{limit.normalize():f} allowed ({max_share:f} x {units(amount, decimals)} claimable). Claim later, "
        "when more has accrued or gas is cheaper, or raise chain.max_gas_share"
    )


def max_fee_within_share(*, gas: int, amount: int, decimals: int, native_price: Decimal, max_share: Decimal) -> int:
    """The highest fee per gas (wei) at which ``gas`` costs no more than ``max_share`` of the amount claimed.

    The claim is signed with its max fee capped at this, so it can never pay more than the share, whatever
    the base fee does before it is mined. Weighing the guard at the usual max fee (2 x base fee + tip)
    instead would refuse, on a calm chain, claims that cost half the share; with the cap, such a claim keeps
    the usual headroom wherever the share allows it, and where it does not, the claim waits in the pool
    while the base fee is above what the share allows (the guard's "claim later, when gas is cheaper").
    """
    with localcontext() as context:
        context.prec = 100  # exact for any uint256 amount: the cap and the guard agree to the wei
        limit_tokens = Decimal(amount) / Decimal(10) ** decimals * max_share
        limit_wei = limit_tokens / native_price * Decimal(10) ** NATIVE_DECIMALS
        return int(limit_wei / gas)


class ClaimService:
    def __init__(
        self,
        wallets: WalletService,
        ledger: ClaimLedger,
        voucher: Callable[[], Voucher | None],
        settings: Callable[[], ChainSettings],
        trust: VaultTrust,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        receipt_wait_s: float = RECEIPT_WAIT_S,
    ) -> None:
        self._wallets = wallets
        self._ledger = ledger
        self._voucher = voucher
        self._settings = settings
        self._trust = trust
        self._clock = clock
        self._receipt_wait_s = receipt_wait_s
        self._lock = threading.Lock()  # one claim (or settling) at a time
        self._other_chain_warned: set[str] = set()  # pending claims on another chain, warned about once

    def _vault(self) -> tuple[VaultReader, TrustedVault]:
        reader = self._trust.reader()
        trusted = self._trust.current(fresh=True)
        if reader is None or trusted is None:
            raise ClaimError("no payout vault set: [chain] vault (with rpc_url and chain_id) in the settings")
        return reader, trusted

    # -- what can be claimed -----------------------------------------------------------------------

    def claimable(self) -> Claimable:
        with self._lock:
            self._settle()
            found = self._claimable()
            if found.payout_address is not None:
                self._record_vault_payouts(found.payout_address, found.claimed)
            return found

    def record_vault_payouts(self, payout_address: str) -> int:
        """Record the vault's payouts to ``payout_address`` that this agent did not send (relayed by the
        operator, or claimed from another machine); how many were new."""
        with self._lock:
            reader, _trusted = self._vault()
            return self._record_vault_payouts(payout_address, reader.claimed(payout_address))

    def _record_vault_payouts(self, payout_address: str, claimed: int) -> int:
        """Read the vault's Claimed events for ``payout_address``, newest blocks first, until the ledger's
        payouts add up to ``claimed`` (what the vault has paid it) or MAX_PAYOUT_QUERIES ranges were read: a
        relayed claim is usually recent, so the usual look is one query, and nothing is read while the
        ledger already agrees with the vault."""
        reader, _trusted = self._vault()
        chain_id = reader.chain.expected_chain_id
        self._find_payout_vaults(reader)

        def recorded() -> tuple[int, set[str]]:
            payouts = self._ledger.payouts()
            mine = [
                payout
                for payout in payouts
                if payout.payout_address.lower() == payout_address.lower()
                and payout.chain_id == chain_id
                and (payout.vault or "").lower() == reader.address.lower()
            ]
            return sum(payout.amount for payout in mine), {payout.tx_hash.lower() for payout in payouts}

        total, known = recorded()
        if total >= claimed:
            return 0
        _import_web3()
        from eth_utils.address import to_checksum_address
        from eth_utils.crypto import keccak

        topics = ["0x" + keccak(text=CLAIMED_EVENT).hex(), "0x" + bytes(12).hex() + payout_address[2:].lower()]
        head = int(reader.chain.read(lambda web3: web3.eth.block_number))
        new = 0
        end, queries = head, 0
        while end >= 0 and total < claimed and queries < MAX_PAYOUT_QUERIES:
            queries += 1
            start = max(0, end - BLOCKS_PER_QUERY + 1)
            query = {"address": reader.address, "topics": topics, "fromBlock": start, "toBlock": end}
            logs = reader.chain.read(lambda web3, query=query: web3.eth.get_logs(query))  # type: ignore[misc]
            for entry in sorted(logs, key=lambda entry: (entry["blockNumber"], entry["logIndex"])):
                tx_hash = "0x" + bytes(entry["transactionHash"]).hex()
                if tx_hash in known:
                    continue
                amount = int.from_bytes(bytes(entry["data"])[:32], "big")
                block = reader.chain.read(lambda web3, n=entry["blockNumber"]: web3.eth.get_block(n))  # type: ignore[misc]
                payout = Payout(
                    datetime.fromtimestamp(int(block["timestamp"]), UTC),
                    to_checksum_address(payout_address),
                    amount,
                    chain_id,
                    tx_hash,
                    reader.address,
                )
                if amount > 0 and self._ledger.claim_mined(tx_hash, payout):
                    log.info(
                        "A payout of %d to %s found on chain (not sent from here): %s", amount, payout_address, tx_hash
                    )
                    new += 1
                    known.add(tx_hash)
                    total += amount
            end = start - 1
        return new

    def _find_payout_vaults(self, reader: VaultReader) -> None:
        """Name the vault of the payouts on this chain recorded before the ledger kept it (migration l0004): the
        address that emitted the transaction's Claimed event, or, where the node no longer has the receipt,
        the configured vault, which those versions counted them against. One receipt each, once."""
        chain_id = reader.chain.expected_chain_id
        unknown = [payout for payout in self._ledger.payouts() if payout.vault is None and payout.chain_id == chain_id]
        if not unknown:
            return
        _import_web3()
        from eth_utils.crypto import keccak
        from web3.exceptions import TransactionNotFound

        claimed_topic = keccak(text=CLAIMED_EVENT)

        def emitter(web3: Web3, payout: Payout) -> str | None:
            try:
                receipt = web3.eth.get_transaction_receipt(payout.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
            provider = bytes.fromhex(payout.payout_address.removeprefix("0x").lower())
            for entry in receipt["logs"]:
                topics = [bytes(topic) for topic in entry["topics"]]
                if len(topics) > 1 and topics[0] == claimed_topic and topics[1][-20:] == provider:
                    return str(entry["address"])
            return None

        for payout in unknown:
            found = reader.chain.read(lambda web3, payout=payout: emitter(web3, payout))  # type: ignore[misc]
            vault = found or reader.address
            self._ledger.set_payout_vault(payout.tx_hash, vault)
            log.info(
                "Payout %s was recorded without its vault: %s (%s)",
                payout.tx_hash,
                vault,
                "from its receipt" if found else "the configured one; the node has no receipt",
            )

    def _pending_here(self, reader: VaultReader) -> list[PendingClaim]:
        """The claims sent to ``reader``'s vault and not settled: only these hold back a new claim from it."""
        return [
            claim
            for claim in self._ledger.pending_claims()
            if claim.vault.lower() == reader.address.lower() and claim.chain_id == reader.chain.expected_chain_id
        ]

    def _claimable(self) -> Claimable:
        reader, trusted = self._vault()
        decimals = self._decimals(reader)
        pending = self._pending_here(reader)
        pending_tx = pending[0].tx_hash if pending else None
        voucher = self._voucher()
        if voucher is None:
            return Claimable(None, 0, 0, 0, decimals, pending_tx, "no voucher yet: nothing earned, or not confirmed")
        claimed = reader.claimed(voucher.payout_address)
        terms = VoucherTerms(trusted.signer, trusted.chain_id, trusted.address, voucher.payout_address)
        problem = voucher_problem(voucher, terms)
        amount = voucher.cumulative_amount
        return Claimable(
            voucher.payout_address,
            amount,
            claimed,
            0 if problem else max(0, amount - claimed),
            decimals,
            pending_tx,
            f"the latest voucher cannot be claimed from vault {trusted.address}: {problem}" if problem else None,
        )

    def _decimals(self, reader: VaultReader) -> int:
        token = reader.token()

        def read(web3: Web3) -> int:
            contract = web3.eth.contract(address=web3.to_checksum_address(token), abi=ERC20_READ_ABI)
            return int(contract.functions.decimals().call())

        return reader.chain.read(read)

    # -- claiming ----------------------------------------------------------------------------------

    def claim(self) -> ClaimOutcome:
        """Send a claim of everything claimable from the active wallet; wait a while for it to be mined."""
        with self._lock:
            self._settle()
            reader, _trusted = self._vault()
            pending = self._pending_here(reader)
            if pending:
                raise ClaimError(
                    f"a claim is already on its way (transaction {pending[0].tx_hash}, sent "
                    f"{pending[0].sent:%Y-%m-%d %H:%M} UTC); no second claim is sent until it is mined or dropped"
                )
            now = self._claimable()
            if now.problem is not None or now.payout_address is None:
                raise ClaimError(now.problem or "nothing to claim")
            if now.claimable == 0:
                raise ClaimError(
                    f"nothing to claim: the vault has paid {now.payout_address} "
                    f"{units(now.claimed, now.decimals)} already, as much as the latest voucher "
                    f"({units(now.voucher_amount, now.decimals)})"
                )
            settings = self._settings()
            if settings.native_price is None:
                raise ClaimError(
                    "set chain.native_price (what one native coin is worth in payout tokens, e.g. 3000) so the "
                    "claim's gas can be weighed against the amount"
                )
            voucher = self._voucher()
            assert voucher is not None  # noqa: S101 - _claimable found it
            account = self._wallets.account()  # the active wallet; a watch-only one refuses here
            transaction, gas_price = self._transaction(reader, account.address, voucher)
            gas = int(transaction["gas"])
            native_price = Decimal(str(settings.native_price))
            max_share = Decimal(str(settings.max_gas_share))
            refusal = gas_refusal(
                gas=gas,
                gas_price_wei=gas_price,
                amount=now.claimable,
                decimals=now.decimals,
                native_price=native_price,
                max_share=max_share,
            )
            if refusal is not None:
                raise ClaimError(refusal)
            # Never more than the share, however the base fee rises before it is mined (the price it was
            # weighed at passed the guard, so the claim stays payable now).
            within = max_fee_within_share(
                gas=gas, amount=now.claimable, decimals=now.decimals, native_price=native_price, max_share=max_share
            )
            transaction["maxFeePerGas"] = min(int(transaction["maxFeePerGas"]), max(gas_price, within))
            raw = self._wallets.sign_transaction(transaction)
            pending_claim = PendingClaim(
                tx_hash=_tx_hash(raw),
                sender=account.address,
                nonce=int(transaction["nonce"]),
                raw_tx=raw,
                payout_address=voucher.payout_address,
                cumulative_amount=voucher.cumulative_amount,
                chain_id=reader.chain.expected_chain_id,
                vault=reader.address,
                sent=self._clock(),
            )
            self._ledger.add_pending_claim(pending_claim)  # committed before it leaves: a restart finds it
            log.info(
                "Claiming %s for %s from vault %s: transaction %s",
                units(now.claimable, now.decimals),
                voucher.payout_address,
                reader.address,
                pending_claim.tx_hash,
            )
            self._send(reader, raw)
            paid = self._wait(reader, pending_claim)
            if paid is None:
                return ClaimOutcome(pending_claim.tx_hash, "pending", voucher.payout_address, now.claimable)
            return ClaimOutcome(pending_claim.tx_hash, "mined", voucher.payout_address, paid)

    def _transaction(self, reader: VaultReader, sender: str, voucher: Voucher) -> tuple[dict[str, Any], int]:
        """The claim transaction, filled (nonce, EIP-1559 fees, estimated gas), and the gas price it is weighed at."""
        data = reader.claim_call_data(voucher.payout_address, voucher.cumulative_amount, voucher.signature)

        def build(web3: Web3) -> tuple[dict[str, Any], int]:
            base = int(web3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(web3.eth.max_priority_fee)
            gas_price = max(int(web3.eth.gas_price), base + tip)
            transaction: dict[str, Any] = {
                "chainId": reader.chain.expected_chain_id,
                "from": sender,
                "to": reader.address,
                "data": "0x" + data.hex(),
                "value": 0,
                "nonce": int(web3.eth.get_transaction_count(sender, "pending")),  # type: ignore[arg-type]
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": max(2 * base + tip, gas_price),
            }
            transaction["gas"] = int(web3.eth.estimate_gas(transaction))  # type: ignore[arg-type]
            del transaction["from"]
            return transaction, gas_price

        _import_web3()
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            return reader.chain.read(build)
        except (ContractCustomError, ContractLogicError) as exc:
            raise ClaimError(f"the vault would refuse this claim ({exc}); nothing was sent") from None

    def _send(self, reader: VaultReader, raw: str) -> None:
        try:
            reader.chain.read(lambda web3: web3.eth.send_raw_transaction(raw))  # type: ignore[arg-type]
        except ChainError as exc:
            # Kept in the ledger: the next look sends it again (the same transaction) or forgets it.
            log.warning("The claim could not be sent now (%s); it is sent again at the next look", exc)

    def _wait(self, reader: VaultReader, claim: PendingClaim) -> int | None:
        """Wait up to ``receipt_wait_s`` for the claim to be mined; its payout (recorded), or None if pending."""
        _import_web3()
        from web3.exceptions import TimeExhausted

        def wait(web3: Web3) -> Any:
            try:
                return web3.eth.wait_for_transaction_receipt(
                    claim.tx_hash,  # type: ignore[arg-type]
                    timeout=self._receipt_wait_s,
                    poll_latency=0.2,
                )
            except TimeExhausted:
                return None

        try:
            receipt = reader.chain.read(wait) if self._receipt_wait_s > 0 else None
        except ChainError as exc:
            log.warning("The claim's receipt cannot be read now (%s)", exc)
            return None
        if receipt is None:
            return None
        return self._mined(reader, claim, receipt)

    # -- settling what was sent before -------------------------------------------------------------

    def settle(self) -> None:
        """Look up every claim sent and not settled (at the start, and before any claim or figure)."""
        with self._lock:
            self._settle()

    def _settle(self) -> None:
        pending = self._ledger.pending_claims()
        if not pending:
            return
        reader, _trusted = self._vault()
        for claim in pending:
            if claim.chain_id != reader.chain.expected_chain_id:
                if claim.tx_hash not in self._other_chain_warned:
                    self._other_chain_warned.add(claim.tx_hash)
                    log.warning(
                        "Claim %s was sent to vault %s on chain %d, not the configured chain %d: it is settled "
                        "once that chain is configured again, and holds back no claim here",
                        claim.tx_hash,
                        claim.vault,
                        claim.chain_id,
                        reader.chain.expected_chain_id,
                    )
                continue
            # A claim to an earlier vault on this chain is settled against that vault.
            own = reader if claim.vault.lower() == reader.address.lower() else VaultReader(reader.chain, claim.vault)
            self._settle_one(own, claim)

    def _settle_one(self, reader: VaultReader, claim: PendingClaim) -> None:
        _import_web3()
        from web3.exceptions import TransactionNotFound, Web3RPCError

        def look(web3: Web3) -> tuple[str, Any]:
            try:
                return "mined", web3.eth.get_transaction_receipt(claim.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                pass
            try:
                web3.eth.get_transaction(claim.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                pass
            else:
                return "pending", None
            if int(web3.eth.get_transaction_count(claim.sender, "latest")) > claim.nonce:  # type: ignore[arg-type]
                return "replaced", None
            try:
                web3.eth.send_raw_transaction(claim.raw_tx)  # type: ignore[arg-type]
            except Web3RPCError as exc:
                return "refused", str(exc)
            return "resent", None

        state, detail = reader.chain.read(look)
        if state == "mined":
            self._mined(reader, claim, detail)
        elif state == "replaced":
            log.warning("Claim %s was dropped (its nonce was used by another transaction): forgotten", claim.tx_hash)
            self._ledger.claim_mined(claim.tx_hash, None)
        elif state == "refused":
            log.warning("Claim %s was dropped and the node refuses it again (%s): forgotten", claim.tx_hash, detail)
            self._ledger.claim_mined(claim.tx_hash, None)
        elif state == "resent":
            log.info("Claim %s was not known to the node: sent again", claim.tx_hash)

    def _mined(self, reader: VaultReader, claim: PendingClaim, receipt: Any) -> int:
        """Record a mined claim's payout (its Claimed event's amount) and forget it as pending; the amount."""
        _import_web3()
        from web3.logs import DISCARD

        if int(receipt["status"]) != 1:
            log.warning("Claim %s was mined but failed (reverted): nothing was paid", claim.tx_hash)
            self._ledger.claim_mined(claim.tx_hash, None)
            return 0

        def decode(web3: Web3) -> tuple[int, int]:
            contract = web3.eth.contract(address=reader.address, abi=vault_abi())
            events = contract.events.Claimed().process_receipt(receipt, errors=DISCARD)
            amount = sum(
                int(event["args"]["amount"])
                for event in events
                if event["address"].lower() == reader.address.lower()
                and event["args"]["provider"].lower() == claim.payout_address.lower()
            )
            block = web3.eth.get_block(receipt["blockNumber"])
            return amount, int(block["timestamp"])

        amount, timestamp = reader.chain.read(decode)
        payout = None
        if amount > 0:
            payout = Payout(
                datetime.fromtimestamp(timestamp, UTC),
                claim.payout_address,
                amount,
                claim.chain_id,
                claim.tx_hash,
                reader.address,
            )
        if self._ledger.claim_mined(claim.tx_hash, payout):
            log.info("Claim %s mined: %d base units paid to %s", claim.tx_hash, amount, claim.payout_address)
        return amount


def _tx_hash(raw: str) -> str:
    from eth_utils.crypto import keccak

    return "0x" + keccak(bytes.fromhex(raw.removeprefix("0x"))).hex()

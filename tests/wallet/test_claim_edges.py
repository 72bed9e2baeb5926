"""Claims at their edges, on a real anvil with a real ledger file: gas fees that rise between the guard and
mining, and a payout vault that changes (the settings move to a new vault on the same chain).

Fees are moved with anvil's ``anvil_setNextBlockBaseFeePerGas`` on a node that mines only when told, so
a claim can be weighed at one base fee and mined at another.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from sparecycles.agent.chain.trust import VaultTrust
from sparecycles.agent.ledger import db
from sparecycles.agent.ledger.store import MIGRATIONS, LedgerStore
from sparecycles.agent.wallet.claims import ClaimError, ClaimService, gas_refusal, max_fee_within_share
from sparecycles.agent.wallet.registry import WalletRegistry
from sparecycles.agent.wallet.service import WalletService
from sparecycles.agent.wallet.vault import KeyringVault
from sparecycles.config import ChainSettings
from sparecycles.protocol.market import Voucher
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, anvil_binary, contract_json, start_anvil

from .test_claims import UNIT, Chain, claimer, deploy, open_ledger, service
from .test_wallet_service import secret_service

GWEI = 10**9
NATIVE_PRICE = Decimal(3000)  # Chain.settings' native_price


class Configured:
    """The ``[chain]`` settings as the user edits them: the vault can be moved to another one."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def settings(self) -> ChainSettings:
        return self.chain.settings()

    def best(self) -> Voucher | None:
        return self.chain.best()


def claims_for(wallets: WalletService, ledger: LedgerStore, configured: Configured, **options: float) -> ClaimService:
    return ClaimService(
        wallets,
        ledger,
        configured.best,
        configured.settings,
        VaultTrust(configured.settings, timeout_s=5),
        **options,
    )


def rpc(node: Anvil, method: str, *params: object) -> None:
    node.web3.provider.make_request(RPCEndpoint(method), list(params))


def mine_at(node: Anvil, base_fee_wei: int) -> None:
    rpc(node, "anvil_setNextBlockBaseFeePerGas", hex(base_fee_wei))
    rpc(node, "evm_mine")


@pytest.fixture
def wallets(tmp_path: Path) -> Iterator[WalletService]:
    """A wallet service on the test session's Secret Service (as in test_claims.py)."""
    secret_service()
    service = WalletService(WalletRegistry(tmp_path / "wallets.json"), KeyringVault())
    yield service
    for entry in service.wallets().entries:  # leave the session's keyring as it was
        service.remove(entry.name)


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[Anvil]:
    """An anvil that mines only when told (the setup is mined by the test at once)."""
    node = start_anvil(tmp_path, anvil_binary(), extra=["--no-mining"])
    rpc(node, "evm_setAutomine", True)
    yield node
    node.stop()


def relay(node: Anvil, chain: Chain, voucher: Voucher) -> str:
    """The marketplace's operator sends the claim (a watch-only payout address, or a relayed claim)."""
    vault = node.web3.eth.contract(
        address=Web3.to_checksum_address(chain.vault), abi=contract_json("PayoutVault")["abi"]
    )
    call = vault.functions.claim(voucher.payout_address, voucher.cumulative_amount, voucher.signature)
    relayer = node.accounts[4]
    receipt = node.send(
        relayer, {"to": vault.address, "data": call.build_transaction({"from": relayer.address})["data"]}
    )
    return "0x" + bytes(receipt["transactionHash"]).hex()


def share_paid(node: Anvil, tx_hash: str, amount: int) -> Decimal:
    receipt = node.web3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    cost_tokens = Decimal(receipt["gasUsed"] * receipt["effectiveGasPrice"]) / Decimal(10**18) * NATIVE_PRICE
    return cost_tokens / (Decimal(amount) / UNIT)


# -- the gas guard ------------------------------------------------------------------------------------


def test_the_max_fee_within_the_share_is_the_highest_price_the_guard_lets_through() -> None:
    terms = {"gas": 100_000, "amount": 10 * UNIT, "decimals": 6}
    share = Decimal("0.1")
    # 1 token allowed = 1/3000 native coin over 100,000 gas: 3,333,333,333.3 wei per gas
    highest = max_fee_within_share(**terms, native_price=NATIVE_PRICE, max_share=share)
    assert highest == 3_333_333_333
    assert gas_refusal(**terms, gas_price_wei=highest, native_price=NATIVE_PRICE, max_share=share) is None
    assert gas_refusal(**terms, gas_price_wei=highest + 1, native_price=NATIVE_PRICE, max_share=share) is not None
    largest = 2**256 - 1  # exact for any uint256 amount
    assert max_fee_within_share(
        gas=21_000, amount=largest, decimals=18, native_price=Decimal("0.5"), max_share=Decimal(1)
    ) == (largest * 2 // 21_000)


def test_a_claim_that_passed_the_guard_never_pays_more_than_the_share_when_fees_rise_before_it_is_mined(
    manual: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    chain = deploy(manual, manual.accounts[0])
    provider = claimer(wallets, manual.accounts[1])
    rpc(manual, "evm_setAutomine", False)
    mine_at(manual, 4 * GWEI)
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    claims = service(wallets, ledger, chain, receipt_wait_s=0)
    reader = VaultTrust(chain.settings).reader()
    assert reader is not None
    chain.earn(provider, 1 * UNIT)
    transaction, weighed_at = claims._transaction(reader, provider, chain.vouchers[-1])
    assert weighed_at == 5 * GWEI  # base fee 4 gwei + anvil's 1 gwei tip
    cost_tokens = Decimal(transaction["gas"] * weighed_at) / Decimal(10**18) * NATIVE_PRICE
    amount = int(cost_tokens / Decimal("0.10") * Decimal("1.02") * UNIT)  # passes the guard with 2 % to spare
    chain.earn(provider, amount)

    outcome = claims.claim()  # not refused: weighed at what it costs now, not at twice the base fee
    assert outcome.state == "pending"
    sent = manual.web3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    most_it_can_cost = Decimal(sent["gas"] * sent["maxFeePerGas"]) / Decimal(10**18) * NATIVE_PRICE
    assert most_it_can_cost <= Decimal("0.10") * amount / UNIT
    assert sent["maxFeePerGas"] >= weighed_at  # payable at the fees it was weighed at

    mine_at(manual, 8 * GWEI)  # fees double before it is mined: it is not mined at them (17 % of the claim)
    claims.settle()  # anvil drops it from its pool then, and refuses it again: the agent forgets it
    assert ledger.payouts() == []
    assert chain.balance(provider) == 0
    with pytest.raises(ClaimError, match="more than 10 % of the amount"):
        claims.claim()  # weighed again at today's fees

    mine_at(manual, 4 * GWEI)  # once fees are back within the share, the claim goes through
    again = claims.claim()
    mine_at(manual, 4 * GWEI)
    claims.settle()
    (payout,) = ledger.payouts()
    assert (payout.tx_hash, payout.amount) == (again.tx_hash, amount)
    assert share_paid(manual, again.tx_hash, amount) <= Decimal("0.10")


def test_on_a_calm_chain_a_claim_well_within_the_share_keeps_the_usual_fee_headroom(
    manual: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    chain = deploy(manual, manual.accounts[0])
    provider = claimer(wallets, manual.accounts[1])
    rpc(manual, "evm_setAutomine", False)
    mine_at(manual, 4 * GWEI)
    claims = service(wallets, open_ledger(tmp_path / "ledger.sqlite3"), chain, receipt_wait_s=0)
    chain.earn(provider, 1_000 * UNIT)
    outcome = claims.claim()
    sent = manual.web3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    assert sent["maxFeePerGas"] == 2 * 4 * GWEI + 1 * GWEI  # 2 x base fee + tip: rides out rising fees
    mine_at(manual, 8 * GWEI)
    claims.settle()
    assert claims.claimable().claimed == 1_000 * UNIT


# -- a vault that changes ------------------------------------------------------------------------------


def test_a_claim_pending_on_the_previous_vault_is_settled_there_and_holds_back_no_claim_from_the_new_one(
    manual: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    old, new = deploy(manual, manual.accounts[0]), deploy(manual, manual.accounts[0])
    provider = claimer(wallets, manual.accounts[1])
    rpc(manual, "evm_setAutomine", False)
    before_old, before_new = old.balance(provider), new.balance(provider)  # each vault pays its own token
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    configured = Configured(old)
    old.earn(provider, 80 * UNIT)
    on_old = claims_for(wallets, ledger, configured, receipt_wait_s=0).claim()
    assert on_old.state == "pending"

    configured.chain = new  # the operator moved to a new vault; the agent restarts with it
    new.earn(provider, 50 * UNIT)
    claims = claims_for(wallets, ledger, configured, receipt_wait_s=0)
    shown = claims.claimable()
    assert (shown.claimed, shown.claimable, shown.pending_tx) == (0, 50 * UNIT, None)
    on_new = claims.claim()  # not "already on its way": that claim is the old vault's
    assert on_new.state == "pending"
    assert claims.claimable().pending_tx == on_new.tx_hash

    rpc(manual, "evm_mine")  # both are mined
    claims.settle()
    assert ledger.pending_claims() == []
    paid = {(payout.tx_hash, payout.amount, payout.vault) for payout in ledger.payouts()}
    assert paid == {(on_old.tx_hash, 80 * UNIT, old.vault), (on_new.tx_hash, 50 * UNIT, new.vault)}
    assert old.balance(provider) == before_old + 80 * UNIT
    assert new.balance(provider) == before_new + 50 * UNIT
    shown = claims.claimable()
    assert (shown.claimed, shown.claimable, shown.pending_tx) == (50 * UNIT, 0, None)

    new.earn(provider, 70 * UNIT)  # later claims go on (auto-claim included)
    rpc(manual, "evm_setAutomine", True)
    assert claims.claim().amount == 20 * UNIT


def test_a_relayed_payout_from_the_new_vault_is_recorded_though_the_old_vault_paid_more(
    anvil: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    old, new = deploy(anvil, anvil.accounts[3]), deploy(anvil, anvil.accounts[3])
    provider = claimer(wallets, anvil.accounts[7])
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    configured = Configured(old)
    claims = claims_for(wallets, ledger, configured)
    old.earn(provider, 80 * UNIT)
    first = claims.claim()

    configured.chain = new
    new.earn(provider, 50 * UNIT)
    relayed = relay(anvil, new, new.vouchers[-1])  # the operator relays it: nothing sent from here

    shown = claims.claimable()
    assert (shown.claimed, shown.claimable) == (50 * UNIT, 0)
    assert [(payout.tx_hash, payout.amount) for payout in ledger.payouts()] == [
        (first.tx_hash, 80 * UNIT),
        (relayed, 50 * UNIT),  # found on chain: the old vault's 80 no longer count towards the new vault's 50
    ]
    assert [payout.vault for payout in ledger.payouts()] == [old.vault, new.vault]
    assert claims.record_vault_payouts(provider) == 0


def test_payouts_recorded_before_the_ledger_kept_their_vault_get_it_from_the_chain(
    anvil: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    """The vault they were claimed from where the node has the receipt, else the configured one."""
    old, new = deploy(anvil, anvil.accounts[3]), deploy(anvil, anvil.accounts[3])
    provider = claimer(wallets, anvil.accounts[7])
    path = tmp_path / "ledger.sqlite3"
    ledger = open_ledger(path)
    configured = Configured(old)
    old.earn(provider, 80 * UNIT)
    first = claims_for(wallets, ledger, configured).claim()
    ledger.close()

    engine = db.open_engine(path)  # the ledger as the version before the vault column left it
    MIGRATIONS.move_to(engine, "l0003", down=True)
    unknown_tx = "0x" + "ab" * 32  # a payout whose receipt the node does not have
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO payouts (claimed_ms, payout_address, amount, chain_id, tx_hash) VALUES (1, ?, '5', ?, ?)",
            (provider, ANVIL_CHAIN_ID, unknown_tx),
        )
    engine.dispose()

    ledger = open_ledger(path)  # migrated forward: the vaults are not known yet
    assert [payout.vault for payout in ledger.payouts()] == [None, None]
    configured.chain = new
    new.earn(provider, 50 * UNIT)
    relayed = relay(anvil, new, new.vouchers[-1])

    shown = claims_for(wallets, ledger, configured).claimable()
    assert (shown.claimed, shown.claimable) == (50 * UNIT, 0)
    paid = {(payout.tx_hash, payout.amount, payout.vault) for payout in ledger.payouts()}
    assert paid == {
        (first.tx_hash, 80 * UNIT, old.vault),  # from its receipt
        (unknown_tx, 5, new.vault),  # no receipt: the configured vault
        (relayed, 50 * UNIT, new.vault),  # 5 recorded against the new vault's 50: the rest was looked up
    }
    ledger.close()

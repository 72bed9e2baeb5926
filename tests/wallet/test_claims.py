"""Claims from the payout vault at the service level: a real anvil, a real ledger file, the real Secret Service.

The claim is signed by the wallet service with a key kept in the session's keyring and sent to a vault on
anvil; the ledger is a real LedgerStore, reopened from its file to stand for an agent restart (the full
agent process is not started here). Vouchers are signed by the marketplace's own ``sign_voucher``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from sparecycles.agent.chain.trust import TrustedVault, VaultTrust
from sparecycles.agent.ledger.store import LedgerStore
from sparecycles.agent.market.provider import voucher_terms
from sparecycles.agent.wallet.claims import ClaimError, ClaimService
from sparecycles.agent.wallet.registry import WalletRegistry
from sparecycles.agent.wallet.service import WalletService
from sparecycles.agent.wallet.vault import KeyringVault
from sparecycles.config import ChainSettings
from sparecycles.protocol.market import ServerInfo, Voucher
from sparecycles.protocol.signing import sign_voucher, voucher_problem
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, anvil_binary, contract_json, start_anvil

from .test_wallet_service import secret_service

UNIT = 10**6


@dataclass
class Chain:
    anvil: Anvil
    token: str
    vault: str
    operator: LocalAccount
    vouchers: list[Voucher] = field(default_factory=list)

    def settings(self, **changes: object) -> ChainSettings:
        values: dict[str, object] = {
            "rpc_url": self.anvil.url,
            "chain_id": ANVIL_CHAIN_ID,
            "payout_token": self.token,
            "vault": self.vault,
            "native_price": 3000.0,
            **changes,
        }
        return ChainSettings.model_validate(values)

    def earn(self, provider: str, cumulative: int, signer: LocalAccount | None = None) -> None:
        self.vouchers.append(
            sign_voucher(signer or self.operator, provider, cumulative, chain_id=ANVIL_CHAIN_ID, contract=self.vault)
        )

    def best(self) -> Voucher | None:
        return self.vouchers[-1] if self.vouchers else None

    def balance(self, address: str) -> int:
        token = self.anvil.web3.eth.contract(
            address=Web3.to_checksum_address(self.token), abi=contract_json("TestToken")["abi"]
        )
        return int(token.functions.balanceOf(Web3.to_checksum_address(address)).call())


def deploy(anvil: Anvil, owner: LocalAccount) -> Chain:
    operator = Account.create()
    token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, 1_000_000 * UNIT)
    vault = anvil.deploy(contract_json("PayoutVault"), owner, token, operator.address)
    anvil.transfer_token(token, owner, vault, 10_000 * UNIT)  # the vault's funds (a plain transfer is enough)
    return Chain(anvil, token, vault, operator)


@pytest.fixture
def wallets(tmp_path: Path) -> Iterator[WalletService]:
    secret_service()
    service = WalletService(WalletRegistry(tmp_path / "wallets.json"), KeyringVault())
    yield service
    for entry in service.wallets().entries:  # leave the session's keyring as it was
        service.remove(entry.name)


def claimer(wallets: WalletService, account: LocalAccount) -> str:
    """The active wallet: an anvil account (it has ETH for gas), its key in the keyring."""
    wallets.import_key("claims", "0x" + bytes(account.key).hex())
    wallets.use("claims")
    return account.address


def service(wallets: WalletService, ledger: LedgerStore, chain: Chain, **options: float) -> ClaimService:
    return ClaimService(wallets, ledger, chain.best, chain.settings, VaultTrust(chain.settings, timeout_s=5), **options)


def open_ledger(path: Path) -> LedgerStore:
    return LedgerStore.open(path, ZoneInfo("UTC"))


def test_a_claim_pays_exactly_the_claimable_amount_and_the_ledger_records_it(
    anvil: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    chain = deploy(anvil, anvil.accounts[3])
    provider = claimer(wallets, anvil.accounts[7])
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    claims = service(wallets, ledger, chain)
    chain.earn(provider, 120 * UNIT)
    before = chain.balance(provider)

    shown = claims.claimable()
    assert (shown.voucher_amount, shown.claimed, shown.claimable, shown.decimals) == (120 * UNIT, 0, 120 * UNIT, 6)
    outcome = claims.claim()

    assert outcome.state == "mined"
    assert outcome.amount == 120 * UNIT
    assert chain.balance(provider) == before + 120 * UNIT
    (payout,) = ledger.payouts()
    assert (payout.amount, payout.tx_hash, payout.chain_id) == (120 * UNIT, outcome.tx_hash, ANVIL_CHAIN_ID)
    assert payout.payout_address == provider
    assert ledger.pending_claims() == []
    assert claims.claimable().claimable == 0

    with pytest.raises(ClaimError, match=r"nothing to claim: .* paid .* 120 already, as much as the latest voucher"):
        claims.claim()

    chain.earn(provider, 150 * UNIT)  # a higher voucher: the difference
    assert claims.claimable().claimable == 30 * UNIT
    assert claims.claim().amount == 30 * UNIT
    assert [p.amount for p in ledger.payouts()] == [120 * UNIT, 30 * UNIT]
    assert chain.balance(provider) == before + 150 * UNIT


def test_a_voucher_signed_by_a_key_the_vault_does_not_trust_is_not_claimable(
    anvil: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    chain = deploy(anvil, anvil.accounts[3])
    provider = claimer(wallets, anvil.accounts[7])
    claims = service(wallets, open_ledger(tmp_path / "ledger.sqlite3"), chain)
    chain.earn(provider, 50 * UNIT, signer=Account.create())

    shown = claims.claimable()
    assert shown.claimable == 0
    assert shown.problem is not None
    assert "not the marketplace operator" in shown.problem
    with pytest.raises(ClaimError, match="cannot be claimed from vault"):
        claims.claim()


def test_the_operator_vouchers_must_carry_is_the_vaults_signer(anvil: Anvil) -> None:
    chain = deploy(anvil, anvil.accounts[3])
    trusted = VaultTrust(chain.settings).current()
    assert trusted == TrustedVault(Web3.to_checksum_address(chain.vault), ANVIL_CHAIN_ID, chain.operator.address)
    assert VaultTrust(ChainSettings).current() is None

    provider = Account.create().address
    info = ServerInfo.model_construct(
        operator_address=Account.create().address, chain_id=1, voucher_contract="0x" + "11" * 20
    )
    terms = voucher_terms(info, info.operator_address, trusted, provider)
    by_vault_signer = sign_voucher(chain.operator, provider, 5, chain_id=ANVIL_CHAIN_ID, contract=chain.vault)
    assert voucher_problem(by_vault_signer, terms) is None
    by_configured = sign_voucher(Account.create(), provider, 5, chain_id=ANVIL_CHAIN_ID, contract=chain.vault)
    assert "not the marketplace operator" in str(voucher_problem(by_configured, terms))
    assert voucher_terms(info, info.operator_address, None, provider).operator_address == info.operator_address


def test_the_gas_guard_refuses_on_an_expensive_chain_with_the_figures(wallets: WalletService, tmp_path: Path) -> None:
    expensive = start_anvil(tmp_path, anvil_binary(), extra=["--base-fee", str(200_000 * 10**9)])  # 200,000 gwei
    try:
        chain = deploy(expensive, expensive.accounts[0])
        provider = claimer(wallets, expensive.accounts[1])
        ledger = open_ledger(tmp_path / "ledger.sqlite3")
        claims = service(wallets, ledger, chain)
        chain.earn(provider, 10 * UNIT)
        before = chain.balance(provider)

        with pytest.raises(ClaimError) as refused:
            claims.claim()
        message = str(refused.value)
        assert "more than 10 % of the amount" in message
        assert " gas x " in message
        assert "gwei" in message
        assert "chain.native_price 3000" in message
        assert "(0.1 x 10 claimable)" in message
        assert "chain.max_gas_share" in message
        assert ledger.pending_claims() == []
        assert ledger.payouts() == []
        assert chain.balance(provider) == before
    finally:
        expensive.stop()


def test_an_agent_stopped_between_sending_and_mining_records_the_payout_once(
    wallets: WalletService, tmp_path: Path
) -> None:
    paused = start_anvil(tmp_path, anvil_binary(), extra=["--no-mining"])
    try:
        web3 = paused.web3
        web3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])  # mine the setup at once
        chain = deploy(paused, paused.accounts[0])
        provider = claimer(wallets, paused.accounts[1])
        web3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])  # from here on as --no-mining
        chain.earn(provider, 80 * UNIT)
        path = tmp_path / "ledger.sqlite3"
        before = chain.balance(provider)

        first = open_ledger(path)
        outcome = service(wallets, first, chain, receipt_wait_s=0).claim()
        assert outcome.state == "pending"
        first.close()  # the agent dies before the claim is mined

        ledger = open_ledger(path)  # the restarted agent
        claims = service(wallets, ledger, chain, receipt_wait_s=0)
        (pending,) = ledger.pending_claims()
        assert pending.tx_hash == outcome.tx_hash
        shown = claims.claimable()
        assert shown.pending_tx == outcome.tx_hash
        with pytest.raises(ClaimError, match="already on its way"):
            claims.claim()  # no second claim while the first is pending
        assert len(ledger.pending_claims()) == 1

        web3.provider.make_request(RPCEndpoint("evm_mine"), [])
        claims.settle()
        claims.settle()  # a second look records nothing more

        (payout,) = ledger.payouts()
        assert (payout.amount, payout.tx_hash) == (80 * UNIT, outcome.tx_hash)
        assert ledger.pending_claims() == []
        assert chain.balance(provider) == before + 80 * UNIT
        assert claims.claimable().claimable == 0
        assert service(wallets, open_ledger(path), chain).claimable().pending_tx is None
    finally:
        paused.stop()


def test_a_claim_kept_but_never_sent_is_sent_at_the_next_look(wallets: WalletService, tmp_path: Path) -> None:
    """The agent died after keeping the signed claim and before sending it: the next look sends the same one."""
    node = start_anvil(tmp_path, anvil_binary())
    try:
        chain = deploy(node, node.accounts[0])
        provider = claimer(wallets, node.accounts[1])
        chain.earn(provider, 40 * UNIT)
        ledger = open_ledger(tmp_path / "ledger.sqlite3")
        claims = service(wallets, ledger, chain, receipt_wait_s=0)
        claims._send = lambda _reader, _raw: None  # type: ignore[method-assign]  # dies before the send
        outcome = claims.claim()
        assert outcome.state == "pending"
        assert len(ledger.pending_claims()) == 1

        restarted = service(wallets, ledger, chain, receipt_wait_s=0)
        restarted.settle()  # unknown to the node, nonce unused: sent again (automine mines it)
        restarted.settle()  # now mined: recorded
        (payout,) = ledger.payouts()
        assert (payout.amount, payout.tx_hash) == (40 * UNIT, outcome.tx_hash)
        assert restarted.claimable().claimable == 0
    finally:
        node.stop()


def test_a_payout_sent_from_elsewhere_is_found_on_chain_and_recorded_once(
    anvil: Anvil, wallets: WalletService, tmp_path: Path
) -> None:
    """A claim the marketplace's operator relayed (or another machine sent) reaches the ledger from the
    vault's Claimed events, with its transaction hash, when the claimable amount is next looked at."""
    chain = deploy(anvil, anvil.accounts[3])
    watch_only = Account.create().address  # no key here, no coin: someone else sends its claims
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    claims = ClaimService(wallets, ledger, chain.best, chain.settings, VaultTrust(chain.settings, timeout_s=5))
    relayer = anvil.accounts[4]
    vault = anvil.web3.eth.contract(
        address=Web3.to_checksum_address(chain.vault), abi=contract_json("PayoutVault")["abi"]
    )

    def relay(voucher: Voucher) -> str:
        call = vault.functions.claim(voucher.payout_address, voucher.cumulative_amount, voucher.signature)
        receipt = anvil.send(
            relayer, {"to": vault.address, "data": call.build_transaction({"from": relayer.address})["data"]}
        )
        return "0x" + bytes(receipt["transactionHash"]).hex()

    chain.earn(watch_only, 40 * UNIT)
    first = relay(chain.vouchers[-1])
    chain.earn(watch_only, 100 * UNIT)
    second = relay(chain.vouchers[-1])

    shown = claims.claimable()
    assert (shown.claimed, shown.claimable) == (100 * UNIT, 0)
    assert [(p.tx_hash, p.amount) for p in ledger.payouts()] == [(first, 40 * UNIT), (second, 60 * UNIT)]
    claims.claimable()
    assert claims.record_vault_payouts(watch_only) == 0  # the ledger agrees with the vault: nothing is read
    assert len(ledger.payouts()) == 2

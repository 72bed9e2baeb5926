"""The payout vault contract on a real anvil, with vouchers signed by the marketplace's own code.

Every voucher here comes from ``sign_voucher`` in app/protocol/signing.py, so these tests fail if the
contract's EIP-712 domain or Voucher type drift from what the server signs. Each test deploys its own
token and vault and pays fresh provider addresses, so every balance it checks is exactly its own.
Also :class:`~sparecycles.agent.chain.vault.VaultReader`, the agent's reads of the vault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from sparecycles.agent.chain.client import ChainClient, ChainError, ChainMismatchError, RpcUnavailableError
from sparecycles.agent.chain.vault import VaultContractError, VaultReader, vault_abi
from sparecycles.protocol.market import Voucher
from sparecycles.protocol.signing import _voucher_data, sign_voucher, voucher_signer
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, anvil_binary, contract_json, start_anvil

UNIT = 10**6  # the test token has 6 decimals, like USDC
SUPPLY = 1_000_000 * UNIT
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class Setup:
    """A fresh token and vault: ``owner`` deployed both, ``operator`` signs vouchers (and holds no ETH)."""

    anvil: Anvil
    owner: LocalAccount
    operator: LocalAccount
    token: Contract
    vault: Contract

    def voucher(self, provider: str, cumulative: int, signer: LocalAccount | None = None, **domain: Any) -> Voucher:
        terms = {"chain_id": ANVIL_CHAIN_ID, "contract": self.vault.address, **domain}
        return sign_voucher(signer or self.operator, provider, cumulative, **terms)

    def transact(self, account: LocalAccount, function: Any) -> TxReceipt:
        data = function.build_transaction({"from": account.address, "gas": 500_000})["data"]
        return self.anvil.send(account, {"to": function.address, "data": data})

    def deposit(self, account: LocalAccount, amount: int) -> TxReceipt:
        self.transact(account, self.token.functions.approve(self.vault.address, amount))
        return self.transact(account, self.vault.functions.deposit(amount))

    def claim(self, relayer: LocalAccount, voucher: Voucher) -> TxReceipt:
        return self.transact(relayer, self._claim(voucher))

    def claim_result(self, voucher: Voucher, caller: str) -> int:
        """What ``claim`` returns for this voucher now (an eth_call: nothing changes)."""
        return int(self._claim(voucher).call({"from": caller}))

    def _claim(self, voucher: Voucher) -> Any:
        return self.vault.functions.claim(voucher.payout_address, voucher.cumulative_amount, voucher.signature)

    def balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())


@pytest.fixture
def setup(anvil: Anvil) -> Setup:
    owner, operator = anvil.accounts[3], Account.create()
    token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, SUPPLY)
    vault = anvil.deploy(contract_json("PayoutVault"), owner, token, operator.address)
    return Setup(
        anvil,
        owner,
        operator,
        anvil.web3.eth.contract(address=Web3.to_checksum_address(token), abi=contract_json("TestToken")["abi"]),
        anvil.web3.eth.contract(address=Web3.to_checksum_address(vault), abi=contract_json("PayoutVault")["abi"]),
    )


def custom_error(signature: str, *arguments: str) -> str:
    """The revert data of a Solidity custom error whose arguments are all addresses."""
    encoded = "".join(argument.lower().removeprefix("0x").rjust(64, "0") for argument in arguments)
    return "0x" + keccak(text=signature)[:4].hex() + encoded


def reverted_with(action: Callable[[], object]) -> str:
    """The custom-error data ``action`` reverts with (it must revert with one)."""
    with pytest.raises(ContractCustomError) as raised:
        action()
    return str(raised.value.data)


def not_signed_by_operator(voucher: Voucher, vault: str, chain_id: int = ANVIL_CHAIN_ID) -> str:
    """NotSignedByOperator(the address the vault recovers from this voucher's signature over its own domain)."""
    as_the_vault_reads_it = voucher.model_copy(update={"chain_id": chain_id, "verifying_contract": vault})
    return custom_error("NotSignedByOperator(address)", voucher_signer(as_the_vault_reads_it))


# --- the EIP-712 digest


def test_the_vault_hashes_vouchers_exactly_as_signing_py_does(setup: Setup) -> None:
    provider = Account.create().address
    typed = encode_typed_data(full_message=_voucher_data(provider, 123 * UNIT, ANVIL_CHAIN_ID, setup.vault.address))
    assert setup.vault.functions.domainSeparator().call() == typed.header
    digest = keccak(b"\x19\x01" + typed.header + typed.body)
    assert setup.vault.functions.voucherDigest(provider, 123 * UNIT).call() == digest


def test_the_views_name_the_token_the_signer_and_nothing_claimed(setup: Setup) -> None:
    assert setup.vault.functions.token().call() == setup.token.address
    assert setup.vault.functions.signer().call() == setup.operator.address
    assert setup.vault.functions.owner().call() == setup.owner.address
    assert setup.vault.functions.claimed(Account.create().address).call() == 0
    (installed,) = setup.vault.events.SignerChanged().get_logs(from_block=0)
    assert installed["address"] == setup.vault.address
    assert installed["args"] == {"oldSigner": "0x" + "0" * 40, "newSigner": setup.operator.address}


# --- deposits


def test_a_deposit_moves_exactly_the_amount_and_says_who_paid(setup: Setup) -> None:
    requester = setup.anvil.accounts[4]
    setup.transact(setup.owner, setup.token.functions.transfer(requester.address, 500 * UNIT))
    before = setup.balance(requester.address)

    receipt = setup.deposit(requester, 123_456_789)

    assert setup.balance(setup.vault.address) == 123_456_789
    assert setup.balance(requester.address) == before - 123_456_789
    (event,) = setup.vault.events.Deposited().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"from": requester.address, "amount": 123_456_789}


def test_a_deposit_without_allowance_reverts_with_the_tokens_reason(setup: Setup) -> None:
    with pytest.raises(ContractLogicError, match="transfer amount exceeds allowance"):
        setup.vault.functions.deposit(1).call({"from": setup.owner.address})
    assert reverted_with(lambda: setup.vault.functions.deposit(0).call({"from": setup.owner.address})) == (
        custom_error("ZeroAmount()")
    )


# --- claims


def test_claims_pay_the_difference_and_a_replay_or_a_lower_voucher_pays_nothing(setup: Setup) -> None:
    setup.deposit(setup.owner, 1_000 * UNIT)
    provider = Account.create().address
    relayer = setup.anvil.accounts[5]

    first = setup.voucher(provider, 40 * UNIT + 1)
    assert setup.claim_result(first, relayer.address) == 40 * UNIT + 1
    receipt = setup.claim(relayer, first)
    assert setup.balance(provider) == 40 * UNIT + 1
    assert setup.vault.functions.claimed(provider).call() == 40 * UNIT + 1
    (event,) = setup.vault.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"provider": provider, "amount": 40 * UNIT + 1, "cumulativeAmount": 40 * UNIT + 1}

    second = setup.voucher(provider, 100 * UNIT)
    receipt = setup.claim(relayer, second)
    assert setup.balance(provider) == 100 * UNIT
    assert setup.balance(setup.vault.address) == 900 * UNIT
    (event,) = setup.vault.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"provider": provider, "amount": 60 * UNIT - 1, "cumulativeAmount": 100 * UNIT}

    for stale in (second, first, setup.voucher(provider, 0)):
        assert setup.claim_result(stale, relayer.address) == 0
        receipt = setup.claim(relayer, stale)  # succeeds (status 1, checked by send) and pays nothing
        assert setup.vault.events.Claimed().process_receipt(receipt, errors=DISCARD) == ()
        assert setup.balance(provider) == 100 * UNIT
        assert setup.balance(setup.vault.address) == 900 * UNIT
        assert setup.vault.functions.claimed(provider).call() == 100 * UNIT


def test_a_relayed_claim_pays_a_watch_only_provider_that_holds_no_eth(setup: Setup) -> None:
    setup.deposit(setup.owner, 50 * UNIT)
    watch_only = Account.create().address  # nobody here holds its key, and it has no coin for gas
    relayer = setup.anvil.accounts[6]
    relayer_tokens = setup.balance(relayer.address)

    setup.claim(relayer, setup.voucher(watch_only, 7 * UNIT))

    assert setup.balance(watch_only) == 7 * UNIT
    assert setup.balance(relayer.address) == relayer_tokens
    assert setup.anvil.web3.eth.get_balance(watch_only) == 0


def test_providers_are_paid_independently(setup: Setup) -> None:
    setup.deposit(setup.owner, 100 * UNIT)
    alice, bob = Account.create().address, Account.create().address
    setup.claim(setup.owner, setup.voucher(alice, 30 * UNIT))
    setup.claim(setup.owner, setup.voucher(bob, 30 * UNIT))  # same amount, other provider: paid in full
    assert (setup.balance(alice), setup.balance(bob)) == (30 * UNIT, 30 * UNIT)
    assert setup.claim_result(setup.voucher(alice, 30 * UNIT), setup.owner.address) == 0


def test_a_claim_the_vault_cannot_cover_reverts_and_records_nothing(setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider = Account.create().address
    voucher = setup.voucher(provider, 10 * UNIT + 1)
    with pytest.raises(ContractLogicError, match="transfer amount exceeds balance"):
        setup.claim_result(voucher, setup.owner.address)
    assert setup.vault.functions.claimed(provider).call() == 0

    setup.deposit(setup.owner, 1)
    setup.claim(setup.owner, voucher)
    assert setup.balance(provider) == 10 * UNIT + 1
    assert setup.balance(setup.vault.address) == 0


# --- vouchers the vault refuses


def test_a_voucher_signed_by_another_key_reverts(setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider, stranger = Account.create().address, Account.create()
    forged = setup.voucher(provider, 5 * UNIT, signer=stranger)
    assert reverted_with(lambda: setup.claim_result(forged, setup.owner.address)) == custom_error(
        "NotSignedByOperator(address)", stranger.address
    )
    # Even a voucher that would pay nothing is checked first.
    setup.claim(setup.owner, setup.voucher(provider, 5 * UNIT))
    low_forged = setup.voucher(provider, 1, signer=stranger)
    assert reverted_with(lambda: setup.claim_result(low_forged, setup.owner.address)) == custom_error(
        "NotSignedByOperator(address)", stranger.address
    )
    assert setup.balance(provider) == 5 * UNIT


def test_a_voucher_for_another_vault_or_another_chain_reverts(setup: Setup, anvil: Anvil) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider = Account.create().address
    other_vault = anvil.deploy(contract_json("PayoutVault"), setup.owner, setup.token.address, setup.operator.address)
    for voucher in (
        setup.voucher(provider, 5 * UNIT, contract=other_vault),
        setup.voucher(provider, 5 * UNIT, chain_id=ANVIL_CHAIN_ID + 1),
        setup.voucher(provider, 5 * UNIT, chain_id=1),
    ):
        assert voucher_signer(voucher) == setup.operator.address  # genuine, but for another domain
        expected = not_signed_by_operator(voucher, setup.vault.address)
        assert expected != custom_error("NotSignedByOperator(address)", setup.operator.address)
        assert reverted_with(lambda voucher=voucher: setup.claim_result(voucher, setup.owner.address)) == expected
    assert setup.balance(provider) == 0


def test_the_vault_takes_its_chain_id_from_the_chain_it_runs_on(tmp_path: Path) -> None:
    other = start_anvil(tmp_path, anvil_binary())
    try:
        other.web3.provider.make_request(RPCEndpoint("anvil_setChainId"), [8453])
        other.chain_id = 8453
        owner, operator = other.accounts[0], Account.create()
        token = other.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, SUPPLY)
        vault = other.deploy(contract_json("PayoutVault"), owner, token, operator.address)
        setup = Setup(
            other,
            owner,
            operator,
            other.web3.eth.contract(address=Web3.to_checksum_address(token), abi=contract_json("TestToken")["abi"]),
            other.web3.eth.contract(address=Web3.to_checksum_address(vault), abi=contract_json("PayoutVault")["abi"]),
        )
        setup.deposit(owner, 10 * UNIT)
        provider = Account.create().address
        wrong_chain = setup.voucher(provider, UNIT, chain_id=ANVIL_CHAIN_ID)
        expected = not_signed_by_operator(wrong_chain, vault, chain_id=8453)
        assert reverted_with(lambda: setup.claim_result(wrong_chain, owner.address)) == expected
        setup.claim(owner, setup.voucher(provider, UNIT, chain_id=8453))
        assert setup.balance(provider) == UNIT
    finally:
        other.stop()


def test_a_voucher_with_a_changed_amount_or_provider_reverts(setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider, thief = Account.create().address, Account.create().address
    genuine = setup.voucher(provider, 2 * UNIT)
    for tampered in (
        genuine.model_copy(update={"cumulative_amount": 9 * UNIT}),
        genuine.model_copy(update={"payout_address": thief}),
    ):
        expected = not_signed_by_operator(tampered, setup.vault.address)
        assert reverted_with(lambda tampered=tampered: setup.claim_result(tampered, setup.owner.address)) == expected
    assert setup.balance(setup.vault.address) == 10 * UNIT


def test_malleable_and_malformed_signatures_are_refused(setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider = Account.create().address
    genuine = setup.voucher(provider, 3 * UNIT)
    raw = bytes.fromhex(genuine.signature.removeprefix("0x"))
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    # The mirror signature (n - s, other v) recovers the same operator in plain ecrecover (EIP-2 forbids it).
    mirror = "0x" + (r + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([55 - v])).hex()
    mirrored = genuine.model_copy(update={"signature": mirror})
    assert voucher_signer(mirrored) == setup.operator.address  # eth_keys accepts it; the vault must not
    malformed = custom_error("MalformedSignature()")
    for signature in (
        mirror,
        "0x" + (raw[:64] + bytes([v - 27])).hex(),  # v as 0/1
        "0x" + raw[:64].hex(),  # 64 bytes (EIP-2098 compact form is not accepted)
        "0x" + (raw + b"\0").hex(),
        "0x" + (b"\0" * 64 + bytes([27])).hex(),  # r = 0: ecrecover finds no address
    ):
        forged = genuine.model_copy(update={"signature": signature})
        assert reverted_with(lambda forged=forged: setup.claim_result(forged, setup.owner.address)) == malformed
    setup.claim(setup.owner, genuine)
    assert setup.balance(provider) == 3 * UNIT


def test_a_claim_to_the_zero_address_reverts(setup: Setup) -> None:
    voucher = setup.voucher("0x" + "0" * 40, UNIT)
    assert reverted_with(lambda: setup.claim_result(voucher, setup.owner.address)) == custom_error("ZeroAddress()")


# --- rotating the operator's key


def test_after_a_rotation_old_key_vouchers_revert_and_the_new_key_pays_the_rest(setup: Setup) -> None:
    setup.deposit(setup.owner, 100 * UNIT)
    provider, new_operator = Account.create().address, Account.create()
    setup.claim(setup.owner, setup.voucher(provider, 25 * UNIT))
    old_latest = setup.voucher(provider, 60 * UNIT)  # signed, never claimed, before the rotation

    receipt = setup.transact(setup.owner, setup.vault.functions.rotateSigner(new_operator.address))

    (event,) = setup.vault.events.SignerChanged().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"oldSigner": setup.operator.address, "newSigner": new_operator.address}
    assert setup.vault.functions.signer().call() == new_operator.address
    for old in (old_latest, setup.voucher(provider, 25 * UNIT), setup.voucher(provider, 1)):
        assert reverted_with(lambda old=old: setup.claim_result(old, setup.owner.address)) == custom_error(
            "NotSignedByOperator(address)", setup.operator.address
        )
    receipt = setup.claim(setup.owner, setup.voucher(provider, 60 * UNIT, signer=new_operator))
    assert setup.balance(provider) == 60 * UNIT
    (event,) = setup.vault.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"provider": provider, "amount": 35 * UNIT, "cumulativeAmount": 60 * UNIT}


def test_only_the_owner_can_rotate_the_signer(setup: Setup) -> None:
    intruder, new_operator = setup.anvil.accounts[7], Account.create()
    rotate = setup.vault.functions.rotateSigner(new_operator.address)
    for caller in (intruder.address, setup.operator.address):  # the signing key is not the owner
        assert reverted_with(lambda caller=caller: rotate.call({"from": caller})) == custom_error(
            "NotOwner(address)", caller
        )
    assert reverted_with(
        lambda: setup.vault.functions.rotateSigner("0x" + "0" * 40).call({"from": setup.owner.address})
    ) == custom_error("ZeroAddress()")
    assert setup.vault.functions.signer().call() == setup.operator.address


def test_a_vault_needs_a_token_contract_and_a_signer(anvil: Anvil, setup: Setup) -> None:
    factory = anvil.web3.eth.contract(
        abi=contract_json("PayoutVault")["abi"], bytecode=contract_json("PayoutVault")["bytecode"]
    )
    nobody = Account.create().address
    deployer = setup.owner.address
    assert reverted_with(
        lambda: anvil.web3.eth.call({"from": deployer, "data": factory.constructor(nobody, nobody).data_in_transaction})
    ) == custom_error("NotAContract(address)", nobody)
    assert reverted_with(
        lambda: anvil.web3.eth.call(
            {"from": deployer, "data": factory.constructor(setup.token.address, "0x" + "0" * 40).data_in_transaction}
        )
    ) == custom_error("ZeroAddress()")


# --- VaultReader, the agent's side


def test_the_reader_reads_the_signer_the_token_and_what_was_claimed(anvil: Anvil, setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider = Account.create().address
    reader = VaultReader(ChainClient(anvil.url, ANVIL_CHAIN_ID, timeout_s=5), setup.vault.address.lower())
    assert reader.address == setup.vault.address
    assert reader.signer() == setup.operator.address
    assert reader.token() == setup.token.address
    assert reader.claimed(provider) == 0

    setup.claim(setup.owner, setup.voucher(provider, 4 * UNIT + 7))
    assert reader.claimed(provider) == 4 * UNIT + 7
    by_url = VaultReader(anvil.url, setup.vault.address, chain_id=ANVIL_CHAIN_ID)
    assert by_url.claimed(provider) == 4 * UNIT + 7


def test_the_readers_claim_call_data_is_a_claim_that_pays(anvil: Anvil, setup: Setup) -> None:
    setup.deposit(setup.owner, 10 * UNIT)
    provider = Account.create().address
    voucher = setup.voucher(provider, 6 * UNIT)
    reader = VaultReader(anvil.url, setup.vault.address, chain_id=ANVIL_CHAIN_ID)

    data = reader.claim_call_data(provider, voucher.cumulative_amount, voucher.signature)

    assert data == bytes.fromhex(
        setup.vault.encode_abi("claim", [provider, voucher.cumulative_amount, voucher.signature]).removeprefix("0x")
    )
    raw = bytes.fromhex(voucher.signature.removeprefix("0x"))
    assert reader.claim_call_data(provider, voucher.cumulative_amount, raw) == data
    anvil.send(anvil.accounts[8], {"to": setup.vault.address, "data": data})
    assert setup.balance(provider) == 6 * UNIT
    assert reader.claimed(provider) == 6 * UNIT
    assert vault_abi() == contract_json("PayoutVault")["abi"]


def test_the_reader_refuses_bad_input_before_any_request(setup: Setup) -> None:
    reader = VaultReader("http://127.0.0.1:1", setup.vault.address, chain_id=ANVIL_CHAIN_ID)
    with pytest.raises(ValueError, match="uint256"):
        reader.claim_call_data(Account.create().address, -1, "0x00")
    with pytest.raises(ValueError, match="hexadecimal"):
        reader.claim_call_data(Account.create().address, 1, "0xzz")
    with pytest.raises(ValueError, match="chain_id"):
        VaultReader("http://127.0.0.1:1", setup.vault.address)
    with pytest.raises(ValueError, match="differs"):
        VaultReader(ChainClient("http://127.0.0.1:1", 1), setup.vault.address, chain_id=2)
    with pytest.raises(ChainError, match="0x followed by 40"):
        VaultReader("http://127.0.0.1:1", "0x1234", chain_id=ANVIL_CHAIN_ID)


def test_the_reader_says_when_the_address_holds_no_vault_or_the_rpc_is_away(anvil: Anvil, setup: Setup) -> None:
    for address in (setup.token.address, Account.create().address):  # another contract; no contract at all
        reader = VaultReader(anvil.url, address, chain_id=ANVIL_CHAIN_ID)
        with pytest.raises(VaultContractError, match=f"{address} holds no payout vault on chain {ANVIL_CHAIN_ID}"):
            reader.signer()
    with pytest.raises(ChainMismatchError):
        VaultReader(anvil.url, setup.vault.address, chain_id=1).signer()
    with pytest.raises(RpcUnavailableError, match="RPC unreachable"):
        VaultReader(ChainClient("http://127.0.0.1:1", ANVIL_CHAIN_ID, timeout_s=2), setup.vault.address).claimed(
            setup.owner.address
        )

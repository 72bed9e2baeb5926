"""Vouchers are signed through a hash computed for their one fixed EIP-712 type (protocol/signing.py): the
same bytes as the general typed-data encoder, and the same signature as eth_account's. (The vault contract
checks these signatures on chain in tests/wallet/test_vault.py.)"""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from sparecycles.protocol.signing import (
    PLACEHOLDER_VAULT,
    _voucher_data,
    sign_voucher,
    voucher_digest,
    voucher_signer,
)

OPERATOR = Account.from_key("0x" + "4c" * 32)


def _cases() -> list[tuple[str, int, int, str]]:
    rng = random.Random(7)  # noqa: S311 - varied test amounts, not keys
    cases = [
        (Account.create().address, 0, 1, PLACEHOLDER_VAULT),
        (Account.create().address.lower(), 2**256 - 1, 31337, Account.create().address),
        (Account.create().address, 1, 2**64, PLACEHOLDER_VAULT.lower()),
    ]
    for _ in range(20):
        amount = rng.randrange(2 ** rng.choice([8, 64, 128, 255]))
        cases.append((Account.create().address, amount, rng.choice([1, 10, 8453, 31337]), Account.create().address))
    return cases


@pytest.mark.parametrize(("payout", "amount", "chain_id", "contract"), _cases())
def test_a_voucher_is_signed_as_the_general_encoder_would(
    payout: str, amount: int, chain_id: int, contract: str
) -> None:
    general = encode_typed_data(full_message=_voucher_data(payout, amount, chain_id, contract))
    signed = OPERATOR.sign_message(general)
    assert voucher_digest(payout, amount, chain_id, contract) == signed.message_hash
    voucher = sign_voucher(OPERATOR, payout, amount, chain_id=chain_id, contract=contract)
    assert voucher.signature == "0x" + bytes(signed.signature).hex()
    assert voucher_signer(voucher) == OPERATOR.address


@pytest.mark.parametrize("amount", [-1, 2**256])
def test_an_amount_outside_uint256_is_refused(amount: int) -> None:
    with pytest.raises(ValueError, match="uint256"):
        sign_voucher(OPERATOR, Account.create().address, amount, chain_id=1, contract=PLACEHOLDER_VAULT)

"""The marketplace's signatures: sign-in (EIP-4361), result reports and payout changes (EIP-191), and
payout vouchers (EIP-712). Shared by the server, which signs vouchers and checks the rest, and the
agent, which signs its sign-in and reports and checks every voucher before it counts a cent.

Keys are ``eth_account`` local accounts; nothing here stores or logs one. ``siwe`` (which imports
web3) is imported only when a sign-in message is built or checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from sparecycles.protocol.market import NonceResponse, Voucher

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

VOUCHER_DOMAIN_NAME = "SpareCycles Payouts"
VOUCHER_DOMAIN_VERSION = "1"
PLACEHOLDER_VAULT = "0x000000000000000000000000000000000000dEaD"
"""The verifying contract of vouchers until the payout vault is deployed (a fixed, well-known address)."""

_VOUCHER_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Voucher": [
        {"name": "provider", "type": "address"},
        {"name": "cumulativeAmount", "type": "uint256"},
    ],
}


class SignatureError(ValueError):
    """A signature or signed message that does not hold; the message says which part."""


def _hex(signature: bytes) -> str:
    return "0x" + signature.hex().removeprefix("0x")


# --- EIP-191: result reports, payout changes ---------------------------------------------------------


def sign_text(account: LocalAccount, text: str) -> str:
    """An EIP-191 ``personal_sign`` signature of ``text``."""
    return _hex(account.sign_message(encode_defunct(text=text)).signature)


def text_signer(text: str, signature: str) -> str:
    """The address that signed ``text`` (EIP-191); SignatureError when the signature is malformed."""
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception as exc:  # eth_keys raises several kinds for a malformed signature
        raise SignatureError(f"the signature cannot be read: {type(exc).__name__}") from None


# --- EIP-712: vouchers --------------------------------------------------------------------------------


def _voucher_data(payout_address: str, cumulative_amount: int, chain_id: int, contract: str) -> dict[str, Any]:
    return {
        "types": _VOUCHER_TYPES,
        "primaryType": "Voucher",
        "domain": {
            "name": VOUCHER_DOMAIN_NAME,
            "version": VOUCHER_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": {"provider": payout_address, "cumulativeAmount": cumulative_amount},
    }


def sign_voucher(
    operator: LocalAccount, payout_address: str, cumulative_amount: int, *, chain_id: int, contract: str
) -> Voucher:
    """The operator's promise that ``payout_address`` has earned ``cumulative_amount`` in all, ever."""
    data = _voucher_data(payout_address, cumulative_amount, chain_id, contract)
    signature = operator.sign_message(encode_typed_data(full_message=data)).signature
    return Voucher(
        payout_address=payout_address,
        cumulative_amount=cumulative_amount,
        chain_id=chain_id,
        verifying_contract=contract,
        signature=_hex(signature),
    )


def voucher_signer(voucher: Voucher) -> str:
    """The address that signed the voucher's typed data, as the voucher states it."""
    data = _voucher_data(
        voucher.payout_address, voucher.cumulative_amount, voucher.chain_id, voucher.verifying_contract
    )
    try:
        return str(Account.recover_message(encode_typed_data(full_message=data), signature=voucher.signature))
    except Exception as exc:
        raise SignatureError(f"the voucher's signature cannot be read: {type(exc).__name__}") from None


@dataclass(frozen=True)
class VoucherTerms:
    """What a provider accepts a voucher for: its operator, chain and contract, and its own payout address."""

    operator_address: str
    chain_id: int
    contract: str
    payout_address: str


def voucher_problem(voucher: Voucher, terms: VoucherTerms) -> str | None:
    """Why this voucher is worth nothing to this provider, or None when it is valid."""
    if voucher.chain_id != terms.chain_id:
        return f"it is for chain {voucher.chain_id}, not {terms.chain_id}"
    if voucher.verifying_contract.lower() != terms.contract.lower():
        return f"it is for contract {voucher.verifying_contract}, not {terms.contract}"
    if voucher.payout_address.lower() != terms.payout_address.lower():
        return f"it pays {voucher.payout_address}, not this provider's payout address {terms.payout_address}"
    try:
        signer = voucher_signer(voucher)
    except SignatureError as exc:
        return str(exc)
    if signer.lower() != terms.operator_address.lower():
        return f"it is signed by {signer}, not the marketplace operator {terms.operator_address}"
    return None


# --- EIP-4361: sign-in ------------------------------------------------------------------------------


def sign_in_message(challenge: NonceResponse, address: str) -> str:
    """The Sign-In with Ethereum message for this challenge, as the provider signs it."""
    from siwe import SiweMessage

    message = SiweMessage(
        domain=challenge.domain,
        address=address,
        statement=challenge.statement,
        uri=challenge.uri,
        version="1",
        chain_id=challenge.chain_id,
        nonce=challenge.nonce,
        issued_at=_iso(challenge.issued_at),
        expiration_time=_iso(challenge.expiration_time),
    )
    return str(message.prepare_message())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class SignedIn:
    address: str
    nonce: str


def verify_sign_in(message: str, signature: str, *, domain: str, chain_id: int, now: datetime) -> SignedIn:
    """Check a Sign-In with Ethereum message and its signature; the signer's address and the nonce used.

    The caller checks that the nonce is one it issued and has not been used yet.
    """
    from siwe import SiweMessage

    try:
        parsed = SiweMessage.from_message(message=message)
    except Exception as exc:  # siwe raises its own errors and ValueError for malformed text
        raise SignatureError(f"the sign-in message is not an EIP-4361 message ({type(exc).__name__})") from None
    if parsed.chain_id != chain_id:
        raise SignatureError(f"the sign-in message is for chain {parsed.chain_id}, not {chain_id}")
    try:
        parsed.verify(signature, domain=domain, nonce=parsed.nonce, timestamp=now)
    except Exception as exc:
        raise SignatureError(f"the sign-in does not verify: {type(exc).__name__}") from None
    return SignedIn(str(parsed.address), str(parsed.nonce))

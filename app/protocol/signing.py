"""The marketplace's signatures: sign-in (EIP-4361), result reports and payout changes (EIP-191), and
payout vouchers (EIP-712). Shared by the server, which signs vouchers and checks the rest, and the
agent, which signs its sign-in and reports and checks every voucher before it counts a cent.

Keys are ``eth_account`` local accounts; nothing here stores or logs one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import coincurve
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from sparecycles.protocol.market import NonceResponse, Voucher, checksummed

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
    """The address that signed ``text`` (EIP-191); SignatureError when the signature is malformed.

    The same answer as eth_account's ``recover_message`` (tests/test_text_signer.py compares them, malformed
    signatures included), computed with libsecp256k1 directly: a marketplace checks a signature on every
    report, and eth_account's layers took about 120 µs of CPU each (docs/benchmarks.md, market_load)."""
    body = text.encode()
    digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(body)).encode() + body)
    try:
        return _recovered_address(digest, signature)
    except Exception as exc:  # malformed hex, a wrong length, v, r or s out of range
        raise SignatureError(f"the signature cannot be read: {type(exc).__name__}") from None


def _recovered_address(digest: bytes, signature: str) -> str:
    """The checksummed address whose key made ``signature`` (r ‖ s ‖ v, hexadecimal) over ``digest``.

    ``v`` is read as eth_account reads it: 0 or 1, 27 or 28, or an EIP-155 value (35 and up)."""
    digits = signature[2:] if signature[:2] in ("0x", "0X") else signature
    raw = bytes.fromhex(digits.rjust(len(digits) + len(digits) % 2, "0"))  # odd: a leading 0, as HexBytes reads it
    if len(raw) != 65:
        raise ValueError(f"a signature is 65 bytes, not {len(raw)}")
    v = raw[64]
    if v in (27, 28):
        v -= 27
    elif v >= 35:
        v = (v - 35) % 2
    elif v not in (0, 1):
        raise ValueError(f"v {v} is invalid, must be one of: 0, 1, 27, 28, 35+")
    public = coincurve.PublicKey.from_signature_and_message(raw[:64] + bytes([v]), digest, hasher=None)
    return checksummed("0x" + keccak(public.format(compressed=False)[1:])[-20:].hex())


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


_DOMAIN_TYPE_HASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_VOUCHER_TYPE_HASH = keccak(text="Voucher(address provider,uint256 cumulativeAmount)")


def _uint256(value: int) -> bytes:
    if not 0 <= value < 2**256:
        raise ValueError(f"{value} is not a uint256")
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + to_canonical_address(address)


@functools.lru_cache(maxsize=16)
def _voucher_domain_separator(chain_id: int, contract: str) -> bytes:
    return keccak(
        _DOMAIN_TYPE_HASH
        + keccak(text=VOUCHER_DOMAIN_NAME)
        + keccak(text=VOUCHER_DOMAIN_VERSION)
        + _uint256(chain_id)
        + _address_word(contract)
    )


def voucher_digest(payout_address: str, cumulative_amount: int, chain_id: int, contract: str) -> bytes:
    """The EIP-712 hash a voucher's signature signs, computed for this one fixed type.

    The same bytes as ``encode_typed_data`` with the general encoder (tests/test_signing.py compares them,
    and the vault contract checks the signatures on chain): a marketplace signs a voucher for every paid
    lease, and the general encoder plus ``sign_message`` took about 0.39 ms of CPU a voucher; this hash takes
    0.02 ms, and signing it with libsecp256k1 directly brings a whole voucher to about 0.13 ms."""
    struct_hash = keccak(_VOUCHER_TYPE_HASH + _address_word(payout_address) + _uint256(cumulative_amount))
    return keccak(b"\x19\x01" + _voucher_domain_separator(chain_id, contract) + struct_hash)


def sign_voucher(
    operator: LocalAccount, payout_address: str, cumulative_amount: int, *, chain_id: int, contract: str
) -> Voucher:
    """The operator's promise that ``payout_address`` has earned ``cumulative_amount`` in all, ever."""
    digest = voucher_digest(payout_address, cumulative_amount, chain_id, contract)
    # libsecp256k1 with RFC 6979 nonces, as eth_keys signs through it: the same signature, r ‖ s ‖ v (27 or 28).
    recoverable = _secp256k1_key(bytes(operator.key)).sign_recoverable(digest, hasher=None)
    signature = recoverable[:64] + bytes([recoverable[64] + 27])
    return Voucher(
        payout_address=payout_address,
        cumulative_amount=cumulative_amount,
        chain_id=chain_id,
        verifying_contract=contract,
        signature=_hex(signature),
    )


@functools.lru_cache(maxsize=2)
def _secp256k1_key(key: bytes) -> coincurve.PrivateKey:
    """The operator's key as libsecp256k1 holds it. Kept (two at most: a marketplace signs with one key)
    because building it took about a sixth of a voucher's CPU; the key itself is in memory anyway, in the
    operator's account, for as long as the marketplace runs."""
    return coincurve.PrivateKey(key)


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
# Written here rather than with the `siwe` package, which imports web3 (about 60 MB) into the agent;
# the tests check these messages with `siwe` itself. Only the fields the marketplace issues are used.

_SIWE = re.compile(
    r"(?P<domain>[^\s/]+) wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n"
    r"\n"
    r"(?P<statement>[^\n]+)\n"
    r"\n"
    r"URI: (?P<uri>[^\s]+)\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,})\n"
    r"Issued At: (?P<issued_at>[0-9T:.+\-Z]+)\n"
    r"Expiration Time: (?P<expiration_time>[0-9T:.+\-Z]+)"
)
MAX_CLOCK_SKEW = timedelta(minutes=5)


def sign_in_message(challenge: NonceResponse, address: str) -> str:
    """The Sign-In with Ethereum (EIP-4361) message for this challenge, as the provider signs it."""
    return (
        f"{challenge.domain} wants you to sign in with your Ethereum account:\n"
        f"{to_checksum_address(address)}\n"
        "\n"
        f"{challenge.statement}\n"
        "\n"
        f"URI: {challenge.uri}\n"
        "Version: 1\n"
        f"Chain ID: {challenge.chain_id}\n"
        f"Nonce: {challenge.nonce}\n"
        f"Issued At: {_iso(challenge.issued_at)}\n"
        f"Expiration Time: {_iso(challenge.expiration_time)}"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _instant(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(f"the sign-in message's {field} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise SignatureError(f"the sign-in message's {field} has no time zone")
    return moment


@dataclass(frozen=True)
class SignedIn:
    address: str
    nonce: str


_DEFAULT_PORTS = {"http": 80, "https": 443}


def challenge_problem(challenge: NonceResponse, market_url: str, chain_id: int) -> str | None:
    """Why a sign-in challenge must not be signed for the marketplace at ``market_url`` (None: it may be).

    A signed EIP-4361 message opens a session wherever its domain is served. A marketplace (or whoever
    rewrites plain http on the way) that relays another marketplace's challenge would get this machine's
    session there; so the domain must be ``market_url``'s host and port, the URI on its origin (scheme,
    host, port), and the chain the one expected. None of them, nor the statement, may add lines to the
    signed message.
    """
    own = _origin(market_url)
    if own is None:
        return f"the marketplace URL {market_url!r} is not a plain http(s) URL"
    scheme, host, port = own
    if any(character.isspace() for character in challenge.domain) or (
        _authority(challenge.domain, scheme) != (host, port)
    ):
        return f"its challenge is for domain {challenge.domain!r}, not {_netloc(host, port, scheme)!r}"
    if any(character.isspace() for character in challenge.uri) or _origin(challenge.uri) != own:
        return f"its challenge's URI {challenge.uri!r} is not on {scheme}://{_netloc(host, port, scheme)}"
    if challenge.chain_id != chain_id:
        return f"its challenge is for chain {challenge.chain_id}, not {chain_id}, the chain this marketplace announces"
    if "\n" in challenge.statement or "\r" in challenge.statement:
        return "its challenge's statement spans several lines"
    return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port filled in; None for anything else or with a user name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _authority(domain: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) an EIP-4361 domain names, its port defaulting to ``scheme``'s; None when it is not host[:port]."""
    origin = _origin(f"{scheme}://{domain}")
    if origin is None or "/" in domain or "?" in domain or "#" in domain:
        return None
    return origin[1], origin[2]


def _netloc(host: str, port: int, scheme: str) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == _DEFAULT_PORTS[scheme] else f"{name}:{port}"


def verify_sign_in(message: str, signature: str, *, domain: str, chain_id: int, now: datetime) -> SignedIn:
    """Check a Sign-In with Ethereum message and its signature; the signer's address and the nonce used.

    The caller checks that the nonce is one it issued and has not been used yet.
    """
    parsed = _SIWE.fullmatch(message)
    if parsed is None:
        raise SignatureError("the sign-in message is not the EIP-4361 message this marketplace asked for")
    if parsed["domain"] != domain:
        raise SignatureError(f"the sign-in message is for {parsed['domain']}, not {domain}")
    if int(parsed["chain_id"]) != chain_id:
        raise SignatureError(f"the sign-in message is for chain {parsed['chain_id']}, not {chain_id}")
    issued, expires = _instant(parsed["issued_at"], "issued-at"), _instant(parsed["expiration_time"], "expiration")
    if issued > now + MAX_CLOCK_SKEW:
        raise SignatureError("the sign-in message was issued in the future")
    if expires <= now:
        raise SignatureError("the sign-in message has expired; ask for a new nonce")
    address = parsed["address"]
    if to_checksum_address(address) != address:
        raise SignatureError("the sign-in message's address is not in its EIP-55 checksum form")
    if text_signer(message, signature).lower() != address.lower():
        raise SignatureError("the sign-in message is not signed by the address it names")
    return SignedIn(address, parsed["nonce"])

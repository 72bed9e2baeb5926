"""Report and payout-change signatures are checked with libsecp256k1 directly (protocol/signing.py): the answer
must be eth_account's, for every signature eth_account reads and every one it refuses."""

from __future__ import annotations

import random

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from sparecycles.protocol.market import checksummed
from sparecycles.protocol.signing import SignatureError, sign_text, text_signer

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNER = Account.from_key("0x" + "5d" * 32)


def _eth_account(text: str, signature: str) -> str | None:
    """What eth_account recovers, or None where it refuses the signature."""
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception:  # any refusal counts as one
        return None


def _ours(text: str, signature: str) -> str | None:
    try:
        return text_signer(text, signature)
    except SignatureError:
        return None


def _texts() -> list[str]:
    rng = random.Random(11)  # noqa: S311 - varied test texts, not secrets
    texts = ["", "x", "SpareCycles result report\nlease: lease_1\noutcome: finished", "ünïcödé ✓ 漢字", "a" * 5000]
    alphabet = "abcXYZ019 \n:-_é€"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    return texts


@pytest.mark.parametrize("text", _texts())
def test_a_good_signature_names_its_signer_as_eth_account_does(text: str) -> None:
    signature = sign_text(SIGNER, text)
    assert text_signer(text, signature) == SIGNER.address == _eth_account(text, signature)


def _with_v(signature: str, v: int) -> str:
    return signature[:-2] + f"{v:02x}"


def _with_r_s(signature: str, *, r: int | None = None, s: int | None = None) -> str:
    raw = bytes.fromhex(signature[2:])
    r_bytes = raw[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = raw[32:64] if s is None else s.to_bytes(32, "big")
    return "0x" + (r_bytes + s_bytes + raw[64:]).hex()


def _variants(signature: str) -> dict[str, str]:
    v = int(signature[-2:], 16) - 27
    variants = {f"v={value}": _with_v(signature, value) for value in (0, 1, 2, 26, 27, 28, 29, 34, 35, 36, 37, 38, 255)}
    variants |= {"v as 0/1": _with_v(signature, v), "v as EIP-155 chain 1": _with_v(signature, 37 + v)}
    variants |= {
        "r = 0": _with_r_s(signature, r=0),
        "s = 0": _with_r_s(signature, s=0),
        "r = the curve order": _with_r_s(signature, r=SECP256K1_ORDER),
        "s = the curve order": _with_r_s(signature, s=SECP256K1_ORDER),
        "s above the curve order": _with_r_s(signature, s=SECP256K1_ORDER + 5),
        "high s": _with_r_s(signature, s=SECP256K1_ORDER - int(signature[66:130], 16)),
        "r + 1": _with_r_s(signature, r=int(signature[2:66], 16) + 1),
        "one byte short": signature[:-2],
        "one byte more": signature + "00",
        "no 0x": signature[2:],
        "upper-case 0X": "0X" + signature[2:],
        "not hexadecimal": signature[:-3] + "zz",
        "odd length": signature[:-1],
        "empty": "",
        "0x only": "0x",
    }
    return variants


@pytest.mark.parametrize("case", list(_variants(sign_text(SIGNER, "probe"))))
def test_every_altered_signature_reads_as_eth_account_reads_it(case: str) -> None:
    text = "SpareCycles result report\nlease: lease_7"
    signature = _variants(sign_text(SIGNER, text))[case]
    expected = _eth_account(text, signature)
    assert _ours(text, signature) == expected
    if case in ("v as 0/1", "v as EIP-155 chain 1", "v=27", "v=28", "no 0x"):
        assert expected is not None  # the cases eth_account reads are really compared, not only refused


def test_a_refused_signature_says_it_cannot_be_read() -> None:
    with pytest.raises(SignatureError, match="cannot be read"):
        text_signer("anything", "0x" + "00" * 65)


def test_a_signature_of_another_text_names_someone_else() -> None:
    signature = sign_text(SIGNER, "lease: lease_1")
    other = text_signer("lease: lease_2", signature)
    assert other != SIGNER.address
    assert other == _eth_account("lease: lease_2", signature)


@pytest.mark.parametrize("address", ["0x" + "ab" * 20, "0x" + "AB" * 20, SIGNER.address.lower(), SIGNER.address])
def test_checksummed_addresses_match_eth_utils(address: str) -> None:
    from eth_utils.address import to_checksum_address

    assert checksummed(address) == to_checksum_address(address)
    assert checksummed(address) == checksummed(address.lower())

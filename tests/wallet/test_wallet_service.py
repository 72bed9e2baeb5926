"""The wallet against the real Secret Service of the test session (gnome-keyring in D-Bus, started by `make
test`): create with a recovery phrase confirmed by its words, import both ways, watch-only, export only when
confirmed, remove; signatures that verify to the address; fail and plaintext keyrings refused with nothing
written anywhere."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from keyring.backends import fail
from keyrings.alt import file as alt_file

from sparecycles.agent.keystore import KEYRING_SERVICE
from sparecycles.agent.wallet.registry import WalletRegistry
from sparecycles.agent.wallet.service import DERIVATION_PATH, WalletError, WalletService
from sparecycles.agent.wallet.vault import KeyringVault
from tests.chain_support import Anvil

# Anvil's and Hardhat's well-known first test account: public, holds nothing real.
TEST_MNEMONIC = "test test test test test test test test test test test junk"
TEST_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def secret_service() -> object:
    from sparecycles.agent.keystore import primary_backend

    backend = keyring.get_keyring()
    if "SecretService" not in type(primary_backend(backend)).__module__:
        pytest.skip("needs the Secret Service session that `make test` starts (gnome-keyring in D-Bus)")
    return backend


@pytest.fixture
def wallets(tmp_path: Path) -> Iterator[WalletService]:
    secret_service()
    masked: list[str] = []
    service = WalletService(WalletRegistry(tmp_path / "wallets.json"), KeyringVault(), register_secret=masked.append)
    yield service
    for entry in service.wallets().entries:  # leave the session's keyring as it was
        service.remove(entry.name)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def recovered(message: str, signature: str) -> str:
    return str(Account.recover_message(encode_defunct(text=message), signature=signature))


def test_a_created_wallet_is_kept_in_the_keyring_and_confirmed_by_words_of_its_phrase(wallets: WalletService) -> None:
    name = unique("main")
    created = wallets.create(name)
    words = created.mnemonic.split()
    assert len(words) == 12
    assert len(created.confirm_positions) == 3
    assert created.entry.address == Account.from_mnemonic(created.mnemonic, account_path=DERIVATION_PATH).address
    assert not created.entry.confirmed
    with pytest.raises(WalletError, match="not confirmed yet"):
        wallets.use(name)
    wrong = {p: "zebra" if words[p - 1] != "zebra" else "apple" for p in created.confirm_positions}
    with pytest.raises(WalletError, match="does not match"):
        wallets.confirm(name, wrong)
    assert wallets.confirm(name, {p: words[p - 1] for p in created.confirm_positions}).confirmed
    assert wallets.use(name).address == created.entry.address
    # Only the keyring holds the phrase: the registry file has the address, never the secret.
    stored = keyring.get_password(KEYRING_SERVICE, f"wallet:{name}")
    assert stored is not None
    assert created.mnemonic in stored
    assert created.mnemonic not in (Path(wallets._registry._path)).read_text()
    signature = wallets.sign_message("pay me")
    assert recovered("pay me", signature) == created.entry.address
    # keyrings.alt is installed here, so keyring chains it behind the Secret Service: the phrase must not
    # have gone to its plaintext file as well.
    plaintext = Path(alt_file.PlaintextKeyring().file_path)
    assert not plaintext.exists() or created.mnemonic not in plaintext.read_text()


def test_import_by_phrase_and_by_key_give_the_known_address_and_sign_for_it(wallets: WalletService) -> None:
    by_phrase = wallets.import_mnemonic(unique("phrase"), TEST_MNEMONIC)
    assert by_phrase.address == TEST_ADDRESS
    wallets.remove(by_phrase.name)  # the same address cannot be two wallets
    by_key = wallets.import_key(unique("key"), TEST_KEY.removeprefix("0x"))
    assert by_key.address == TEST_ADDRESS
    assert recovered("hello", wallets.sign_message("hello", by_key.name)) == TEST_ADDRESS
    with pytest.raises(WalletError, match="not a valid BIP-39") as refused:
        wallets.import_mnemonic(unique("bad"), "test test test test test test test test test test test test")
    assert "test test" not in str(refused.value)  # a mistyped phrase is not echoed
    with pytest.raises(WalletError, match="not a private key"):
        wallets.import_key(unique("bad"), "0x1234")


def test_export_needs_the_explicit_confirmation_and_remove_takes_the_key_out_of_the_keyring(
    wallets: WalletService,
) -> None:
    name = unique("exp")
    wallets.import_key(name, TEST_KEY)
    with pytest.raises(WalletError, match=f"export {name}"):
        wallets.export(name, "yes")
    assert wallets.export(name, f"export {name}").private_key == TEST_KEY
    wallets.remove(name)
    assert keyring.get_password(KEYRING_SERVICE, f"wallet:{name}") is None
    assert wallets.wallets().entries == ()


def test_a_watch_only_wallet_is_a_payout_address_that_refuses_to_sign_and_says_why(wallets: WalletService) -> None:
    name = unique("ledger")
    entry = wallets.watch(name, TEST_ADDRESS.lower())
    assert entry.address == TEST_ADDRESS  # checksummed
    assert wallets.use(name).kind == "watch"
    with pytest.raises(WalletError, match="watch-only: its key is not on this machine, so it cannot sign"):
        wallets.sign_message("hello")
    with pytest.raises(WalletError, match="watch-only"):
        wallets.export(name, f"export {name}")
    with pytest.raises(WalletError, match="not an address"):
        wallets.watch(unique("bad"), "0x1234")


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (fail.Keyring(), "there is no OS keyring to keep a wallet's key in"),
        (alt_file.PlaintextKeyring(), "keeps secrets unencrypted"),
        (alt_file.EncryptedKeyring(), "its own password-encrypted file, or a retired library\\), not the OS keyring"),
    ],
    ids=["fail", "plaintext", "encrypted file"],
)
def test_a_fail_or_plaintext_keyring_is_refused_and_nothing_is_written_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: object, message: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # where keyrings.alt would write its plaintext file
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    original = keyring.get_keyring()
    keyring.set_keyring(backend)  # type: ignore[arg-type]
    try:
        service = WalletService(WalletRegistry(tmp_path / "state" / "wallets.json"), KeyringVault())
        for attempt in (
            lambda: service.create("main"),
            lambda: service.import_mnemonic("phrase", TEST_MNEMONIC),
            lambda: service.import_key("key", TEST_KEY),
        ):
            with pytest.raises(WalletError, match=message) as refused:
                attempt()
            assert type(backend).__name__ in str(refused.value)  # the message names the backend found
            assert "watch-only payout address" in str(refused.value)  # and offers the way out
        written = [path for path in tmp_path.rglob("*") if path.is_file()]
        assert written == []
        # A watch-only wallet needs no keyring at all.
        assert service.watch("studio", TEST_ADDRESS).kind == "watch"
    finally:
        keyring.set_keyring(original)


def test_a_transaction_signed_by_the_wallet_moves_its_coins_on_the_chain(
    wallets: WalletService, anvil: Anvil, fresh_address: str
) -> None:
    name = unique("spend")
    sender = wallets.import_key(name, Account.create().key.hex())
    anvil.transfer_native(anvil.accounts[0], sender.address, 10**18)
    raw = wallets.sign_transaction(
        {
            "to": fresh_address,
            "value": 12_345,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "nonce": anvil.web3.eth.get_transaction_count(sender.address),
            "chainId": anvil.chain_id,
        },
        name,
    )
    receipt = anvil.web3.eth.wait_for_transaction_receipt(anvil.web3.eth.send_raw_transaction(raw), timeout=30)
    assert receipt["status"] == 1
    assert anvil.web3.eth.get_balance(fresh_address) == 12_345
    watch = wallets.watch(unique("watch"), Account.create().address)
    with pytest.raises(WalletError, match="watch-only"):
        wallets.sign_transaction({"to": fresh_address, "value": 1}, watch.name)

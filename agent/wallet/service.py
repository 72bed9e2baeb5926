"""The owner's wallets: create (a recovery phrase shown once, then confirmed), import, watch, export, remove,
choose the one payouts go to, and sign with it.

Every secret goes to the OS keyring (vault.py) before anything refers to it, and is registered with the
log masker whenever it passes through the agent, so that no log line can carry it. Signing happens here,
in the agent; a watch-only wallet refuses to sign and says why.
"""

from __future__ import annotations

import secrets as random_source
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparecycles.agent.wallet.registry import RegistryError, WalletEntry, WalletRegistry, Wallets, check_name
from sparecycles.agent.wallet.vault import KeyringVault, Secret, VaultError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DERIVATION_PATH = "m/44'/60'/0'/0/0"  # the standard first Ethereum account (BIP-44), as every wallet app uses
CONFIRM_WORDS = 3


class WalletError(Exception):
    """What the owner asked cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class NewWallet:
    """A created wallet, its recovery phrase (shown once), and which of its words the owner must repeat."""

    entry: WalletEntry
    mnemonic: str
    confirm_positions: tuple[int, ...]  # 1-based


def _accounts() -> Any:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()  # BIP-39; eth-account's own HD code, audited or not, is the reference
    return Account


def account_of(secret: Secret) -> LocalAccount:
    account_type = _accounts()
    if secret.mnemonic is not None:
        account: LocalAccount = account_type.from_mnemonic(
            secret.mnemonic, account_path=secret.derivation_path or DERIVATION_PATH
        )
        return account
    if secret.private_key is not None:
        key_account: LocalAccount = account_type.from_key(secret.private_key)
        return key_account
    raise WalletError("the stored secret holds neither a recovery phrase nor a key")


def _checksum(address: str) -> str:
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(address):
        raise WalletError(f"{address!r} is not an address: 0x followed by 40 hexadecimal digits")
    return str(to_checksum_address(address))


class WalletService:
    def __init__(
        self,
        registry: WalletRegistry,
        vault: KeyringVault,
        *,
        register_secret: Callable[[str], None] = lambda _secret: None,
    ) -> None:
        self._registry = registry
        self._vault = vault
        self._register_secret = register_secret  # the log masker: a secret seen is a secret masked

    def _mask(self, secret: Secret, account: LocalAccount | None = None) -> None:
        for value in (secret.mnemonic, secret.private_key):
            if value:
                self._register_secret(value)
        if account is not None:
            key = account.key.hex()
            self._register_secret(key.removeprefix("0x"))
            self._register_secret("0x" + key.removeprefix("0x"))

    def wallets(self) -> Wallets:
        return self._registry.read()

    def _new_name(self, name: str) -> None:
        try:
            check_name(name)
            if any(entry.name == name for entry in self._registry.read().entries):
                raise WalletError(f"a wallet named {name!r} exists already; choose another name")
        except RegistryError as exc:
            raise WalletError(str(exc)) from None

    def _keep(self, name: str, secret: Secret, kind: str, *, confirmed: bool) -> WalletEntry:
        account = account_of(secret)
        self._mask(secret, account)
        entry = WalletEntry(name, account.address, "mnemonic" if kind == "mnemonic" else "key", confirmed)
        if any(e.address.lower() == entry.address.lower() for e in self._registry.read().entries):
            raise WalletError(f"the address {entry.address} is already a wallet here")
        try:
            self._vault.store(name, secret)  # in the keyring before anything refers to it
            self._registry.add(entry)
        except (VaultError, RegistryError) as exc:
            raise WalletError(str(exc)) from None
        return entry

    # -- making and adding wallets ----------------------------------------------------------------

    def create(self, name: str) -> NewWallet:
        """A new wallet; its recovery phrase is returned once and must then be confirmed (:meth:`confirm`)."""
        self._new_name(name)
        self._check_vault()
        _account, mnemonic = _accounts().create_with_mnemonic(account_path=DERIVATION_PATH)
        entry = self._keep(name, Secret(mnemonic, DERIVATION_PATH), "mnemonic", confirmed=False)
        count = len(mnemonic.split())
        positions = tuple(sorted(random_source.SystemRandom().sample(range(1, count + 1), CONFIRM_WORDS)))
        return NewWallet(entry, mnemonic, positions)

    def confirm(self, name: str, words: Mapping[int, str]) -> WalletEntry:
        """The owner wrote the phrase down: ``words`` (1-based position → word) must match it."""
        entry = self._entry(name)
        if entry.confirmed:
            return entry
        secret = self._load(name)
        phrase = (secret.mnemonic or "").split()
        if len(words) < CONFIRM_WORDS:
            raise WalletError(f"repeat {CONFIRM_WORDS} words of the recovery phrase")
        wrong = [p for p, word in words.items() if not 1 <= p <= len(phrase) or phrase[p - 1] != word.strip().lower()]
        if wrong:
            raise WalletError(
                f"word {wrong[0]} does not match the recovery phrase; check what you wrote down and try again"
            )
        confirmed = WalletEntry(entry.name, entry.address, entry.kind, True)
        self._registry.replace_entry(confirmed)
        return confirmed

    def import_mnemonic(self, name: str, mnemonic: str, derivation_path: str = DERIVATION_PATH) -> WalletEntry:
        self._new_name(name)
        phrase = " ".join(mnemonic.lower().split())
        self._register_secret(phrase)
        try:
            _accounts().from_mnemonic(phrase, account_path=derivation_path)
        except Exception:  # never echo the phrase back
            raise WalletError("that is not a valid BIP-39 recovery phrase (12 to 24 English words)") from None
        self._check_vault()
        return self._keep(name, Secret(phrase, derivation_path), "mnemonic", confirmed=True)

    def import_key(self, name: str, private_key: str) -> WalletEntry:
        self._new_name(name)
        key = private_key.strip()
        key = key if key.startswith("0x") else "0x" + key
        self._register_secret(key)
        self._register_secret(key.removeprefix("0x"))
        try:
            _accounts().from_key(key)
        except Exception:
            raise WalletError("that is not a private key (64 hexadecimal digits)") from None
        self._check_vault()
        return self._keep(name, Secret(private_key=key), "key", confirmed=True)

    def watch(self, name: str, address: str) -> WalletEntry:
        """A payout address whose key is not on this machine (a hardware wallet, another computer)."""
        self._new_name(name)
        try:
            return self._registry.add(WalletEntry(name, _checksum(address), "watch")).get(name)
        except RegistryError as exc:
            raise WalletError(str(exc)) from None

    # -- using them ---------------------------------------------------------------------------------

    def export(self, name: str, confirmation: str) -> Secret:
        """The wallet's secret, only when ``confirmation`` is exactly ``export NAME``."""
        if confirmation != f"export {name}":
            raise WalletError(f"to show the secret of wallet {name!r}, confirm with the words: export {name}")
        entry = self._entry(name)
        if not entry.can_sign:
            raise WalletError(f"wallet {name!r} is watch-only: its key is not on this machine")
        return self._load(name)

    def remove(self, name: str) -> Wallets:
        """Forget a wallet: its key leaves the keyring (have its recovery phrase written down first)."""
        entry = self._entry(name)
        try:
            if entry.can_sign:
                self._vault.delete(name)
            return self._registry.remove(name)
        except (VaultError, RegistryError) as exc:
            raise WalletError(str(exc)) from None

    def use(self, name: str) -> WalletEntry:
        try:
            return self._registry.set_active(name).get(name)
        except RegistryError as exc:
            raise WalletError(str(exc)) from None

    def account(self, name: str | None = None) -> LocalAccount:
        """The signing account of wallet ``name`` (the active one by default)."""
        wallets = self._registry.read()
        chosen = name or wallets.active
        if chosen is None:
            raise WalletError("no wallet is active: `sparecycles wallet use NAME`")
        entry = self._entry(chosen)
        if not entry.can_sign:
            raise WalletError(
                f"wallet {chosen!r} is watch-only: its key is not on this machine, so it cannot sign here; "
                "sign with the wallet that holds its key"
            )
        return account_of(self._load(chosen))

    def sign_message(self, message: str, name: str | None = None) -> str:
        """An EIP-191 personal-message signature by the wallet (the active one by default)."""
        from eth_account.messages import encode_defunct

        signed = self.account(name).sign_message(encode_defunct(text=message))
        return "0x" + bytes(signed.signature).hex()

    def sign_transaction(self, transaction: Mapping[str, Any], name: str | None = None) -> str:
        """A signed raw transaction (0x-hex, ready for eth_sendRawTransaction) by the wallet; the caller fills
        nonce, gas and chain id. A watch-only wallet refuses, as for messages."""
        signed = self.account(name).sign_transaction(dict(transaction))
        return "0x" + bytes(signed.raw_transaction).hex()

    # -- helpers ------------------------------------------------------------------------------------

    def _entry(self, name: str) -> WalletEntry:
        try:
            return self._registry.read().get(name)
        except RegistryError as exc:
            raise WalletError(str(exc)) from None

    def _check_vault(self) -> None:
        try:
            self._vault.check()
        except VaultError as exc:
            raise WalletError(str(exc)) from None

    def _load(self, name: str) -> Secret:
        try:
            secret = self._vault.load(name)
        except VaultError as exc:
            raise WalletError(str(exc)) from None
        self._mask(secret)
        return secret

"""The wallet on the control API. Secrets cross it in two places only: in a request that imports one, and in
the answer to an explicit export (which the creation of a wallet uses once, to show its recovery phrase)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

WalletName = str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WalletView(_Model):
    name: str
    address: str
    kind: Literal["mnemonic", "key", "watch"] = Field(description="watch: a payout address whose key is elsewhere.")
    confirmed: bool = Field(description="False until the owner repeated words of a created wallet's phrase.")
    active: bool = Field(description="Payouts go to this wallet's address.")


class WalletList(_Model):
    wallets: list[WalletView]
    active: str | None


class CreateWallet(_Model):
    name: str = Field(min_length=1, max_length=40)


class CreatedWallet(_Model):
    wallet: WalletView
    confirm_positions: list[int] = Field(
        description="Which words (1-based) of the recovery phrase the owner must repeat to confirm it; the phrase "
        "itself is shown once through the export, with the confirmation `export NAME`."
    )


class ConfirmWallet(_Model):
    words: dict[int, str] = Field(description="Position (1-based) → word of the recovery phrase.")


class ImportWallet(_Model):
    name: str = Field(min_length=1, max_length=40)
    mnemonic: str | None = Field(None, max_length=400)
    private_key: str | None = Field(None, max_length=80)


class WatchWallet(_Model):
    name: str = Field(min_length=1, max_length=40)
    address: str = Field(max_length=42)


class ExportWallet(_Model):
    confirmation: str = Field(description="Exactly `export NAME`: a secret is shown only when asked for by name.")


class ExportedSecret(_Model):
    name: str
    mnemonic: str | None = None
    derivation_path: str | None = None
    private_key: str | None = None


class SignMessage(_Model):
    message: str = Field(max_length=10_000)
    name: str | None = Field(None, description="The wallet to sign with; the active one by default.")


class SignedMessage(_Model):
    address: str
    signature: str


class BalanceView(_Model):
    address: str
    native: str | None = Field(description="The native coin's balance, e.g. '1.5 ETH'; null when unknown.")
    token: str | None = Field(description="The payout token's balance, e.g. '12.345678 TT'; null when unknown.")
    problem: str | None = Field(description="Why a balance is unknown ('balance unknown (RPC unreachable: …)').")


class ClaimableView(_Model):
    payout_address: str | None = Field(description="The address the latest voucher pays; null without a voucher.")
    voucher_amount: int = Field(description="The latest verified voucher's cumulative amount, in base units.")
    claimed: int = Field(description="What the payout vault has paid that address so far, in base units.")
    claimable: int = Field(description="voucher_amount - claimed: what a claim would pay now, in base units.")
    decimals: int = Field(description="The payout token's decimals.")
    pending_tx: str | None = Field(description="A claim sent and not mined yet (no second one is sent meanwhile).")
    problem: str | None = Field(description="Why the voucher cannot be claimed, if it cannot.")


class ClaimResult(_Model):
    tx_hash: str | None = Field(description="The claim transaction; null when the marketplace was asked to relay it.")
    state: Literal["mined", "pending", "relay_requested"] = Field(
        description="pending: sent, not mined yet, recorded once it is; relay_requested: the marketplace's operator "
        "sends the claim and pays the gas (recorded once it is seen on chain)."
    )
    payout_address: str | None
    amount: int = Field(
        description="mined: what the vault paid (base units); pending and relay_requested: what it should pay."
    )

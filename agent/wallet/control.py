"""The wallet's commands as the control API serves them: the service's answers as API models, the active
wallet kept as the marketplace's payout address (the change signed by the current one), and balances.

Keyring calls go over D-Bus and can wait on an unlock prompt, so the routes run these in worker threads;
the payout change talks to the marketplace, so :meth:`WalletControl.use` is a coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from sparecycles.agent.wallet.balances import NO_CHAIN
from sparecycles.agent.wallet.claims import ClaimError, ClaimService
from sparecycles.agent.wallet.registry import WalletEntry, Wallets
from sparecycles.agent.wallet.service import WalletError, WalletService
from sparecycles.control.wallet import (
    BalanceView,
    ClaimableView,
    ClaimResult,
    CreatedWallet,
    ExportedSecret,
    ImportWallet,
    SignedMessage,
    WalletList,
    WalletView,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from sparecycles.protocol.market import RelayAck


class PayoutTarget(Protocol):
    """The marketplace side (agent/market/provider.py): where earnings are paid, how that changes, the latest
    voucher, and the operator relaying a claim."""

    registered_payout: str | None

    async def change_payout(self, new_address: str, signer_for: Callable[[str], LocalAccount | None]) -> None: ...
    async def refresh_voucher(self) -> None: ...
    async def request_relay(self) -> RelayAck: ...


def view(entry: WalletEntry, wallets: Wallets) -> WalletView:
    return WalletView(
        name=entry.name,
        address=entry.address,
        kind=entry.kind,
        confirmed=entry.confirmed,
        active=wallets.active == entry.name,
    )


class WalletControl:
    def __init__(
        self,
        service: WalletService,
        *,
        set_payout_address: Callable[[str], object],
        payout_target: Callable[[], PayoutTarget | None] = lambda: None,
        balances: Callable[[str], Awaitable[BalanceView]] | None = None,
        claims: ClaimService | None = None,
    ) -> None:
        self._service = service
        self._claims = claims
        self._set_payout_address = set_payout_address
        self._payout_target = payout_target
        self._balances = balances

    def list(self) -> WalletList:
        wallets = self._service.wallets()
        return WalletList(wallets=[view(entry, wallets) for entry in wallets.entries], active=wallets.active)

    def _view(self, entry: WalletEntry) -> WalletView:
        return view(entry, self._service.wallets())

    def create(self, name: str) -> CreatedWallet:
        created = self._service.create(name)
        return CreatedWallet(wallet=self._view(created.entry), confirm_positions=list(created.confirm_positions))

    def confirm(self, name: str, words: dict[int, str]) -> WalletView:
        return self._view(self._service.confirm(name, words))

    def import_wallet(self, request: ImportWallet) -> WalletView:
        if (request.mnemonic is None) == (request.private_key is None):
            raise WalletError("give either a recovery phrase or a private key")
        if request.mnemonic is not None:
            return self._view(self._service.import_mnemonic(request.name, request.mnemonic))
        assert request.private_key is not None  # noqa: S101 - checked just above
        return self._view(self._service.import_key(request.name, request.private_key))

    def watch(self, name: str, address: str) -> WalletView:
        return self._view(self._service.watch(name, address))

    def export(self, name: str, confirmation: str) -> ExportedSecret:
        secret = self._service.export(name, confirmation)
        return ExportedSecret(
            name=name,
            mnemonic=secret.mnemonic,
            derivation_path=secret.derivation_path,
            private_key=secret.private_key,
        )

    def remove(self, name: str) -> WalletList:
        if self._service.wallets().active == name:
            raise WalletError(f"wallet {name!r} receives the payouts: make another wallet active first")
        self._service.remove(name)
        return self.list()

    def _signer_for(self, address: str) -> LocalAccount | None:
        for entry in self._service.wallets().entries:
            if entry.address.lower() == address.lower() and entry.can_sign:
                return self._service.account(entry.name)
        return None

    async def use(self, name: str) -> WalletView:
        """Make ``name`` the payout wallet: the marketplace is told first (signed by the current payout
        address), then the settings; a refusal changes nothing."""
        entry = await asyncio.to_thread(self._service.wallets().get, name)
        if not entry.confirmed:
            raise WalletError(f"wallet {name!r} is not confirmed yet: repeat the words of its recovery phrase first")
        target = self._payout_target()
        if target is not None:
            await target.change_payout(entry.address, self._signer_for)
        chosen = await asyncio.to_thread(self._service.use, name)
        self._set_payout_address(chosen.address)
        return self._view(chosen)

    def sign(self, message: str, name: str | None) -> SignedMessage:
        wallets = self._service.wallets()
        chosen = name or wallets.active
        signature = self._service.sign_message(message, chosen)
        address = wallets.get(chosen).address if chosen else ""
        return SignedMessage(address=address, signature=signature)

    async def balance(self, name: str) -> BalanceView:
        entry = await asyncio.to_thread(self._service.wallets().get, name)
        if self._balances is None:
            return BalanceView(address=entry.address, native=None, token=None, problem=NO_CHAIN)
        return await self._balances(entry.address)

    def _claim_service(self) -> ClaimService:
        if self._claims is None:
            raise ClaimError("this agent has no ledger, so it cannot claim (a claim is recorded there)")
        return self._claims

    async def fresh_voucher(self) -> None:
        """Fetch the marketplace's latest voucher first (a re-signed one after an operator key rotation); the
        kept one stands when the marketplace cannot be asked."""
        target = self._payout_target()
        if target is not None:
            await target.refresh_voucher()

    async def claimable(self) -> ClaimableView:
        await self.fresh_voucher()
        found = await asyncio.to_thread(self._claim_service().claimable)
        return ClaimableView(
            payout_address=found.payout_address,
            voucher_amount=found.voucher_amount,
            claimed=found.claimed,
            claimable=found.claimable,
            decimals=found.decimals,
            pending_tx=found.pending_tx,
            problem=found.problem,
        )

    def _active_can_sign(self) -> bool:
        wallets = self._service.wallets()
        return wallets.active is not None and wallets.get(wallets.active).can_sign

    async def claim(self, *, relay: bool = False) -> ClaimResult:
        """Claim from the active wallet, which pays the gas; with ``relay``, or when that wallet cannot sign
        (watch-only), ask the marketplace's operator to send the claim and pay the gas instead."""
        await self.fresh_voucher()
        if relay or not await asyncio.to_thread(self._active_can_sign):
            return await self._request_relay()
        outcome = await asyncio.to_thread(self._claim_service().claim)
        return ClaimResult(
            tx_hash=outcome.tx_hash, state=outcome.state, payout_address=outcome.payout_address, amount=outcome.amount
        )

    async def _request_relay(self) -> ClaimResult:
        target = self._payout_target()
        if target is None:
            raise ClaimError(
                "the active wallet cannot sign a claim (watch-only) and no marketplace is connected to relay it: "
                "import the payout wallet's key here, or connect to a marketplace that relays claims"
            )
        ack = await target.request_relay()
        if not ack.queued:
            raise ClaimError(f"the marketplace will not relay the claim now: {ack.detail}")
        return ClaimResult(
            tx_hash=None, state="relay_requested", payout_address=target.registered_payout, amount=ack.owed_base_units
        )

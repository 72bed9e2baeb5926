"""The wallet on the control API: a thin layer over :class:`sparecycles.agent.wallet.control.WalletControl`.

A refused request (a bad phrase, a locked keyring, a watch-only wallet asked to sign) answers 422 with the
message; keyring calls run in worker threads, never on the agent's event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparecycles.agent.chain.client import ChainError
from sparecycles.agent.market.client import MarketError
from sparecycles.agent.market.provider import PayoutKeyMissing
from sparecycles.agent.wallet.claims import ClaimError
from sparecycles.agent.wallet.control import WalletControl
from sparecycles.agent.wallet.registry import RegistryError
from sparecycles.agent.wallet.service import WalletError
from sparecycles.control.models import ErrorBody
from sparecycles.control.wallet import (
    BalanceView,
    ClaimableView,
    ClaimResult,
    ConfirmWallet,
    CreatedWallet,
    CreateWallet,
    ExportedSecret,
    ExportWallet,
    ImportWallet,
    SignedMessage,
    SignMessage,
    WalletList,
    WalletView,
    WatchWallet,
)

Model = TypeVar("Model")

_REFUSED = (WalletError, RegistryError, PayoutKeyMissing, ClaimError)


def add_wallet_routes(app: FastAPI, control: WalletControl | None) -> None:
    errors: dict[int | str, dict[str, Any]] = {
        422: {"model": ErrorBody},
        502: {"model": ErrorBody},
        503: {"model": ErrorBody},
    }

    def wallets() -> WalletControl:
        if control is None:
            raise StarletteHTTPException(503, "This agent has no wallet service.")
        return control

    async def call(function: Any, *args: Any) -> Any:
        return await guarded(run_in_threadpool(function, *args))

    async def guarded(work: Awaitable[Model]) -> Model:
        try:
            return await work
        except _REFUSED as exc:
            raise StarletteHTTPException(422, str(exc)) from None
        except ChainError as exc:
            raise StarletteHTTPException(502, f"The chain could not be asked: {exc}") from None
        except MarketError as exc:
            raise StarletteHTTPException(502, f"The marketplace did not answer as it should: {exc}") from None

    @app.get("/v1/wallets", response_model=WalletList, tags=["wallet"])
    async def list_wallets() -> WalletList:
        return await call(wallets().list)  # type: ignore[no-any-return]

    @app.post("/v1/wallets", response_model=CreatedWallet, status_code=201, tags=["wallet"], responses=errors)
    async def create(request: CreateWallet) -> CreatedWallet:
        """A new wallet (BIP-39); its phrase is shown once through the export, then confirmed by its words."""
        return await call(wallets().create, request.name)  # type: ignore[no-any-return]

    @app.post("/v1/wallets/import", response_model=WalletView, status_code=201, tags=["wallet"], responses=errors)
    async def import_wallet(request: ImportWallet) -> WalletView:
        return await call(wallets().import_wallet, request)  # type: ignore[no-any-return]

    @app.post("/v1/wallets/watch", response_model=WalletView, status_code=201, tags=["wallet"], responses=errors)
    async def watch(request: WatchWallet) -> WalletView:
        """A payout address whose key stays elsewhere (a hardware wallet, another computer)."""
        return await call(wallets().watch, request.name, request.address)  # type: ignore[no-any-return]

    @app.post("/v1/wallets/{name}/confirm", response_model=WalletView, tags=["wallet"], responses=errors)
    async def confirm(name: str, request: ConfirmWallet) -> WalletView:
        return await call(wallets().confirm, name, request.words)  # type: ignore[no-any-return]

    @app.post("/v1/wallets/{name}/export", response_model=ExportedSecret, tags=["wallet"], responses=errors)
    async def export(name: str, request: ExportWallet) -> ExportedSecret:
        """The wallet's secret, only with the confirmation `export NAME`."""
        return await call(wallets().export, name, request.confirmation)  # type: ignore[no-any-return]

    @app.delete("/v1/wallets/{name}", response_model=WalletList, tags=["wallet"], responses=errors)
    async def remove(name: str) -> WalletList:
        return await call(wallets().remove, name)  # type: ignore[no-any-return]

    @app.post("/v1/wallets/{name}/use", response_model=WalletView, tags=["wallet"], responses=errors)
    async def use(name: str) -> WalletView:
        """Pay out to this wallet: the marketplace is told first, signed by the current payout address."""
        try:
            return await wallets().use(name)
        except _REFUSED as exc:
            raise StarletteHTTPException(422, str(exc)) from None
        except MarketError as exc:
            raise StarletteHTTPException(502, f"The marketplace did not take the change: {exc}") from None

    @app.post("/v1/wallets/sign", response_model=SignedMessage, tags=["wallet"], responses=errors)
    async def sign(request: SignMessage) -> SignedMessage:
        """An EIP-191 signature by the wallet; a watch-only wallet refuses and says why."""
        return await call(wallets().sign, request.message, request.name)  # type: ignore[no-any-return]

    @app.get("/v1/wallets/claimable", response_model=ClaimableView, tags=["wallet"], responses=errors)
    async def claimable() -> ClaimableView:
        """The latest verified voucher (fetched from the marketplace first) minus what the payout vault has paid
        already (a pending claim is settled first)."""
        return await guarded(wallets().claimable())

    @app.post("/v1/wallets/claim", response_model=ClaimResult, tags=["wallet"], responses=errors)
    async def claim(relay: bool = False) -> ClaimResult:
        """Claim what is claimable, sent from the active wallet; refused (422, with the figures) when the gas
        would cost more than chain.max_gas_share of the amount, or while an earlier claim is pending. With
        ``relay`` (or a watch-only active wallet) the marketplace's operator is asked to send it instead."""
        return await guarded(wallets().claim(relay=relay))

    @app.get("/v1/wallets/{name}/balance", response_model=BalanceView, tags=["wallet"], responses=errors)
    async def balance(name: str) -> BalanceView:
        return await guarded(wallets().balance(name))

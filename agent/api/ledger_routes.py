"""The ledger on the control API: earnings summaries, the tray's figure, the export, the tariff and the rate.

Queries read SQLite, so they run in a worker thread rather than on the agent's event loop. Without a
ledger (it could not be opened: the status says why) these routes answer 503 with that reason.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Query
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.tariffs import TariffError
from sparecycles.control.ledger import (
    EarningsSummary,
    LedgerExport,
    LedgerSettingsView,
    PayoutList,
    SummaryBucket,
    TariffChange,
    TodayFigure,
    TokenRateChange,
)
from sparecycles.control.models import ErrorBody

DEFAULT_DAYS = 30
MAX_DAYS = 3700  # ten years and a bit: a query beyond is a typo


class LedgerApi(Protocol):
    """What the routes need; the real one is :class:`sparecycles.agent.ledger.service.LedgerService`."""

    def summary(self, since: date, until: date, by: SummaryBucket) -> EarningsSummary: ...
    def today(self) -> TodayFigure: ...
    def export(self, since: date, until: date) -> LedgerExport: ...
    def payouts(self) -> PayoutList: ...
    def settings_view(self) -> LedgerSettingsView: ...
    def set_tariff_text(self, document: str) -> None: ...
    def set_token_rate(self, rate: TokenRate) -> None: ...
    def local_today(self) -> date: ...


EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def add_ledger_routes(app: FastAPI, ledger: LedgerApi | None, problem: str | None) -> None:
    def require() -> LedgerApi:
        if ledger is None:
            raise StarletteHTTPException(503, f"The ledger is not available: {problem or 'not opened'}.")
        return ledger

    def period(since: date | None, until: date | None) -> tuple[date, date]:
        for day in (since, until):
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                # The queries step a day or a month past their ends: 0001-01-01 and 9999-12-31 raised there (500).
                raise StarletteHTTPException(422, f"Ask for days from {EARLIEST_DAY} to {LATEST_DAY}, not {day}.")
        last = until or require().local_today()
        first = since or last - timedelta(days=DEFAULT_DAYS - 1)
        if last < first:
            raise StarletteHTTPException(422, "--until must not be before --since.")
        if (last - first).days > MAX_DAYS:
            raise StarletteHTTPException(422, f"Ask for at most {MAX_DAYS} days at a time.")
        return first, last

    errors: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}, 503: {"model": ErrorBody}}

    @app.get("/v1/earnings", response_model=EarningsSummary, tags=["ledger"], responses=errors)
    async def earnings(
        since: Annotated[date | None, Query(description="First local day (default: 30 days ago).")] = None,
        until: Annotated[date | None, Query(description="Last local day, included (default: today).")] = None,
        by: SummaryBucket = "day",
    ) -> EarningsSummary:
        """Gross, power cost and net by hour, day, week, month or job."""
        first, last = period(since, until)
        return await run_in_threadpool(require().summary, first, last, by)

    @app.get("/v1/earnings/today", response_model=TodayFigure, tags=["ledger"], responses=errors)
    async def today() -> TodayFigure:
        """Today so far: the tray icon's figure."""
        return await run_in_threadpool(require().today)

    @app.get("/v1/export", response_model=LedgerExport, tags=["ledger"], responses=errors)
    async def export(since: date | None = None, until: date | None = None) -> LedgerExport:
        """One row per lease, for a spreadsheet or an accountant (the CLI writes it as CSV or JSON)."""
        first, last = period(since, until)
        return await run_in_threadpool(require().export, first, last)

    @app.get("/v1/payouts", response_model=PayoutList, tags=["ledger"], responses=errors)
    async def payouts() -> PayoutList:
        """Every payout the vault made to this machine's payout addresses, with its transaction hash."""
        return await run_in_threadpool(require().payouts)

    @app.get("/v1/ledger", response_model=LedgerSettingsView, tags=["ledger"], responses=errors)
    async def ledger_settings() -> LedgerSettingsView:
        return await run_in_threadpool(require().settings_view)

    @app.put("/v1/ledger/tariff", response_model=LedgerSettingsView, tags=["ledger"], responses=errors)
    async def set_tariff(change: TariffChange) -> LedgerSettingsView:
        """Adopt a tariff from now on (earlier energy keeps the tariff it was costed with)."""
        service = require()
        try:
            await run_in_threadpool(service.set_tariff_text, change.document)
        except TariffError as exc:
            raise StarletteHTTPException(422, f"The tariff was not changed: {exc}.") from None
        return await run_in_threadpool(service.settings_view)

    @app.put("/v1/ledger/rate", response_model=LedgerSettingsView, tags=["ledger"], responses=errors)
    async def set_rate(change: TokenRateChange) -> LedgerSettingsView:
        """What one token is worth to you, in your currency (nothing is looked up on the internet)."""
        service = require()
        rate = TokenRate(change.currency, change.per_token, change.decimals)
        await run_in_threadpool(service.set_token_rate, rate)
        return await run_in_threadpool(service.settings_view)

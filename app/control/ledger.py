"""The ledger's answers on the control API: earnings summaries, the tray's figure, and the export's rows.

Token amounts are integers in the payout token's base units; money in the user's currency is exact
decimal text (``"0.4213"``); energy is in watt-hours. ``net`` is gross earnings at the token rate the
user entered last, less the electricity of the work (above the idle baseline where one is set); it is
``null`` where no rate or no tariff is known, and the document says which is missing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SummaryBucket = Literal["hour", "day", "week", "month", "job", "gpu"]
VoucherStatus = Literal["confirmed", "pending", "unpaid"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Money(_Model):
    """Gross, power cost and net of one bucket."""

    gross_base_units: int = Field(description="Earned (credited by the marketplace), pending vouchers included.")
    pending_base_units: int = Field(description="Of the gross, what no verified voucher covers yet.")
    energy_wh: Decimal = Field(description="Energy the GPUs used while jobs ran.")
    idle_energy_wh: Decimal = Field(description="Energy used while no job ran (not charged to the work).")
    power_cost: Decimal = Field(description="What the work's electricity cost, in `currency`.")
    currency: str | None = Field(description="The currency of costs and net; null until a tariff is set.")
    net: Decimal | None = Field(description="Gross at the token rate, less the power cost, in `currency`.")
    net_base_units: int | None = Field(description="The same net in token base units.")


class SummaryRow(Money):
    bucket: str = Field(
        description="2026-11-25 (day), 2026-W48 (week), 2026-11 (month), an hour, a lease id, or a GPU's UUID."
    )
    start: datetime | None = Field(None, description="When the bucket starts (local time), for charts.")


class EarningsSummary(_Model):
    by: SummaryBucket
    since: date
    until: date
    time_zone: str
    token_rate: Decimal | None = Field(description="The user's rate: one whole token in `currency`.")
    missing: list[str] = Field(description="What keeps net from being shown ('no tariff set', 'no token rate').")
    rows: list[SummaryRow]
    total: Money


class TodayFigure(Money):
    """Today so far, in the ledger's time zone: the tray icon's figure."""

    day: date


class ExportRow(_Model):
    """One lease, for accountants: times in UTC and local, energy, cost, gross, net and the voucher."""

    lease_id: str
    job_id: str
    marketplace: str
    gpus: str
    started_utc: datetime
    started_local: datetime
    ended_utc: datetime | None
    ended_local: datetime | None
    run_time_s: float | None
    paused_s: float | None
    outcome: str | None
    energy_wh: Decimal
    power_cost: Decimal
    currency: str | None
    gross_base_units: int
    net: Decimal | None
    net_base_units: int | None
    voucher_status: VoucherStatus
    voucher_ref: str | None


class LedgerExport(_Model):
    since: date
    until: date
    time_zone: str
    rows: list[ExportRow]


class TariffChange(_Model):
    """A tariff file's text (see examples/tariff.toml), adopted from now on."""

    document: str = Field(max_length=100_000)


class TokenRateChange(_Model):
    per_token: Decimal = Field(gt=0, description="What one whole token is worth in `currency`.")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    decimals: int = Field(18, ge=0, le=36)


class LedgerSettingsView(_Model):
    tariff: str | None = Field(description="The tariff in force, as its file's text; null when none is set.")
    tariff_since: datetime | None
    token_rate: TokenRateChange | None
    problem: str | None = Field(None, description="Why the ledger is not recording, if it is not.")


class PayoutView(_Model):
    """A payout the payout vault made (a mined claim), as the ledger recorded it."""

    claimed: datetime = Field(description="When the claim was mined (its block's time), UTC.")
    payout_address: str
    amount_base_units: int = Field(description="What the vault paid, in the payout token's base units.")
    chain_id: int
    tx_hash: str = Field(description="The claim transaction (sent by this agent, or relayed by the operator).")


class PayoutList(_Model):
    payouts: list[PayoutView]

"""Figures of the ledger as the GUI shows and charts them.

The agent gives gross earnings in token base units and costs and net in the user's currency; a chart needs
one unit for all three, so gross is turned into money at the user's token rate where one is set (exactly
as the agent computes net: net + power cost). Text formatting is the CLI's own, so both read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sparecycles.control.ledger import EarningsSummary, Money
from sparecycles.ledger_cli import money_text, token_text

__all__ = ["BucketFigures", "bucket_figures", "gross_in_money", "money_text", "token_text"]


def gross_in_money(money: Money, token_rate: Decimal | None, decimals: int | None) -> Decimal | None:
    """Gross in the user's currency, or None without a token rate (or without the token's decimals)."""
    if money.net is not None:
        return money.net + money.power_cost
    if token_rate is None or decimals is None:
        return None
    return Decimal(money.gross_base_units).scaleb(-decimals) * token_rate


@dataclass(frozen=True)
class BucketFigures:
    """One bar group of the chart: where it starts (POSIX seconds) and its three figures in ``unit``."""

    label: str
    start_s: float
    gross: float
    power_cost: float
    net: float | None
    gross_text: str
    power_cost_text: str
    net_text: str


def bucket_figures(summary: EarningsSummary, decimals: int | None) -> list[BucketFigures]:
    """The summary's rows that have a start (day, week, month buckets), as chart points.

    Gross is in money when a token rate is set, else in whole tokens (or base units when the token's
    decimals are unknown); power cost and net are in the summary's currency.
    """
    figures = []
    currency = summary.total.currency or ""
    for row in summary.rows:
        if row.start is None:
            continue
        gross = gross_in_money(row, summary.token_rate, decimals)
        if gross is None:
            gross_value = float(Decimal(row.gross_base_units).scaleb(-(decimals or 0)))
            gross_text = token_text(row.gross_base_units, decimals)
        else:
            gross_value, gross_text = float(gross), f"{money_text(gross)} {currency}".strip()
        figures.append(
            BucketFigures(
                label=row.bucket,
                start_s=row.start.timestamp(),
                gross=gross_value,
                power_cost=float(row.power_cost),
                net=None if row.net is None else float(row.net),
                gross_text=gross_text,
                power_cost_text=f"{money_text(row.power_cost)} {currency}".strip(),
                net_text=f"{money_text(row.net)} {currency}".strip() if row.net is not None else "-",
            )
        )
    return figures

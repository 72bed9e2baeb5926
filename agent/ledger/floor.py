"""The lowest price the agent bids: what the electricity for the work costs, plus the user's margin.

A GPU-hour costs the GPU's load power (benchmarked; declared for a simulated GPU) for an hour, at the
tariff's prices over the hours the job is expected to run (a job starting before the evening peak and
running into it pays part of each). That cost in the user's currency becomes token base units at the
rate the user entered, and is rounded up: the agent never bids below its costs. Nothing here reads a
clock, NVML or a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from sparecycles.agent.ledger.tariffs import Tariff, TariffError

_SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class TokenRate:
    """What one whole token is worth in ``currency`` (the user's own figure: no price is looked up)."""

    currency: str
    per_token: Decimal
    decimals: int = 18

    def to_base_units(self, amount: Decimal, currency: str) -> int:
        """``amount`` of ``currency`` in token base units, rounded up."""
        if currency != self.currency:
            raise TariffError(
                f"the tariff is in {currency} but the token's rate is in {self.currency}: enter the rate in {currency}"
            )
        if self.per_token <= 0:
            raise TariffError("a token's rate must be more than 0")
        units = amount / self.per_token * (Decimal(10) ** self.decimals)
        return int(units.to_integral_value(rounding=ROUND_CEILING))


def power_cost(watts: Decimal, tariff: Tariff, start: datetime, hours: Decimal) -> Decimal:
    """What running at ``watts`` from ``start`` for ``hours`` costs under ``tariff``, in its currency."""
    if watts < 0 or hours <= 0:
        raise TariffError("the power must be 0 W or more and the expected run time more than 0 hours")
    end = start + timedelta(seconds=float(hours * _SECONDS_PER_HOUR))
    return tariff.cost(start, end, watts * hours)


def floor_per_unit_hour(
    *, watts: Decimal, tariff: Tariff, rate: TokenRate, start: datetime, hours: Decimal, margin: Decimal
) -> int:
    """The bid floor per unit-hour (GPU-hour or core-hour, by what ``watts`` is the draw of), in base units:
    the power cost over the expected hours, per hour, times (1 + ``margin``), rounded up."""
    if margin < 0:
        raise TariffError("the margin is a fraction of 0 or more (0.2 for 20 %)")
    per_hour = power_cost(watts, tariff, start, hours) / hours
    return rate.to_base_units(per_hour * (1 + margin), tariff.currency)

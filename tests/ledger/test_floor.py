"""The bid floor: the electricity cost of an hour of work plus the margin, in token base units, known answers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.ledger.floor import TokenRate, floor_per_unit_hour, power_cost
from sparecycles.agent.ledger.tariffs import WEEKDAYS, PriceWindow, Tariff, TariffError

BERLIN = ZoneInfo("Europe/Berlin")
EUR_RATE = TokenRate("EUR", Decimal(2))  # the user says one token is worth 2 EUR


def test_a_one_hour_floor_is_the_power_cost_plus_the_margin() -> None:
    flat = Tariff("EUR", Decimal("0.30"), BERLIN)
    # 300 W for one hour = 0.3 kWh × 0.30 EUR = 0.09 EUR; +20 % = 0.108 EUR; at 2 EUR a token, 0.054 tokens.
    floor = floor_per_unit_hour(
        watts=Decimal(300),
        tariff=flat,
        rate=EUR_RATE,
        start=datetime(2026, 11, 25, 12, tzinfo=BERLIN),
        hours=Decimal(1),
        margin=Decimal("0.2"),
    )
    assert floor == 54 * 10**15


def test_a_job_expected_to_run_into_the_evening_peak_pays_part_of_it() -> None:
    peak = PriceWindow(
        WEEKDAYS, datetime.min.time().replace(hour=17), datetime.min.time().replace(hour=21), Decimal("0.50")
    )
    tariff = Tariff("EUR", Decimal("0.20"), BERLIN, (peak,))
    start = datetime(2026, 11, 25, 16, 30, tzinfo=BERLIN)  # a Wednesday
    # Half an hour at 0.20 and half at 0.50, 0.15 kWh each: 0.03 + 0.075 EUR.
    assert power_cost(Decimal(300), tariff, start, Decimal(1)) == Decimal("0.105")
    floor = floor_per_unit_hour(
        watts=Decimal(300), tariff=tariff, rate=EUR_RATE, start=start, hours=Decimal(1), margin=Decimal(0)
    )
    assert floor == 525 * 10**14  # 0.105 / 2 tokens


def test_the_floor_rounds_up_and_refuses_mismatched_currencies_and_bad_figures() -> None:
    flat = Tariff("EUR", Decimal("0.30"), BERLIN)
    start = datetime(2026, 11, 25, 12, tzinfo=BERLIN)
    odd = TokenRate("EUR", Decimal(3), decimals=2)  # 0.09 / 3 = 0.03 tokens = 3 base units exactly…
    assert (
        floor_per_unit_hour(watts=Decimal(300), tariff=flat, rate=odd, start=start, hours=Decimal(1), margin=Decimal(0))
        == 3
    )
    # …and 0.091 / 3 = 0.0303… tokens is rounded up to 4 base units: never below the cost.
    assert (
        floor_per_unit_hour(
            watts=Decimal("303.3334"), tariff=flat, rate=odd, start=start, hours=Decimal(1), margin=Decimal(0)
        )
        == 4
    )
    with pytest.raises(TariffError, match="enter the rate in EUR"):
        floor_per_unit_hour(
            watts=Decimal(300),
            tariff=flat,
            rate=TokenRate("USD", Decimal(1)),
            start=start,
            hours=Decimal(1),
            margin=Decimal(0),
        )
    with pytest.raises(TariffError, match="margin"):
        floor_per_unit_hour(
            watts=Decimal(300), tariff=flat, rate=EUR_RATE, start=start, hours=Decimal(1), margin=Decimal(-1)
        )

"""Known answers for the power-cost model: flat and time-of-use tariffs, a job across a price boundary and
across both daylight-saving changes, tariff history, and the example tariff file."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.ledger.tariff_file import load_tariff
from sparecycles.agent.ledger.tariffs import WEEKDAYS, PriceWindow, Tariff, TariffError, TariffHistory

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tariff.toml"
NIGHT = PriceWindow(frozenset(range(7)), time(0), time(6), Decimal("0.10"))
PEAK = PriceWindow(WEEKDAYS, time(17), time(21), Decimal("0.50"))


def local(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BERLIN)  # type: ignore[misc]


def test_a_flat_tariff_charges_the_energy_times_the_price() -> None:
    flat = Tariff("EUR", Decimal("0.30"), BERLIN)
    assert flat.cost(local(2026, 11, 25, 10), local(2026, 11, 25, 12), Decimal(2000)) == Decimal("0.60")


def test_an_hour_across_midnight_costs_exactly_what_any_other_hour_does() -> None:
    """Midnight is no price edge under a flat tariff: 23:00:01-00:00:01 is not cut into shares of 3,599 s
    and 1 s of 3,600, whose rounding made 0.09 EUR into 0.09000000000000000000000000001."""
    flat = Tariff("EUR", Decimal("0.30"), BERLIN)
    for start in (local(2026, 11, 26, 23, 0, 1), local(2026, 11, 26, 23, 0, 8), local(2026, 11, 26, 23, 20, 34)):
        assert flat.cost(start, start + timedelta(hours=1), Decimal(300)) == Decimal("0.09")


def test_the_energy_split_at_price_edges_adds_up_to_the_whole_exactly() -> None:
    tariff = Tariff("EUR", Decimal("0.20"), BERLIN, (PEAK,))
    # Wednesday 16:47:13 to Thursday 18:31:59: default, peak, default through midnight (no edge), peak again.
    stretches = list(tariff.split(local(2026, 11, 25, 16, 47, 13), local(2026, 11, 26, 18, 31, 59), Decimal(1000)))
    assert [price for price, _ in stretches] == [Decimal("0.20"), Decimal("0.50"), Decimal("0.20"), Decimal("0.50")]
    assert sum(wh for _, wh in stretches) == Decimal(1000)


def test_a_job_crossing_a_peak_boundary_is_charged_each_side_at_its_price() -> None:
    tariff = Tariff("EUR", Decimal("0.20"), BERLIN, (PEAK,))
    # Wednesday 16:00-18:00 at 1 kW: one kWh before the peak at 0.20, one inside it at 0.50.
    cost = tariff.cost(local(2026, 11, 25, 16), local(2026, 11, 25, 18), Decimal(2000))
    assert cost == Decimal("0.70")
    # The same hours on a Saturday have no peak.
    assert tariff.cost(local(2026, 11, 28, 16), local(2026, 11, 28, 18), Decimal(2000)) == Decimal("0.40")


def test_the_night_the_clocks_go_forward_has_one_hour_less_at_the_night_price() -> None:
    tariff = Tariff("EUR", Decimal("0.30"), BERLIN, (NIGHT,))
    # 28 March 23:00 CET to 29 March 07:00 CEST is 7 real hours at 1 kW. The night window 00:00-06:00
    # lasts 5 real hours that night (02:00 does not happen): 5 kWh at 0.10, and 2 kWh at 0.30.
    start, end = local(2026, 3, 28, 23), local(2026, 3, 29, 7)
    assert (end - start).total_seconds() == 8 * 3600  # wall-clock arithmetic would say 8 hours…
    real_hours = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600
    assert real_hours == 7  # …but 7 passed
    assert tariff.cost(start, end, Decimal(7000)) == Decimal("1.10")


def test_the_night_the_clocks_go_back_has_one_hour_more_at_the_night_price() -> None:
    tariff = Tariff("EUR", Decimal("0.30"), BERLIN, (NIGHT,))
    # 24 October 23:00 CEST to 25 October 07:00 CET is 9 real hours at 1 kW; the night lasts 7 of them.
    start, end = local(2026, 10, 24, 23), local(2026, 10, 25, 7)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 9 * 3600
    assert tariff.cost(start, end, Decimal(9000)) == Decimal("0.70") + Decimal("0.60")


def test_changing_the_tariff_does_not_rewrite_what_was_charged_before() -> None:
    history = TariffHistory()
    history.set(local(2026, 1, 1), Tariff("EUR", Decimal("0.30"), BERLIN))
    september = (local(2026, 9, 1, 10), local(2026, 9, 1, 11))
    before = history.cost(*september, Decimal(1000))
    history.set(local(2026, 11, 1), Tariff("EUR", Decimal("0.40"), BERLIN))
    assert history.cost(*september, Decimal(1000)) == before == {"EUR": Decimal("0.30")}
    # An interval across the change is charged partly at each.
    across = history.cost(local(2026, 10, 31, 23), local(2026, 11, 1, 1), Decimal(2000))
    assert across == {"EUR": Decimal("0.70")}
    with pytest.raises(TariffError, match="history is not rewritten"):
        history.set(local(2026, 6, 1), Tariff("EUR", Decimal("0.10"), BERLIN))
    # Before the first tariff there is nothing to charge by.
    assert history.cost(local(2025, 6, 1, 10), local(2025, 6, 1, 11), Decimal(1000)) == {}


def test_the_example_tariff_file_loads_and_prices_its_windows() -> None:
    tariff = load_tariff(EXAMPLE)
    assert (tariff.currency, tariff.zone.key, tariff.price_per_kwh) == ("EUR", "Europe/Berlin", Decimal("0.32"))
    assert tariff.price_at(local(2026, 11, 25, 18)) == Decimal("0.45")  # a Wednesday evening
    assert tariff.price_at(local(2026, 11, 28, 18)) == Decimal("0.32")  # a Saturday evening
    assert tariff.price_at(local(2026, 11, 28, 3)) == Decimal("0.22")  # any night


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('currency = "EUR"\ntime_zone = "Europe/Berlin"\n', "`price_per_kwh` is missing"),
        ('currency = "euro"\ntime_zone = "UTC"\nprice_per_kwh = 1\n', "three capital letters"),
        ('currency = "EUR"\ntime_zone = "Mars/Olympus"\nprice_per_kwh = 1\n', "not a time zone"),
        ('currency = "EUR"\ntime_zone = "UTC"\nprice_per_kwh = -1\n', "0 or more"),
        ('currency = "EUR"\ntime_zone = "UTC"\nprice_per_kwh = 1\nprice = 2\n', "unknown setting `price`"),
        (
            'currency = "EUR"\ntime_zone = "UTC"\nprice_per_kwh = 1\n'
            '[[window]]\ndays = "daily"\nfrom = "22:00"\nto = "06:00"\nprice_per_kwh = 1\n',
            "window 1: a time-of-use window must end after it starts",
        ),
        (
            'currency = "EUR"\ntime_zone = "UTC"\nprice_per_kwh = 1\n'
            '[[window]]\ndays = ["funday"]\nfrom = "1:00"\nto = "2:00"\nprice_per_kwh = 1\n',
            "'funday' is not a day",
        ),
        ("currency = \n", "not valid TOML"),
    ],
)
def test_a_bad_tariff_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tariff.toml"
    path.write_text(text)
    with pytest.raises(TariffError, match=message) as refused:
        load_tariff(path)
    assert str(path) in str(refused.value)
    assert path.read_text() == text  # read, never rewritten


def test_the_readme_shows_the_example_tariff() -> None:
    import tomllib

    from sparecycles.agent.ledger.tariff_file import parse_tariff

    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    shown = readme.split("## Electricity tariff", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert parse_tariff(tomllib.loads(shown)) == load_tariff(EXAMPLE)

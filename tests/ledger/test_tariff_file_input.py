"""Tariff files that would break the ledger for good are refused when they are read: a tariff, once set, is
parsed again for every cost and cannot be taken back, so a time with a UTC offset (which cannot be compared
with local wall-clock times) or a price that is not finite or absurdly large must never be stored."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.ledger.store import LedgerStore
from sparecycles.agent.ledger.tariff_file import MAX_PRICE_PER_KWH, load_tariff, parse_tariff_text
from sparecycles.agent.ledger.tariffs import TariffError
from sparecycles.ledger_cli import read_tariff_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tariff.toml"
HEAD = 'currency = "EUR"\ntime_zone = "Europe/Berlin"\n'
FLAT = HEAD + 'price_per_kwh = "0.30"\n'


def window(start: str = '"17:00"', end: str = '"21:00"', price: str = '"0.45"') -> str:
    return FLAT + f'[[window]]\ndays = "weekdays"\nfrom = {start}\nto = {end}\nprice_per_kwh = {price}\n'


def test_the_example_tariff_parses_as_tariff_set_sends_it() -> None:
    # `sparecycles tariff set` reads the file's text, and the agent parses that text (and again for every cost).
    document, _ = read_tariff_file(EXAMPLE)
    tariff = parse_tariff_text(document)
    assert tariff == load_tariff(EXAMPLE)
    assert (tariff.currency, tariff.price_per_kwh, len(tariff.windows)) == ("EUR", Decimal("0.32"), 2)


@pytest.mark.parametrize("clock", ['"17:00+01:00"', '"17:00Z"', '"17:00:00-05:30"', '"17:00+00:00"'])
@pytest.mark.parametrize("key", ["from", "to"])
def test_a_time_with_a_utc_offset_is_refused(key: str, clock: str) -> None:
    text = window(start=clock) if key == "from" else window(end=clock.replace("17", "22"))
    with pytest.raises(TariffError) as refused:
        parse_tariff_text(text)
    message = str(refused.value)
    assert message.startswith(f"window 1: {key}: ")
    assert "UTC offset" in message
    assert '"17:00"' in message
    assert "`time_zone`" in message


@pytest.mark.parametrize(
    "price",
    ['"1e999999"', '"1e400"', '"100000.01"', str(10**400), f'"{10**400}"', "100001"],
)
def test_a_price_above_the_bound_is_refused(price: str) -> None:
    for text, key in ((HEAD + f"price_per_kwh = {price}\n", "price_per_kwh"), (window(price=price), "window 1")):
        with pytest.raises(TariffError, match=rf"^{key}.*at most 100,000") as refused:
            parse_tariff_text(text)
        assert "0.32" in str(refused.value)


def test_a_price_at_the_bound_is_kept() -> None:
    assert parse_tariff_text(HEAD + f'price_per_kwh = "{MAX_PRICE_PER_KWH}"\n').price_per_kwh == Decimal(100_000)


@pytest.mark.parametrize(
    "price",
    [
        "inf",
        "-inf",
        "+inf",
        "nan",
        "-nan",
        "1e400",
        '"inf"',
        '"-inf"',
        '"Infinity"',
        '"-Infinity"',
        '"NaN"',
        '"nan"',
        '"sNaN"',
    ],
)
def test_a_price_that_is_not_finite_is_refused(price: str) -> None:
    for text, key in ((HEAD + f"price_per_kwh = {price}\n", "price_per_kwh"), (window(price=price), "window 1")):
        with pytest.raises(TariffError, match=rf"^{key}.*(not a finite number|0 or more)"):
            parse_tariff_text(text)


@pytest.mark.parametrize("price", ["-1", '"-0.01"', "-1e400", '"-1e999999"'])
def test_a_negative_price_is_refused(price: str) -> None:
    with pytest.raises(TariffError, match=r"^price_per_kwh.*(0 or more|finite)"):
        parse_tariff_text(HEAD + f"price_per_kwh = {price}\n")


def test_an_integer_too_long_for_python_is_a_tariff_error(tmp_path: Path) -> None:
    text = HEAD + f"price_per_kwh = {'1' * 5000}\n"  # tomllib lets int()'s digit limit through as a ValueError
    with pytest.raises(TariffError, match="too many digits"):
        parse_tariff_text(text)
    path = tmp_path / "tariff.toml"
    path.write_text(text)
    with pytest.raises(TariffError, match="too many digits") as refused:
        load_tariff(path)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_utf8_is_a_tariff_error(tmp_path: Path) -> None:
    path = tmp_path / "tariff.toml"
    path.write_bytes(FLAT.encode() + b"# \xff\n")
    with pytest.raises(TariffError, match="not UTF-8"):
        load_tariff(path)


def test_a_refused_tariff_never_reaches_the_ledger(tmp_path: Path) -> None:
    store = LedgerStore.open(tmp_path / "ledger.sqlite3", ZoneInfo("Europe/Berlin"))
    try:
        store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
        for bad in (window(start='"17:00+01:00"'), HEAD + 'price_per_kwh = "1e999999"\n'):
            with pytest.raises(TariffError):
                store.set_tariff(bad, datetime(2026, 2, 1, tzinfo=UTC))
        assert store.current_tariff_document() == (datetime(2026, 1, 1, tzinfo=UTC), FLAT)
        cost = store.tariff_history().cost(
            datetime(2026, 3, 2, 17, tzinfo=UTC), datetime(2026, 3, 2, 18, tzinfo=UTC), Decimal(1000)
        )
        assert cost == {"EUR": Decimal("0.30")}
    finally:
        store.close()

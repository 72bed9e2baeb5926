"""Tariff files that would break the ledger for good are refused when they are read: a tariff, once set, is
parsed again for every cost and cannot be taken back, so a time with a UTC offset (which cannot be compared
with local wall-clock times) or a price that is not finite or absurdly large must never be stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def test_a_tariff_stored_before_these_checks_leaves_its_costs_unknown_and_says_how_to_repair(tmp_path: Path) -> None:
    """A ledger whose tariff was stored by an earlier version that still took an offset time: reading it raised
    for every cost, and the agent could not start. Now the agent starts, that stretch's energy is recorded with
    no cost (as before a first tariff), the ledger's problem says what to do, and a tariff set again ends it.
    Nothing stored is rewritten."""
    import sqlite3

    from sparecycles.agent.ledger.recorder import EnergyRecorder
    from sparecycles.agent.ledger.service import LedgerService
    from sparecycles.agent.sensors.gpu.model import GpuSample
    from sparecycles.config import LedgerSettings

    path = tmp_path / "ledger.sqlite3"
    LedgerStore.open(path, ZoneInfo("UTC")).close()
    stored = window(start='"17:00+01:00"')
    since = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO tariffs (effective_ms, document) VALUES (?, ?)", (int(since.timestamp() * 1000), stored)
        )
    raw.close()

    store = LedgerStore.open(path, ZoneInfo("UTC"))
    try:
        now = [datetime(2026, 11, 25, 10, tzinfo=UTC)]
        service = LedgerService(store, settings=LedgerSettings, boot="boot", clock=lambda: now[0])
        assert service.tariff_now() is None
        assert service.problem is not None
        assert "since 2026-11-20 12:00 UTC" in service.problem
        assert "UTC offset" in service.problem
        assert "`sparecycles tariff set FILE`" in service.problem

        recorder = EnergyRecorder(boot_id="boot")
        gpu = "GPU-0c7d3e2a-0000-4000-8000-000000000001"
        for second in (0, 10):
            sample = GpuSample(index=0, uuid=gpu, monotonic_s=0.0, power_draw_w=100.0, energy_total_mj=100_000 * second)
            intervals = recorder.observe(now[0] + timedelta(seconds=second), [sample], {gpu: None})
            if intervals:
                store.record_energy(intervals, service.tariffs)
                recorder.committed(intervals, [sample], {gpu: None})
        with store.engine.connect() as connection:
            [(energy, cost, currency)] = connection.exec_driver_sql(
                "SELECT energy_mj, cost_nano, currency FROM energy"
            ).all()
        assert (energy, cost, currency) == (1_000_000, 0, "")  # recorded, its cost unknown

        now[0] += timedelta(minutes=1)
        service.set_tariff_text(FLAT)
        assert service.problem is None
        assert service.tariff_now() == parse_tariff_text(FLAT)
        assert store.current_tariff_document() == (now[0], FLAT)
        with store.engine.connect() as connection:
            documents = [row[0] for row in connection.exec_driver_sql("SELECT document FROM tariffs ORDER BY 1")]
        assert stored in documents  # history kept as it was stored
    finally:
        store.close()

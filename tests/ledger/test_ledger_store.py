"""The ledger on a real SQLite file: energy attributed and costed through the recorder, roll-ups, earnings and
vouchers, summaries and the export, a damaged file set aside, and schemas newer or older than this version."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sparecycles.agent.ledger import db
from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.queries import LedgerQueries
from sparecycles.agent.ledger.recorder import EnergyRecorder
from sparecycles.agent.ledger.store import MIGRATIONS, JobEnd, JobStart, LedgerStore
from sparecycles.agent.ledger.tariffs import TariffHistory
from sparecycles.agent.sensors.gpu.model import GpuSample
from sparecycles.migrations import SchemaError

BERLIN = ZoneInfo("Europe/Berlin")
GPU = "GPU-0c7d3e2a-0000-4000-8000-000000000001"
FLAT = 'currency = "EUR"\ntime_zone = "Europe/Berlin"\nprice_per_kwh = "0.30"\n'
PEAK = FLAT + '[[window]]\ndays = "weekdays"\nfrom = "17:00"\nto = "21:00"\nprice_per_kwh = "0.45"\n'
WH_MJ = 3_600_000
EUR = TokenRate("EUR", Decimal("2"), decimals=18)  # 1 token = 2 EUR


def sample(counter_mj: int | None, watts: float | None = 360.0) -> GpuSample:
    return GpuSample(index=0, uuid=GPU, monotonic_s=0.0, power_draw_w=watts, energy_total_mj=counter_mj)


def run_seconds(
    store: LedgerStore,
    recorder: EnergyRecorder,
    start: datetime,
    readings: list[tuple[int | None, str | None]],
    tariffs: TariffHistory,
) -> None:
    """Feed one reading a second, (counter, job on the GPU), committing what closes, as the agent does."""
    for second, (counter, job) in enumerate(readings):
        samples = [sample(counter)]
        jobs = {GPU: job}
        intervals = recorder.observe(start + timedelta(seconds=second), samples, jobs)
        if intervals:
            store.record_energy(intervals, tariffs)
            recorder.committed(intervals, samples, jobs)


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    opened = LedgerStore.open(tmp_path / "ledger.sqlite3", BERLIN)
    yield opened
    opened.close()


def job_energy(store: LedgerStore) -> dict[str, tuple[int, int]]:
    """job key → (energy mJ, cost nano) from the daily roll-up."""
    found: dict[str, tuple[int, int]] = {}
    with store.engine.connect() as connection:
        for key, energy, cost in connection.execute(
            select(db.energy_daily.c.job_key, db.energy_daily.c.energy_mj, db.energy_daily.c.cost_nano)
        ):
            before = found.get(key, (0, 0))
            found[key] = (before[0] + energy, before[1] + cost)
    return found


def test_a_counter_that_resets_mid_job_is_counted_once_and_costed_exactly(store: LedgerStore) -> None:
    # 360 W = 360,000 mJ a second (1 Wh per 10 s). The job runs from second 5 to 35; the driver reloads at
    # second 20 (the counter starts again from 0), so what it used from 15 to 20 is not known and not guessed.
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    readings: list[tuple[int | None, str | None]] = []
    for second in range(41):
        counter = 10_000_000 + 360_000 * second if second < 20 else 360_000 * (second - 20)
        readings.append((counter, "lease-1" if 5 <= second < 35 else None))
    run_seconds(store, EnergyRecorder(boot_id="boot-a"), start, readings, store.tariff_history())

    energy = job_energy(store)
    # 5..15: 10 s; 15..25: only the 5 s after the reset; 25..35: 10 s — 25 s at 360 W = 2.5 Wh.
    assert energy["lease-1"][0] == 25 * 360_000
    assert energy["lease-1"][1] == 750_000  # 2.5 Wh at 0.30 EUR/kWh = 0.00075 EUR, in nano-euros
    assert energy[""][0] == 5 * 360_000  # idle 0..5; 35..40 is still open (it commits at 45 s)


def test_a_job_across_the_evening_peak_is_charged_each_second_at_its_price(store: LedgerStore) -> None:
    store.set_tariff(PEAK, datetime(2026, 1, 1, tzinfo=UTC))
    # Wednesday 16:59:50 to 17:00:10 Berlin (15:59:50 UTC): 10 s at 0.30, 10 s at 0.45, 1 Wh each.
    start = datetime(2026, 11, 25, 15, 59, 50, tzinfo=UTC)
    readings = [(360_000 * second, "lease-peak") for second in range(21)]
    run_seconds(store, EnergyRecorder(boot_id="b"), start, readings, store.tariff_history())
    assert job_energy(store)["lease-peak"] == (2 * WH_MJ, 300_000 + 450_000)


def test_a_restarted_recorder_continues_from_the_committed_state_without_double_counting(store: LedgerStore) -> None:
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    tariffs = store.tariff_history()
    first = EnergyRecorder(boot_id="boot")
    # 0..14 s under the first agent: one interval (0..10) committed, 10..14 still open when it is killed.
    run_seconds(store, first, start, [(360_000 * s, "lease-r") for s in range(15)], tariffs)
    second = EnergyRecorder(boot_id="boot")
    second.restore(store.counters())
    # The new agent starts at second 30: the gap from 10 to 30 is the job's (it kept running), once.
    later = start + timedelta(seconds=30)
    run_seconds(store, second, later, [(360_000 * (30 + s), "lease-r") for s in range(11)], tariffs)
    assert job_energy(store)["lease-r"][0] == 40 * 360_000  # 0..40, every second once


def test_without_an_energy_counter_power_samples_are_integrated(store: LedgerStore) -> None:
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    recorder = EnergyRecorder(boot_id="b")
    for second in range(11):
        samples = [GpuSample(index=0, uuid=GPU, monotonic_s=0.0, power_draw_w=100.0 + second, energy_total_mj=None)]
        intervals = recorder.observe(start + timedelta(seconds=second), samples, {GPU: "lease-s"})
        if intervals:
            store.record_energy(intervals, store.tariff_history())
            recorder.committed(intervals, samples, {GPU: "lease-s"})
    assert job_energy(store)["lease-s"][0] == 1_050_000  # trapezoid of 100..110 W over 10 s: 1050 J


def test_the_idle_baseline_leaves_only_the_extra_power_as_the_works_cost(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    recorder = EnergyRecorder(boot_id="b")
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    for second in range(11):
        samples = [sample(360_000 * second)]
        intervals = recorder.observe(start + timedelta(seconds=second), samples, {GPU: "lease-b"})
        if intervals:
            store.record_energy(intervals, store.tariff_history(), baseline_w=90.0)
            recorder.committed(intervals, samples, {GPU: "lease-b"})
    with store.engine.connect() as connection:
        row = connection.execute(select(db.energy_daily)).one()
    assert (row.energy_mj, row.baseline_mj) == (3_600_000, 900_000)
    assert row.cost_nano - row.baseline_cost_nano == 225_000  # 0.75 Wh at 0.30 EUR/kWh


def record_lease(store: LedgerStore, lease: str, when: datetime, *, mj: int, amount: int, cumulative: int) -> None:
    store.job_started(JobStart(lease, "http://market", f"job-{lease}", (GPU,), 1, 1000, when))
    recorder = EnergyRecorder(boot_id="b")
    readings = [(mj * second // 10, lease) for second in range(11)]
    run_seconds(store, recorder, when, readings, store.tariff_history())
    store.job_ended(JobEnd(lease, when + timedelta(seconds=10), 10.0, 0.0, "finished"))
    store.credited(lease, amount, cumulative, "0x" + "ab" * 20, when + timedelta(seconds=11))


def test_earnings_stay_pending_until_a_voucher_covers_them(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    when = datetime(2026, 11, 25, 10, tzinfo=UTC)
    record_lease(store, "lease-a", when, mj=3_600_000, amount=10**18, cumulative=10**18)
    record_lease(store, "lease-b", when + timedelta(minutes=5), mj=7_200_000, amount=3 * 10**18, cumulative=5 * 10**18)
    assert store.credited("lease-a", 10**18, 10**18, "0x" + "ab" * 20, when) is False  # a repeat changes nothing
    queries = LedgerQueries(store.engine, BERLIN, EUR, "EUR")
    day = date(2026, 11, 25)
    assert queries.today(when).pending_base_units == 4 * 10**18

    # A voucher of 4 tokens covers lease-a (paid at cumulative 1) but not lease-b (cumulative 5: another
    # machine with the same payout address earned in between).
    assert store.voucher_covers("0x" + "AB" * 20, 4 * 10**18, "voucher-4", when) == 1
    summary = queries.summary(day, day, "day")
    assert summary.total.gross_base_units == 4 * 10**18
    assert summary.total.pending_base_units == 3 * 10**18
    assert store.voucher_covers("0x" + "ab" * 20, 5 * 10**18, "voucher-5", when) == 1
    assert queries.summary(day, day, "day").total.pending_base_units == 0

    # 3 Wh at 0.30 EUR/kWh = 0.0009 EUR; 4 tokens at 2 EUR = 8 EUR.
    total = queries.summary(day, day, "month").total
    assert total.power_cost == Decimal("0.0009")
    assert total.net == Decimal(8) - Decimal("0.0009")
    assert total.net_base_units == 4 * 10**18 - 450_000_000_000_000  # 0.0009 EUR = 0.00045 token

    export = queries.export(day, day)
    assert [row.voucher_status for row in export.rows] == ["confirmed", "confirmed"]
    assert sum(row.gross_base_units for row in export.rows) == total.gross_base_units
    assert sum((row.power_cost for row in export.rows), Decimal(0)) == total.power_cost
    assert [row.energy_wh for row in export.rows] == [Decimal("1.000"), Decimal("2.000")]


def test_changing_the_tariff_keeps_what_earlier_energy_cost(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    when = datetime(2026, 11, 25, 10, tzinfo=UTC)
    record_lease(store, "lease-old", when, mj=3_600_000, amount=1, cumulative=1)
    store.set_tariff(FLAT.replace("0.30", "0.90"), when + timedelta(hours=1))
    record_lease(store, "lease-new", when + timedelta(hours=2), mj=3_600_000, amount=1, cumulative=2)
    energy = job_energy(store)
    assert energy["lease-old"][1] == 300_000
    assert energy["lease-new"][1] == 900_000
    with pytest.raises(ValueError, match="after the last one"):
        store.set_tariff(FLAT, when)


def test_a_damaged_ledger_is_set_aside_with_a_message_and_never_silently_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger.sqlite3"
    LedgerStore.open(path, BERLIN).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page overwritten
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        reopened = LedgerStore.open(path, BERLIN)
    try:
        assert reopened.set_aside is not None
        assert reopened.set_aside.read_bytes() == bytes(data)  # kept as it was, for recovery
        assert "damaged" in caplog.text
        assert str(reopened.set_aside) in caplog.text
        assert reopened.counters() == {}  # a new, empty ledger works
    finally:
        reopened.close()


def test_a_ledger_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    LedgerStore.open(path, BERLIN).close()
    engine = db.open_engine(path)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'l9999'")
    engine.dispose()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="newer than this version"):
        LedgerStore.open(path, BERLIN)
    assert path.read_bytes() == before


def test_a_ledger_from_an_older_version_migrates_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    engine = db.open_engine(path)
    MIGRATIONS.move_to(engine, "l0001")  # the schema as the first release wrote it
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO tariffs (effective_ms, document) VALUES (1, ?)", (FLAT,))
    engine.dispose()
    store = LedgerStore.open(path, BERLIN)
    try:
        assert MIGRATIONS.current(store.engine) == MIGRATIONS.head()
        assert store.tariff_history().in_force(datetime(2026, 1, 1, tzinfo=UTC)) is not None
    finally:
        store.close()


def test_the_migrations_build_exactly_the_tables_the_code_uses(store: LedgerStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_by_gpu_each_gpu_has_its_energy_and_its_share_of_the_earnings(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    when = datetime(2026, 11, 25, 10, tzinfo=UTC)
    record_lease(store, "lease-1", when, mj=3_600_000, amount=10, cumulative=10)
    other = "GPU-0c7d3e2a-0000-4000-8000-000000000002"
    store.job_started(JobStart("lease-2", "http://market", "job-2", (GPU, other), 2, 1000, when))
    store.job_ended(JobEnd("lease-2", when + timedelta(minutes=1), 60.0, 0.0, "finished"))
    store.credited("lease-2", 7, 17, "0x" + "ab" * 20, when + timedelta(minutes=2))
    queries = LedgerQueries(store.engine, BERLIN, EUR, "EUR")
    day = date(2026, 11, 25)
    by_gpu = {row.bucket: row for row in queries.summary(day, day, "gpu").rows}
    assert by_gpu[GPU].gross_base_units == 10 + 4  # its lease, and half of the two-GPU lease (the odd unit)
    assert by_gpu[other].gross_base_units == 3
    assert by_gpu[GPU].energy_wh == Decimal("1.000")
    by_day = queries.summary(day, day, "day").total
    total = queries.summary(day, day, "gpu").total
    assert (total.gross_base_units, total.power_cost) == (by_day.gross_base_units, by_day.power_cost)


def test_damage_in_the_energy_rows_is_found_off_the_start_and_set_aside_at_the_next(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    store = LedgerStore.open(path, BERLIN)
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    run_seconds(store, EnergyRecorder(boot_id="b"), start, [(36_000 * s, None) for s in range(301)], TariffHistory())
    with store.engine.connect() as connection:
        [root] = connection.exec_driver_sql("SELECT rootpage FROM sqlite_master WHERE name = 'energy'").one()
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
    store.close()
    data = bytearray(path.read_bytes())
    offset = (root - 1) * page_size
    data[offset + 8 : offset + 400] = b"\x07" * 392  # the energy table's root page: its cell pointers garbled
    path.write_bytes(bytes(data))

    reopened = LedgerStore.open(path, BERLIN)  # the quick check at start leaves the raw energy rows out
    assert reopened.set_aside is None
    problem = reopened.deep_check()
    reopened.close()
    assert problem is not None
    assert "set aside when the agent next starts" in problem
    again = LedgerStore.open(path, BERLIN)
    try:
        assert again.set_aside is not None
        assert again.set_aside.read_bytes() == bytes(data)
        assert not (tmp_path / "ledger.sqlite3.damaged").exists()
    finally:
        again.close()

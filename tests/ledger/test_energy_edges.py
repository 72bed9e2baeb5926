"""The ledger at the edges of its intervals: the time the agent was down belongs to the job on the GPU from the
last commit on; an interval is cut at midnight, at UTC hours and at tariff changes without making or losing a
millijoule; the export adds up exactly to the summaries it is documented to equal; and the flush at stop does
not count a tick's interval twice."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from sparecycles.agent.ledger import db
from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.queries import LedgerQueries
from sparecycles.agent.ledger.recorder import EnergyInterval, EnergyRecorder
from sparecycles.agent.ledger.service import LedgerService
from sparecycles.agent.ledger.store import JobEnd, JobStart, LedgerStore, to_ms
from sparecycles.agent.ledger.tariffs import TariffHistory
from sparecycles.agent.sensors.gpu.model import GpuSample
from sparecycles.config import LedgerSettings
from sparecycles.control.ledger import EarningsSummary, ExportRow, LedgerExport, Money, SummaryBucket

BERLIN = ZoneInfo("Europe/Berlin")
GPU = "GPU-0c7d3e2a-0000-4000-8000-000000000001"
FLAT = 'currency = "EUR"\ntime_zone = "Europe/Berlin"\nprice_per_kwh = "0.30"\n'
PEAK = FLAT + '[[window]]\ndays = "weekdays"\nfrom = "17:00"\nto = "21:00"\nprice_per_kwh = "0.45"\n'
WATTS_MJ = 100_000  # 100 W: 100,000 mJ a second
HOUR_S = 3600
RATE = TokenRate("EUR", Decimal("0.85"), decimals=6)


def reading(counter_mj: int) -> GpuSample:
    return GpuSample(index=0, uuid=GPU, monotonic_s=0.0, power_draw_w=100.0, energy_total_mj=counter_mj)


def feed(
    store: LedgerStore,
    recorder: EnergyRecorder,
    start: datetime,
    seconds: Sequence[int],
    job: Callable[[int], str | None],
) -> None:
    """One reading at each of ``seconds`` after ``start`` of a GPU drawing 100 W, committing what closes."""
    for second in seconds:
        samples, jobs = [reading(WATTS_MJ * second)], {GPU: job(second)}
        intervals = recorder.observe(start + timedelta(seconds=second), samples, jobs)
        if intervals:
            store.record_energy(intervals, store.tariff_history())
            recorder.committed(intervals, samples, jobs)


def restarted(store: LedgerStore) -> EnergyRecorder:
    """The recorder of an agent started again after being killed: it continues from what was committed."""
    recorder = EnergyRecorder(boot_id="boot")
    recorder.restore(store.counters())
    return recorder


def energy_by(store: LedgerStore, column: str, table: Any = db.energy_daily) -> dict[Any, int]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(table.c[column], func.sum(table.c.energy_mj)).group_by(table.c[column]))
        return {key: int(energy) for key, energy in rows}


def recorded_mj(store: LedgerStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.sum(db.energy.c.energy_mj))).scalar() or 0)


@pytest.fixture
def store(tmp_path: Path) -> LedgerStore:
    opened = LedgerStore.open(tmp_path / "ledger.sqlite3", BERLIN)
    yield opened
    opened.close()


# -- the time the agent was down ----------------------------------------------------------------------------


def test_the_time_down_after_a_lease_ended_is_idle_not_the_ended_leases(store: LedgerStore) -> None:
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    # lease-1 runs for 30 s; the GPU is idle from then on; the agent is killed at second 34 ...
    feed(store, EnergyRecorder(boot_id="boot"), start, range(35), lambda s: "lease-1" if s < 30 else None)
    assert store.counters()[GPU].job_id is None  # the job on the GPU from the last commit (30 s) on
    # ... and started again 8 hours later, the GPU idle all the while.
    back = 30 + 8 * HOUR_S
    feed(store, restarted(store), start, [back], lambda _: None)
    assert energy_by(store, "job_key") == {"lease-1": 30 * WATTS_MJ, "": 8 * HOUR_S * WATTS_MJ}


def test_the_time_down_after_a_lease_began_is_the_leases(store: LedgerStore) -> None:
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    # Idle for 10 s, then lease-2 starts; the agent is killed at second 14 and back 2 hours later, the lease running.
    feed(store, EnergyRecorder(boot_id="boot"), start, range(15), lambda s: None if s < 10 else "lease-2")
    assert store.counters()[GPU].job_id == "lease-2"
    feed(store, restarted(store), start, [10 + 2 * HOUR_S], lambda _: "lease-2")
    assert energy_by(store, "job_key") == {"": 10 * WATTS_MJ, "lease-2": 2 * HOUR_S * WATTS_MJ}


# -- cutting an interval --------------------------------------------------------------------------------------


def test_an_interval_across_midnight_counts_in_each_day_and_hour_it_used(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 11, 25, 20, tzinfo=BERLIN)
    store.job_started(JobStart("lease-1", "m", "j", (GPU,), 1, 1, start))
    feed(store, EnergyRecorder(boot_id="boot"), start, range(21), lambda _: "lease-1")
    # Killed at 20:00:20, back at 06:00:20 the next morning; the lease ran on at 100 W throughout.
    back = 20 + 10 * HOUR_S
    feed(store, restarted(store), start, [back], lambda _: "lease-1")

    assert energy_by(store, "local_day") == {"2026-11-25": 4 * HOUR_S * WATTS_MJ, "2026-11-26": 21_620 * WATTS_MJ}
    hours = energy_by(store, "hour_ms", db.energy_hourly)
    first_hour = to_ms(start)
    assert hours == {first_hour + n * HOUR_S * 1000: HOUR_S * WATTS_MJ for n in range(10)} | {
        first_hour + 10 * HOUR_S * 1000: 20 * WATTS_MJ
    }
    assert recorded_mj(store) == back * WATTS_MJ  # the raw rows: every millijoule once
    summary = LedgerQueries(store.engine, BERLIN, None, "EUR").summary(date(2026, 11, 25), date(2026, 11, 26), "day")
    assert [(row.bucket, row.energy_wh) for row in summary.rows] == [
        ("2026-11-25", Decimal("400.000")),
        ("2026-11-26", Decimal("600.556")),
    ]


def test_a_day_of_25_hours_gets_25_hours_and_a_half_hour_zones_midnight_is_an_edge(tmp_path: Path) -> None:
    # Berlin's clocks go back on 2026-10-25: that day has 25 hours.
    berlin = LedgerStore.open(tmp_path / "berlin.sqlite3", BERLIN)
    start, end = datetime(2026, 10, 24, 22, tzinfo=BERLIN), datetime(2026, 10, 26, 2, tzinfo=BERLIN)
    hours = round((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()) // HOUR_S  # not the wall clock's
    berlin.record_energy(
        [EnergyInterval(GPU, start, end, hours * HOUR_S * WATTS_MJ, None, "counter", None)], TariffHistory()
    )
    assert hours == 29
    assert energy_by(berlin, "local_day") == {
        "2026-10-24": 2 * HOUR_S * WATTS_MJ,
        "2026-10-25": 25 * HOUR_S * WATTS_MJ,
        "2026-10-26": 2 * HOUR_S * WATTS_MJ,
    }
    assert set(energy_by(berlin, "hour_ms", db.energy_hourly).values()) == {HOUR_S * WATTS_MJ}
    berlin.close()

    # Kolkata is 5:30 ahead of UTC: its midnight falls inside a UTC hour, and cuts it.
    kolkata_zone = ZoneInfo("Asia/Kolkata")
    kolkata = LedgerStore.open(tmp_path / "kolkata.sqlite3", kolkata_zone)
    start = datetime(2026, 11, 25, 18, tzinfo=UTC)  # 23:30 local
    kolkata.record_energy(
        [EnergyInterval(GPU, start, start + timedelta(hours=1), HOUR_S * WATTS_MJ, None, "counter", None)],
        TariffHistory(),
    )
    half = HOUR_S // 2 * WATTS_MJ
    assert energy_by(kolkata, "local_day") == {"2026-11-25": half, "2026-11-26": half}
    assert energy_by(kolkata, "hour_ms", db.energy_hourly) == {to_ms(start): 2 * half}
    kolkata.close()


def test_each_hour_of_a_long_interval_is_costed_at_its_own_price(store: LedgerStore) -> None:
    store.set_tariff(PEAK, datetime(2026, 1, 1, tzinfo=UTC))
    # Wednesday 16:00 to 22:00 Berlin in one interval (the agent was down): 100 Wh an hour, the peak 17-21 at 0.45.
    start = datetime(2026, 11, 25, 16, tzinfo=BERLIN)
    interval = EnergyInterval(GPU, start, start + timedelta(hours=6), 6 * HOUR_S * WATTS_MJ, "lease", "counter", None)
    store.record_energy([interval], store.tariff_history())
    with store.engine.connect() as connection:
        costs = dict(connection.execute(select(db.energy_hourly.c.hour_ms, db.energy_hourly.c.cost_nano)).all())
    nano_per_hour = [30_000_000, 45_000_000, 45_000_000, 45_000_000, 45_000_000, 30_000_000]  # 0.1 kWh at the price
    assert costs == {to_ms(start) + n * HOUR_S * 1000: cost for n, cost in enumerate(nano_per_hour)}


@pytest.mark.parametrize("energy_mj", [1_000_001, 1_000_003, 7, 3_600_000_001])
def test_cutting_an_interval_neither_makes_nor_loses_energy(store: LedgerStore, energy_mj: int) -> None:
    tariff = 'currency = "EUR"\ntime_zone = "UTC"\nprice_per_kwh = "%s"\n'
    start = datetime(2026, 11, 25, 10, 59, 55, tzinfo=UTC)
    store.set_tariff(tariff % "0.30", start - timedelta(days=1))
    store.set_tariff(tariff % "0.40", start + timedelta(seconds=5, milliseconds=333))  # cut at a tariff change ...
    # ... and at every UTC hour from 11:00 to 23:00 (23:00 is also midnight in Berlin): 15 unequal pieces.
    end = datetime(2026, 11, 25, 23, 0, 7, tzinfo=UTC)
    store.record_energy([EnergyInterval(GPU, start, end, energy_mj, None, "counter", None)], store.tariff_history())
    assert recorded_mj(store) == energy_mj
    assert sum(energy_by(store, "local_day").values()) == energy_mj
    assert sum(energy_by(store, "hour_ms", db.energy_hourly).values()) == energy_mj
    with store.engine.connect() as connection:
        rows = connection.execute(select(db.energy.c.start_ms, db.energy.c.end_ms).order_by(db.energy.c.start_ms)).all()
    assert len(rows) == 15
    assert all(left.end_ms == right.start_ms for left, right in itertools.pairwise(rows))


# -- the export and the summaries ------------------------------------------------------------------------------


def run_lease(store: LedgerStore, lease: str, start: datetime, seconds: int, milliwatts: int) -> None:
    """A lease on the GPU for ``seconds`` at ``milliwatts``, its energy committed as the agent does."""
    store.job_started(JobStart(lease, "http://market", f"job-{lease}", (GPU,), 1, 1, start))
    recorder = EnergyRecorder(boot_id="boot")
    for second in range(seconds + 1):
        samples, jobs = [reading(milliwatts * second)], {GPU: lease}
        intervals = recorder.observe(start + timedelta(seconds=second), samples, jobs, close_all=second == seconds)
        if intervals:
            store.record_energy(intervals, store.tariff_history())
            recorder.committed(intervals, samples, jobs)
    store.job_ended(JobEnd(lease, start + timedelta(seconds=seconds), seconds, 0, "finished"))


EXPORT_FIELDS = ("gross_base_units", "energy_wh", "power_cost", "net", "net_base_units")  # what an export row has


def rows_add_up(rows: Sequence[Money] | Sequence[ExportRow], total: Money) -> None:
    summary_only = () if rows and isinstance(rows[0], ExportRow) else ("pending_base_units", "idle_energy_wh")
    for name in (*EXPORT_FIELDS, *summary_only):
        assert sum(getattr(row, name) for row in rows) == getattr(total, name), name


def test_the_rows_add_up_to_one_total_however_the_period_is_cut(store: LedgerStore) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    for day in range(3):  # three leases of 10 s at 100.224 W: 0.2784 Wh each, on three days
        start = datetime(2026, 11, 23 + day, 10, tzinfo=BERLIN)
        run_lease(store, f"lease-{day}", start, 10, 100_224)
        store.credited(f"lease-{day}", 10**6, 10**6 * (day + 1), "0x" + "ab" * 20, start + timedelta(seconds=15))
    queries = LedgerQueries(store.engine, BERLIN, RATE, "EUR")
    since, until = date(2026, 11, 23), date(2026, 11, 25)

    export = queries.export(since, until)
    summaries: dict[SummaryBucket, EarningsSummary] = {
        by: queries.summary(since, until, by) for by in ("hour", "day", "week", "month", "job", "gpu")
    }
    total = summaries["job"].total
    assert total.energy_wh == Decimal("0.835")  # 0.8352 Wh, rounded once
    assert total.net_base_units == 3 * 10**6 - 295  # 3 x 0.00008352 EUR at 0.85 = 294.78 base units, rounded up
    rows_add_up(export.rows, total)
    for summary in summaries.values():
        assert summary.total == total
        rows_add_up(summary.rows, summary.total)
    # Each row is its own figure rounded down or up: the largest remainder (the first, on a tie) goes up.
    assert [row.energy_wh for row in export.rows] == [Decimal("0.279"), Decimal("0.278"), Decimal("0.278")]
    assert [row.energy_wh for row in summaries["day"].rows] == [row.energy_wh for row in export.rows]


def test_the_export_equals_the_job_summary_and_the_daily_one_once_the_lease_is_paid_within_it(
    store: LedgerStore,
) -> None:
    store.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    start = datetime(2026, 10, 31, 23, 59, 40, tzinfo=BERLIN)  # runs to 00:00:20, paid after midnight
    run_lease(store, "lease-a", start, 40, 360_000)
    store.credited("lease-a", 5 * 10**6, 5 * 10**6, "0x" + "ab" * 20, start + timedelta(seconds=45))
    queries = LedgerQueries(store.engine, BERLIN, RATE, "EUR")

    def export_total(export: LedgerExport) -> dict[str, Any]:
        return {name: sum(getattr(row, name) for row in export.rows) for name in EXPORT_FIELDS}

    def summary_total(since: date, until: date, by: SummaryBucket) -> dict[str, Any]:
        total = queries.summary(since, until, by).total
        return {name: getattr(total, name) for name in EXPORT_FIELDS}

    october = (date(2026, 10, 1), date(2026, 10, 31))
    assert export_total(queries.export(*october)) == summary_total(*october, "job")
    assert summary_total(*october, "day")["gross_base_units"] == 0  # the pay came in November
    with_the_pay = (date(2026, 10, 1), date(2026, 11, 1))
    assert export_total(queries.export(*with_the_pay)) == summary_total(*with_the_pay, "day")


# -- the flush at stop -----------------------------------------------------------------------------------------


def test_the_flush_at_stop_waits_for_a_ticks_write_and_counts_nothing_twice(store: LedgerStore) -> None:
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    now = [start]
    service = LedgerService(store, settings=LedgerSettings, boot="boot", clock=lambda: now[0])
    service.record([reading(0)], {GPU: None})  # opens the interval

    writing, slow_disk_done = threading.Event(), threading.Event()
    write = store.record_energy

    def slow_write(*args: Any, **kwargs: Any) -> None:
        if not writing.is_set():  # the tick's write: it is still going when the agent stops
            writing.set()
            slow_disk_done.wait(timeout=30)
        write(*args, **kwargs)

    store.record_energy = slow_write  # type: ignore[method-assign]
    now[0] = start + timedelta(seconds=10)
    tick = threading.Thread(target=service.record, args=([reading(10 * WATTS_MJ)], {GPU: None}))
    tick.start()
    assert writing.wait(timeout=30)
    now[0] = start + timedelta(seconds=11)
    flush = threading.Thread(target=service.flush, args=([reading(11 * WATTS_MJ)], {GPU: None}))
    flush.start()
    flush.join(timeout=1)  # without the lock the flush closes the interval the tick is writing, and is done
    slow_disk_done.set()
    tick.join(timeout=30)
    flush.join(timeout=30)

    assert recorded_mj(store) == 11 * WATTS_MJ
    with store.engine.connect() as connection:
        spans = connection.execute(select(db.energy.c.start_ms, db.energy.c.end_ms).order_by(db.energy.c.start_ms))
        assert [(s - to_ms(start), e - to_ms(start)) for s, e in spans] == [(0, 10_000), (10_000, 11_000)]

"""The ledger with a year of energy samples: how fast the summaries, the tray's figure and the export answer.

A fresh ledger (``LedgerStore.open`` on a temporary file, Europe/Berlin, the time-of-use tariff of
examples/tariff.toml set first, a token rate, an idle baseline of 30 W) is filled with the 2025 calendar
year of two GPUs, written as the agent writes it: energy intervals of 10 s per GPU, cut where a job
starts or ends (the recorder closes an interval there), costed and rolled up by the real write path
``LedgerStore.record_energy``. An hour of intervals goes in one call (the agent commits every 10 s; one
transaction per hour keeps the fill to minutes; only the last interval of a GPU in a call carries the
counter state to store, which is what the table keeps in the end). Each GPU runs leases of 20 min–3 h
(about 280–330 W), idle gaps of 30 min–6 h in between (about 18–30 W): each lease is recorded with
``job_started`` and ``job_ended``, credited by the marketplace a few minutes after it ended, and a
voucher each night at 04:00 covers what was credited until six hours before, so most earnings are
confirmed and the last ones pending.

Then, on the full file, each query is timed as the median of ``--runs`` calls after one warm-up call,
and cold: the first call on a store just reopened (a new connection: empty SQLite page and statement
caches), the median of three reopenings, once with the operating system's file cache warm and once with
the ledger's file dropped from it (posix_fadvise DONTNEED on that file only, as after a reboot):

(a) the daily summary of the whole year, (b) the monthly summary of the year, (c) the tray's today
figure, (d) the by-lease summary of one month (December), (e) the export of that month.

Also: the file's size (and its -wal at the end of the fill), rows per table, the fill time,
``LedgerStore.open`` on the full file (warm, and with the file out of the OS cache: the agent opens the
ledger before its control API answers), PRAGMA quick_check alone, the same check limited to every table
but the raw intervals (a cheaper check, measured for comparison only), and one 10 s tick of two GPUs
written on the full file. Targets (the ledger issue): (a)-(c) under 50 ms.

    python bench/ledger_summary.py [--quick] [--runs 20] [--db FILE | --reuse FILE] [--write docs/benchmarks.md]

``--quick`` fills March 2025 only (a daylight-saving change included): a smoke run. ``--db FILE`` keeps
the filled ledger there (and its period beside it, FILE.period); ``--reuse FILE`` times a ledger kept that
way without filling again (each run writes its ticks after the period's end).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from common import machine, record

from sparecycles.agent.ledger.energy import CounterState
from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.queries import LedgerQueries
from sparecycles.agent.ledger.recorder import EnergyInterval, StoredCounter
from sparecycles.agent.ledger.store import MIGRATIONS, JobEnd, JobStart, LedgerStore, integrity_problem

ZONE = ZoneInfo("Europe/Berlin")
TARIFF = Path(__file__).resolve().parent.parent / "examples" / "tariff.toml"
GPUS = ("GPU-0c7d3e2a-5b1f-4e6a-9d2c-7a1b3c4d5e6f", "GPU-8f2e1d0c-3b4a-4c5d-8e7f-1a2b3c4d5e6f")
PAYOUT = "0x5c3f1a2b4d6e8f00112233445566778899aabbcc"
MARKET = "https://market.sparecycles.example"
RATE = TokenRate("EUR", Decimal("0.5"), decimals=18)
BASELINE_W = 30.0
COMMIT_EVERY = timedelta(seconds=10)
TARGET_MS = 50.0
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
QUICK = (date(2025, 3, 1), date(2025, 3, 31))


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).astimezone(UTC)


# --- the simulated year ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    job_id: str
    gpu: str
    start: datetime
    end: datetime
    watts: float
    price: int  # base units per GPU-hour
    stopped: bool  # the user came back: stopped early rather than finished


def plan_leases(first: datetime, end: datetime, rng: random.Random) -> list[Lease]:
    """Each GPU: idle 30 min–6 h, then a lease of 20 min–3 h, again and again (start times to the second)."""
    leases = []
    for gpu in GPUS:
        at = first
        while True:
            start = at + timedelta(seconds=rng.randrange(30 * 60, 6 * 3600))
            stop = start + timedelta(seconds=rng.randrange(20 * 60, 3 * 3600))
            if stop >= end:
                break
            leases.append(
                Lease(
                    job_id=f"lease-{rng.getrandbits(64):016x}",
                    gpu=gpu,
                    start=start,
                    end=stop,
                    watts=rng.uniform(280, 330),
                    price=rng.randrange(8, 16) * 10**16,
                    stopped=rng.random() < 0.1,
                )
            )
            at = stop
    return sorted(leases, key=lambda lease: lease.start)


def gpu_intervals(
    gpu: str, leases: list[Lease], first: datetime, end: datetime, rng: random.Random
) -> Iterator[EnergyInterval]:
    """The intervals the recorder closes for one GPU: every 10 s, and where a lease starts or ends."""
    segments: list[tuple[datetime, datetime, Lease | None]] = []
    at = first
    for mine in (lease for lease in leases if lease.gpu == gpu):
        segments += [(at, mine.start, None), (mine.start, mine.end, mine)]
        at = mine.end
    segments.append((at, end, None))
    counter = 0
    for left, right, lease in segments:
        start = left
        while start < right:
            stop = min(start + COMMIT_EVERY, right)
            watts = lease.watts + rng.uniform(-15, 15) if lease is not None else rng.uniform(18, 30)
            energy_mj = round(watts * (stop - start).total_seconds() * 1000)
            counter += energy_mj
            job = lease.job_id if lease is not None else None
            stored = StoredCounter(CounterState("bench-boot", counter), stop, job)
            yield EnergyInterval(gpu, start, stop, energy_mj, job, "counter", stored)
            start = stop


@dataclass(frozen=True)
class Event:
    at: datetime
    order: int
    action: Callable[[], Any]


def lease_events(store: LedgerStore, leases: list[Lease], rng: random.Random, end: datetime) -> list[Event]:
    """Start, end and credit of every lease, and a voucher every night at 04:00 local."""
    events: list[Event] = []
    ended = []
    for lease in leases:
        credited_at = lease.end + timedelta(seconds=rng.randrange(60, 600))
        ended.append((credited_at, lease, f"job-{rng.getrandbits(64):016x}"))
    ended.sort(key=lambda item: item[0])
    credits: list[tuple[datetime, int]] = []  # (credited at, the payout address's cumulative then)
    cumulative = 0
    for credited_at, lease, market_job in ended:
        hours = (lease.end - lease.start).total_seconds() / 3600
        amount = round(lease.price * hours)
        cumulative += amount
        credits.append((credited_at, cumulative))
        start = JobStart(lease.job_id, MARKET, market_job, (lease.gpu,), 1, lease.price, lease.start)
        stop = JobEnd(
            lease.job_id,
            lease.end,
            run_time_s=(lease.end - lease.start).total_seconds(),
            paused_s=0.0,
            outcome="stopped" if lease.stopped else "finished",
            reason="the user came back" if lease.stopped else None,
        )
        events += [
            Event(lease.start, 0, partial(store.job_started, start)),
            Event(lease.end, 1, partial(store.job_ended, stop)),
            Event(credited_at, 2, partial(store.credited, lease.job_id, amount, cumulative, PAYOUT, credited_at)),
        ]
    # Credits are in time order, so the cumulative grows along them: a voucher covers a prefix.
    credited_times = [when for when, _ in credits]
    day = credits[0][0].astimezone(ZONE).date() if credits else None
    while day is not None and local_midnight(day) + timedelta(hours=4) < end:
        at = local_midnight(day) + timedelta(hours=4)
        covered = bisect.bisect_right(credited_times, at - timedelta(hours=6))
        if covered:
            paid, ref = credits[covered - 1][1], f"voucher-{day.isoformat()}"
            events.append(Event(at, 3, partial(store.voucher_covers, PAYOUT, paid, ref, at)))
        day += timedelta(days=1)
    return sorted(events, key=lambda event: (event.at, event.order))


def fill(path: Path, first_day: date, last_day: date, seed: int) -> dict[str, Any]:
    """Fill a new ledger at ``path`` with the period's energy and leases; what it took."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not secrets
    first, end = local_midnight(first_day), local_midnight(last_day + timedelta(days=1))
    store = LedgerStore.open(path, ZONE)
    store.set_tariff(TARIFF.read_text(), first - timedelta(days=1))
    store.set_token_rate(RATE, first - timedelta(days=1))
    tariffs = store.tariff_history()
    leases = plan_leases(first, end, rng)
    events = lease_events(store, leases, rng, end)
    streams = [gpu_intervals(gpu, leases, first, end, rng) for gpu in GPUS]
    pending: list[EnergyInterval | None] = [next(stream, None) for stream in streams]
    started = time.perf_counter()
    intervals = calls = 0
    next_event = 0
    hour = first
    shown = first.astimezone(ZONE).month
    while hour < end:
        hour_end = hour + timedelta(hours=1)
        while next_event < len(events) and events[next_event].at < hour_end:
            events[next_event].action()
            next_event += 1
        batch: list[EnergyInterval] = []
        for index, stream in enumerate(streams):
            last = None
            while (interval := pending[index]) is not None and interval.start < hour_end:
                if last is not None:  # only the last interval of the GPU carries the counter state
                    batch.append(dataclasses.replace(last, stored=None))
                last = interval
                pending[index] = next(stream, None)
            if last is not None:
                batch.append(last)
        if batch:
            store.record_energy(batch, tariffs, BASELINE_W)
            intervals += len(batch)
            calls += 1
        hour = hour_end
        month = hour.astimezone(ZONE).month
        if month != shown:
            shown = month
            print(
                f"  filled to {hour.astimezone(ZONE):%Y-%m-%d}: {intervals:,} intervals, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    for event in events[next_event:]:
        if event.at < end:
            event.action()
    seconds = time.perf_counter() - started
    wal = path.with_name(path.name + "-wal")
    sizes = (path.stat().st_size, wal.stat().st_size if wal.exists() else 0)
    store.close()
    return {"fill_s": seconds, "intervals": intervals, "calls": calls, "leases": len(leases), "size_at_fill": sizes}


# --- timing ------------------------------------------------------------------------------------------


def queries_for(store: LedgerStore) -> LedgerQueries:
    """As the agent's ledger service builds them: the token rate set last, the tariff's currency."""
    tariff = store.tariff_history().in_force(datetime.now(UTC))
    return LedgerQueries(store.engine, store.zone, store.token_rate(), tariff.currency if tariff else None)


def warm_ms(call: Callable[[], Any], runs: int) -> list[float]:
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def evict(path: Path) -> bool:
    """Drop the ledger's pages (file and -wal) from the OS file cache, as after a reboot; False where the
    system cannot (the pages of this file only: the rest of the machine's cache stays)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for name in (path.name, path.name + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            descriptor = os.open(path.with_name(name), os.O_RDONLY)
            try:
                os.fdatasync(descriptor)
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)
    return True


def cold_ms(path: Path, call: Callable[[LedgerQueries], Any], *, from_disk: bool, tries: int = 3) -> list[float]:
    """The first call on a store just reopened; ``from_disk``: with the file out of the OS cache too."""
    times = []
    for _ in range(tries):
        store = LedgerStore.open(path, ZONE)
        queries = queries_for(store)
        if from_disk and not evict(path):
            store.close()
            return []
        started = time.perf_counter()
        call(queries)
        times.append((time.perf_counter() - started) * 1000)
        store.close()
    return times


def open_times(path: Path, tries: int = 3) -> dict[str, list[float]]:
    """Seconds: ``LedgerStore.open`` on the file; PRAGMA quick_check alone (all of it, and of every table
    but ``energy``); the migration check alone. Warm, and once with the file out of the OS cache."""
    found: dict[str, list[float]] = {}

    def timed(key: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = action()
        found.setdefault(key, []).append(time.perf_counter() - started)
        return result

    def open_and_close() -> None:
        LedgerStore.open(path, ZONE).close()

    for _ in range(tries):
        timed("open", open_and_close)
        problem = timed("check", lambda: integrity_problem(path))
        assert problem is None, problem
        timed("check_small", lambda: small_tables_check(path))
        store = LedgerStore.open(path, ZONE)
        timed("migrations", partial(MIGRATIONS.upgrade, store.engine))
        store.close()
    for _ in range(2):  # a virtual disk's speed varies a lot from one read of the whole file to the next
        if evict(path):
            timed("open_from_disk", open_and_close)
            evict(path)
            timed("check_small_from_disk", lambda: small_tables_check(path))
    return found


def small_tables_check(path: Path) -> None:
    """PRAGMA quick_check of each table but ``energy`` (the raw intervals), with its indexes."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "energy" and not name.startswith("sqlite_")
        ]
        for name in names:
            rows = connection.execute(f'PRAGMA quick_check("{name}")').fetchall()
            assert rows == [("ok",)], rows
    finally:
        connection.close()


def tick_ms(path: Path, runs: int) -> list[float]:
    """One 10 s tick of both GPUs, written on the full file as the agent writes it (after the data's end)."""
    store = LedgerStore.open(path, ZONE)
    tariffs = store.tariff_history()
    with store.engine.connect() as connection:
        last_ms = connection.exec_driver_sql("SELECT max(end_ms) FROM energy").scalar() or 0
    at = datetime.fromtimestamp(last_ms / 1000, UTC)
    times = []
    for _ in range(runs + 1):
        batch = [
            EnergyInterval(
                gpu, at, at + COMMIT_EVERY, 250_000, None, "counter", StoredCounter(CounterState("tick", 1), at, None)
            )
            for gpu in GPUS
        ]
        started = time.perf_counter()
        store.record_energy(batch, tariffs, BASELINE_W)
        times.append((time.perf_counter() - started) * 1000)
        at += COMMIT_EVERY
    store.close()
    return times[1:]


def row_counts(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            "energy",
            "energy_daily",
            "energy_hourly",
            "jobs",
            "earnings",
            "earnings_daily",
        ]
        return {name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in names}  # noqa: S608
    finally:
        connection.close()


def period_file(path: Path) -> Path:
    """Beside a kept ledger: the period it was filled with (the tick written afterwards lies beyond it)."""
    return path.with_name(path.name + ".period")


def disk_of(path: Path) -> str:
    """The block device the file lives on, as far as /sys tells (a virtual disk says little of its kind)."""
    with contextlib.suppress(OSError, ValueError):
        device = os.stat(path).st_dev
        block = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
        if (block / "partition").exists():
            block = block.parent
        name = block.name
        rotational = (block / "queue" / "rotational").read_text().strip()
        model = ""
        with contextlib.suppress(OSError):
            model = (block / "device" / "model").read_text().strip()
        kind = "virtio virtual disk" if name.startswith("vd") else ("SSD" if rotational == "0" else "rotational disk")
        flag = f", rotational flag {rotational}" if name.startswith("vd") else ""
        return f"{kind} {name}{' ' + model if model else ''}{flag}"
    return "disk unknown"


# --- the report ---------------------------------------------------------------------------------------


def ms(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} ms" if times else "—"


def seconds(times: list[float] | None) -> str:
    return f"{statistics.median(times):.2f} s" if times else "—"


def each_s(times: list[float] | None) -> str:
    return ", ".join(f"{value:.2f} s" for value in times) if times else "—"


def size(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:,.0f} KiB"


def markdown(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fill one month (March 2025) instead of the year")
    parser.add_argument("--runs", type=int, default=20, help="warm calls per query (the median is reported)")
    parser.add_argument("--seed", type=int, default=2025)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, help="fill the ledger here and keep it (the file must not exist)")
    where.add_argument("--reuse", type=Path, help="time a ledger filled earlier with --db, without filling")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as folder:
        filled: dict[str, Any] | None = None
        if args.reuse is not None:
            path = args.reuse
            first_text, last_text = period_file(path).read_text().split()
            first_day, last_day = date.fromisoformat(first_text), date.fromisoformat(last_text)
        else:
            path = args.db or Path(folder) / "ledger.sqlite3"
            if path.exists():
                raise SystemExit(f"{path} exists: --db wants a new file (--reuse times an existing one)")
            first_day, last_day = QUICK if args.quick else YEAR
            print(f"filling {path} with {first_day} … {last_day} (2 GPUs, 10 s intervals)", file=sys.stderr)
            filled = fill(path, first_day, last_day, args.seed)
            if args.db is not None:
                period_file(path).write_text(f"{first_day} {last_day}\n")
        report = measure(path, first_day, last_day, filled, args)
    record(args.write, "ledger_summary", report)


def measure(
    path: Path, first_day: date, last_day: date, filled: dict[str, Any] | None, args: argparse.Namespace
) -> str:
    month_first = last_day.replace(day=1)
    today_at = local_midnight(last_day) + timedelta(hours=21, minutes=30)
    calls: list[tuple[str, Callable[[LedgerQueries], Any], bool]] = [
        (f"(a) daily summary, {first_day} … {last_day}", lambda q: q.summary(first_day, last_day, "day"), True),
        ("(b) monthly summary, same period", lambda q: q.summary(first_day, last_day, "month"), True),
        (f"(c) today's figure (tray), {last_day}", lambda q: q.today(today_at), True),
        (f"(d) by-lease summary, {month_first:%B %Y}", lambda q: q.summary(month_first, last_day, "job"), False),
        (f"(e) export, {month_first:%B %Y}", lambda q: q.export(month_first, last_day), False),
    ]
    rows = row_counts(path)
    main_size = path.stat().st_size
    print("timing LedgerStore.open (once with the file out of the OS cache: slow)", file=sys.stderr)
    opened = open_times(path)
    store = LedgerStore.open(path, ZONE)
    queries = queries_for(store)
    answers = {
        "days": len(queries.summary(first_day, last_day, "day").rows),
        "months": len(queries.summary(first_day, last_day, "month").rows),
        "leases": len(queries.summary(month_first, last_day, "job").rows),
        "exported": len(queries.export(month_first, last_day).rows),
    }
    print("timing the queries", file=sys.stderr)
    warm = [warm_ms(partial(call, queries), args.runs) for _, call, _ in calls]
    store.close()
    cold = [cold_ms(path, call, from_disk=False) for _, call, _ in calls]
    from_disk = [cold_ms(path, call, from_disk=True) for _, call, _ in calls]
    ticks = tick_ms(path, args.runs)

    query_rows = []
    for (label, _, targeted), warm_times, cold_times, disk_times in zip(calls, warm, cold, from_disk, strict=True):
        medians = [statistics.median(times) for times in (warm_times, cold_times) if times]
        missed = targeted and max(medians) >= TARGET_MS
        query_rows.append(
            (
                label + (" **missed**" if missed else ""),
                f"{ms(warm_times)} ({max(warm_times):.1f})",
                ms(cold_times),
                ms(disk_times),
                f"< {TARGET_MS:.0f} ms" if targeted else "—",
            )
        )
    check_small = opened.get("check_small")
    open_rows = [
        ("`LedgerStore.open` on the full file", seconds(opened["open"]), each_s(opened.get("open_from_disk"))),
        (
            "PRAGMA quick_check of the whole file (the background check, a minute after start)",
            seconds(opened["check"]),
            "≈ the row above",
        ),
        ("the migration check alone", f"{statistics.median(opened['migrations']) * 1000:.0f} ms", "—"),
        (
            "PRAGMA quick_check of every table but `energy` (what open runs)",
            f"{statistics.median(check_small) * 1000:.0f} ms" if check_small else "—",
            each_s(opened.get("check_small_from_disk")),
        ),
    ]
    facts = [
        ("energy rows (10 s intervals, 2 GPUs)", f"{rows['energy']:,}"),
        ("roll-up rows: daily / hourly", f"{rows['energy_daily']:,} / {rows['energy_hourly']:,}"),
        ("leases (jobs) / earnings", f"{rows['jobs']:,} / {rows['earnings']:,}"),
        ("database file, closed (no -wal left)", size(main_size)),
    ]
    if filled is not None:
        at_fill = filled["size_at_fill"]
        facts += [
            ("database file + -wal at the end of the fill", f"{size(at_fill[0])} + {size(at_fill[1])}"),
            (
                "fill time (`record_energy` an hour per call, and the lease writes)",
                f"{filled['fill_s'] / 60:.1f} min ({filled['calls']:,} calls, "
                f"{filled['intervals'] / filled['fill_s']:,.0f} intervals/s)",
            ),
        ]
    facts.append(
        (
            "one 10 s tick of 2 GPUs written on the full file (`record_energy`), median (worst)",
            f"{ms(ticks)} ({max(ticks):.1f} ms)",
        )
    )
    span = "a year" if (last_day - first_day).days > 300 else f"{(last_day - first_day).days + 1} days"
    return (
        "## Ledger: a year of energy samples (`bench/ledger_summary.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}; the ledger in a temporary folder on a "
        f"{disk_of(path)}.\n"
        f"{span.capitalize()} ({first_day} … {last_day}, Europe/Berlin) of 2 GPUs written through "
        "`LedgerStore.record_energy`: 10 s intervals, cut where a lease starts or ends, costed under the "
        "time-of-use tariff of examples/tariff.toml with a 30 W idle baseline, an hour of intervals per call. "
        "Leases of 20 min–3 h with idle gaps of 30 min–6 h on each GPU, each started, ended and credited, and "
        "a voucher every night covering what was credited until six hours before. "
        f"The answers: {answers['days']} days, {answers['months']} month(s), {answers['leases']} leases in the "
        f"month's summary, {answers['exported']} in its export. Warm: the median of {args.runs} calls after one "
        "warm-up (the worst in brackets); cold: the first call on a store just reopened (empty SQLite page and "
        "statement caches), the median of 3, with the OS file cache warm, and with the ledger's file dropped "
        "from it (posix_fadvise DONTNEED, as after a reboot). Opening: the median of 3 with the OS cache warm, "
        "and each of 2 with the file out of it.\n\n"
        + markdown(
            ("query", "warm, median (worst)", "cold, reopened", "cold, file out of the OS cache", "target"),
            query_rows,
        )
        + "\n\n"
        + markdown(("opening the full file", "OS cache warm", "file out of the OS cache"), open_rows)
        + "\n\n"
        + markdown(("the file", "result"), facts)
    )


if __name__ == "__main__":
    main()

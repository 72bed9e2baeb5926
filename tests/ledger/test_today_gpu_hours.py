"""Today's GPU-hours, as a studio's fleet listing shows them: the part of every lease inside today's local day,
a lease still running counted up to now, times its GPUs (a lease's run time is written only when it ends)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.daemon import _today_figures
from sparecycles.agent.ledger.service import LedgerService
from sparecycles.agent.ledger.store import JobEnd, JobStart, LedgerStore
from sparecycles.config import LedgerSettings


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 25, 22, 0, tzinfo=UTC))


def _ledger(tmp_path: Path, clock: Clock, zone: str) -> Iterator[LedgerService]:
    store = LedgerStore.open(tmp_path / "ledger.db", ZoneInfo(zone))
    try:
        yield LedgerService(store, settings=LedgerSettings, boot="b", clock=clock)
    finally:
        store.close()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[LedgerService]:
    yield from _ledger(tmp_path, clock, "UTC")


@pytest.fixture
def berlin(tmp_path: Path, clock: Clock) -> Iterator[LedgerService]:
    yield from _ledger(tmp_path, clock, "Europe/Berlin")


def _start(ledger: LedgerService, lease: str, started: datetime, gpus: tuple[str, ...] = ("GPU-a",)) -> None:
    ledger.store.job_started(JobStart(lease, "https://studio", f"job-{lease}", gpus, max(1, len(gpus)), 1000, started))


def _end(ledger: LedgerService, lease: str, ended: datetime, run_time_s: float, paused_s: float = 0.0) -> None:
    ledger.store.job_ended(JobEnd(lease, ended, run_time_s, paused_s, "completed"))


def _gpu_hours(ledger: LedgerService) -> float:
    return _today_figures(ledger)[0]


def test_a_job_from_last_night_counts_its_hours_today_while_running_and_once_ended(
    ledger: LedgerService, clock: Clock
) -> None:
    _start(ledger, "night", datetime(2026, 11, 25, 22, 0, tzinfo=UTC), ("GPU-a", "GPU-b"))
    clock.now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert _gpu_hours(ledger) == pytest.approx(22.0)  # 11 h of today so far, on 2 GPUs
    _end(ledger, "night", datetime(2026, 11, 26, 12, 0, tzinfo=UTC), 14 * 3600)
    clock.now = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert _gpu_hours(ledger) == pytest.approx(24.0)


def test_a_job_started_and_running_today_counts_the_time_so_far(ledger: LedgerService, clock: Clock) -> None:
    _start(ledger, "now", datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    clock.now = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert _gpu_hours(ledger) == pytest.approx(0.5)


def test_yesterdays_jobs_and_cpu_only_leases_add_nothing(ledger: LedgerService, clock: Clock) -> None:
    _start(ledger, "yesterday", datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    _end(ledger, "yesterday", datetime(2026, 11, 25, 20, 0, tzinfo=UTC), 12 * 3600)
    _start(ledger, "cpu", datetime(2026, 11, 26, 8, 0, tzinfo=UTC), ())
    clock.now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert _gpu_hours(ledger) == 0.0


def test_paused_time_is_left_out_of_an_ended_job(ledger: LedgerService, clock: Clock) -> None:
    _start(ledger, "paused", datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    _end(ledger, "paused", datetime(2026, 11, 26, 10, 0, tzinfo=UTC), 3600, paused_s=3600)
    clock.now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert _gpu_hours(ledger) == pytest.approx(1.0)


def test_today_is_the_local_day_of_the_ledgers_zone(berlin: LedgerService, clock: Clock) -> None:
    _start(berlin, "late", datetime(2026, 11, 25, 22, 30, tzinfo=UTC))  # 23:30 in Berlin
    clock.now = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 01:30 in Berlin: 1.5 h of today
    assert _gpu_hours(berlin) == pytest.approx(1.5)


def test_the_day_clocks_go_forward_has_23_hours(berlin: LedgerService, clock: Clock) -> None:
    _start(berlin, "long", datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    clock.now = datetime(2026, 3, 29, 21, 30, tzinfo=UTC)  # 23:30 in Berlin, on a day of 23 hours
    assert _gpu_hours(berlin) == pytest.approx(22.5)

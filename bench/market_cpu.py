"""CPU per job of the marketplace's own work on SQLite, without HTTP: the calls ``market serve`` makes on its
event loop for every job (submit, polls, the tick closing auctions, heartbeat, report), made in-process on a
real Alembic-migrated database in a fresh folder, and timed with the process's CPU clock.

Why: the load benchmark (market_load.py) measures the whole server under load, but this machine's speed varies
from run to run by more than most single changes save. This driver makes the same calls in the same order
each run, on one thread, so two checkouts (or an A/B toggle) can be compared within a few percent.

Usage: ``python bench/market_cpu.py [--providers 200] [--rounds 10] [--postgres ADMIN_URL]``; prints CPU per
job, in all and per call. With ``--postgres`` each run gets a fresh PostgreSQL database (dropped after), and the
CPU of the backend serving it (read from /proc; PostgreSQL on this machine) is printed beside the process's.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psutil
from eth_account import Account
from market_load import postgres_database
from sqlalchemy.pool import NullPool

from sparecycles.agent.market_server.serve import MarketOptions, open_market
from sparecycles.protocol.jobs import JobSpec
from sparecycles.protocol.market import (
    JobSubmission,
    Offer,
    ProviderRegistration,
    ResultReport,
    SignedResultReport,
)
from sparecycles.protocol.signing import sign_text

_T = TypeVar("_T")
IMAGE = "127.0.0.1:5000/bench/busybox@sha256:" + "a" * 64


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def backend_cpu_s(db_url: str) -> float:
    """CPU seconds spent so far by the PostgreSQL backends serving the database at ``db_url`` (but this
    question's own), read from /proc."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalars()
        total = 0.0
        for pid in pids:
            process = psutil.Process(pid)
            times = process.cpu_times()
            total += times.user + times.system
    engine.dispose()
    return total


def run(providers: int, rounds: int, db_url: str | None = None) -> dict[str, float]:
    clock = Clock()
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, call: Callable[..., _T], *args: Any) -> _T:
        started = time.process_time()
        try:
            return call(*args)
        finally:
            spent[name] += time.process_time() - started

    with tempfile.TemporaryDirectory() as folder:
        options = MarketOptions(data_dir=Path(folder) / "market", key_file=Path(folder) / "operator.key", db_url=db_url)
        market = open_market(options, clock=clock)
        market.ticks_on_poll = False
        market.add_requester("bench")
        market.credit("bench", 10**30)
        requester_id = market.requester_for_key(market.add_requester("bench-2"))
        market.credit("bench-2", 10**30)
        identities = [Account.create() for _ in range(providers)]
        for index, identity in enumerate(identities):
            gpu = f"GPU-{index:08d}-0000-0000-0000-000000000000"
            market.register(
                identity.address,
                ProviderRegistration(
                    name=f"rig {index}",
                    cpu_cores=8,
                    memory_bytes=32 * 1024**3,
                    gpus=[{"uuid": gpu, "name": "Simulated", "vram_bytes": 24 * 1024**3, "score": 100.0}],
                    price_floor_per_gpu_hour=10**6 + index,
                    price_floor_per_core_hour=1000,
                    payout_address=Account.create().address,
                ),
            )
            market.set_offer(identity.address, Offer(cpu_cores=0, gpu_uuids=[gpu]))
        by_address = {identity.address: identity for identity in identities}
        submission = JobSubmission(
            spec=JobSpec(image=IMAGE, command=["true"], gpus=1, max_runtime_s=60),
            max_price_per_gpu_hour=10**7,
            bidding_window_s=1,
        )
        jobs = 0
        backends_before = backend_cpu_s(db_url) if db_url else 0.0
        for _ in range(rounds):
            for _ in range(providers // 2):  # about what a round leases: the queue stays short, as under load
                timed("submit", market.submit, requester_id, submission)
            for identity in identities:
                timed("poll (bids)", market.poll, identity.address)
            clock.now += timedelta(seconds=1.5)
            result = timed("tick (closes auctions)", market.tick)
            jobs += result.assigned
            for identity in identities:
                work = timed("poll (leases)", market.poll, identity.address)
                for lease in work.leases:
                    timed("heartbeat", market.heartbeat, identity.address, lease.lease_id, 0)
                    report = ResultReport(
                        lease_id=lease.lease_id, job_id=lease.job_id, outcome="finished", exit_code=0, run_time_ms=100
                    )
                    signed = SignedResultReport(
                        report=report, signature=sign_text(by_address[identity.address], report.signing_text())
                    )
                    timed("report", market.report, identity.address, lease.lease_id, signed)
            clock.now += timedelta(seconds=1)
        if db_url:
            spent["PostgreSQL backend"] = backend_cpu_s(db_url) - backends_before
    return {"jobs": jobs, **{name: seconds / jobs * 1e6 for name, seconds in spent.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", help="an admin URL allowed to CREATE DATABASE (default: SQLite)")
    args = parser.parse_args()
    totals = []
    for _ in range(args.repeat):
        with contextlib.ExitStack() as stack:
            db_url = stack.enter_context(postgres_database(args.postgres))[0] if args.postgres else None
            figures = run(args.providers, args.rounds, db_url)
        total = sum(value for name, value in figures.items() if name != "jobs")
        totals.append(total)
        parts = ", ".join(f"{name} {value:.0f}" for name, value in figures.items() if name != "jobs")
        print(f"{int(figures['jobs'])} jobs: {total:.0f} µs of CPU a job ({parts})")
    print(f"median {statistics.median(totals):.0f} µs a job")


if __name__ == "__main__":
    main()

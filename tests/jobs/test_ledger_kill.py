"""SIGKILL at any moment loses nothing the ledger committed and counts nothing twice.

A real agent (one simulated GPU drawing a constant 17 W, whose energy counter, like NVML's, runs on while
the agent is down) takes CPU jobs in Docker from a real marketplace process, and is killed with SIGKILL
several times while they run, then started again. Two tallies that the killed agent cannot touch say
what the ledger must hold at the end:

- earnings: the marketplace's own records of the leases it accepted and paid to this provider — each
  must be in the ledger exactly once, with the same amount, confirmed by the voucher;
- energy: physics — the GPU drew 17 W the whole time, so the intervals (which must join end to start,
  never overlapping) must add up to 17 W × the time they span: a restart that counted the gap twice, or
  lost it, would be off by seconds' worth.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.jobs.containers import ContainerRunner
from tests.conftest import RunningAgent, start_agent
from tests.jobs.conftest import LocalRegistry
from tests.jobs.test_market_end_to_end import CORE_FLOOR, FAST_LEASES, provider_home, studio, wait_for
from tests.market.market_process import MarketProcess

pytestmark = pytest.mark.docker

IDLE_W = 17.0  # the simulated GPU's default draw
KILLS = 4


@pytest.fixture
def market(tmp_path: Path) -> Iterator[MarketProcess]:
    running = MarketProcess(tmp_path / "market", serve_arguments=FAST_LEASES)
    running.start()
    yield running
    running.stop()


def ledger_rows(home: Path, query: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{home / 'state' / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


def test_sigkill_during_jobs_loses_nothing_committed_and_counts_nothing_twice(  # noqa: PLR0917
    tmp_path: Path,
    market: MarketProcess,
    local_registry: LocalRegistry,
    busybox_image: str,
    docker_exec_works: None,
    docker_client: Any,
) -> None:
    home, _payout = provider_home(tmp_path, "provider", local_registry, market.url(), CORE_FLOOR)
    requester = studio(market)
    chance = random.Random(8)  # noqa: S311 - when to kill, reproducibly
    agent: RunningAgent = start_agent(home, "--simulated-gpus", "1")
    job_ids: list[str] = []
    try:
        for _ in range(KILLS):
            spec = {"image": busybox_image, "command": ["sh", "-c", "sleep 5; echo ok > /job/output/r.txt"]}
            submitted = requester.post(
                "/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 1}
            )
            assert submitted.status_code == 201, submitted.text
            job_ids.append(submitted.json()["job_id"])
            wait_for(
                lambda: requester.get(f"/v1/jobs/{job_ids[-1]}").json()["state"] == "running",
                what=f"a lease ({agent.console_file})",
            )
            time.sleep(chance.uniform(0.5, 4.5))  # somewhere in the job's run (5 s once its container starts)
            agent.process.kill()
            agent.process.wait(10)
            agent = start_agent(home, "--simulated-gpus", "1")

        def all_completed() -> bool:
            return all(requester.get(f"/v1/jobs/{job}").json()["state"] == "completed" for job in job_ids)

        wait_for(all_completed, 180, f"every job to complete ({agent.console_file})")
        paid = {
            lease["lease_id"]: lease["amount_base_units"]
            for job in job_ids
            for lease in requester.get(f"/v1/jobs/{job}").json()["leases"]
            if lease["state"] == "accepted"
        }
        assert len(paid) == len(job_ids)

        def booked() -> dict[str, tuple[int, bool]] | None:
            rows = ledger_rows(home, "SELECT job_id, amount, confirmed_ms IS NOT NULL FROM earnings")
            found = {lease: (int(amount), bool(confirmed)) for lease, amount, confirmed in rows if int(amount) > 0}
            return found if found.keys() == paid.keys() and all(ok for _, ok in found.values()) else None

        found = wait_for(booked, 150, f"the ledger to book and confirm every paid lease ({agent.console_file})")
        assert {lease: amount for lease, (amount, _) in found.items()} == paid  # each once, at what was paid
        [(credited, confirmed)] = ledger_rows(
            home, "SELECT SUM(CAST(credited AS INTEGER)), SUM(CAST(confirmed AS INTEGER)) FROM earnings_daily"
        )
        assert credited == confirmed == sum(paid.values())  # the roll-up counted each earning once
        # Enough of the agent's life recorded for the continuity check below (it commits every 10 s): a fast
        # marketplace finishes the jobs before the agent has lived long.
        energy = "SELECT start_ms FROM energy"
        wait_for(lambda: len(ledger_rows(home, energy)) >= 3, 60, f"three energy intervals ({agent.console_file})")
    finally:
        requester.close()
        agent.stop()
        agent_id = (home / "state" / "agent-id").read_text().strip()
        ContainerRunner(docker_client, agent_id=agent_id).remove_leftovers()

    intervals = ledger_rows(home, "SELECT start_ms, end_ms, energy_mj FROM energy ORDER BY start_ms")
    assert len(intervals) >= 4  # about one every 10 s of the agent's life, and one at its stop
    for (_, end_ms, _), (start_ms, _, _) in itertools.pairwise(intervals):
        assert start_ms == end_ms  # each interval starts where the last committed one ended: no gap, no overlap
    span_s = (intervals[-1][1] - intervals[0][0]) / 1000
    recorded_mj = sum(energy for _, _, energy in intervals)
    expected_mj = IDLE_W * span_s * 1000
    # Wall clock (the intervals) against the monotonic clock (the counter), and the moment of the last reading:
    # well under half a second apart. A restart's gap (seconds) counted twice, or not at all, is not.
    assert abs(recorded_mj - expected_mj) < IDLE_W * 500, (recorded_mj, expected_mj, span_s)
    [(rolled,)] = ledger_rows(home, "SELECT SUM(energy_mj) FROM energy_daily")
    assert rolled == recorded_mj

"""A poll's search for jobs to bid on leaves out the rounds this process already counted enough bidders for.

The search reads a page of open jobs, closing soonest first (its LIMIT), and the poll skipped the rounds with
enough bidders as it read them: a page of those at the head of the queue hid the jobs behind it, which then got
no bids from polls at all, and skipping them one by one in Python was a poll's largest cost (bench/market_cpu.py).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from eth_account import Account
from sqlalchemy import text

from sparecycles.agent.market_server.market import _ENOUGH_LEFT_OUT
from sparecycles.protocol.jobs import JobSpec
from sparecycles.protocol.market import JobSubmission
from tests.market.conftest import BUSYBOX, Clock, open_in_process, register_rig


def test_providers_bid_past_a_page_of_jobs_that_have_enough_bidders(tmp_path: Path, database_url: str) -> None:
    clock = Clock()
    market = open_in_process(tmp_path, clock, database_url)
    market.ticks_on_poll = False
    page = market.config.bids_per_poll * 8  # the search's LIMIT, made with the statements at start
    market.config = dataclasses.replace(market.config, bidders_per_job=1, bids_per_poll=1)
    requester_id = market.requester_for_key(market.add_requester("studio"))
    market.credit("studio", 10**24)
    spec = JobSpec(image=BUSYBOX, command=["true"], gpus=1, max_runtime_s=60)
    for _ in range(page + 6):
        market.submit(requester_id, JobSubmission(spec=spec, max_price_per_gpu_hour=10**7, bidding_window_s=5))
    providers = [Account.create().address for _ in range(page + 6)]
    for index, provider in enumerate(providers):
        register_rig(market, provider, [f"GPU-{index:08d}-0000-0000-0000-000000000000"], name=f"rig {index}")

    for provider in providers:  # one after the other: each finds the jobs before it have their one bidder
        market.poll(provider)

    with market.reading() as connection:
        bids = dict(connection.execute(text("SELECT job_id, count(*) FROM bids GROUP BY job_id")).tuples().all())
        queued = connection.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    assert len(bids) == queued == page + 6  # the last six providers found the six jobs past the first page
    assert set(bids.values()) == {1}

    clock.advance(6)  # every bidding window has ended: the rounds counted are forgotten
    assert market._enough_bidders(clock.now) == []


def test_a_search_leaves_out_only_the_rounds_closing_soonest_when_there_are_many(
    tmp_path: Path, database_url: str
) -> None:
    """With hour-long bidding windows thousands of rounds may have enough bidders: each poll's statement carries
    only the ones that could fill its page, those closing soonest (the search reads them first)."""
    clock = Clock()
    market = open_in_process(tmp_path, clock, database_url)
    many = _ENOUGH_LEFT_OUT + 50
    closing = {f"job-{index:05d}:0": clock.now + timedelta(seconds=many - index) for index in range(many)}
    market._enough = dict(closing)

    left_out = market._enough_bidders(clock.now)

    soonest = sorted(closing, key=closing.__getitem__)[:_ENOUGH_LEFT_OUT]
    assert sorted(left_out) == sorted(soonest)
    assert len(market._enough) == many  # the others are still counted: a poll skips them as it reads them

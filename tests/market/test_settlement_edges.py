"""Settlement where a job ends while some of its leases still run, or is in dispute: the money adds up.

After every case the marketplace's books must balance: what requesters were credited equals their credit plus
what is held plus what was charged, and what providers were paid equals what requesters were charged."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import create_engine, select, text

from sparecycles.agent.market_server import db as tables
from sparecycles.protocol.market import ResultReport, SignedResultReport
from sparecycles.protocol.signing import sign_text
from tests.market.conftest import Market, Provider, Requester, cpu_spec

FLOOR = 3_600_000


def books(market: Market) -> dict[str, int]:
    with market.market.read() as session:
        requesters = session.scalars(select(tables.Requester)).all()
        credited = session.scalars(
            select(tables.AuditEvent.amount).where(tables.AuditEvent.action.in_(["credit", "deposit"]))
        ).all()
        return {
            "credited": sum(amount or 0 for amount in credited),
            "credit + held + charged": sum(r.credit + r.held for r in requesters)
            + sum(session.scalars(select(tables.Job.charged)).all()),
            "charged": sum(session.scalars(select(tables.Job.charged)).all()),
            "paid": sum(session.scalars(select(tables.Payout.cumulative)).all()),
        }


def assert_balanced(market: Market) -> None:
    money = books(market)
    assert money["credit + held + charged"] == money["credited"], money
    assert money["paid"] == money["charged"], money


def report(provider: Provider, lease: dict[str, Any], outcome: str, run_time_ms: int = 1000) -> dict[str, Any]:
    exit_code = 0 if outcome == "finished" else 1
    return provider.report(
        ResultReport(
            lease_id=lease["lease_id"],
            job_id=lease["job_id"],
            outcome=outcome,
            exit_code=exit_code,
            run_time_ms=run_time_ms,
        )
    )


def lease_row(market: Market, lease_id: str) -> tables.Lease:
    with market.market.read() as session:
        lease = session.get(tables.Lease, lease_id)
        assert lease is not None
        return lease


def two_replicas(market: Market, requester: Requester) -> tuple[str, list[tuple[Provider, dict[str, Any]]]]:
    job = requester.submit(
        cpu_spec(max_runtime_s=600), max_price_per_core_hour=5_000_000, bidding_window_s=1, replicas=2
    )
    providers = [Provider(market.client).join(cores=4, core_floor=FLOOR) for _ in range(2)]
    for provider in providers:
        provider.poll()
    market.clock.advance(2)
    leased = [(provider, provider.poll()["leases"][0]) for provider in providers]
    return job["job_id"], leased


def test_a_job_failed_on_one_replica_stops_the_other_which_cannot_bring_it_back(market: Market) -> None:
    requester = market.requester()
    job_id, [(first, lease), (second, sibling)] = two_replicas(market, requester)
    for attempt in range(market.market.config.max_failed_attempts):
        market.clock.advance(5)
        assert second.heartbeat(sibling["lease_id"], 1000)["cancel"] is False  # the other replica runs on
        assert report(first, lease, "failed")["status"] == 200
        if attempt + 1 == market.market.config.max_failed_attempts:
            break
        first = Provider(market.client).join(cores=4, core_floor=FLOOR)
        first.poll()
        market.clock.advance(2)
        [lease] = first.poll()["leases"]
    assert requester.job(job_id)["state"] == "failed"

    assert second.heartbeat(sibling["lease_id"], 2000)["cancel"] is True  # told to stop
    stopped = lease_row(market, sibling["lease_id"])
    assert stopped.state == "cancelled"
    assert (stopped.amount or 0) > 0  # paid the time it ran, from the hold

    late = report(second, sibling, "preempted")  # what the stopped replica says next
    assert late["status"] == 200
    job = requester.job(job_id)
    assert job["state"] == "failed"  # not queued again with nothing held
    assert lease_row(market, sibling["lease_id"]).amount == stopped.amount
    assert_balanced(market)


def test_a_late_report_of_a_cancelled_lease_keeps_the_run_time_it_was_paid_for(market: Market) -> None:
    requester = market.requester()
    job = requester.submit(cpu_spec(max_runtime_s=600), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    provider = Provider(market.client).join(cores=4, core_floor=FLOOR)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    market.clock.advance(10)
    cancelled = market.client.post(f"/v1/jobs/{job['job_id']}/cancel", headers=requester.headers)
    assert cancelled.status_code == 200, cancelled.text
    paid = lease_row(market, lease["lease_id"])
    market.clock.advance(120)

    assert report(provider, lease, "finished", run_time_ms=130_000)["status"] == 200

    after = lease_row(market, lease["lease_id"])
    assert (after.state, after.amount, after.run_time_ms) == ("cancelled", paid.amount, paid.run_time_ms)
    assert_balanced(market)


def test_a_disputed_job_is_settled_by_its_operator_not_cancelled(market: Market) -> None:
    requester = market.requester()
    job_id, [(first, lease), (second, sibling)] = two_replicas(market, requester)
    market.clock.advance(30)
    first.finish(lease, 20_000, {"out.txt": b"one answer\n"})
    second.finish(sibling, 20_000, {"out.txt": b"another answer\n"})
    assert requester.job(job_id)["state"] == "disputed"

    refused = market.client.post(f"/v1/jobs/{job_id}/cancel", headers=requester.headers)

    assert refused.status_code == 409
    assert "sparecycles market resolve" in refused.json()["detail"]
    assert requester.job(job_id)["state"] == "disputed"
    assert_balanced(market)


def test_cancelling_pays_a_replica_that_finished_as_well_as_one_still_running(market: Market) -> None:
    requester = market.requester()
    job_id, [(first, lease), (_second, sibling)] = two_replicas(market, requester)
    market.clock.advance(30)
    first.finish(lease, 20_000, {"out.txt": b"done\n"})

    cancelled = market.client.post(f"/v1/jobs/{job_id}/cancel", headers=requester.headers)

    assert cancelled.status_code == 200, cancelled.text
    finished, running = lease_row(market, lease["lease_id"]), lease_row(market, sibling["lease_id"])
    assert finished.state == running.state == "cancelled"
    assert (finished.amount or 0) > 0
    assert (running.amount or 0) > 0
    assert_balanced(market)


def test_an_operator_credit_waits_for_a_submission_holding_the_requesters_row(
    market: Market, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL's row locks")
    market.requester(credit=1_000_000)
    other = create_engine(database_url)
    try:
        with other.connect() as connection:
            connection.execute(text("BEGIN"))
            connection.execute(text("SELECT credit FROM requesters WHERE name = 'studio' FOR UPDATE"))
            credit = threading.Thread(target=market.market.credit, args=("studio", 5))
            credit.start()
            credit.join(1.0)
            assert credit.is_alive()  # it waits for the row, instead of reading a credit about to change
            connection.execute(text("UPDATE requesters SET credit = credit - 200000, held = held + 200000"))
            connection.execute(text("COMMIT"))
            credit.join(30)
            assert not credit.is_alive()
    finally:
        other.dispose()
    with market.market.read() as session:
        requester = session.scalars(select(tables.Requester)).one()
        assert (requester.credit, requester.held) == (800_005, 200_000)


def test_two_first_payouts_to_one_address_at_once_are_both_paid(
    market: Market, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A studio's machines share a payout address. Their first reports, accepted at the same moment, both find
    no payout row to lock and both insert one: the second insert fails when the first commits (PostgreSQL's
    23505). The report is run again, adds to the row the first made, and both leases are paid."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL's row locks")
    requester = market.requester(credit=10**9)
    shared = Account.create()
    providers = [Provider(market.client, payout=shared).join(cores=2, core_floor=FLOOR) for _ in range(2)]  # a job each
    for _ in providers:
        requester.submit(cpu_spec(max_runtime_s=600), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    for provider in providers:
        provider.poll()
    market.clock.advance(2)
    leases = [provider.poll()["leases"][0] for provider in providers]
    market.clock.advance(30)

    both_read = threading.Barrier(2, timeout=10)
    waited: set[int] = set()
    sign = market.market._voucher

    def voucher_once_both_have_read(payout_address: str, cumulative: int) -> Any:
        if threading.get_ident() not in waited:  # each report's first attempt: after reading no payout row
            waited.add(threading.get_ident())
            both_read.wait()
        return sign(payout_address, cumulative)

    monkeypatch.setattr(market.market, "_voucher", voucher_once_both_have_read)
    answers: list[object] = []

    def send(provider: Provider, lease: dict[str, Any]) -> None:
        report = ResultReport(
            lease_id=lease["lease_id"], job_id=lease["job_id"], outcome="finished", exit_code=0, run_time_ms=20_000
        )
        signed = SignedResultReport(report=report, signature=sign_text(provider.identity, report.signing_text()))
        try:
            answers.append(market.market.report(provider.identity.address, lease["lease_id"], signed))
        except Exception as exc:  # the failure the test looks for, kept to be shown
            answers.append(exc)

    threads = [threading.Thread(target=send, args=pair) for pair in zip(providers, leases, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 2
    assert all(getattr(answer, "lease_state", None) == "accepted" for answer in answers), answers
    paid = [lease_row(market, lease["lease_id"]).amount or 0 for lease in leases]
    assert all(amount > 0 for amount in paid)
    with market.market.read() as session:
        payout = session.get(tables.Payout, shared.address)
        assert payout is not None
        assert payout.cumulative == sum(paid)
    assert_balanced(market)

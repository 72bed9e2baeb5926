"""The reference marketplace through its HTTP API: sign-in, the reverse auction, leases, results, money."""

from __future__ import annotations

import hashlib

from siwe import SiweMessage

from sparecycles.protocol.market import (
    PayoutChange,
    ResultReport,
    Voucher,
    lease_amount,
    payout_change_message,
)
from sparecycles.protocol.signing import VoucherTerms, sign_text, voucher_problem

from .conftest import Market, Provider, cpu_spec


def test_the_sign_in_message_parses_with_the_siwe_library_and_verifies(market: Market) -> None:
    provider = Provider(market.client)
    message = provider.sign_in()
    parsed = SiweMessage.from_message(message=message)
    assert parsed.address == provider.identity.address
    assert parsed.domain == market.market.config.domain
    assert parsed.chain_id == market.market.config.chain_id
    parsed.verify(sign_text(provider.identity, message), domain=parsed.domain, timestamp=market.clock.now)
    assert market.client.get("/v1/provider/voucher", headers=provider.headers).status_code == 404  # signed in


def test_a_sign_in_is_refused_when_replayed_signed_by_another_key_or_expired(market: Market) -> None:
    provider = Provider(market.client)
    message = provider.sign_in()
    replay = market.client.post(
        "/v1/auth/sign-in", json={"message": message, "signature": sign_text(provider.identity, message)}
    )
    assert replay.status_code == 401
    assert "used already" in replay.json()["detail"]
    from eth_account import Account

    challenge = market.client.post("/v1/auth/nonce", json={"address": provider.identity.address}).json()
    from sparecycles.protocol.market import NonceResponse
    from sparecycles.protocol.signing import sign_in_message

    fresh = sign_in_message(NonceResponse.model_validate(challenge), provider.identity.address)
    stranger = market.client.post(
        "/v1/auth/sign-in", json={"message": fresh, "signature": sign_text(Account.create(), fresh)}
    )
    assert stranger.status_code == 401
    market.clock.advance(600)  # past the message's expiration time
    late = market.client.post(
        "/v1/auth/sign-in", json={"message": fresh, "signature": sign_text(provider.identity, fresh)}
    )
    assert late.status_code == 401
    assert market.client.get("/v1/provider/work", headers={"Authorization": "Bearer scs_forged"}).status_code == 401


def test_changing_the_payout_address_needs_the_current_payout_addresss_signature(market: Market) -> None:
    from eth_account import Account

    provider = Provider(market.client).join()
    new_payout = Account.create()
    # Registering with another payout address (what a stolen machine key would try) is refused.
    stolen = market.client.put(
        "/v1/provider",
        json={
            "name": "x",
            "cpu_cores": 1,
            "memory_bytes": 1,
            "price_floor_per_gpu_hour": 1,
            "price_floor_per_core_hour": 1,
            "payout_address": new_payout.address,
        },
        headers=provider.headers,
    )
    assert stolen.status_code == 403
    assert "signature from the current payout address" in stolen.json()["detail"]

    def change(signer: object) -> int:
        nonce = market.client.post("/v1/auth/nonce", json={"address": provider.identity.address}).json()["nonce"]
        text = payout_change_message(provider.identity.address, new_payout.address, nonce)
        body = PayoutChange(new_payout_address=new_payout.address, nonce=nonce, signature=sign_text(signer, text))  # type: ignore[arg-type]
        response = market.client.put("/v1/provider/payout", json=body.model_dump(), headers=provider.headers)
        return response.status_code

    assert change(provider.identity) == 403  # the machine key alone cannot redirect earnings
    assert change(provider.payout) == 200
    view = market.client.put("/v1/provider/offer", json={"cpu_cores": 1}, headers=provider.headers).json()
    assert view["payout_address"] == new_payout.address


def test_a_cpu_job_is_won_run_and_paid_bid_times_cores_times_running_seconds(market: Market) -> None:
    requester = market.requester(credit=10**12)
    provider = Provider(market.client).join(cores=4, core_floor=3_600_000)
    job = requester.submit(cpu_spec(cpus=2.0, max_runtime_s=600), max_price_per_core_hour=5_000_000, bidding_window_s=5)
    hold = lease_amount(5_000_000, 2, 600_000)
    assert job["held_base_units"] == hold
    assert requester.account()["credit_base_units"] == 10**12 - hold
    assert provider.poll()["leases"] == []  # it bids; the window is still open
    market.clock.advance(6)
    [lease] = provider.poll()["leases"]
    assert (lease["units"], lease["price_per_unit_hour"]) == (2, 3_600_000)
    provider.heartbeat(lease["lease_id"], 1000)
    market.clock.advance(90)
    ack = provider.finish(lease, 42_000, {"out.txt": b"hi\n"})
    assert (ack["status"], ack["job_state"], ack["lease_state"]) == (200, "completed", "accepted")
    done = requester.job(job["job_id"])
    earned = (3_600_000 // 3600) * 2 * 42  # bid per core-second × cores × running seconds
    assert done["charged_base_units"] == earned == done["leases"][0]["amount_base_units"]
    assert requester.account() == {"name": "studio", "credit_base_units": 10**12 - earned, "held_base_units": 0}
    voucher = Voucher.model_validate(market.client.get("/v1/provider/voucher", headers=provider.headers).json())
    info = market.client.get("/v1/info").json()
    terms = VoucherTerms(info["operator_address"], info["chain_id"], info["voucher_contract"], provider.payout.address)
    assert voucher_problem(voucher, terms) is None
    assert voucher.cumulative_amount == earned
    [output] = done["outputs"]
    assert output["sha256"] == hashlib.sha256(b"hi\n").hexdigest()
    body = market.client.get(f"/v1/jobs/{job['job_id']}/outputs/out.txt", headers=requester.headers)
    assert body.content == b"hi\n"


def test_the_lower_floor_wins_and_a_job_below_every_floor_stays_queued_saying_why(market: Market) -> None:
    requester = market.requester()
    cheap = Provider(market.client).join(core_floor=2_000)
    dear = Provider(market.client).join(core_floor=5_000)
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    dear.poll()
    cheap.poll()
    market.clock.advance(2)
    assert dear.poll()["leases"] == []
    [lease] = cheap.poll()["leases"]
    assert lease["price_per_unit_hour"] == 2_000
    assert requester.job(job["job_id"])["state"] == "running"

    stingy = requester.submit(cpu_spec(), max_price_per_core_hour=1_000, bidding_window_s=1)
    dear.poll()
    market.clock.advance(2)
    dear.poll()
    view = requester.job(stingy["job_id"])
    assert view["state"] == "queued"
    assert "no provider bids at or below your maximum of 1000" in view["reason"]
    assert "lowest floor" in view["reason"]


def test_a_provider_that_stops_heartbeating_loses_the_lease_unpaid_and_another_completes_the_job(
    market: Market,
) -> None:
    requester = market.requester()
    dying = Provider(market.client).join(core_floor=1_000)
    spare = Provider(market.client).join(core_floor=2_000)
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    dying.poll()
    spare.poll()
    market.clock.advance(2)
    [first] = dying.poll()["leases"]
    dying.heartbeat(first["lease_id"])
    market.clock.advance(market.market.config.lease_timeout_s + 1)  # the dying provider is gone
    spare.poll()  # the job is back in the queue, the spare bids
    market.clock.advance(2)
    [second] = spare.poll()["leases"]
    assert second["job_id"] == job["job_id"]
    assert spare.finish(second, 5_000, {"out.txt": b"ok\n"})["job_state"] == "completed"
    view = requester.job(job["job_id"])
    states = {lease["provider_address"]: (lease["state"], lease["amount_base_units"]) for lease in view["leases"]}
    assert states[dying.identity.address] == ("lost", None)
    assert states[spare.identity.address] == ("accepted", lease_amount(2_000, 2, 5_000))
    # The lost provider comes back: its uploads are refused, its report is kept but nothing is paid.
    upload = market.client.put(
        f"/v1/provider/leases/{first['lease_id']}/outputs/out.txt", content=b"ok\n", headers=dying.headers
    )
    assert upload.status_code == 409
    late = dying.report(
        ResultReport(lease_id=first["lease_id"], job_id=first["job_id"], outcome="finished", run_time_ms=5_000)
    )
    assert (late["status"], late["lease_state"]) == (200, "lost")
    assert market.client.get("/v1/provider/voucher", headers=dying.headers).status_code == 404


def test_replicas_that_disagree_are_disputed_until_the_operator_resolves(market: Market) -> None:
    requester = market.requester()
    honest = Provider(market.client).join(core_floor=1_000)
    cheat = Provider(market.client).join(core_floor=1_500)
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1, replicas=2)
    honest.poll()
    cheat.poll()
    market.clock.advance(2)
    [honest_lease] = honest.poll()["leases"]
    [cheat_lease] = cheat.poll()["leases"]
    honest.finish(honest_lease, 10_000, {"out.txt": b"the right answer\n"})
    ack = cheat.finish(cheat_lease, 10_000, {"out.txt": b"made up\n"})
    assert ack["job_state"] == "disputed"
    view = requester.job(job["job_id"])
    assert all(lease["amount_base_units"] is None for lease in view["leases"])
    for provider in (honest, cheat):
        assert market.client.get("/v1/provider/voucher", headers=provider.headers).status_code == 404
    resolved = market.market.resolve(job["job_id"], honest.identity.address)
    assert resolved.state == "completed"
    paid = {lease.provider_address: lease.amount_base_units for lease in resolved.leases}
    assert paid == {honest.identity.address: lease_amount(1_000, 2, 10_000), cheat.identity.address: None}
    assert market.client.get("/v1/provider/voucher", headers=cheat.headers).status_code == 404
    assert requester.account()["held_base_units"] == 0


def test_a_report_is_idempotent_and_must_be_signed_by_the_providers_identity(market: Market) -> None:
    from eth_account import Account

    requester = market.requester()
    provider = Provider(market.client).join()
    requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    report = ResultReport(lease_id=lease["lease_id"], job_id=lease["job_id"], outcome="finished", run_time_ms=1_000)
    forged = provider.report(report, signer=Account.create())
    assert forged["status"] == 403
    first = provider.report(report)
    again = provider.report(report)
    assert first == again
    assert first["job_state"] == "completed"
    voucher = market.client.get("/v1/provider/voucher", headers=provider.headers).json()
    assert voucher["cumulative_amount"] == lease_amount(1_000, 2, 1_000)  # paid once
    changed = report.model_copy(update={"run_time_ms": 9_000})
    assert provider.report(changed)["status"] == 409


def test_credit_is_checked_at_submission(market: Market) -> None:
    requester = market.requester(name="poor", credit=10)
    response = market.client.post(
        "/v1/jobs", json={"spec": cpu_spec(), "max_price_per_core_hour": 10_000}, headers=requester.headers
    )
    assert response.status_code == 402
    assert "ask the operator for credit" in response.json()["detail"]


def _leased(market: Market, provider: Provider) -> dict[str, object]:
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    return dict(lease)


def test_a_preempted_lease_is_not_paid_and_the_job_goes_back_to_the_queue_with_its_history(market: Market) -> None:
    requester = market.requester()
    provider = Provider(market.client).join()
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    lease = _leased(market, provider)
    report = ResultReport(
        lease_id=str(lease["lease_id"]),
        job_id=job["job_id"],
        outcome="preempted",
        reason="the owner is back",
        run_time_ms=9_000,
    )
    ack = provider.report(report)
    assert (ack["lease_state"], ack["job_state"]) == ("preempted", "queued")
    view = requester.job(job["job_id"])
    assert view["reason"].startswith("queued again")
    assert [(item["state"], item["amount_base_units"]) for item in view["leases"]] == [("preempted", None)]
    again = _leased(market, provider)  # the same provider may take it again once its owner has gone
    assert again["job_id"] == job["job_id"]
    assert len(requester.job(job["job_id"])["leases"]) == 2  # the history is kept


def test_a_job_that_fails_three_times_fails_and_its_hold_is_released(market: Market) -> None:
    requester = market.requester(credit=10**12)
    providers = [Provider(market.client).join() for _ in range(3)]
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    for attempt, provider in enumerate(providers, start=1):
        lease = _leased(market, provider)
        report = ResultReport(
            lease_id=str(lease["lease_id"]), job_id=job["job_id"], outcome="failed", exit_code=2, run_time_ms=100
        )
        ack = provider.report(report)
        assert ack["job_state"] == ("failed" if attempt == 3 else "queued")
        if attempt < 3:  # a provider the job failed on does not get it again
            assert provider.poll()["leases"] == []
    view = requester.job(job["job_id"])
    assert "failed 3 times" in view["reason"]
    assert view["charged_base_units"] == 0
    assert requester.account() == {"name": "studio", "credit_base_units": 10**12, "held_base_units": 0}


def test_cancelling_a_running_job_stops_its_lease_and_pays_the_time_it_ran(market: Market) -> None:
    requester = market.requester(credit=10**12)
    provider = Provider(market.client).join(core_floor=3_600_000)
    job = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    lease = _leased(market, provider)
    provider.heartbeat(str(lease["lease_id"]), 1_000)
    market.clock.advance(10)
    cancelled = market.client.post(f"/v1/jobs/{job['job_id']}/cancel", headers=requester.headers).json()
    assert cancelled["state"] == "cancelled"
    assert provider.heartbeat(str(lease["lease_id"]))["cancel"] is True
    assert str(lease["lease_id"]) in provider.poll()["cancelled"]
    paid = cancelled["leases"][0]["amount_base_units"]
    assert paid == lease_amount(3_600_000, 2, 10_000)  # the 10 s it ran since it was leased
    assert requester.account()["credit_base_units"] == 10**12 - paid
    voucher = market.client.get("/v1/provider/voucher", headers=provider.headers).json()
    assert voucher["cumulative_amount"] == paid


def test_the_same_report_sent_twice_at_once_is_paid_once(market: Market) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sparecycles.protocol.market import SignedResultReport

    requester = market.requester()
    provider = Provider(market.client).join()
    job = requester.submit(cpu_spec(), max_price_per_core_hour=10_000, bidding_window_s=1)
    lease = _leased(market, provider)
    report = ResultReport(lease_id=str(lease["lease_id"]), job_id=job["job_id"], outcome="finished", run_time_ms=7_000)
    signed = SignedResultReport(report=report, signature=sign_text(provider.identity, report.signing_text()))
    with ThreadPoolExecutor(8) as pool:
        acks = list(
            pool.map(lambda _: market.market.report(provider.identity.address, report.lease_id, signed), range(8))
        )
    assert {ack.job_state for ack in acks} == {"completed"}
    voucher = market.client.get("/v1/provider/voucher", headers=provider.headers).json()
    assert voucher["cumulative_amount"] == lease_amount(1_000, 2, 7_000)
    assert requester.job(job["job_id"])["charged_base_units"] == lease_amount(1_000, 2, 7_000)


def test_a_gpu_job_with_a_minimum_score_goes_only_to_gpus_that_reach_it(market: Market) -> None:
    requester = market.requester()
    fast = Provider(market.client).join(gpus=1, gpu_floor=2_000)  # its GPUs score 100
    spec = cpu_spec(gpus=1, min_vram_bytes=1024**3)
    picky = requester.submit(spec, max_price_per_gpu_hour=10_000, bidding_window_s=1, min_score=150.0)
    fast.poll()
    market.clock.advance(2)
    assert fast.poll()["leases"] == []
    assert "no provider online offers enough free capacity" in requester.job(picky["job_id"])["reason"]
    modest = requester.submit(spec, max_price_per_gpu_hour=10_000, bidding_window_s=1, min_score=90.0)
    fast.poll()
    market.clock.advance(2)
    [lease] = fast.poll()["leases"]
    assert lease["job_id"] == modest["job_id"]


def test_the_schema_migrates_step_by_step_and_a_newer_database_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    import pytest
    from sqlalchemy import text

    from sparecycles.agent.market_server import schema
    from sparecycles.agent.market_server.db import open_engine

    engine = open_engine(f"sqlite:///{Path(str(tmp_path)) / 'm.db'}")
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision() == "0007"
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(schema.SchemaError, match="newer than this version of SpareCycles knows"):
        schema.upgrade(engine)

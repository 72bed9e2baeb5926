"""A studio's fleet on the marketplace, in-process on SQLite and PostgreSQL: enrolment codes, group policies,
machines' reports and the operator's view, drain and pause-until, and studio jobs that run only on the group's
machines and preempt outside work. Each operator action is in the audit log."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from sparecycles.protocol.fleet import GroupPolicy

from .conftest import Market, Provider, cpu_spec
from .test_operator_tools import Operator

REPORT = {"agent_version": "0.1.0", "state": "working", "reason": "working: job running", "gpus": []}


def member(market: Market, operator: Operator, group: str = "render-farm", **registration: Any) -> Provider:
    code = operator.post(f"/groups/{group}/enrol-codes", {"expires_s": 3600}, status=201)["code"]
    provider = Provider(market.client).join(**registration)
    joined = market.client.post("/v1/provider/group", json={"code": code}, headers=provider.headers)
    assert joined.status_code == 200, joined.text
    return provider


def report(market: Market, provider: Provider, **fields: Any) -> dict[str, Any]:
    response = market.client.put("/v1/provider/fleet", json={**REPORT, **fields}, headers=provider.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def studio_requester(market: Market, operator: Operator, group: str = "render-farm") -> Any:
    requester = market.requester("studio-artist")
    operator.put("/requesters/studio-artist/group", {"group": group})
    return requester


def test_a_machine_joins_with_a_code_and_reports_the_groups_policy_which_the_operator_sees(market: Market) -> None:
    operator = Operator(market)
    policy = {"mode": "schedule", "windows": ["Mon-Fri 19:00-08:00", "Sat-Sun"], "max_temperature_c": 80}
    assert operator.put("/groups/render-farm/policy", policy)["policy_version"] == 1
    provider = member(market, operator)
    directive = report(market, provider, gpu_hours_today=1.5, energy_kwh_today=0.4)
    membership = directive["membership"]
    assert membership["group"] == "render-farm"
    assert GroupPolicy.model_validate(membership["policy"]) == GroupPolicy.model_validate(policy)
    assert (directive["drain"], directive["paused_until"]) == (False, None)

    operator.put("/groups/render-farm/policy", {**policy, "max_temperature_c": 75})
    assert report(market, provider)["membership"]["policy"]["max_temperature_c"] == 75

    [machine] = operator.get("/fleet")
    assert (machine["address"], machine["group"], machine["online"]) == (provider.identity.address, "render-farm", True)
    assert (machine["state"], machine["reason"], machine["agent_version"]) == (
        "working",
        "working: job running",
        "0.1.0",
    )
    market.clock.advance(market.market.config.provider_online_s + 1)
    [machine] = operator.get("/fleet")
    assert machine["online"] is False  # silent past the heartbeat timeout
    actions = [entry["action"] for entry in operator.get("/audit")]
    assert {"group_policy", "enrol_code", "join_group"} <= set(actions)


def test_an_unknown_or_expired_code_and_an_unregistered_machine_are_refused(market: Market) -> None:
    operator = Operator(market)
    code = operator.post("/groups/render-farm/enrol-codes", {"expires_s": 60}, status=201)["code"]
    provider = Provider(market.client).join()
    wrong = market.client.post("/v1/provider/group", json={"code": "sce_not-a-code"}, headers=provider.headers)
    assert wrong.status_code == 403
    assert "ask the studio's operator" in wrong.json()["detail"]
    stranger = Provider(market.client)
    stranger.sign_in()
    unregistered = market.client.post("/v1/provider/group", json={"code": code}, headers=stranger.headers)
    assert unregistered.status_code == 404
    market.clock.advance(61)
    expired = market.client.post("/v1/provider/group", json={"code": code}, headers=provider.headers)
    assert expired.status_code == 403
    assert report(market, provider)["membership"] is None


def test_leaving_ends_the_membership_and_the_machine_leaves_the_fleet_view(market: Market) -> None:
    operator = Operator(market)
    provider = member(market, operator)
    left = market.client.delete("/v1/provider/group", headers=provider.headers)
    assert left.status_code == 200
    assert left.json()["membership"] is None
    assert operator.get("/fleet") == []
    assert market.client.delete("/v1/provider/group", headers=provider.headers).status_code == 409


def test_studio_jobs_go_only_to_the_groups_machines_and_first(market: Market) -> None:
    operator = Operator(market)
    outsider = Provider(market.client).join()
    inside = member(market, operator, cores=2)  # room for one of the two jobs
    outside_job = market.requester("outside").submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    studio_job = studio_requester(market, operator).submit(
        cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1
    )
    outsider.poll()
    inside.poll()
    market.clock.advance(2)
    [outsider_lease] = outsider.poll()["leases"]
    [inside_lease] = inside.poll()["leases"]
    assert outsider_lease["job_id"] == outside_job["job_id"]  # never the studio's
    assert inside_lease["job_id"] == studio_job["job_id"]  # its own studio's job first


def test_a_group_closed_to_outside_jobs_takes_none(market: Market) -> None:
    operator = Operator(market)
    operator.put("/groups/render-farm/policy", {"outside_jobs": False})
    inside = member(market, operator)
    outside_job = market.requester("outside").submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    inside.poll()
    market.clock.advance(2)
    assert inside.poll()["leases"] == []
    assert market.market.job_any(outside_job["job_id"]).state == "queued"


def test_a_drained_machine_keeps_its_lease_and_gets_no_new_one(market: Market) -> None:
    operator = Operator(market)
    provider = member(market, operator, cores=2)
    requester = market.requester("outside")
    first = requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    assert lease["job_id"] == first["job_id"]
    provider.heartbeat(lease["lease_id"])  # started: not offered again
    machine = operator.post(f"/fleet/{provider.identity.address}/drain", {"drain": True})
    assert machine["drain"] is True
    assert report(market, provider)["drain"] is True
    requester.submit(cpu_spec(cpus=1.0), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    provider.poll()
    market.clock.advance(2)
    assert provider.poll()["leases"] == []  # a free core, but drained
    assert provider.heartbeat(lease["lease_id"])["cancel"] is False  # the running job goes on
    operator.post(f"/fleet/{provider.identity.address}/drain", {"drain": False})
    provider.poll()
    market.clock.advance(2)
    assert len(provider.poll()["leases"]) == 1
    assert [entry["action"] for entry in operator.get("/audit") if entry["action"] in ("drain", "undrain")] == [
        "drain",
        "undrain",
    ]


def test_a_paused_machine_gives_its_lease_back_and_takes_work_again_after_the_time(market: Market) -> None:
    operator = Operator(market)
    provider = member(market, operator)
    job = market.requester("outside").submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    until = market.clock.now + timedelta(minutes=10)
    machine = operator.post(f"/fleet/{provider.identity.address}/pause", {"until": until.isoformat()})
    assert machine["paused_until"] is not None
    assert lease["lease_id"] in provider.poll()["cancelled"]  # the agent stops it
    assert provider.heartbeat(lease["lease_id"])["cancel"] is True
    assert report(market, provider)["paused_until"] is not None
    market.clock.advance(5)
    assert provider.poll()["leases"] == []  # requeued, but not to a paused machine
    assert market.market.job_any(job["job_id"]).state == "queued"
    market.clock.advance(10 * 60)
    provider.poll()
    market.clock.advance(2)
    assert [offer["job_id"] for offer in provider.poll()["leases"]] == [job["job_id"]]
    [pause] = [entry for entry in operator.get("/audit") if entry["action"] == "pause"]
    assert pause["detail"]["leases_requeued"] == [lease["lease_id"]]


def test_a_studio_job_preempts_outside_work_on_a_busy_group_machine(market: Market) -> None:
    operator = Operator(market)
    provider = member(market, operator, cores=2)
    outside = market.requester("outside")
    outside_job = outside.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)  # both cores
    provider.poll()
    market.clock.advance(2)
    [outside_lease] = provider.poll()["leases"]
    studio_job = studio_requester(market, operator).submit(
        cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1
    )
    market.clock.advance(2)
    work = provider.poll()  # the window closed without a free machine: the tick preempts, this poll hears it
    assert outside_lease["lease_id"] in work["cancelled"]
    market.clock.advance(2)
    [studio_lease] = provider.poll()["leases"]
    assert studio_lease["job_id"] == studio_job["job_id"]
    view = outside.job(outside_job["job_id"])
    assert view["state"] == "queued"
    assert [lease["state"] for lease in view["leases"]] == ["preempted"]
    assert view["leases"][0]["amount_base_units"] is None  # not paid: the studio took its machine back


def test_a_project_quota_refuses_a_job_past_it_and_costs_are_reported_per_project(market: Market) -> None:
    operator = Operator(market)
    provider = Provider(market.client).join()
    artist = market.requester("artist")
    terms = {"max_price_per_core_hour": 5_000_000, "bidding_window_s": 1, "project": "sh010"}
    job = artist.submit(cpu_spec(max_runtime_s=3600), **terms)
    quota = operator.put("/requesters/artist/projects/sh010/quota", {"max_base_units": job["held_base_units"] + 10})
    assert quota["committed_base_units"] == job["held_base_units"]
    refused = market.client.post(
        "/v1/jobs", json={"spec": cpu_spec(max_runtime_s=3600), **terms}, headers=artist.headers
    )
    assert refused.status_code == 402
    assert "project sh010" in refused.json()["detail"]
    other = artist.submit(cpu_spec(max_runtime_s=3600), **{**terms, "project": "sh020"})  # another project
    assert other["project"] == "sh020"
    provider.poll()
    market.clock.advance(2)
    [lease] = [lease for lease in provider.poll()["leases"] if lease["job_id"] == job["job_id"]]
    market.clock.advance(1800)  # it ran half an hour (no poll meanwhile: nothing expires it)
    provider.heartbeat(lease["lease_id"], run_time_ms=1_800_000)
    provider.finish(lease, 1_800_000, {"out.txt": b"frame"})
    rows = {row["project"]: row for row in operator.get("/costs", by="project")}
    done = artist.job(job["job_id"])
    assert done["state"] == "completed"
    assert rows["sh010"]["charged_base_units"] == done["charged_base_units"] > 0
    assert rows["sh010"]["core_hours"] == pytest.approx(2 * 0.5)  # two cores for half an hour
    assert rows["sh020"]["held_base_units"] == other["held_base_units"]
    by_person = operator.get("/costs", by="requester-project")
    assert {(row["requester"], row["project"]) for row in by_person} == {("artist", "sh010"), ("artist", "sh020")}
    assert [entry["subject"] for entry in operator.audit("project_quota")] == ["requester:artist"]
    lifted = market.client.put(
        "/v1/admin/requesters/artist/projects/sh010/quota", json={"max_base_units": None}, headers=operator.headers
    )
    assert lifted.status_code == 200
    assert lifted.json() is None


JOB_TERMS = {"max_price_per_core_hour": 5_000_000, "bidding_window_s": 5}


def _after_its_bid(market: Market, provider: Provider, job: dict[str, Any], change: Any) -> list[str]:
    """The jobs ``provider`` is leased when its studio's ``change`` comes between its bid on ``job`` and the
    auction's close."""
    provider.poll()  # bids on the open job
    change()
    market.clock.advance(6)
    return [lease["job_id"] for lease in provider.poll()["leases"]]


def test_a_bid_placed_before_the_studio_paused_the_machine_does_not_win(market: Market) -> None:
    operator = Operator(market)
    machine = member(market, operator, cores=2)
    job = market.requester("outside").submit(cpu_spec(), **JOB_TERMS)
    until = (market.clock.now + timedelta(hours=8)).isoformat()

    leased = _after_its_bid(
        market, machine, job, lambda: operator.post(f"/fleet/{machine.identity.address}/pause", {"until": until})
    )

    assert leased == []
    assert market.market.job_any(job["job_id"]).state == "queued"


def test_a_bid_on_an_outside_job_does_not_win_once_the_group_is_closed_to_them(market: Market) -> None:
    operator = Operator(market)
    machine = member(market, operator, cores=2)
    job = market.requester("outside").submit(cpu_spec(), **JOB_TERMS)

    closing = lambda: operator.put("/groups/render-farm/policy", {"outside_jobs": False})  # noqa: E731

    assert _after_its_bid(market, machine, job, closing) == []


@pytest.mark.parametrize("move", ["leave", "another group"])
def test_a_studio_job_bid_on_before_the_machine_left_the_group_does_not_follow_it(market: Market, move: str) -> None:
    operator = Operator(market)
    machine = member(market, operator, cores=2)
    job = studio_requester(market, operator).submit(cpu_spec(), **JOB_TERMS)
    code = operator.post("/groups/other-group/enrol-codes", {"expires_s": 3600}, status=201)["code"]

    def moving() -> None:
        if move == "leave":
            answer = market.client.delete("/v1/provider/group", headers=machine.headers)
        else:
            answer = market.client.post("/v1/provider/group", json={"code": code}, headers=machine.headers)
        assert answer.status_code == 200, answer.text

    assert _after_its_bid(market, machine, job, moving) == []


def test_rejoining_its_own_group_keeps_the_operators_drain_and_pause(market: Market) -> None:
    operator = Operator(market)
    machine = member(market, operator)
    operator.post(f"/fleet/{machine.identity.address}/drain", {"drain": True})
    until = (market.clock.now + timedelta(hours=8)).isoformat()
    operator.post(f"/fleet/{machine.identity.address}/pause", {"until": until})
    code = operator.post("/groups/render-farm/enrol-codes", {"expires_s": 3600}, status=201)["code"]

    again = market.client.post("/v1/provider/group", json={"code": code}, headers=machine.headers)

    assert again.status_code == 200, again.text
    directive = report(market, machine)
    assert directive["drain"] is True
    assert directive["paused_until"] is not None


@pytest.mark.parametrize("name", ["render farm/night!", "", "-leading", "x" * 64])
def test_the_operator_cannot_make_a_group_the_protocol_cannot_name(market: Market, name: str) -> None:
    from sparecycles.agent.market_server.admin import MarketAdmin
    from sparecycles.agent.market_server.market import MarketError

    fleet = MarketAdmin(market.market).fleet
    with pytest.raises(MarketError, match="is not a group name"):
        fleet.enrol_code(name, 3600, actor="operator")
    with pytest.raises(MarketError, match="is not a group name"):
        fleet.set_policy(name, GroupPolicy(), actor="operator")
    assert Operator(market).get("/groups") == []


def test_a_groups_codes_are_revoked_at_once_and_its_machines_stay(market: Market) -> None:
    """A code that leaked would enrol machines until it expires (up to 30 days): the operator ends all of the
    group's codes now. Machines that joined with them stay; a new code works again."""
    operator = Operator(market)
    inside = member(market, operator)  # joined with a code of its own
    leaked = operator.post("/groups/render-farm/enrol-codes", {"expires_s": 30 * 86400}, status=201)["code"]
    other_group = operator.post("/groups/other-group/enrol-codes", {"expires_s": 3600}, status=201)["code"]

    revoked = market.client.delete("/v1/admin/groups/render-farm/enrol-codes", headers=operator.headers)

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["detail"].startswith("2 enrolment code(s) of group render-farm revoked")
    outsider = Provider(market.client).join()
    refused = market.client.post("/v1/provider/group", json={"code": leaked}, headers=outsider.headers)
    assert refused.status_code == 403
    assert "unknown or expired" in refused.json()["detail"]
    assert report(market, inside)["membership"]["group"] == "render-farm"  # it stays in the group
    elsewhere = market.client.post("/v1/provider/group", json={"code": other_group}, headers=outsider.headers)
    assert elsewhere.status_code == 200, elsewhere.text  # another group's codes still work
    fresh = operator.post("/groups/render-farm/enrol-codes", {"expires_s": 3600}, status=201)["code"]
    newcomer = Provider(market.client).join()
    assert market.client.post("/v1/provider/group", json={"code": fresh}, headers=newcomer.headers).status_code == 200
    [entry] = operator.audit("revoke_enrol_codes")
    assert (entry["actor"], entry["subject"]) == ("admin token on-call", "group:render-farm")


def test_revoking_the_codes_of_a_group_that_does_not_exist_says_so(market: Market) -> None:
    operator = Operator(market)
    missing = market.client.delete("/v1/admin/groups/nobody-here/enrol-codes", headers=operator.headers)
    assert missing.status_code == 404
    assert "market groups" in missing.json()["detail"]
    unauthorised = market.client.delete("/v1/admin/groups/nobody-here/enrol-codes")
    assert unauthorised.status_code == 401


def test_a_pause_committed_while_the_auction_closes_keeps_the_machine_from_winning(
    market: Market, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, two server processes: the studio pauses the machine after the auction read its bid but before
    it leased the job. The auction reads each winner again under a lock, so the paused machine does not win."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the pause would wait for the auction's transaction")
    operator = Operator(market)
    machine = member(market, operator, cores=2)
    job = market.requester("outside").submit(cpu_spec(), **JOB_TERMS)
    machine.poll()  # bids on the open job
    until = market.clock.now + timedelta(hours=8)
    read_bids = market.market._auction_cache

    def then_paused(connection: Any, due: list[Any], now: Any) -> Any:
        cache = read_bids(connection, due, now)
        if due:  # the batch with the job, its bids read: the studio pauses the machine now
            pausing = threading.Thread(
                target=operator.admin.fleet.pause, args=(machine.identity.address, until), kwargs={"actor": "studio"}
            )
            pausing.start()
            pausing.join(30)
            assert not pausing.is_alive()  # committed while the auction's transaction is still open
        return cache

    monkeypatch.setattr(market.market, "_auction_cache", then_paused)
    market.clock.advance(6)

    assert machine.poll()["leases"] == []
    assert market.market.job_any(job["job_id"]).state == "queued"

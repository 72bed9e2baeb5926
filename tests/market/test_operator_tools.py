"""The operator's tools through the admin API (an admin token), on SQLite and on PostgreSQL: bans, keys,
cancelling, storage quotas, output retention, and the append-only audit log that records each."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import text

from sparecycles.agent.market_server.admin import MarketAdmin
from sparecycles.protocol.market import lease_amount

from .conftest import Market, Provider, cpu_spec


class Operator:
    """An operator holding an admin token, speaking to /v1/admin."""

    def __init__(self, market: Market, name: str = "on-call") -> None:
        self.market = market
        self.admin = MarketAdmin(market.market)
        self.token = self.admin.create_token(name)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = self.market.client.get(f"/v1/admin{path}", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200, **params: Any) -> Any:
        response = self.market.client.post(f"/v1/admin{path}", json=body, params=params, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()

    def put(self, path: str, body: dict[str, Any]) -> Any:
        response = self.market.client.put(f"/v1/admin{path}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def audit(self, action: str) -> list[dict[str, Any]]:
        return [entry for entry in self.get("/audit") if entry["action"] == action]


def _leased(
    market: Market, provider: Provider, requester_credit: int = 10**12, name: str = "studio", **terms: Any
) -> tuple[Any, Any]:
    requester = market.requester(name, credit=requester_credit)
    job = requester.submit(cpu_spec(max_runtime_s=600), max_price_per_core_hour=5_000_000, bidding_window_s=1, **terms)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    return requester, (job, lease)


def test_the_admin_api_needs_a_live_admin_token(market: Market) -> None:
    assert market.client.get("/v1/admin/providers").status_code == 401
    requester = market.requester()
    assert market.client.get("/v1/admin/providers", headers=requester.headers).status_code == 401
    operator = Operator(market)
    assert operator.get("/providers") == []
    operator.admin.revoke_token("on-call")
    refused = market.client.get("/v1/admin/providers", headers=operator.headers)
    assert refused.status_code == 401
    assert "admin-token" in refused.json()["detail"]
    assert [entry.subject for entry in operator.admin.audit(action="revoke_token")] == ["token:on-call"]


def test_a_banned_providers_lease_is_requeued_its_sign_in_refused_and_the_ban_audited(market: Market) -> None:
    cheater = Provider(market.client).join(cores=4, core_floor=1000)
    honest = Provider(market.client).join(cores=4, core_floor=2000)
    requester, (job, lease) = _leased(market, cheater)
    operator = Operator(market)

    ack = operator.post(f"/providers/{cheater.identity.address}/ban", {"reason": "forged results"})
    assert "1 lease(s) requeued" in ack["detail"]
    view = requester.job(job["job_id"])
    assert view["state"] == "queued"
    assert view["leases"][0]["state"] == "lost"
    assert "banned" in view["leases"][0]["reason"]
    assert market.client.get("/v1/provider/work", headers=cheater.headers).status_code == 401  # session ended
    challenge = market.client.post("/v1/auth/nonce", json={"address": cheater.identity.address}).json()
    from sparecycles.protocol.market import NonceResponse
    from sparecycles.protocol.signing import sign_in_message, sign_text

    message = sign_in_message(NonceResponse.model_validate(challenge), cheater.identity.address)
    refused = market.client.post(
        "/v1/auth/sign-in", json={"message": message, "signature": sign_text(cheater.identity, message)}
    )
    assert refused.status_code == 403
    assert "forged results" in refused.json()["detail"]
    # The job goes to an honest provider in the next round.
    honest.poll()
    market.clock.advance(2)
    [second] = honest.poll()["leases"]
    assert second["job_id"] == job["job_id"]
    [banned] = operator.get("/providers", banned=True)
    assert (banned["address"], banned["ban_reason"]) == (cheater.identity.address, "forged results")
    [entry] = operator.audit("ban")
    assert entry["actor"] == "admin token on-call"
    assert entry["detail"]["leases_requeued"] == [lease["lease_id"]]
    operator.post(f"/providers/{cheater.identity.address}/unban")
    cheater.sign_in()  # allowed again
    assert [entry["subject"] for entry in operator.audit("unban")] == [f"provider:{cheater.identity.address}"]


def test_a_revoked_key_gets_401_and_a_rotated_key_replaces_the_old_one(market: Market) -> None:
    requester = market.requester("render-team")
    operator = Operator(market)
    operator.post("/requesters/render-team/revoke-key")
    refused = market.client.get("/v1/requester", headers=requester.headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert operator.get("/requesters/render-team")["key_revoked"] is True
    new_key = operator.post("/requesters/render-team/rotate-key")["api_key"]
    assert new_key.startswith("scr_")
    assert market.client.get("/v1/requester", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    assert market.client.get("/v1/requester", headers=requester.headers).status_code == 401
    assert new_key not in str(operator.get("/audit"))  # the audit log never holds a key
    assert [entry["action"] for entry in operator.get("/audit") if entry["subject"] == "requester:render-team"] == [
        "add_requester",
        "credit",
        "revoke_key",
        "rotate_key",
    ]


def test_an_operators_cancel_returns_the_held_credit_and_pays_the_time_run(market: Market) -> None:
    provider = Provider(market.client).join(cores=4, core_floor=3_600_000)
    requester, (job, lease) = _leased(market, provider)
    held = job["held_base_units"]
    assert requester.account()["held_base_units"] == held
    market.clock.advance(10)
    operator = Operator(market)
    cancelled = operator.post(f"/jobs/{job['job_id']}/cancel")
    ran = lease_amount(3_600_000, 2, 10_000)  # the lease's ten seconds at its bid
    assert (cancelled["state"], cancelled["charged_base_units"]) == ("cancelled", ran)
    assert requester.account() == {"name": "studio", "credit_base_units": 10**12 - ran, "held_base_units": 0}
    assert provider.heartbeat(lease["lease_id"])["cancel"] is True
    [cancel] = operator.audit("cancel_job")
    assert cancel["subject"] == f"job:{job['job_id']}"
    [release] = operator.audit("release")
    assert release["amount_base_units"] == held - ran
    [charge] = operator.audit("charge")
    assert charge["amount_base_units"] == ran
    [hold] = operator.audit("hold")
    assert hold["amount_base_units"] == held
    again = market.client.post(f"/v1/admin/jobs/{job['job_id']}/cancel", headers=operator.headers)
    assert again.status_code == 409


def test_expired_outputs_are_deleted_and_the_quota_refuses_an_upload_past_it(market: Market) -> None:
    provider = Provider(market.client).join(cores=4, core_floor=1000)
    requester, (job, lease) = _leased(market, provider)
    operator = Operator(market)
    operator.market.client.put(
        "/v1/admin/requesters/studio/quota", json={"storage_quota_bytes": 10}, headers=operator.headers
    ).raise_for_status()
    over = market.client.put(
        f"/v1/provider/leases/{lease['lease_id']}/outputs/big.bin", content=b"x" * 11, headers=provider.headers
    )
    assert over.status_code == 413
    assert "storage quota (10 bytes) is full" in over.json()["detail"]
    [refusal] = operator.audit("quota_refused")
    assert refusal["subject"] == "requester:studio"
    assert operator.audit("set_quota")[0]["detail"] == {"quota_bytes": 10}

    ack = provider.finish(lease, 1000, {"out.txt": b"0123456789"})  # exactly the quota
    assert ack["job_state"] == "completed"
    stored = market.data_dir / "outputs" / lease["lease_id"] / "out.txt"
    assert stored.read_bytes() == b"0123456789"
    assert operator.get("/requesters/studio")["stored_bytes"] == 10
    assert operator.post("/retention", older_than_days=30) == {"files_deleted": 0, "bytes_freed": 0}
    market.clock.advance(31 * 86400)
    assert operator.post("/retention", older_than_days=30) == {"files_deleted": 1, "bytes_freed": 10}
    assert not stored.exists()
    gone = market.client.get(f"/v1/jobs/{job['job_id']}/outputs/out.txt", headers=requester.headers)
    assert gone.status_code == 404
    assert "output retention" in gone.json()["detail"]
    assert operator.get("/requesters/studio")["stored_bytes"] == 0
    [retention] = operator.audit("retention")
    assert retention["detail"]["files"] == 1


def test_the_audit_log_is_append_only_in_the_database(market: Market) -> None:
    market.requester()
    engine = market.market._engine
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar_one() == 2  # add, credit


def test_jobs_and_providers_are_listed_with_filters(market: Market) -> None:
    first = Provider(market.client).join(cores=4, core_floor=1000)
    Provider(market.client).join(cores=4, core_floor=99_000_000)
    _requester, (job, _lease) = _leased(market, first)
    other = market.requester("other-team")
    queued = other.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=60)
    operator = Operator(market)
    assert [item["job"]["job_id"] for item in operator.get("/jobs", state="running")] == [job["job_id"]]
    assert [item["job"]["job_id"] for item in operator.get("/jobs", requester="other-team")] == [queued["job_id"]]
    assert [item["job"]["job_id"] for item in operator.get("/jobs", provider=first.identity.address.lower())] == [
        job["job_id"]
    ]
    listed = operator.get("/providers", online=True)
    assert {item["address"] for item in listed} == {first.identity.address, *[item["address"] for item in listed]}
    assert len(listed) == 2
    [busy] = [item for item in listed if item["active_leases"]]
    assert busy["address"] == first.identity.address
    market.clock.advance(3600)
    assert operator.get("/providers", online=True) == []
    assert operator.get("/providers", search=first.identity.address[2:10].lower())[0]["address"] == (
        first.identity.address
    )


def test_a_report_accepted_at_once_records_the_lease_the_job_the_payout_and_both_movements(market: Market) -> None:
    """The common report (one replica, finished) is accepted in Core statements: what it writes is what the
    other reports' path writes (tests/market/test_server.py checks that path on replicated jobs)."""
    provider = Provider(market.client).join(cores=4, core_floor=3_600_000)
    operator = Operator(market)
    paid = []
    for seconds in (30, 45):
        requester, (job, lease) = _leased(market, provider, name=f"studio-{seconds}")
        provider.heartbeat(lease["lease_id"], 1000)
        market.clock.advance(seconds)
        ack = provider.finish(lease, seconds * 1000, {"out.txt": b"hi\n"})
        assert (ack["status"], ack["lease_state"], ack["job_state"]) == (200, "accepted", "completed")
        earned = lease_amount(3_600_000, 2, seconds * 1000)
        paid.append(earned)
        done = requester.job(job["job_id"])
        assert (done["state"], done["reason"], done["held_base_units"]) == ("completed", "completed", 0)
        assert done["charged_base_units"] == earned
        assert done["outputs"] == [{"path": "out.txt", "size_bytes": 3, "sha256": hashlib.sha256(b"hi\n").hexdigest()}]
        assert requester.account()["held_base_units"] == 0
        view = market.client.get(f"/v1/provider/leases/{lease['lease_id']}", headers=provider.headers).json()
        assert (view["state"], view["run_time_ms"], view["amount_base_units"]) == ("accepted", seconds * 1000, earned)
        assert view["paid_cumulative_base_units"] == sum(paid)  # the payout row was made, then added to
        [charge] = [entry for entry in operator.audit("charge") if entry["subject"] == f"job:{job['job_id']}"]
        assert charge["amount_base_units"] == earned
        assert charge["detail"] == {"lease": lease["lease_id"], "payout": provider.payout.address}
        [release] = [entry for entry in operator.audit("release") if entry["subject"] == f"job:{job['job_id']}"]
        assert release["amount_base_units"] == job["held_base_units"] - earned
        assert release["detail"] == {"state": "completed"}
    voucher = market.client.get("/v1/provider/voucher", headers=provider.headers).json()
    assert voucher["cumulative_amount"] == sum(paid)

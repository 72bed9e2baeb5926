"""Output uploads that overlap a report or each other: what the report vouched for stays, and the caps hold.

An upload's body streams outside any transaction; these tests run the other request while it streams (from
inside the body's ``read``), which is where a provider's parallel requests can land."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest

from sparecycles.agent.market_server.admin import MarketAdmin
from sparecycles.agent.market_server.market import Conflict, TooLarge
from sparecycles.protocol.market import OutputFile, ResultReport
from tests.market.conftest import Market, Provider, Requester, cpu_spec


class Meanwhile(io.RawIOBase):
    """An upload body that runs ``meanwhile`` after its first read, then ends: a request that lands while this
    upload is still streaming."""

    def __init__(self, data: bytes, meanwhile: Callable[[], object]) -> None:
        self._data, self._meanwhile, self._sent = data, meanwhile, False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._sent:
            self._meanwhile()
            return b""
        self._sent = True
        return self._data


def leased(market: Market, **spec: Any) -> tuple[Provider, dict[str, Any], Requester]:
    requester = market.requester()
    provider = Provider(market.client).join(cores=4, core_floor=3_600_000)
    job = requester.submit(cpu_spec(**spec), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    provider.poll()
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    market.clock.advance(10)
    assert lease["job_id"] == job["job_id"]
    return provider, lease, requester


def stored(market: Market, lease_id: str) -> dict[str, bytes]:
    folder = market.data_dir / "outputs" / lease_id
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_an_upload_still_streaming_when_the_report_is_accepted_does_not_replace_the_reported_file(
    market: Market,
) -> None:
    provider, lease, requester = leased(market)
    good = b"the result the report names\n"
    report = ResultReport(
        lease_id=lease["lease_id"],
        job_id=lease["job_id"],
        outcome="finished",
        exit_code=0,
        run_time_ms=5000,
        outputs=[OutputFile(path="out.txt", size_bytes=len(good), sha256=hashlib.sha256(good).hexdigest())],
    )
    upload = f"/v1/provider/leases/{lease['lease_id']}/outputs/out.txt"
    assert market.client.put(upload, content=good, headers=provider.headers).status_code == 200
    acks: list[dict[str, Any]] = []
    late = Meanwhile(b"something else\n", lambda: acks.append(provider.report(report)))

    with pytest.raises(Conflict, match="was reported while this output was uploading"):
        market.market.store_output(provider.identity.address, lease["lease_id"], "out.txt", late)

    assert acks[0]["lease_state"] == "accepted"
    assert stored(market, lease["lease_id"]) == {"out.txt": good}  # nor a .part file left behind
    [output] = requester.job(lease["job_id"])["outputs"]
    assert output["sha256"] == hashlib.sha256(good).hexdigest()
    download = market.client.get(f"/v1/jobs/{lease['job_id']}/outputs/out.txt", headers=requester.headers)
    assert download.content == good


def test_uploads_side_by_side_cannot_pass_the_jobs_output_cap_together(market: Market) -> None:
    provider, lease, _requester = leased(market, max_output_bytes=1000)
    address, lease_id = provider.identity.address, lease["lease_id"]

    def second() -> None:
        market.market.store_output(address, lease_id, "b.bin", io.BytesIO(b"b" * 900))

    with pytest.raises(TooLarge, match="exceed the job's output cap"):
        market.market.store_output(address, lease_id, "a.bin", Meanwhile(b"a" * 900, second))

    assert stored(market, lease_id) == {"b.bin": b"b" * 900}


def test_uploads_side_by_side_cannot_pass_the_requesters_storage_quota_together(market: Market) -> None:
    provider, lease, _requester = leased(market)
    MarketAdmin(market.market).set_quota("studio", 1000)
    address, lease_id = provider.identity.address, lease["lease_id"]

    def second() -> None:
        market.market.store_output(address, lease_id, "b.bin", io.BytesIO(b"b" * 900))

    with pytest.raises(TooLarge, match="storage quota"):
        market.market.store_output(address, lease_id, "a.bin", Meanwhile(b"a" * 900, second))

    assert stored(market, lease_id) == {"b.bin": b"b" * 900}

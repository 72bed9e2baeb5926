"""Remembered credentials: a server process trusts the session tokens and API keys it found in the database
until they expire, and still catches bans, revocations and rotations made through another process."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sparecycles.agent.market_server.admin import MarketAdmin
from sparecycles.agent.market_server.credentials import KnownCredentials, Withdrawn
from sparecycles.agent.market_server.market import Marketplace
from sparecycles.agent.market_server.serve import MarketOptions, open_market

from .conftest import Clock, Market, Provider


class _Database:
    """What ``KnownCredentials`` asks the database, answered from fields the test sets; counts the asks."""

    def __init__(self) -> None:
        self.banned: list[str] = []
        self.key_hashes: dict[str, str] = {}
        self.asked: list[set[str]] = []

    def __call__(self, requester_ids: Collection[str]) -> Withdrawn:
        self.asked.append(set(requester_ids))
        return Withdrawn(self.banned, {who: self.key_hashes[who] for who in requester_ids if who in self.key_hashes})


def test_remembered_credentials_are_rechecked_in_bulk_once_per_interval() -> None:
    clock = Clock()
    known = KnownCredentials(5.0, clock)
    database = _Database()
    expires = clock.now + timedelta(hours=1)
    known.remember_session("token-a", "0xAbC", expires)
    known.remember_session("token-b", "0xDef", expires)
    known.remember_key("key-1", "req-1")
    known.remember_key("key-2", "req-2")
    database.key_hashes = {"req-1": "key-1", "req-2": "key-2"}

    clock.advance(4)
    known.recheck_if_due(database)
    assert database.asked == []  # within the interval nothing is read
    assert known.provider("token-a", clock.now) == "0xAbC"

    database.banned = ["0xabc"]  # banned elsewhere (addresses compare without case)
    database.key_hashes["req-2"] = "key-2-rotated"
    clock.advance(2)
    known.recheck_if_due(database)
    assert database.asked == [{"req-1", "req-2"}]
    assert known.provider("token-a", clock.now) is None
    assert known.provider("token-b", clock.now) == "0xDef"
    assert known.requester("key-1") == "req-1"
    assert known.requester("key-2") is None

    known.recheck_if_due(database)
    assert len(database.asked) == 1  # the next check waits for the next interval
    assert known.provider("token-b", expires) is None  # an expired session is not trusted


def test_a_clock_set_back_checks_at_once_and_zero_remembers_nothing() -> None:
    clock = Clock()
    known = KnownCredentials(5.0, clock)
    database = _Database()
    clock.advance(-3600)
    known.recheck_if_due(database)
    assert len(database.asked) == 1

    off = KnownCredentials(0.0, clock)
    off.remember_session("token", "0xAbC", clock.now + timedelta(hours=1))
    off.remember_key("key", "req")
    assert off.provider("token", clock.now) is None
    assert off.requester("key") is None


def _other_process(market: Market, tmp_path: object) -> Marketplace:
    """A second server process's marketplace on the same database and operator key."""
    from pathlib import Path

    home = Path(str(tmp_path))
    options = MarketOptions(data_dir=market.data_dir, key_file=home / "operator.key", db_url=_url(market))
    return open_market(options, clock=lambda: datetime.now(UTC))


def _url(market: Market) -> str:
    return market.market._engine.url.render_as_string(hide_password=False)


def test_a_ban_and_a_key_revocation_through_another_process_reach_this_one_within_auth_cache_s(
    market: Market, tmp_path: object
) -> None:
    provider = Provider(market.client).join()
    requester = market.requester("render-team")
    assert market.client.get("/v1/provider/work", headers=provider.headers).status_code == 200
    assert market.client.get("/v1/requester", headers=requester.headers).status_code == 200

    other = MarketAdmin(_other_process(market, tmp_path))
    other.ban(provider.identity.address, "spam", actor="on-call")
    other.revoke_key("render-team", actor="on-call")
    # This process still trusts what it read: nothing told it yet.
    assert market.client.get("/v1/provider/work", headers=provider.headers).status_code == 200
    assert market.client.get("/v1/requester", headers=requester.headers).status_code == 200

    market.clock.advance(market.market.config.auth_cache_s)
    refused = market.client.get("/v1/provider/work", headers=provider.headers)
    assert refused.status_code == 401, refused.text
    assert "sign in again" in refused.json()["detail"]
    assert market.client.get("/v1/requester", headers=requester.headers).status_code == 401

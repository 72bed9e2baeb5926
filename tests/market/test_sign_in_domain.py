"""The agent signs a sign-in challenge only for the marketplace it talks to: a marketplace that relays another
marketplace's challenge (or whoever rewrites plain http on the way) gets no signature it could use there.
The challenges a real marketplace issues, directly or behind a reverse proxy, are still signed."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sparecycles.agent.market.client import Backoff, ForeignChallenge, MarketClient
from sparecycles.agent.market.provider import (
    MachineOffer,
    MarketProvider,
    ProviderSetup,
    sign_in_with,
)
from sparecycles.agent.market_server.serve import MarketOptions, open_market
from sparecycles.protocol.market import NonceResponse
from sparecycles.protocol.signing import challenge_problem, sign_in_message, sign_text, verify_sign_in
from tests.market.conftest import run_provider_until

from .conftest import Market
from .market_process import MarketProcess
from .test_provider_loop import LIMITS, market_url

URL = "https://market.example.org"
CHAIN = 31337


def challenge(
    domain: str = "market.example.org",
    uri: str = "https://market.example.org/v1/auth/sign-in",
    chain_id: int = CHAIN,
    statement: str = "Sign in to the SpareCycles marketplace.",
) -> NonceResponse:
    now = datetime.now(UTC)
    return NonceResponse(
        nonce="abcdef123456",
        domain=domain,
        uri=uri,
        chain_id=chain_id,
        statement=statement,
        issued_at=now,
        expiration_time=now + timedelta(minutes=5),
    )


# --- the rule, on plain values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "issued"),
    [
        (URL, challenge()),
        (URL + "/", challenge()),
        ("https://Market.Example.org:443", challenge()),  # the default port, spelt out or not
        (URL, challenge(domain="market.example.org:443", uri="https://market.example.org:443/v1/auth/sign-in")),
        ("http://127.0.0.1:8787", challenge(domain="127.0.0.1:8787", uri="http://127.0.0.1:8787/v1/auth/sign-in")),
        ("http://[::1]:8787", challenge(domain="[::1]:8787", uri="http://[::1]:8787/v1/auth/sign-in")),
        (URL + "/market", challenge(uri="https://market.example.org/market/v1/auth/sign-in")),  # under a path
    ],
)
def test_a_challenge_for_this_marketplace_may_be_signed(url: str, issued: NonceResponse) -> None:
    assert challenge_problem(issued, url, CHAIN) is None


@pytest.mark.parametrize(
    ("issued", "words"),
    [
        (challenge(domain="other.example.org"), "for domain 'other.example.org', not 'market.example.org'"),
        (challenge(domain="market.example.org:8443"), "for domain 'market.example.org:8443'"),
        (challenge(domain="me@market.example.org"), "for domain"),
        (challenge(domain="market.example.org/x"), "for domain"),
        (challenge(domain="market.example.org wants"), "for domain"),
        (challenge(uri="https://other.example.org/v1/auth/sign-in"), "URI 'https://other.example.org/v1/auth/sign-in'"),
        (challenge(uri="http://market.example.org/v1/auth/sign-in"), "is not on https://market.example.org"),
        (challenge(uri="https://market.example.org:8443/v1/auth/sign-in"), "URI"),
        (challenge(uri="https://market.example.org/\nChain ID: 1"), "URI"),
        (challenge(uri="market.example.org/v1/auth/sign-in"), "URI"),
        (challenge(chain_id=1), "for chain 1, not 31337"),
        (challenge(statement="Sign in.\nURI: https://other.example.org"), "statement spans several lines"),
    ],
)
def test_a_challenge_naming_anything_else_is_refused_with_the_field(issued: NonceResponse, words: str) -> None:
    problem = challenge_problem(issued, URL, CHAIN)
    assert problem is not None
    assert words in problem


def test_behind_a_reverse_proxy_the_public_urls_challenge_is_signed(tmp_path: Path) -> None:
    """The operator gives the proxy's address as --public-url; providers are configured with that address."""
    options = MarketOptions(
        data_dir=tmp_path / "market",
        key_file=tmp_path / "operator.key",
        public_url="https://market.example.org/",
    )
    market = open_market(options)
    issued = market.issue_nonce(Account.create().address)
    chain = market.info().chain_id
    assert challenge_problem(issued, "https://market.example.org", chain) is None
    assert challenge_problem(issued, "http://127.0.0.1:8787", chain) is not None  # where the server listens


# --- the agent's sign-in ----------------------------------------------------------------------------


class Challenger:
    """A marketplace that answers its info and the given challenge, and records what is sent to sign in."""

    def __init__(self, issued: dict[str, Any], chain_id: int = CHAIN) -> None:
        self.issued = issued
        self.chain_id = chain_id
        self.sign_ins: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        if path == "/info":
            return httpx.Response(
                200,
                json={
                    "name": "challenger",
                    "chain_id": self.chain_id,
                    "voucher_contract": "0x" + "de" * 20,
                    "operator_address": Account.create().address,
                    "heartbeat_interval_s": 5,
                    "lease_timeout_s": 30,
                    "max_output_bytes": 1000,
                },
            )
        if path == "/auth/nonce":
            return httpx.Response(200, json=self.issued)
        if path == "/auth/sign-in":
            self.sign_ins.append(json.loads(request.content))
            return httpx.Response(
                200,
                json={
                    "token": "scs_" + "t" * 40,
                    "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    "address": self.sign_ins[-1]["message"].split("\n")[1],
                },
            )
        return httpx.Response(404, json={"code": "not_found", "detail": path})


def sign_in_at(url: str, challenger: Challenger, chain_id: int | None = None) -> MarketClient:
    identity = Account.create()

    async def scenario() -> MarketClient:
        client = MarketClient(url, transport=httpx.MockTransport(challenger))
        try:
            await sign_in_with(client, identity, chain_id=chain_id)
        finally:
            await client.close()
        return client

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("issued", "field"),
    [
        (challenge(domain="other.example.org"), "for domain 'other.example.org'"),
        (challenge(uri="https://other.example.org/v1/auth/sign-in"), "URI"),
        (challenge(chain_id=1), "for chain 1, not 31337"),
    ],
)
def test_the_agent_signs_nothing_for_another_domain_origin_or_chain(issued: NonceResponse, field: str) -> None:
    challenger = Challenger(issued.model_dump(mode="json"))
    with pytest.raises(ForeignChallenge) as refused:
        sign_in_at(URL, challenger)
    assert challenger.sign_ins == []  # nothing signed, nothing sent
    message = str(refused.value)
    assert message.startswith(f"refused to sign in to the marketplace at {URL}: ")
    assert field in message
    assert "marketplace.url" in message  # what to check


def test_the_chain_announced_in_the_info_is_the_one_required() -> None:
    announced = Challenger(challenge(chain_id=8453).model_dump(mode="json"), chain_id=8453)
    assert sign_in_at(URL, announced).token is not None
    other = Challenger(challenge(chain_id=8453).model_dump(mode="json"), chain_id=8453)
    with pytest.raises(ForeignChallenge, match="for chain 8453, not 31337"):
        sign_in_at(URL, other, chain_id=CHAIN)  # the caller's chain wins over the info's


def test_the_agent_signs_its_own_marketplaces_challenge() -> None:
    issued = challenge()
    challenger = Challenger(issued.model_dump(mode="json"))
    client = sign_in_at(URL, challenger)
    assert client.token is not None
    [sent] = challenger.sign_ins
    signed = verify_sign_in(
        sent["message"], sent["signature"], domain="market.example.org", chain_id=CHAIN, now=datetime.now(UTC)
    )
    assert signed.nonce == issued.nonce


def test_the_real_marketplaces_challenge_is_signed_and_opens_a_session(market: Market) -> None:
    identity = Account.create()

    async def scenario() -> str | None:
        client = MarketClient(market_url(market), transport=httpx.ASGITransport(app=market.client.app))
        try:
            await sign_in_with(client, identity)
            return client.token
        finally:
            await client.close()

    token = asyncio.run(scenario())
    assert token is not None
    assert market.client.get("/v1/provider/prices", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.slow
def test_a_served_marketplace_behind_its_public_url_is_signed_in_to_there_only(tmp_path: Path) -> None:
    """A real `market serve` whose --public-url is another name of it (as a reverse proxy's would be): an agent
    configured with that URL signs in over the network; one configured with the listening address does not."""
    market = MarketProcess(tmp_path / "market")
    public = f"http://localhost:{market.port}"
    market.start("--public-url", public)

    async def sign_in(url: str) -> str | None:
        client = MarketClient(url, timeout_s=10)
        try:
            await sign_in_with(client, Account.create())
            return client.token
        finally:
            await client.close()

    try:
        assert asyncio.run(sign_in(public)) is not None
        with pytest.raises(ForeignChallenge, match=f"for domain 'localhost:{market.port}', not '127.0.0.1:"):
            asyncio.run(sign_in(market.url()))
    finally:
        market.stop()


def test_a_relayed_challenge_of_another_marketplace_is_not_signed(
    market: Market, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rogue marketplace asks the real one for a challenge in this machine's name and relays it: signed, it
    would be a session at the real marketplace as this machine (shown by signing one by hand). The provider
    refuses, says why in its status, and never sends a signature."""
    identity = Account.create()
    real = market.client.post("/v1/auth/nonce", json={"address": identity.address}).json()
    rogue = Challenger(real, chain_id=real["chain_id"])

    relayed = market.client.post("/v1/auth/nonce", json={"address": identity.address}).json()
    message = sign_in_message(NonceResponse.model_validate(relayed), identity.address)
    stolen = market.client.post(
        "/v1/auth/sign-in", json={"message": message, "signature": sign_text(identity, message)}
    )
    assert stolen.status_code == 200  # what the rogue would have had, had the agent signed

    provider = MarketProvider(
        client=MarketClient("http://rogue.example", transport=httpx.MockTransport(rogue)),
        identity=identity,
        runtime=None,  # type: ignore[arg-type]  # nothing runs: it never signs in
        setup=lambda: ProviderSetup(Account.create().address, 0, 0, "test", (), LIMITS),
        offer=lambda: MachineOffer({}, 2),
        state_dir=tmp_path / "provider",
        poll_wait_s=0.05,
        backoff=Backoff(first_s=0.05, cap_s=0.1),
    )

    with caplog.at_level(logging.WARNING):
        run_provider_until(provider, lambda: "domain" in (provider.problem or ""), seconds=2)
    assert rogue.sign_ins == []
    assert not provider.signed_in
    assert provider.problem is not None
    assert f"for domain '{real['domain']}', not 'rogue.example'" in provider.problem
    assert "nothing was signed" in caplog.text

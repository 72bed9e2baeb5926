"""The agent's private marketplace admits only the agent's own machine as a provider.

It listens on loopback, where any other process or user of the computer can reach it; admitted, such a
process could underbid the owner's machine, win the owner's jobs with their specs (and secrets), and answer
them with outputs of its own choosing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sparecycles.agent.market.private import PrivateMarketplace
from sparecycles.protocol.market import NonceResponse
from sparecycles.protocol.signing import sign_in_message, sign_text


async def sign_in(url: str, identity: LocalAccount) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{url}/v1", trust_env=False) as client:
        challenge = await client.post("/auth/nonce", json={"address": identity.address})
        assert challenge.status_code == 200, challenge.text
        message = sign_in_message(NonceResponse.model_validate(challenge.json()), identity.address)
        return await client.post("/auth/sign-in", json={"message": message, "signature": sign_text(identity, message)})


def test_only_the_agents_own_identity_signs_in_as_a_provider(tmp_path: Path) -> None:
    own, stranger = Account.create(), Account.create()

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        private = PrivateMarketplace(tmp_path / "state", provider=own.address)
        url = await private.start()
        try:
            return await sign_in(url, own), await sign_in(url, stranger)
        finally:
            await private.stop()

    admitted, refused = asyncio.run(scenario())

    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["address"] == own.address
    assert refused.status_code == 403
    assert "only its owner's own machine" in refused.json()["detail"]


def test_without_an_identity_key_nobody_signs_in(tmp_path: Path) -> None:
    async def scenario() -> httpx.Response:
        private = PrivateMarketplace(tmp_path / "state", provider=None)
        url = await private.start()
        try:
            return await sign_in(url, Account.create())
        finally:
            await private.stop()

    assert asyncio.run(scenario()).status_code == 403

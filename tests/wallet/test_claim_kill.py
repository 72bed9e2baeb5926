"""A real agent process killed after it sent a claim and before the claim was mined.

anvil runs with ``--no-mining`` (automine is switched on only while the test deploys its contracts), so
the claim waits in the node's pool while the agent is killed with SIGKILL. After a restart the agent sends
no second claim; once the test mines a block, the ledger holds exactly one payout, with that transaction's
hash, and nothing is claimable any more. The voucher is one the vault's signer signed, kept where the
agent keeps its marketplace voucher; the claim is signed by a key in the session's Secret Service.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import pytest
from eth_account import Account
from web3.types import RPCEndpoint

from sparecycles.agent.keystore import KEYRING_SERVICE
from sparecycles.protocol.signing import sign_voucher
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, anvil_binary, start_anvil
from tests.conftest import CLI, RunningAgent, agent_env, run_cli, start_agent

from .test_claims import Chain, deploy
from .test_wallet_agent import use_key_wallet
from .test_wallet_service import secret_service

pytestmark = pytest.mark.timeout(300)

EARNED = 1_234_567


@pytest.fixture
def quiet_anvil(tmp_path: Path) -> Iterator[Anvil]:
    """An anvil that mines only when told to (``--no-mining``)."""
    running = start_anvil(tmp_path, anvil_binary(), extra=("--no-mining",))
    yield running
    running.stop()


def rpc(anvil: Anvil, method: str, *params: Any) -> Any:
    return anvil.web3.provider.make_request(RPCEndpoint(method), list(params)).get("result")


def pool_size(anvil: Anvil) -> int:
    return int(rpc(anvil, "txpool_status")["pending"], 16)


def configure(home: Path, chain: Chain, payout: str) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[marketplace]\npayout_address = "{payout}"\nidentity_key_file = "{home / "identity.key"}"\n'
        f'[chain]\nrpc_url = "{chain.anvil.url}"\nchain_id = {ANVIL_CHAIN_ID}\npayout_token = "{chain.token}"\n'
        f'vault = "{chain.vault}"\nnative_price = 0.01\n'  # gas valued at next to nothing: the guard has its own test
    )


def cli_json(home: Path, *args: str) -> Any:
    result = run_cli(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_an_agent_killed_between_sending_and_mining_records_one_payout_after_restart(
    home: Path, quiet_anvil: Anvil
) -> None:
    secret_service()
    rpc(quiet_anvil, "evm_setAutomine", True)  # deployments and funding are mined as they come
    chain = deploy(quiet_anvil, quiet_anvil.accounts[0])
    earner = Account.create()
    quiet_anvil.transfer_native(quiet_anvil.accounts[0], earner.address, 10**18)
    rpc(quiet_anvil, "evm_setAutomine", False)  # from here on, only the test mines

    voucher = sign_voucher(chain.operator, earner.address, EARNED, chain_id=ANVIL_CHAIN_ID, contract=chain.vault)
    kept = home / "state" / "provider" / "voucher.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(voucher.model_dump_json())
    configure(home, chain, earner.address)
    wallet = f"kill-{earner.address[2:10].lower()}"
    agent: RunningAgent | None = start_agent(home)
    claim: subprocess.Popen[str] | None = None
    try:
        use_key_wallet(home, wallet, earner)
        assert cli_json(home, "wallet", "claimable")["claimable"] == EARNED

        claim = subprocess.Popen(
            [CLI, "wallet", "claim"], env=agent_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while pool_size(quiet_anvil) == 0:  # sent: the node holds it, unmined
            assert claim.poll() is None, claim.communicate()
            assert time.monotonic() < deadline, agent.console[-3000:]
            time.sleep(0.05)
        agent.process.send_signal(signal.SIGKILL)
        agent.process.wait(10)
        agent = None
        claim.wait(60)

        agent = start_agent(home)
        waiting = cli_json(home, "wallet", "claimable")
        assert waiting["pending_tx"] is not None  # found again after the restart, still unmined
        assert (waiting["claimed"], waiting["claimable"]) == (0, EARNED)
        again = run_cli(home, "wallet", "claim")
        assert again.returncode != 0
        assert "already on its way" in again.stderr
        assert pool_size(quiet_anvil) == 1  # no second claim was sent
        assert cli_json(home, "payouts")["payouts"] == []

        rpc(quiet_anvil, "evm_mine")
        settled = cli_json(home, "wallet", "claimable")
        assert (settled["pending_tx"], settled["claimed"], settled["claimable"]) == (None, EARNED, 0)
        [payout] = cli_json(home, "payouts")["payouts"]
        assert (payout["amount_base_units"], payout["tx_hash"]) == (EARNED, waiting["pending_tx"])
        assert payout["payout_address"].lower() == earner.address.lower()
        assert chain.balance(earner.address) == EARNED
    finally:
        if claim is not None and claim.poll() is None:
            claim.kill()
        if agent is not None:
            agent.stop()
        with contextlib.suppress(keyring.errors.PasswordDeleteError):  # leave the session's keyring as it was
            keyring.delete_password(KEYRING_SERVICE, f"wallet:{wallet}")

"""End to end on a payout vault: a real anvil, a real marketplace process against the vault, a real agent
process running jobs in Docker, its wallet in the real Secret Service, and the user's commands.

A requester deposits tokens to the vault and is credited; a job runs and is paid; `sparecycles wallet claim`
pays the provider exactly what it earned, and `sparecycles payouts` shows it with the transaction hash.
The operator then rotates the vault's signing key: the voucher the agent holds (old key) is not claimable;
the restarted marketplace re-signs it with the new key, and the agent claims the rest with it. Finally the
payouts move to a watch-only address with no coin for gas: the claim is relayed by the marketplace's
operator, which pays the gas, and the agent's ledger records that payout from the chain.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import keyring
import keyring.errors
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from sparecycles.agent.keystore import KEYRING_SERVICE, KeySource, load_key
from sparecycles.protocol.market import Voucher, lease_amount
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, anvil, contract_json
from tests.conftest import run_cli, start_agent
from tests.jobs.conftest import LocalRegistry
from tests.jobs.test_market_end_to_end import wait_for
from tests.market.market_process import MarketProcess
from tests.wallet.test_wallet_agent import use_key_wallet
from tests.wallet.test_wallet_service import secret_service

pytestmark = [pytest.mark.docker, pytest.mark.timeout(420)]
__all__ = ["anvil"]  # the fixture, from tests/chain_support.py

CORE_FLOOR = 3_600_000  # base units per core-hour: 1000 per core-second
UNIT = 10**6  # the test token has 6 decimals


class Vault:
    """The token and the vault on anvil, deployed by ``owner``, paying vouchers of the marketplace's key."""

    def __init__(self, anvil: Anvil, owner: LocalAccount, signer: str) -> None:
        self.anvil, self.owner = anvil, owner
        token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, 10**9 * UNIT)
        vault = anvil.deploy(contract_json("PayoutVault"), owner, token, signer)
        self.token = anvil.web3.eth.contract(
            address=Web3.to_checksum_address(token), abi=contract_json("TestToken")["abi"]
        )
        self.vault = anvil.web3.eth.contract(
            address=Web3.to_checksum_address(vault), abi=contract_json("PayoutVault")["abi"]
        )

    def transact(self, account: LocalAccount, function: Any) -> None:
        self.anvil.send(
            account, {"to": function.address, "data": function.build_transaction({"from": account.address})["data"]}
        )

    def balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())


def cli_json(home: Path, *args: str) -> Any:
    result = run_cli(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_deposit_job_claim_rotation_and_a_relayed_claim(
    tmp_path: Path,
    anvil: Anvil,
    local_registry: LocalRegistry,
    busybox_image: str,
    docker_exec_works: None,
) -> None:
    secret_service()
    owner = anvil.accounts[8]
    market = MarketProcess(tmp_path / "market")
    operator_key = market.folder / "operator.key"
    operator = load_key(KeySource("marketplace-operator", operator_key), create=True)
    chain = Vault(anvil, owner, operator.address)
    gas_key = tmp_path / "gas.key"  # the operator's key for relayed claims' gas
    gas_payer = Account.create()
    gas_key.write_text("0x" + bytes(gas_payer.key).hex() + "\n")
    gas_key.chmod(0o600)
    anvil.transfer_native(owner, gas_payer.address, 10**18)
    market.serve_arguments = (
        *("--chain-rpc", anvil.url, "--vault", chain.vault.address, "--chain-id", str(ANVIL_CHAIN_ID)),
        *("--confirmations", "0", "--relay-gas-key-file", str(gas_key)),
        *("--heartbeat-interval", "1", "--lease-timeout", "5"),
    )
    market.start()

    earner = Account.create()  # the provider's payout wallet: its key goes into the keyring, it pays its own gas
    anvil.transfer_native(owner, earner.address, 10**18)
    home = tmp_path / "provider"
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[work]\nmode = "schedule"\n[schedule]\nwindows = ["daily"]\n'
        f'[jobs]\nallowed_registries = ["{local_registry.host}"]\nmax_cpus = 2\n'
        f'[marketplace]\nurl = "{market.url()}"\npayout_address = "{earner.address}"\n'
        f'price_floor_per_core_hour = {CORE_FLOOR}\nidentity_key_file = "{home / "identity.key"}"\n'
        f'[chain]\nrpc_url = "{anvil.url}"\nchain_id = {ANVIL_CHAIN_ID}\npayout_token = "{chain.token.address}"\n'
        f'vault = "{chain.vault.address}"\n'
        "native_price = 0.01\n"  # gas valued at next to nothing here: the gas guard has its own test
    )
    wallet = f"e2e-{earner.address[2:10].lower()}"
    agent = start_agent(home)
    key = market.operator("add-requester", "studio")
    requester = httpx.Client(base_url=market.url(), headers={"Authorization": f"Bearer {key}"}, timeout=10)
    try:
        use_key_wallet(home, wallet, earner)

        # The requester deposits to the vault from its own address and is credited once it is seen.
        depositor = Account.create()
        anvil.transfer_native(owner, depositor.address, 10**18)
        anvil.transfer_token(chain.token.address, owner, depositor.address, 5 * UNIT)
        market.operator("deposit-address", "studio", depositor.address)
        chain.transact(depositor, chain.token.functions.approve(chain.vault.address, 5 * UNIT))
        chain.transact(depositor, chain.vault.functions.deposit(5 * UNIT))
        wait_for(lambda: requester.get("/v1/requester").json()["credit_base_units"] == 5 * UNIT, what="the deposit")

        voucher_file = home / "state" / "provider" / "voucher.json"

        def run_job(text: str) -> int:
            """One job through the marketplace and the agent; what it paid the provider."""
            command = ["sh", "-c", f"sleep 1; echo {text} > /job/output/out.txt"]
            spec = {"image": busybox_image, "command": command, "cpus": 1.0, "max_runtime_s": 120}
            submitted = requester.post(
                "/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 1}
            )
            assert submitted.status_code == 201, submitted.text
            job_id = submitted.json()["job_id"]
            view = wait_for(
                lambda: (v := requester.get(f"/v1/jobs/{job_id}").json())["state"] == "completed" and v,
                what=f"job {job_id} ({agent.console_file})",
            )
            [lease] = view["leases"]
            assert lease["amount_base_units"] == lease_amount(CORE_FLOOR, 1, lease["run_time_ms"])
            return int(lease["amount_base_units"])

        def kept_voucher() -> Voucher | None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return Voucher.model_validate_json(voucher_file.read_text())
            return None

        # A job, and a claim from the CLI: exactly what was earned arrives, and the ledger shows it.
        first = run_job("one")
        wait_for(lambda: (v := kept_voucher()) and v.cumulative_amount == first, what="the first voucher")
        claimed = run_cli(home, "wallet", "claim", timeout=90)
        assert claimed.returncode == 0, claimed.stderr
        assert f"Claimed {first} base units to {earner.address}" in claimed.stdout
        assert chain.balance(earner.address) == first
        [payout] = cli_json(home, "payouts")["payouts"]
        assert (payout["amount_base_units"], payout["chain_id"]) == (first, ANVIL_CHAIN_ID)
        assert payout["tx_hash"] in claimed.stdout

        # A second job, not claimed yet; then the operator rotates the vault's key while its server is down.
        second = run_job("two")
        wait_for(lambda: (v := kept_voucher()) and v.cumulative_amount == first + second, what="the second voucher")
        market.stop()
        new_key = tmp_path / "operator-new.key"
        rotated = load_key(KeySource("marketplace-operator", new_key), create=True)
        chain.transact(owner, chain.vault.functions.rotateSigner(rotated.address))
        stale = cli_json(home, "wallet", "claimable")  # the marketplace is down: the kept voucher, old key
        assert stale["claimable"] == 0
        assert "cannot be claimed" in stale["problem"]
        refused = run_cli(home, "wallet", "claim")
        assert refused.returncode != 0
        assert "cannot be claimed" in refused.stderr

        shutil.copyfile(new_key, operator_key)  # the server restarts with the new key and re-signs at start
        market.start()
        renewed = wait_for(
            lambda: (shown := cli_json(home, "wallet", "claimable"))["claimable"] == second and shown,
            what="the agent to take the re-signed voucher",
        )
        assert renewed["problem"] is None
        rest = run_cli(home, "wallet", "claim", timeout=90)
        assert rest.returncode == 0, rest.stderr
        assert f"Claimed {second} base units" in rest.stdout
        assert chain.balance(earner.address) == first + second

        # Payouts move to a watch-only address with no coin: its claim is relayed, the operator pays the gas.
        cold = Account.create().address
        assert run_cli(home, "wallet", "watch", f"{wallet}-cold", cold).returncode == 0
        moved = run_cli(home, "wallet", "use", f"{wallet}-cold")
        assert moved.returncode == 0, moved.stderr
        third = run_job("three")
        wait_for(lambda: (v := kept_voucher()) and v.payout_address == cold, what="the cold address's voucher")
        asked = run_cli(home, "wallet", "claim")
        assert asked.returncode == 0, asked.stderr
        assert f"Asked the marketplace to relay a claim of {third} base units to {cold}" in asked.stdout
        wait_for(lambda: chain.balance(cold) == third, what="the relayed claim")
        assert anvil.web3.eth.get_balance(cold) == 0

        def relayed_payouts() -> list[dict[str, Any]]:
            cli_json(home, "wallet", "claimable")  # a look at the vault records payouts sent from elsewhere
            payouts = cli_json(home, "payouts")["payouts"]
            return [payout for payout in payouts if payout["payout_address"].lower() == cold.lower()]

        [relayed] = wait_for(relayed_payouts, 30, what="the relayed payout in the ledger")
        assert relayed["amount_base_units"] == third
        assert len(cli_json(home, "payouts")["payouts"]) == 3
    finally:
        requester.close()
        agent.stop()
        market.stop()
        for name in (wallet, f"{wallet}-cold"):  # leave the session's keyring as it was
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, f"wallet:{name}")

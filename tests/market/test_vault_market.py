"""The marketplace against a payout vault on a real anvil: requesters are credited with their deposits (once
each, whatever restarts), vouchers name the vault and its chain, a rotated operator key re-signs what is
owed, the operator relays claims for a payout address with no coin, and `market deploy-vault` deploys one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import delete
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from sparecycles.agent.chain.client import ChainMismatchError
from sparecycles.agent.keystore import KeySource, load_key
from sparecycles.agent.market_server import db as tables
from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.market import Marketplace
from sparecycles.agent.market_server.serve import MarketOptions, ServeError, connect, open_market
from sparecycles.agent.market_server.vault_chain import (
    ClaimRelayer,
    DepositWatcher,
    VaultLink,
    connect_vault,
    deploy_vault,
    relay_claims,
)
from sparecycles.protocol.market import Voucher, lease_amount
from sparecycles.protocol.signing import voucher_signer
from tests.chain_support import ANVIL_CHAIN_ID, Anvil, contract_json
from tests.conftest import CLI, agent_env

from .conftest import Clock, Market, Provider, cpu_spec

UNIT = 10**6
SUPPLY = 1_000_000 * UNIT
PRICE = 3_600_000  # per core-hour: 2 cores for 42 s earn 84,000


@dataclass
class Chain:
    anvil: Anvil
    owner: LocalAccount  # deployed the token and the vault, owns the vault, holds every token
    token: Contract
    link: VaultLink

    @property
    def vault(self) -> Contract:
        return self.anvil.web3.eth.contract(address=self.link.vault, abi=contract_json("PayoutVault")["abi"])

    def transact(self, account: LocalAccount, function: Any) -> None:
        data = function.build_transaction({"from": account.address, "gas": 500_000})["data"]
        self.anvil.send(account, {"to": function.address, "data": data})

    def fund(self, account: LocalAccount, tokens: int, wei: int = 10**18) -> None:
        self.anvil.transfer_native(self.owner, account.address, wei)
        self.anvil.transfer_token(self.token.address, self.owner, account.address, tokens)

    def deposit(self, account: LocalAccount, amount: int) -> None:
        self.transact(account, self.token.functions.approve(self.link.vault, amount))
        self.transact(account, self.vault.functions.deposit(amount))

    def claim(self, voucher: Voucher) -> None:
        args = (voucher.payout_address, voucher.cumulative_amount, voucher.signature)
        self.transact(self.owner, self.vault.functions.claim(*args))

    def balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            self.anvil.web3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def operator_key(path: Path) -> LocalAccount:
    return load_key(KeySource("marketplace-operator", path), create=True)


@pytest.fixture
def chain(anvil: Anvil, tmp_path: Path) -> Chain:
    owner = anvil.accounts[5]
    token_address = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, SUPPLY)
    operator = operator_key(tmp_path / "operator.key")
    deployed = deploy_vault(anvil.url, token_address, owner, operator.address)
    token = anvil.web3.eth.contract(address=token_address, abi=contract_json("TestToken")["abi"])
    return Chain(anvil, owner, token, connect_vault(anvil.url, deployed.address))


def open_vault_market(
    tmp_path: Path, link: VaultLink, key: str = "operator.key", clock: Clock | None = None
) -> Marketplace:
    options = MarketOptions(data_dir=tmp_path / "market", key_file=tmp_path / key)
    return open_market(options, clock=clock or Clock(), link=link)


@pytest.fixture
def vault_market(tmp_path: Path, chain: Chain) -> Iterator[Market]:
    clock = Clock()
    opened = open_vault_market(tmp_path, chain.link, clock=clock)
    with TestClient(create_app(opened, tick_every_s=3600)) as client:
        yield Market(opened, client, clock, tmp_path / "market")


def earn(market: Market, provider: Provider, run_time_ms: int = 42_000) -> Voucher:
    """The provider runs one job for ``run_time_ms`` and is paid; its latest voucher."""
    requester = market.requester(f"studio-{Account.create().address[2:10]}")
    job = requester.submit(cpu_spec(), max_price_per_core_hour=5_000_000, bidding_window_s=1)
    assert provider.poll()["leases"] == []
    market.clock.advance(2)
    [lease] = provider.poll()["leases"]
    assert lease["job_id"] == job["job_id"]
    market.clock.advance(60)
    assert provider.finish(lease, run_time_ms, {"out.txt": b"hi\n"})["lease_state"] == "accepted"
    return market.market.latest_voucher(provider.identity.address)


def credit_of(market: Marketplace, name: str) -> int:
    with market.read() as session:
        requester = session.query(tables.Requester).filter_by(name=name).one()
        return requester.credit


def test_deposits_credit_their_requester_once_after_the_confirmations(tmp_path: Path, chain: Chain) -> None:
    market = open_vault_market(tmp_path, chain.link)
    depositor, stranger = Account.create(), Account.create()
    chain.fund(depositor, 100 * UNIT)
    chain.fund(stranger, 100 * UNIT)
    market.add_requester("studio")
    market.set_deposit_address("studio", depositor.address)
    watcher = DepositWatcher(market, chain.link, confirmations=2)

    chain.deposit(stranger, 3 * UNIT)
    chain.deposit(depositor, 7 * UNIT)  # the chain's head: no block on top of it yet
    watcher.scan_once()
    assert credit_of(market, "studio") == 0  # not yet 2 blocks on top of the deposit
    chain.mine(2)
    assert watcher.scan_once() == 7 * UNIT
    assert credit_of(market, "studio") == 7 * UNIT
    assert watcher.scan_once() == 0

    # A restarted server (another watcher, even one that lost its cursor and reads from block 0) credits
    # nothing twice: each deposit is recorded under its transaction hash and log index.
    with market.transaction() as session:
        session.execute(delete(tables.ChainCursor))
    restarted = DepositWatcher(open_vault_market(tmp_path, chain.link), chain.link, confirmations=0)
    assert restarted.scan_once() == 0
    assert credit_of(market, "studio") == 7 * UNIT

    # The stranger's deposit credited nobody; naming its address credits it, once.
    market.add_requester("agency")
    assert market.set_deposit_address("agency", stranger.address.lower()).credit_base_units == 3 * UNIT
    assert restarted.scan_once() == 0
    assert credit_of(market, "agency") == 3 * UNIT
    actions = [entry.action for entry in _audit(market)]
    assert actions.count("deposit") == 2
    assert actions.count("deposit_unmatched") == 1


def _audit(market: Marketplace) -> list[tables.AuditEvent]:
    with market.read() as session:
        return list(session.query(tables.AuditEvent).order_by(tables.AuditEvent.id))


def test_vouchers_name_the_vault_and_its_chain(vault_market: Market, chain: Chain) -> None:
    info = vault_market.client.get("/v1/info").json()
    assert (info["chain_id"], info["voucher_contract"]) == (ANVIL_CHAIN_ID, chain.link.vault)
    provider = Provider(vault_market.client).join(cores=4, core_floor=PRICE)
    voucher = earn(vault_market, provider)
    assert (voucher.chain_id, voucher.verifying_contract) == (ANVIL_CHAIN_ID, chain.link.vault)
    assert voucher.cumulative_amount == lease_amount(PRICE, 2, 42_000)
    chain.deposit(chain.owner, 10 * UNIT)
    chain.claim(voucher)
    assert chain.balance(provider.payout.address) == voucher.cumulative_amount


def test_a_chain_other_than_the_one_asked_for_refuses_to_start(tmp_path: Path, chain: Chain) -> None:
    with pytest.raises(ChainMismatchError):
        connect_vault(chain.anvil.url, chain.link.vault, expected_chain_id=1)
    options = MarketOptions(data_dir=tmp_path / "m", chain_rpc=chain.anvil.url, vault=chain.link.vault, chain_id=1)
    with pytest.raises(ServeError, match="reports chain id 31337, but the expected chain id is 1"):
        connect(options)
    with pytest.raises(ServeError, match="holds no payout vault"):
        connect(MarketOptions(data_dir=tmp_path / "m", chain_rpc=chain.anvil.url, vault=chain.token.address))
    with pytest.raises(ServeError, match="both --chain-rpc and --vault"):
        connect(MarketOptions(data_dir=tmp_path / "m", vault=chain.link.vault))


def test_after_a_key_rotation_the_resigned_voucher_claims_the_rest(
    tmp_path: Path, vault_market: Market, chain: Chain
) -> None:
    provider = Provider(vault_market.client).join(cores=4, core_floor=PRICE)
    chain.deposit(chain.owner, 10 * UNIT)
    first = earn(vault_market, provider)
    chain.claim(first)
    old = earn(vault_market, provider, run_time_ms=20_000)
    old_key = vault_market.market.operator_address

    # The owner rotates the vault's signer to a new operator key; the server restarts with that key.
    new_key = operator_key(tmp_path / "operator-new.key")
    chain.transact(chain.owner, chain.vault.functions.rotateSigner(new_key.address))
    restarted = open_vault_market(tmp_path, chain.link, key="operator-new.key")
    assert restarted.resign_vouchers() == 1
    assert restarted.resign_vouchers() == 0  # done once
    renewed = restarted.latest_voucher(provider.identity.address)
    assert voucher_signer(renewed) == new_key.address != old_key
    assert renewed.cumulative_amount == old.cumulative_amount

    with pytest.raises(ContractLogicError):  # the old key's voucher is worth nothing now
        chain.claim(old)
    chain.claim(renewed)
    assert chain.balance(provider.payout.address) == renewed.cumulative_amount
    assert [entry.action for entry in _audit(restarted)].count("resign_voucher") == 1


def test_a_relayed_claim_pays_a_payout_address_that_holds_no_coin(
    tmp_path: Path, vault_market: Market, chain: Chain
) -> None:
    provider = Provider(vault_market.client).join(cores=4, core_floor=PRICE)  # a fresh, watch-only payout
    voucher = earn(vault_market, provider)
    chain.deposit(chain.owner, 10 * UNIT)
    gas_payer = Account.create()
    chain.anvil.transfer_native(chain.owner, gas_payer.address, 10**18)
    web3 = chain.anvil.web3
    assert web3.eth.get_balance(provider.payout.address) == 0

    relayed = relay_claims(vault_market.market, chain.link, gas_payer, min_amount=1)
    assert [(claim.payout_address, claim.amount) for claim in relayed] == [
        (provider.payout.address, voucher.cumulative_amount)
    ]
    assert chain.balance(provider.payout.address) == voucher.cumulative_amount
    assert web3.eth.get_balance(provider.payout.address) == 0
    assert relay_claims(vault_market.market, chain.link, gas_payer) == []  # nothing more owed

    earn(vault_market, provider, run_time_ms=20_000)
    owed = lease_amount(PRICE, 2, 20_000)
    assert relay_claims(vault_market.market, chain.link, gas_payer, min_amount=owed + 1) == []  # below the minimum
    [claim] = relay_claims(vault_market.market, chain.link, gas_payer, min_amount=owed)
    assert claim.amount == owed
    assert chain.balance(provider.payout.address) == voucher.cumulative_amount + owed


def test_deploy_vault_and_relay_claims_from_the_command_line(tmp_path: Path, anvil: Anvil) -> None:
    owner = anvil.accounts[6]
    token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, SUPPLY)
    key_file = tmp_path / "deployer.key"
    key_file.write_text(owner.key.hex() + "\n")
    key_file.chmod(0o600)
    signer = Account.create().address

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "market", *args], env=agent_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
        )

    result = cli("deploy-vault", "--rpc", anvil.url, "--token", token, "--key-file", str(key_file), "--signer", signer)
    assert result.returncode == 0, result.stderr
    address = result.stdout.split()[0]
    vault = anvil.web3.eth.contract(address=address, abi=contract_json("PayoutVault")["abi"])
    assert (vault.functions.token().call(), vault.functions.signer().call()) == (token, signer)
    assert vault.functions.owner().call() == owner.address
    assert "--deposits-from-block" in result.stdout

    refused = cli("deploy-vault", "--rpc", anvil.url, "--token", signer, "--key-file", str(key_file))
    assert refused.returncode == 1
    assert "holds no contract" in refused.stderr

    relayed = cli(
        "relay-claims",
        "--chain-rpc",
        anvil.url,
        "--vault",
        address,
        "--gas-key-file",
        str(key_file),
        "--data-dir",
        str(tmp_path / "market"),
        "--key-file",
        str(tmp_path / "operator.key"),
    )
    assert relayed.returncode == 0, relayed.stderr
    assert "Relayed 0 claim(s)" in relayed.stdout


def test_a_served_marketplace_credits_deposits_and_refuses_another_chain(tmp_path: Path, chain: Chain) -> None:
    from .market_process import MarketProcess

    server = MarketProcess(tmp_path, serve_arguments=("--chain-rpc", chain.anvil.url, "--vault", chain.link.vault))
    server.start("--confirmations", "0", "--chain-id", str(ANVIL_CHAIN_ID))
    try:
        info = httpx.get(f"{server.url()}/v1/info", timeout=5).json()
        assert (info["chain_id"], info["voucher_contract"]) == (ANVIL_CHAIN_ID, chain.link.vault)
        key = server.operator("add-requester", "studio")
        depositor = Account.create()
        chain.fund(depositor, 10 * UNIT)
        server.operator("deposit-address", "studio", depositor.address)
        chain.deposit(depositor, 4 * UNIT)
        deadline = time.monotonic() + 20
        credit = 0
        while time.monotonic() < deadline and credit != 4 * UNIT:
            time.sleep(0.5)
            account = httpx.get(f"{server.url()}/v1/requester", headers={"Authorization": f"Bearer {key}"}).json()
            credit = account["credit_base_units"]
        assert credit == 4 * UNIT, server.stderr
    finally:
        server.stop()
    # Asked to serve chain 1 through an RPC that serves anvil's: refused, saying why.
    refused = subprocess.run(
        [
            CLI,
            "market",
            "serve",
            "--port",
            str(server.port),
            *server.options(),
            *server.serve_arguments,
            "--chain-id",
            "1",
        ],
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "reports chain id 31337, but the expected chain id is 1" in refused.stderr


def test_a_running_marketplace_relays_a_claim_when_the_provider_asks_and_on_its_schedule(
    tmp_path: Path, chain: Chain
) -> None:
    clock = Clock()
    opened = open_vault_market(tmp_path, chain.link, clock=clock)
    gas_payer = Account.create()
    chain.anvil.transfer_native(chain.owner, gas_payer.address, 10**18)
    ticks = [0.0]
    relayer = ClaimRelayer(opened, chain.link, gas_payer, every_s=3600, min_amount=1000, clock=lambda: ticks[0])
    chain.deposit(chain.owner, 10 * UNIT)
    with TestClient(create_app(opened, tick_every_s=3600, relayer=relayer)) as client:
        market = Market(opened, client, clock, tmp_path / "market")
        asking = Provider(client).join(cores=4, core_floor=PRICE)
        other = Provider(client).join(cores=4, core_floor=PRICE)
        first = earn(market, asking)
        second = earn(market, other, run_time_ms=20_000)

        ack = client.post("/v1/provider/claim-relay", headers=asking.headers).json()
        assert ack == {
            "queued": True,
            "owed_base_units": first.cumulative_amount,
            "detail": "queued: the operator sends the claim and pays the gas",
        }
        [relayed] = relayer.run_once()  # what the relay thread does when woken: only the provider that asked
        assert (relayed.payout_address, relayed.amount) == (asking.payout.address, first.cumulative_amount)
        assert chain.balance(asking.payout.address) == first.cumulative_amount
        assert chain.balance(other.payout.address) == 0

        again = client.post("/v1/provider/claim-relay", headers=asking.headers).json()
        assert again["queued"] is False
        assert again["detail"] == "0 base units are owed, below the 1000 this marketplace relays a claim for"
        assert relayer.run_once() == []  # not due yet, nothing asked

        ticks[0] = 3600.0  # the schedule comes round: every address owed enough is claimed for
        [scheduled] = relayer.run_once()
        assert (scheduled.payout_address, scheduled.amount) == (other.payout.address, second.cumulative_amount)
        assert chain.balance(other.payout.address) == second.cumulative_amount
        actions = [entry.action for entry in _audit(opened)]
        assert actions.count("relay_claim") == 2


def test_without_a_relayer_the_marketplace_says_it_does_not_relay(vault_market: Market) -> None:
    provider = Provider(vault_market.client).join(cores=4, core_floor=PRICE)
    earn(vault_market, provider)
    refused = vault_market.client.post("/v1/provider/claim-relay", headers=provider.headers)
    assert refused.status_code == 409
    assert "does not relay claims" in refused.json()["detail"]


def test_serve_refuses_relay_options_without_a_vault_or_a_gas_key(tmp_path: Path) -> None:
    from sparecycles.agent.market_server.serve import start_relayer

    market = open_market(MarketOptions(data_dir=tmp_path / "market", key_file=tmp_path / "operator.key"))
    with pytest.raises(ServeError, match="needs a payout vault"):
        start_relayer(market, None, MarketOptions(data_dir=tmp_path, relay_gas_key_file=tmp_path / "gas.key"))
    with pytest.raises(ServeError, match="--relay-every needs --relay-gas-key-file"):
        start_relayer(market, None, MarketOptions(data_dir=tmp_path, relay_every_s=3600))
    assert start_relayer(market, None, MarketOptions(data_dir=tmp_path)) is None

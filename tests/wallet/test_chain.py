"""The chain client against a real anvil: exact balances, the chain id check, an unreachable RPC.

Also the committed contract build (it must be what build.mjs produces from the sources), the
[chain] settings, and the exact formatting of amounts.
"""

from __future__ import annotations

import filecmp
import shutil
import socket
import subprocess
import time
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.agent.chain.balance import Balance, BalanceUnknown
from sparecycles.agent.chain.client import (
    ChainClient,
    ChainError,
    ChainMismatchError,
    RpcUnavailableError,
    TokenContractError,
    display_url,
)
from sparecycles.config import ConfigError, validate_settings
from tests.chain_support import ANVIL_CHAIN_ID, CONTRACTS, Anvil, contract_json

ETHER = 10**18


@pytest.fixture
def client(anvil: Anvil) -> ChainClient:
    return ChainClient(anvil.url, ANVIL_CHAIN_ID, timeout_s=5)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: a connection to it is refused


# --- against anvil


def test_native_balance_after_a_transfer_is_exactly_what_was_sent(
    anvil: Anvil, client: ChainClient, fresh_address: str
) -> None:
    sender = anvil.accounts[0]
    before = client.native_balance(sender.address)
    assert isinstance(before, Balance)
    assert client.native_balance(fresh_address) == Balance(0, 18, "ETH")

    sent = 1_234_567_890_123_456_789  # 1.234567890123456789 ETH: every wei must survive
    receipt = anvil.transfer_native(sender, fresh_address, sent)

    received = client.native_balance(fresh_address)
    assert received == Balance(sent, 18, "ETH")
    assert str(received) == "1.234567890123456789 ETH"
    assert received.value == Decimal("1.234567890123456789")
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert client.native_balance(sender.address) == Balance(before.amount - sent - fee, 18, "ETH")


def test_erc20_balance_is_read_in_the_tokens_own_decimals(anvil: Anvil, client: ChainClient) -> None:
    owner, holder, spender = anvil.accounts[1], Account.create(), anvil.accounts[2]
    supply = 1_000_000 * 10**6
    token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, supply)

    assert client.token_balance(token, owner.address) == Balance(supply, 6, "TT")
    assert client.token_balance(token, holder.address) == Balance(0, 6, "TT")

    anvil.transfer_token(token, owner, holder.address, 12_345_678)
    balance = client.token_balance(token, holder.address)
    assert balance == Balance(12_345_678, 6, "TT")
    assert str(balance) == "12.345678 TT"
    assert balance.value == Decimal("12.345678")
    assert str(client.token_balance(token, owner.address)) == "999987.654322 TT"

    # approve and transferFrom behave as ERC-20 says
    contract = anvil.web3.eth.contract(
        address=anvil.web3.to_checksum_address(token), abi=contract_json("TestToken")["abi"]
    )
    approve = contract.functions.approve(spender.address, 5_000_000).build_transaction({"from": owner.address})
    anvil.send(owner, {"to": contract.address, "data": approve["data"]})
    move = contract.functions.transferFrom(owner.address, holder.address, 2_000_000).build_transaction(
        {"from": spender.address}
    )
    anvil.send(spender, {"to": contract.address, "data": move["data"]})
    assert str(client.token_balance(token, holder.address)) == "14.345678 TT"
    assert contract.functions.allowance(owner.address, spender.address).call() == 3_000_000
    assert contract.functions.decimals().call() == 6
    assert contract.functions.name().call() == "Test Token"


def test_an_address_without_a_token_contract_is_refused_with_the_setting_to_check(
    client: ChainClient, fresh_address: str, anvil: Anvil
) -> None:
    with pytest.raises(TokenContractError, match=r"holds no ERC-20 contract on chain 31337.*chain\.payout_token"):
        client.token_balance(fresh_address, anvil.accounts[0].address)


def test_a_wrong_expected_chain_id_is_refused_with_the_message(anvil: Anvil, fresh_address: str) -> None:
    client = ChainClient(anvil.url, 8453, timeout_s=5)
    expected = (
        f"the RPC at {anvil.url} reports chain id 31337, but the expected chain id is 8453: "
        "check chain.rpc_url / chain.chain_id"
    )
    with pytest.raises(ChainMismatchError) as raised:
        client.check()
    assert str(raised.value) == expected
    assert (raised.value.reported, raised.value.expected) == (31337, 8453)
    with pytest.raises(ChainMismatchError):  # no balance is read from the wrong chain
        client.native_balance(fresh_address)
    assert ChainClient(anvil.url, ANVIL_CHAIN_ID).check() == 31337


def test_a_websocket_url_works_too(anvil: Anvil, fresh_address: str) -> None:
    anvil.transfer_native(anvil.accounts[3], fresh_address, 5 * ETHER)
    client = ChainClient(anvil.ws_url, ANVIL_CHAIN_ID, timeout_s=5)
    assert client.native_balance(fresh_address) == Balance(5 * ETHER, 18, "ETH")
    assert str(client.native_balance(fresh_address)) == "5 ETH"


# --- an RPC that cannot be asked


def test_an_unreachable_rpc_gives_balance_unknown_quickly_and_no_exception(fresh_address: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    client = ChainClient(url, ANVIL_CHAIN_ID, timeout_s=1)
    started = time.monotonic()
    native = client.native_balance(fresh_address)
    token = client.token_balance("0x5FbDB2315678afecb367f032d93F642f64180aa3", fresh_address)
    assert time.monotonic() - started < 2
    assert native == token
    assert isinstance(native, BalanceUnknown)
    assert str(native) == f"balance unknown (RPC unreachable: cannot connect to {url} (connection refused))"
    with pytest.raises(RpcUnavailableError, match="RPC unreachable"):
        client.check()


def test_an_rpc_that_never_answers_times_out_into_balance_unknown(fresh_address: str) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = ChainClient(url, ANVIL_CHAIN_ID, timeout_s=0.5)
        started = time.monotonic()
        result = client.native_balance(fresh_address)
        assert time.monotonic() - started < 2
    assert str(result) == f"balance unknown (RPC unreachable: no answer from {url} within 0.5 s)"


def test_an_unreachable_websocket_rpc_gives_balance_unknown(fresh_address: str) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}"
    result = ChainClient(url, ANVIL_CHAIN_ID, timeout_s=1).native_balance(fresh_address)
    assert str(result).startswith(f"balance unknown (RPC unreachable: cannot connect to {url}")


def test_the_rpc_comes_back_after_being_unreachable(tmp_path: Path, fresh_address: str) -> None:
    from tests.chain_support import anvil_binary, start_anvil

    second = start_anvil(tmp_path, anvil_binary())
    client = ChainClient(second.url, ANVIL_CHAIN_ID, timeout_s=1)
    try:
        assert client.native_balance(fresh_address) == Balance(0, 18, "ETH")
    finally:
        second.stop()
    assert isinstance(client.native_balance(fresh_address), BalanceUnknown)


def test_bad_addresses_are_refused_before_any_request() -> None:
    client = ChainClient(f"http://127.0.0.1:{_closed_port()}", ANVIL_CHAIN_ID, timeout_s=1)
    with pytest.raises(ChainError, match="is not an address"):
        client.native_balance("0x1234")
    with pytest.raises(ChainError, match="the token address 'TT' is not an address"):
        client.token_balance("TT", "0x" + "1" * 40)
    with pytest.raises(ChainError, match="not an http"):
        ChainClient("ftp://example.org", 1)


def test_messages_never_show_an_api_key_in_the_url() -> None:
    assert display_url("https://mainnet.example.io/v3/0123456789abcdef") == "https://mainnet.example.io/…"
    assert display_url("https://user:secret@rpc.example.io:8443/?key=abc") == "https://rpc.example.io:8443/…"
    assert display_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert display_url("ws://[::1]:8545/") == "ws://[::1]:8545"
    client = ChainClient(f"http://127.0.0.1:{_closed_port()}/secret-key", ANVIL_CHAIN_ID, timeout_s=1)
    assert "secret-key" not in str(client.native_balance("0x" + "1" * 40))


# --- amounts


def test_balance_strings_are_exact() -> None:
    assert str(Balance(12_345_678, 6, "TT")) == "12.345678 TT"
    assert str(Balance(12_000_000, 6, "TT")) == "12 TT"
    assert str(Balance(1, 18, "ETH")) == "0.000000000000000001 ETH"
    assert str(Balance(0, 18, "ETH")) == "0 ETH"
    assert str(Balance(5, 0, "")) == "5"
    assert str(Balance(2**256 - 1, 18, "X")) == f"{(2**256 - 1) // ETHER}.{(2**256 - 1) % ETHER:018d} X"
    assert Balance(2**256 - 1, 18).value == Decimal(f"{(2**256 - 1) // ETHER}.{(2**256 - 1) % ETHER:018d}")
    assert str(BalanceUnknown("RPC unreachable: x")) == "balance unknown (RPC unreachable: x)"


@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(min_value=0, max_value=36))
def test_the_human_number_is_the_amount_exactly(amount: int, decimals: int) -> None:
    balance = Balance(amount, decimals, "T")
    with localcontext() as context:
        context.prec = 200
        assert Decimal(balance.number) == Decimal(amount) / Decimal(10) ** decimals
        assert balance.value == Decimal(amount) / Decimal(10) ** decimals
    assert not balance.number.endswith(".")
    assert "." not in balance.number or not balance.number.endswith("0")


# --- the committed build


def test_the_committed_build_is_what_build_mjs_produces(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (CONTRACTS / "node_modules" / "solc" / "package.json").is_file():
        pytest.skip("needs node and solc-js: bash tests/infra/node-deps.sh agent/chain/contracts (make test does)")
    out = tmp_path / "build"
    subprocess.run(
        [node, str(CONTRACTS / "build.mjs"), "--out", str(out)], check=True, capture_output=True, timeout=120
    )
    committed = sorted(p.name for p in (CONTRACTS / "build").glob("*.json"))
    assert committed == sorted(p.name for p in out.glob("*.json")), "run `make contracts` and commit build/"
    assert committed, "no contract was built"
    for name in committed:
        assert filecmp.cmp(CONTRACTS / "build" / name, out / name, shallow=False), (
            f"build/{name} is stale: run `make contracts`"
        )


def test_every_source_has_a_committed_build() -> None:
    for source in CONTRACTS.glob("*.sol"):
        document = contract_json(source.stem)
        assert document["sourceName"] == source.name
        assert document["bytecode"].startswith("0x6")
        assert document["compiler"]["version"].startswith("0.8.28+")


# --- settings


def test_chain_settings_are_validated_by_key() -> None:
    settings = validate_settings(
        {"chain": {"rpc_url": "https://rpc.example.org/v1", "chain_id": 8453, "payout_token": "0x" + "a" * 40}},
        source="t",
    )
    assert settings.chain.chain_id == 8453
    assert validate_settings({}, source="t").chain.rpc_url is None
    cases = [
        ({"rpc_url": "ftp://x", "chain_id": 1}, "chain.rpc_url", "http"),
        ({"rpc_url": "wss://x.example", "chain_id": 0}, "chain.chain_id", "greater than or equal to 1"),
        ({"payout_token": "TT"}, "chain.payout_token", "0x followed by 40"),
        ({"rpc_url": "http://127.0.0.1:8545"}, "chain.chain_id must be set", "31337"),
        ({"rpc": "http://x"}, "chain.rpc", "rpc_url"),
    ]
    for values, key, hint in cases:
        with pytest.raises(ConfigError) as raised:
            validate_settings({"chain": values}, source="t")
        assert key in str(raised.value)
        assert hint in str(raised.value)

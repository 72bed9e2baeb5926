"""Balances through a real agent from a real local chain (anvil): a watch-only wallet's native coin and payout
token, exact to the token's decimals; a wrong chain id and an unreachable RPC said in words, never a zero."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.chain_support import Anvil, contract_json
from tests.conftest import run_cli, start_agent


def configure(home: Path, rpc_url: str, chain_id: int, token: str | None = None) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    token_line = f'payout_token = "{token}"\n' if token else ""
    (home / "config" / "config.toml").write_text(f'[chain]\nrpc_url = "{rpc_url}"\nchain_id = {chain_id}\n{token_line}')


def balance(home: Path) -> dict[str, str | None]:
    shown = run_cli(home, "wallet", "balance", "cold", "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def test_a_watch_only_wallet_shows_its_balances_from_the_chain(home: Path, anvil: Anvil, fresh_address: str) -> None:
    owner = anvil.accounts[0]
    token = anvil.deploy(contract_json("TestToken"), owner, "Test Token", "TT", 6, 10**12)
    anvil.transfer_native(owner, fresh_address, 1_500_000_000_000_000_000)
    anvil.transfer_token(token, owner, fresh_address, 12_345_678)
    configure(home, anvil.url, anvil.chain_id, token)
    agent = start_agent(home)
    try:
        assert run_cli(home, "wallet", "watch", "cold", fresh_address).returncode == 0
        assert balance(home) == {
            "address": fresh_address,
            "native": "1.5 ETH",
            "token": "12.345678 TT",
            "problem": None,
        }
        printed = run_cli(home, "wallet", "balance", "cold").stdout
        assert "1.5 ETH" in printed
        assert "12.345678 TT" in printed
    finally:
        agent.stop()


def test_a_wrong_chain_id_is_refused_with_the_message(home: Path, anvil: Anvil, fresh_address: str) -> None:
    configure(home, anvil.url, 8453)
    agent = start_agent(home)
    try:
        assert run_cli(home, "wallet", "watch", "cold", fresh_address).returncode == 0
        shown = balance(home)
        assert (shown["native"], shown["token"]) == (None, None)
        assert f"reports chain id {anvil.chain_id}, but the expected chain id is 8453" in str(shown["problem"])
    finally:
        agent.stop()


def test_an_unreachable_rpc_gives_balance_unknown_not_an_error_or_a_zero(home: Path, fresh_address: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(home, f"http://127.0.0.1:{port}", 31337)
    agent = start_agent(home)
    try:
        assert run_cli(home, "wallet", "watch", "cold", fresh_address).returncode == 0
        shown = balance(home)
        assert (shown["native"], shown["token"]) == (None, None)
        assert str(shown["problem"]).startswith("balance unknown (RPC unreachable")
    finally:
        agent.stop()

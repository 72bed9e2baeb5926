"""A real local EVM chain for the wallet's and the marketplace vault's tests: anvil on a free loopback port,
and test-only helpers.

anvil comes from the npm package @foundry-rs/anvil, which `make test` installs into tests/infra/node
(tests/infra/node-deps.sh) and names in SPARECYCLES_TEST_ANVIL; there a missing binary fails the
tests. Elsewhere (a developer's plain pytest) the installed package or an anvil on PATH is used, and
the tests are skipped, saying how to install it, when there is none.

These helpers deploy contracts and send coins and tokens for the tests; transactions are signed locally
with eth-account and sent raw, as the wallet and the marketplace's vault commands do. The fixtures
(``anvil``, ``fresh_address``) are imported by tests/wallet/conftest.py and tests/market/conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

with warnings.catch_warnings():  # web3 7 imports websockets.legacy, which warns about itself on import
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    from web3 import HTTPProvider, Web3
    from web3.types import TxReceipt

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / "agent" / "chain" / "contracts"
ANVIL_CHAIN_ID = 31337


def contract_json(name: str) -> dict[str, Any]:
    """A committed build output, agent/chain/contracts/build/<name>.json."""
    document: dict[str, Any] = json.loads((CONTRACTS / "build" / f"{name}.json").read_text())
    return document


def anvil_binary() -> str:
    """The anvil to run: SPARECYCLES_TEST_ANVIL (`make test`, required), else the npm install, else PATH."""
    required = os.environ.get("SPARECYCLES_TEST_ANVIL")
    if required:
        if not os.access(required, os.X_OK):
            pytest.fail(
                f"SPARECYCLES_TEST_ANVIL={required} is not an executable anvil: run bash tests/infra/node-deps.sh"
            )
        return required
    installed = sorted(REPO.glob("tests/infra/node/node_modules/@foundry-rs/anvil-*/bin/anvil"))
    on_path = shutil.which("anvil")
    for candidate in [*map(str, installed), *([on_path] if on_path else [])]:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(
        "anvil is not installed: `make test` installs it (or run bash tests/infra/node-deps.sh, which puts the "
        "npm package @foundry-rs/anvil into tests/infra/node)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_chain_id(url: str) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with contextlib.suppress(httpx.HTTPError):
        return "result" in httpx.post(url, json=body, timeout=1).json()
    return False


@dataclass
class Anvil:
    """A running anvil: its URL, its funded accounts (keys from its --config-out file) and test helpers."""

    process: subprocess.Popen[bytes]
    port: int
    accounts: list[LocalAccount]
    log_file: Path
    chain_id: int = ANVIL_CHAIN_ID
    web3: Web3 = field(init=False)

    def __post_init__(self) -> None:
        self.web3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 10}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def send(self, account: LocalAccount, transaction: dict[str, Any]) -> TxReceipt:
        """Fill in nonce, gas and fees, sign with eth-account here, send raw, wait for the receipt."""
        latest = self.web3.eth.get_block("latest")
        tip = Web3.to_wei(1, "gwei")
        filled: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self.web3.eth.get_transaction_count(account.address, "pending"),
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * latest.get("baseFeePerGas", 0) + tip,
            **transaction,
        }
        filled.setdefault("gas", self.web3.eth.estimate_gas({**filled, "from": account.address}))
        signed = account.sign_transaction(filled)
        receipt = self.web3.eth.wait_for_transaction_receipt(
            self.web3.eth.send_raw_transaction(signed.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1, f"transaction failed: {receipt}"
        return receipt

    def transfer_native(self, account: LocalAccount, to: str, wei: int) -> TxReceipt:
        return self.send(account, {"to": Web3.to_checksum_address(to), "value": wei})

    def deploy(self, contract: dict[str, Any], account: LocalAccount, *args: Any) -> str:
        """Deploy a build output (``contract_json(...)``) with constructor ``args``; returns its address."""
        factory = self.web3.eth.contract(abi=contract["abi"], bytecode=contract["bytecode"])
        data = factory.constructor(*args).build_transaction({"from": account.address})["data"]
        receipt = self.send(account, {"data": data})
        address = receipt["contractAddress"]
        assert address is not None
        return str(address)

    def transfer_token(self, token: str, account: LocalAccount, to: str, amount: int) -> TxReceipt:
        contract = self.web3.eth.contract(
            address=Web3.to_checksum_address(token), abi=contract_json("TestToken")["abi"]
        )
        data = contract.functions.transfer(Web3.to_checksum_address(to), amount).build_transaction(
            {"from": account.address}
        )["data"]
        return self.send(account, {"to": contract.address, "data": data})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_anvil(folder: Path, binary: str, attempts: int = 3, extra: Sequence[str] = ()) -> Anvil:
    """anvil --port P --host 127.0.0.1 --quiet (and ``extra`` options), once it answers eth_chainId (a taken port
    is retried)."""
    for attempt in range(attempts):
        port = _free_port()
        config_out = folder / f"anvil-{port}.json"
        log_file = folder / f"anvil-{port}.log"
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [
                    *(binary, "--port", str(port), "--host", "127.0.0.1", "--quiet"),
                    *("--config-out", str(config_out), *extra),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if _answers_chain_id(url) and config_out.is_file():
                with contextlib.suppress(ValueError):
                    keys = json.loads(config_out.read_text())["private_keys"]
                    return Anvil(process, port, [Account.from_key(key) for key in keys], log_file)
            time.sleep(0.05)
        output = log_file.read_text(errors="replace")[-2000:]
        if process.poll() is None:
            process.kill()
            process.wait(10)
            pytest.fail(f"anvil on 127.0.0.1:{port} did not answer eth_chainId within 30 s:\n{output}")
        if attempt == attempts - 1:
            pytest.fail(f"anvil exited with {process.returncode}:\n{output}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """One anvil for the session; tests send to fresh addresses, so balances they check are their own."""
    running = start_anvil(tmp_path_factory.mktemp("anvil"), anvil_binary())
    yield running
    running.stop()


@pytest.fixture
def fresh_address() -> str:
    """An address nobody has used: its balances are exactly what a test sends it."""
    address: str = Account.create().address
    return address

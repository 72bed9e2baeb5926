"""The wallet in a real agent, on its private marketplace, with the real Secret Service: a session that creates,
imports, uses and exports wallets through the control API and the CLI, after which no file under
SPARECYCLES_HOME, no log line, no API answer but the exports, and no process's command line holds a key or a
recovery phrase. The payout address follows the active wallet at the marketplace, each change signed by the
current payout address; one whose key is not here cannot be changed from here, and says so."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import keyring
import psutil
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from sparecycles.agent.keystore import primary_backend
from tests.conftest import CLI, RunningAgent, agent_env, run_cli, start_agent

from .test_wallet_service import TEST_ADDRESS, TEST_KEY

pytestmark = pytest.mark.timeout(240)
Account.enable_unaudited_hdwallet_features()  # to derive the created wallet's key here, for the leak check


def needs_secret_service() -> None:
    if "SecretService" not in type(primary_backend(keyring.get_keyring())).__module__:
        pytest.skip("needs the Secret Service session that `make test` starts (gnome-keyring in D-Bus)")


def cli_with_input(home: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with its prompts answered on stdin (as a user types them): secrets never in the arguments."""
    return subprocess.run(
        [CLI, *args], input=text, env=agent_env(home), capture_output=True, text=True, timeout=60, check=False
    )


class Api:
    """The agent's control API, keeping every answer for the leak check."""

    def __init__(self, agent: RunningAgent) -> None:
        self.agent = agent
        self.answers: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response = httpx.request(method, f"{self.agent.url}{path}", json=body, headers=self.agent.auth, timeout=30)
        self.answers.append((path, response.text))
        return response


def marketplace(api: Api) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        market = api("GET", "/v1/status").json()["marketplace"]
        if market and market["connected"] and market["payout_address"]:
            return dict(market)
        time.sleep(0.3)
    raise AssertionError(f"the private marketplace did not connect: {api.agent.console[-3000:]}")


def wait_payout(api: Api, address: str) -> None:
    deadline = time.monotonic() + 30
    while marketplace(api)["payout_address"] != address and time.monotonic() < deadline:
        time.sleep(0.3)
    assert marketplace(api)["payout_address"] == address


def test_a_wallet_session_leaves_no_secret_anywhere_and_payouts_follow_the_active_wallet(home: Path) -> None:
    needs_secret_service()
    agent = start_agent(home)
    api = Api(agent)
    secrets_seen: list[str] = []
    processes: set[int] = {agent.process.pid}
    try:
        identity = marketplace(api)["payout_address"]  # the private marketplace pays the machine itself

        created = api("POST", "/v1/wallets", {"name": "main"})
        assert created.status_code == 201, created.text
        positions = created.json()["confirm_positions"]
        exported = api("POST", "/v1/wallets/main/export", {"confirmation": "export main"}).json()
        phrase = exported["mnemonic"]
        key = Account.from_mnemonic(phrase, account_path=exported["derivation_path"]).key.hex()
        secrets_seen += [phrase, key.removeprefix("0x"), "0x" + key.removeprefix("0x")]
        words = phrase.split()
        refused = api("POST", "/v1/wallets/main/use")
        assert refused.status_code == 422
        assert "not confirmed yet" in refused.json()["message"]
        confirmed = api("POST", "/v1/wallets/main/confirm", {"words": {p: words[p - 1] for p in positions}})
        assert confirmed.json()["confirmed"] is True

        used = api("POST", "/v1/wallets/main/use")
        assert used.status_code == 200, used.text
        main_address = used.json()["address"]
        assert main_address != identity
        wait_payout(api, main_address)  # the marketplace took the change signed by the machine's identity
        assert api("GET", "/v1/settings").json()["marketplace"]["payout_address"] == main_address

        # The CLI: a key typed at a hidden prompt, an export confirmed by name, a watch-only address.
        imported = cli_with_input(home, TEST_KEY + "\n", "wallet", "import", "hot", "--key")
        assert imported.returncode == 0, imported.stderr
        assert TEST_ADDRESS in imported.stdout
        secrets_seen += [TEST_KEY, TEST_KEY.removeprefix("0x")]
        shown = cli_with_input(home, "export hot\n", "wallet", "export", "hot")
        assert shown.returncode == 0, shown.stderr
        assert TEST_KEY in shown.stdout
        wrong = cli_with_input(home, "yes\n", "wallet", "export", "hot")
        assert wrong.returncode != 0
        assert TEST_KEY not in wrong.stdout + wrong.stderr
        cold = Account.create().address
        assert run_cli(home, "wallet", "watch", "cold", cold).returncode == 0
        signed = api("POST", "/v1/wallets/sign", {"message": "hello", "name": "main"}).json()
        assert signed["address"] == main_address

        # main → cold (signed by main's key in the keyring); then cold's key is not here: no change from here.
        assert run_cli(home, "wallet", "use", "cold").returncode == 0
        wait_payout(api, cold)
        stuck = run_cli(home, "wallet", "use", "main")
        assert stuck.returncode != 0
        assert f"pays this machine's earnings to {cold}, whose key is not on this machine" in stuck.stderr
        assert marketplace(api)["payout_address"] == cold  # nothing changed
        refused_sign = api("POST", "/v1/wallets/sign", {"message": "hello", "name": "cold"})
        assert refused_sign.status_code == 422
        assert "watch-only" in refused_sign.json()["message"]

        listed = run_cli(home, "wallet", "list")
        assert "cold" in listed.stdout
        assert "(payouts)" in listed.stdout
        processes |= {child.pid for child in psutil.Process(agent.process.pid).children(recursive=True)}
        for pid in processes:  # no process this session started carries a secret in its arguments
            arguments = " ".join(psutil.Process(pid).cmdline())
            assert not any(secret in arguments for secret in secrets_seen)
    finally:
        agent.stop()
        for name in ("main", "hot"):  # leave the session's keyring as it was
            if keyring.get_password("SpareCycles", f"wallet:{name}") is not None:
                keyring.delete_password("SpareCycles", f"wallet:{name}")

    leaks = []
    for path in home.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", errors="replace")
            leaks += [f"{path}: {secret[:6]}…" for secret in secrets_seen if secret in content]
    console = agent.console
    leaks += [f"console: {secret[:6]}…" for secret in secrets_seen if secret in console]
    for path, text in api.answers:
        if not path.endswith("/export"):
            leaks += [f"answer of {path}: {secret[:6]}…" for secret in secrets_seen if secret in text]
    assert leaks == []
    assert any(path.name == "wallets.json" for path in home.rglob("*"))  # the wallets were really kept


def test_wallet_create_on_the_command_line_shows_the_phrase_once_and_confirms_three_words(home: Path) -> None:
    needs_secret_service()
    agent = start_agent(home)
    try:
        process = subprocess.Popen(
            [CLI, "wallet", "create", "desk"],
            env=agent_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        seen = ""
        while "Written down?" not in seen:  # the phrase is printed before this question
            seen += process.stdout.read(1) or pytest.fail(
                f"the CLI stopped: {process.stderr and process.stderr.read()}"
            )
        words = {int(number): word for number, word in re.findall(r"(\d+)\. (\w+)", seen)}
        assert len(words) == 12
        process.stdin.write("y\n")
        process.stdin.flush()
        for _ in range(3):  # "Word N of the recovery phrase: " three times
            prompt = ""
            while not ("of the recovery phrase" in prompt and prompt.endswith(": ")):
                prompt += process.stdout.read(1) or pytest.fail("the CLI stopped before asking every word")
            position = int(re.findall(r"Word (\d+) of the recovery phrase", prompt)[-1])
            process.stdin.write(words[position] + "\n")
            process.stdin.flush()
        rest, _errors = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert "Confirmed" in rest
        listed = json.loads(run_cli(home, "wallet", "list", "--json").stdout)
        [desk] = listed["wallets"]
        assert (desk["name"], desk["confirmed"], desk["kind"]) == ("desk", True, "mnemonic")
    finally:
        agent.stop()
        if keyring.get_password("SpareCycles", "wallet:desk") is not None:
            keyring.delete_password("SpareCycles", "wallet:desk")


def use_key_wallet(home: Path, name: str, account: LocalAccount) -> None:
    """Import ``account``'s key into the running agent's wallet as ``name`` (typed at the prompt, as a user
    does) and make it the payout wallet."""
    imported = cli_with_input(home, "0x" + bytes(account.key).hex() + "\n", "wallet", "import", name, "--key")
    assert imported.returncode == 0, imported.stderr
    used = run_cli(home, "wallet", "use", name)
    assert used.returncode == 0, used.stderr

"""Secrets stay off the command line, where every local user reads them in the process list and the shell keeps
them in its history: the requester's API key, the studio's admin token and the enrolment code come from an
environment variable, a file only its owner can read, or a hidden prompt in a terminal. The old forms still work
for scripts, with a warning that never shows the secret.

A real marketplace process (`sparecycles market serve`) answers the commands, so a key that works is one that
reached it; `join` goes through a real agent, which signs in to that marketplace with the code."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from tests.conftest import CLI, agent_env, start_agent
from tests.market.market_process import MarketProcess

SECRET_VARIABLES = ("SPARECYCLES_API_KEY", "SPARECYCLES_ADMIN_TOKEN", "SPARECYCLES_ENROL_CODE", "SPARECYCLES_FLEET_URL")


@dataclass
class Studio:
    market: MarketProcess
    api_key: str
    admin_token: str
    code: str


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    market = MarketProcess(tmp_path_factory.mktemp("secrets") / "market")
    market.start()
    try:
        api_key = market.operator("add-requester", "anna")
        admin_token = market.operator("admin-token", "lead")
        code = json.loads(market.operator("enrol-code", "--group", "render-farm", "--expires", "2h", "--json"))
        yield Studio(market, api_key, admin_token, str(code["code"]))
    finally:
        market.stop()


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: no secret from the test runner's own, only those a test gives."""
    env = {name: value for name, value in agent_env(home).items() if name not in SECRET_VARIABLES}
    env.update(extra)
    return env


def sparecycles(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`sparecycles ARGS` with no terminal (stdin from /dev/null: it must never wait at a prompt)."""
    return subprocess.run(
        [CLI, *args],
        env=env_for(home, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def secret_file(path: Path, secret: str, mode: int) -> Path:
    path.write_text(secret + "\n")
    path.chmod(mode)
    return path


def in_a_terminal(home: Path, args: list[str], answer: str, prompt: str) -> tuple[int, str]:
    """Run `sparecycles ARGS` on a pseudo-terminal and type ``answer`` at ``prompt``; the exit status and everything
    the terminal showed. The answer waits for the space after the prompt's colon: getpass writes it once echo is
    off, and drops what was typed before."""
    main, child = pty.openpty()
    process = subprocess.Popen(
        [CLI, *args], env=env_for(home), stdin=child, stdout=child, stderr=child, start_new_session=True
    )
    os.close(child)
    shown, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not answered and f"{prompt}: ".encode() in shown:
                os.write(main, answer.encode() + b"\r")
                answered = True
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the command ended and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            elif process.poll() is not None:
                break
        return process.wait(30), shown.decode(errors="replace")
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait()


# --- the requester's API key -------------------------------------------------------------------------------


def test_a_requester_command_takes_the_api_key_from_the_environment(studio: Studio, tmp_path: Path) -> None:
    result = sparecycles(tmp_path, "jobs", "--market", studio.market.url(), SPARECYCLES_API_KEY=studio.api_key)
    assert result.returncode == 0, result.stderr
    assert "No jobs yet." in result.stdout
    assert result.stderr == ""

    wrong = sparecycles(tmp_path, "jobs", "--market", studio.market.url(), SPARECYCLES_API_KEY="scr_not-a-key")
    assert wrong.returncode == 1, "the key in the environment is the one the marketplace checked"


def test_a_requester_command_takes_the_api_key_from_a_file_only_its_owner_can_read(
    studio: Studio, tmp_path: Path
) -> None:
    key_file = secret_file(tmp_path / "api.key", studio.api_key, 0o600)
    result = sparecycles(tmp_path, "jobs", "--market", studio.market.url(), "--api-key-file", str(key_file))
    assert result.returncode == 0, result.stderr
    assert "No jobs yet." in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=lambda mode: f"{mode:04o}")
def test_a_key_file_other_users_can_read_is_refused(studio: Studio, tmp_path: Path, mode: int) -> None:
    key_file = secret_file(tmp_path / "api.key", studio.api_key, mode)
    result = sparecycles(tmp_path, "jobs", "--market", studio.market.url(), "--api-key-file", str(key_file))
    assert result.returncode == 2
    assert f"chmod 600 {key_file}" in result.stderr
    assert studio.api_key not in result.stdout + result.stderr


def test_the_api_key_on_the_command_line_still_works_with_a_warning(studio: Studio, tmp_path: Path) -> None:
    result = sparecycles(tmp_path, "jobs", "--market", studio.market.url(), "--api-key", studio.api_key)
    assert result.returncode == 0, result.stderr
    assert "No jobs yet." in result.stdout
    warning = " ".join(result.stderr.split())
    assert warning.startswith("Warning: --api-key puts the requester's API key where other users")
    assert "SPARECYCLES_API_KEY" in warning
    assert "--api-key-file" in warning
    assert studio.api_key not in result.stdout + result.stderr


def test_with_no_key_and_no_terminal_the_command_says_how_to_give_one(studio: Studio, tmp_path: Path) -> None:
    result = sparecycles(tmp_path, "jobs", "--market", studio.market.url())
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "SPARECYCLES_API_KEY" in message
    assert "--api-key-file PATH" in message


def test_in_a_terminal_the_api_key_is_asked_for_without_echo(studio: Studio, tmp_path: Path) -> None:
    status, shown = in_a_terminal(
        tmp_path, ["jobs", "--market", studio.market.url()], studio.api_key, "Requester API key"
    )
    assert status == 0, shown
    assert "No jobs yet." in shown
    assert studio.api_key not in shown


# --- the studio's admin token ------------------------------------------------------------------------------


def test_the_fleet_takes_the_admin_token_from_the_environment_or_a_file(studio: Studio, tmp_path: Path) -> None:
    url = studio.market.url()
    from_env = sparecycles(tmp_path, "fleet", "--market", url, SPARECYCLES_ADMIN_TOKEN=studio.admin_token)
    assert from_env.returncode == 0, from_env.stderr
    assert "No machine in a group yet" in from_env.stdout
    assert from_env.stderr == ""

    token_file = secret_file(tmp_path / "admin.token", studio.admin_token, 0o600)
    from_file = sparecycles(tmp_path, "fleet", "--market", url, "--admin-token-file", str(token_file), "--json")
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == []

    token_file.chmod(0o644)
    refused = sparecycles(tmp_path, "fleet", "--market", url, "--admin-token-file", str(token_file))
    assert refused.returncode == 2
    assert f"chmod 600 {token_file}" in refused.stderr
    assert studio.admin_token not in refused.stdout + refused.stderr


def test_the_admin_token_on_the_command_line_still_works_with_a_warning(studio: Studio, tmp_path: Path) -> None:
    result = sparecycles(tmp_path, "fleet", "--market", studio.market.url(), "--admin-token", studio.admin_token)
    assert result.returncode == 0, result.stderr
    warning = " ".join(result.stderr.split())
    assert warning.startswith("Warning: --admin-token puts the admin token where other users")
    assert "SPARECYCLES_ADMIN_TOKEN" in warning
    assert studio.admin_token not in result.stdout + result.stderr


def test_an_action_s_help_asks_for_no_token(studio: Studio, tmp_path: Path) -> None:
    result = sparecycles(tmp_path, "fleet", "--market", studio.market.url(), "drain", "--help")
    assert result.returncode == 0, result.stderr
    assert "Drain a machine" in result.stdout


# --- the enrolment code ------------------------------------------------------------------------------------


def test_join_takes_the_enrolment_code_from_the_environment(studio: Studio, tmp_path: Path) -> None:
    home = tmp_path / "machine"
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[marketplace]\npayout_address = "{Account.create().address}"\nidentity_key_file = "{home / "identity.key"}"\n'
    )
    agent = start_agent(home)
    try:
        no_code = sparecycles(home, "join", studio.market.url())
        assert no_code.returncode == 2
        assert "SPARECYCLES_ENROL_CODE" in " ".join(no_code.stderr.split())

        wrong = sparecycles(home, "join", studio.market.url(), SPARECYCLES_ENROL_CODE="sce_not-a-code")
        assert wrong.returncode != 0, "the code in the environment is the one the marketplace checked"
        assert "sce_not-a-code" not in wrong.stdout + wrong.stderr

        joined = sparecycles(home, "join", studio.market.url(), SPARECYCLES_ENROL_CODE=studio.code)
        assert joined.returncode == 0, joined.stderr + agent.console[-3000:]
        assert "Joined group render-farm" in joined.stdout
        assert joined.stderr == ""
    finally:
        agent.stop()


def test_join_with_the_code_on_the_command_line_warns_without_showing_it(tmp_path: Path) -> None:
    # No agent runs in this home: the command warns, then stops where it would ask the agent to join.
    result = sparecycles(tmp_path, "join", "https://render.studio.example", "sce_visible-to-everyone")
    warning = " ".join(result.stderr.split())
    assert warning.startswith("Warning: CODE on the command line puts the enrolment code where other users")
    assert "SPARECYCLES_ENROL_CODE" in warning
    assert "sce_visible-to-everyone" not in result.stdout + result.stderr

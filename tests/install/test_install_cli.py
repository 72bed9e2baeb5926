"""`sparecycles service`, `autostart` and `uninstall`, run in-process on a temporary SPARECYCLES_HOME with
the unit folder (SPARECYCLES_UNIT_DIR) and the autostart folder (XDG_CONFIG_HOME) redirected."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from typer.testing import CliRunner

from sparecycles import install_cli
from sparecycles.agent.keystore import KEYRING_SERVICE
from sparecycles.agent.market.service import IDENTITY_KEY_NAME
from sparecycles.cli import app
from sparecycles.control import spawn
from sparecycles.control.client import ControlClient
from sparecycles.paths import AppPaths
from sparecycles.service_unit import UNIT_NAME
from tests.conftest import start_agent

PAYOUT = "0x" + "12" * 20


class MemoryKeyring(KeyringBackend):
    """An OS keyring in memory (a real backend class, so the vault's checks apply to it)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    folders = {"home": tmp_path / "home", "units": tmp_path / "units", "xdg": tmp_path / "xdg"}
    folders["home"].mkdir()
    monkeypatch.setenv("SPARECYCLES_HOME", str(folders["home"]))
    monkeypatch.setenv("SPARECYCLES_UNIT_DIR", str(folders["units"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folders["xdg"]))
    monkeypatch.setattr(install_cli, "systemd_running", lambda: False)
    return folders


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def _cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def _headless_config(home: Path) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[marketplace]\nidentity_key_file = "{home}/identity.key"\npayout_address = "{PAYOUT}"\n')


def test_service_install_writes_the_user_unit_and_says_what_to_run(env: dict[str, Path]) -> None:
    result = _cli("service", "install")
    assert result.exit_code == 0, result.output
    unit = (env["units"] / UNIT_NAME).read_text()
    assert "agent --foreground" in unit
    assert f'Environment="SPARECYCLES_HOME={env["home"].resolve()}"' in unit
    assert "systemctl --user enable --now sparecycles-agent.service" in result.output
    assert "loginctl enable-linger" in result.output
    # No identity key file and no payout address: a warning that says what to set.
    assert "identity_key_file" in result.output
    assert "payout_address" in result.output

    assert _cli("service", "status").exit_code == 0
    result = _cli("service", "uninstall")
    assert result.exit_code == 0
    assert not (env["units"] / UNIT_NAME).exists()
    assert _cli("service", "status").exit_code == 3


def test_system_service_is_refused_without_an_identity_key_file(env: dict[str, Path], tmp_path: Path) -> None:
    result = _cli("service", "install", "--system", "--home", str(tmp_path / "var"))
    assert result.exit_code == 2
    assert "identity_key_file" in result.output
    assert "[marketplace]" in result.output
    assert not (env["units"] / UNIT_NAME).exists()


def test_system_service_with_a_headless_config(env: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "var"
    _headless_config(home)
    result = _cli("service", "install", "--system", "--home", str(home), "--user", "render")
    assert result.exit_code == 0, result.output
    unit = (env["units"] / UNIT_NAME).read_text()
    assert "User=render" in unit
    assert f'Environment="SPARECYCLES_HOME={home}"' in unit
    assert "systemctl daemon-reload && systemctl enable --now" in result.output
    assert "useradd --system" in result.output  # no such account here


def test_where_systemd_runs_install_enables_it_and_uninstall_disables_it(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []

    def systemctl(system: bool, *arguments: str) -> subprocess.CompletedProcess[str]:
        calls.append(("--system" if system else "--user", *arguments))
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(install_cli, "systemd_running", lambda: True)
    monkeypatch.setattr(install_cli, "run_systemctl", systemctl)
    _headless_config(env["home"])
    assert _cli("service", "install").exit_code == 0
    assert calls == [("--user", "daemon-reload"), ("--user", "enable", "--now", UNIT_NAME)]
    calls.clear()
    assert _cli("service", "uninstall").exit_code == 0
    assert calls == [("--user", "disable", "--now", UNIT_NAME), ("--user", "daemon-reload")]


def test_autostart_on_and_off_without_an_agent(env: dict[str, Path]) -> None:
    entry = env["xdg"] / "autostart" / "sparecycles.desktop"
    assert _cli("autostart", "on").exit_code == 0
    assert "X-GNOME-Autostart-enabled=true" in entry.read_text()
    assert "start_at_login = true" in (env["home"] / "config" / "config.toml").read_text()
    assert "Start at login: on" in _cli("autostart", "status").output
    assert _cli("autostart", "off").exit_code == 0
    assert not entry.exists()
    assert "start_at_login = false" in (env["home"] / "config" / "config.toml").read_text()


def _installed(env: dict[str, Path]) -> AppPaths:
    """A home with settings, a ledger, logs, a user unit and an autostart entry."""
    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(env["home"])})
    paths.ensure()
    paths.config_file.write_text('[general]\nlog_level = "info"\n')
    (paths.state_dir / "ledger.sqlite").write_bytes(b"ledger")
    assert _cli("service", "install").exit_code == 0
    assert _cli("autostart", "on").exit_code == 0
    return paths


def test_uninstall_keep_data_stops_the_agent_and_removes_services_and_autostart(env: dict[str, Path]) -> None:
    paths = _installed(env)
    agent = start_agent(env["home"])
    try:
        result = _cli("uninstall", "--keep-data")
        assert result.exit_code == 0, result.output
        assert agent.process.wait(timeout=20) == 0  # stopped, cleanly
    finally:
        if agent.process.poll() is None:
            agent.stop()
    assert f"Stopped the agent (pid {agent.process.pid})" in result.output
    assert not paths.agent_lock_file.exists()
    assert not (env["units"] / UNIT_NAME).exists()
    assert not (env["xdg"] / "autostart" / "sparecycles.desktop").exists()
    assert (paths.state_dir / "ledger.sqlite").exists()
    assert paths.config_file.exists()


def test_uninstall_asks_and_a_no_keeps_keys_and_data(env: dict[str, Path], memory_keyring: MemoryKeyring) -> None:
    paths = _installed(env)
    _wallets(paths, memory_keyring)
    result = _cli("uninstall", input="n\nn\n")
    assert result.exit_code == 0, result.output
    assert "Delete the keys of the wallets main" in result.output
    assert "Delete the ledger" in result.output
    assert (KEYRING_SERVICE, "wallet:main") in memory_keyring.entries
    assert (paths.state_dir / "ledger.sqlite").exists()
    assert not (env["units"] / UNIT_NAME).exists()


def test_uninstall_yes_deletes_wallet_keys_and_data(env: dict[str, Path], memory_keyring: MemoryKeyring) -> None:
    paths = _installed(env)
    _wallets(paths, memory_keyring)
    result = _cli("uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert memory_keyring.entries == {(KEYRING_SERVICE, "other"): "not ours"}
    assert not paths.state_dir.exists()
    assert not paths.config_dir.exists()
    assert not env["home"].exists()
    assert not (env["xdg"] / "autostart" / "sparecycles.desktop").exists()


def _wallets(paths: AppPaths, backend: MemoryKeyring) -> None:
    wallets = {
        "active": "main",
        "wallets": [
            {"name": "main", "address": "0x" + "aa" * 20, "kind": "key", "confirmed": True},
            {"name": "cold", "address": "0x" + "bb" * 20, "kind": "watch", "confirmed": True},
        ],
    }
    (paths.state_dir / "wallets.json").write_text(json.dumps(wallets))
    backend.set_password(KEYRING_SERVICE, "wallet:main", '{"private_key": "0x01"}')
    backend.set_password(KEYRING_SERVICE, IDENTITY_KEY_NAME, "0x02")
    backend.set_password(KEYRING_SERVICE, "other", "not ours")


def test_uninstall_refuses_contradicting_flags(env: dict[str, Path]) -> None:
    assert _cli("uninstall", "--yes", "--keep-data").exit_code == 2


def test_a_running_agent_applies_start_at_login_changed_through_its_api(env: dict[str, Path]) -> None:
    """The whole path: the setting changed through the control API (the CLI, then a client as the GUI
    would) and the agent process writes and removes the entry."""
    entry = env["xdg"] / "autostart" / "sparecycles.desktop"
    agent = start_agent(env["home"], XDG_CONFIG_HOME=str(env["xdg"]))
    try:
        result = _cli("autostart", "on")
        assert result.exit_code == 0, result.output
        with ControlClient.from_lock_file(agent.paths.agent_lock_file) as client:
            assert client.settings()["general"]["start_at_login"] is True
            assert "X-GNOME-Autostart-enabled=true" in entry.read_text()
            client.update_settings({"general": {"start_at_login": False}})
            assert not entry.exists()  # the agent removed it: no CLI involved
            client.update_settings({"general": {"start_at_login": True}})
            # This installation's own command: the agent's interpreter (the tests' one), `-m sparecycles`.
            assert f"Exec={sys.executable} -m sparecycles\n" in entry.read_text()
    finally:
        agent.stop()


def test_system_service_is_refused_for_an_installation_inside_a_home(
    env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ProtectHome=yes hides /home from the service, and its account may not read there anyway."""
    home = tmp_path / "var"
    _headless_config(home)
    monkeypatch.setattr(spawn, "agent_command", lambda: ["/home/ann/venv/bin/python", "-m", "sparecycles"])
    result = _cli("service", "install", "--system", "--home", str(home))
    assert result.exit_code == 2
    assert "inside a home folder" in result.output
    assert not (env["units"] / UNIT_NAME).exists()

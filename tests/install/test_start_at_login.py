"""Start at login: the setting, changed through the agent's real settings path, writes and removes the
XDG autostart entry (with the installation's own command and GNOME's enabled flag)."""

from __future__ import annotations

import configparser
import logging
import sys
from pathlib import Path

import pytest

from sparecycles.agent.settings_store import SettingsStore
from sparecycles.agent.system.start_at_login import start_at_login_listener
from sparecycles.autostart import (
    ENTRY_NAME,
    NullStartAtLogin,
    XdgAutostart,
    autostart_dir,
    create_start_at_login,
    render_entry,
)
from sparecycles.config import load_settings

COMMAND = ["/opt/Spare Cycles/sparecycles"]


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


@pytest.fixture
def store(tmp_path: Path) -> SettingsStore:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('# mine\n[general]\nlog_level = "info"\n')
    return SettingsStore(config, load_settings(config))


def test_turning_the_setting_on_writes_the_entry_and_off_removes_it(tmp_path: Path, store: SettingsStore) -> None:
    entry = tmp_path / "xdg" / "autostart" / ENTRY_NAME
    store.on_change(start_at_login_listener(XdgAutostart(entry, COMMAND)))

    store.update({"general": {"start_at_login": True}})
    fields = _entry(entry)
    assert fields["Exec"] == '"/opt/Spare Cycles/sparecycles"'
    assert fields["X-GNOME-Autostart-enabled"] == "true"
    assert fields["Type"] == "Application"
    assert fields["Icon"] == "sparecycles"
    assert "start_at_login = true" in (tmp_path / "config" / "config.toml").read_text()
    assert (tmp_path / "config" / "config.toml").read_text().startswith("# mine\n")  # the user's file, comments kept

    store.update({"general": {"start_at_login": False}})
    assert not entry.exists()
    assert "start_at_login = false" in (tmp_path / "config" / "config.toml").read_text()


def test_other_changes_leave_the_entry_alone(tmp_path: Path, store: SettingsStore) -> None:
    """Only a change of the setting is applied: an entry the owner removed by hand stays removed."""
    entry = tmp_path / "autostart" / ENTRY_NAME
    store.on_change(start_at_login_listener(XdgAutostart(entry, COMMAND)))
    store.update({"general": {"start_at_login": True}})
    entry.unlink()
    store.update({"general": {"log_level": "debug"}})
    assert not entry.exists()


def test_where_it_is_not_available_the_agent_says_so(store: SettingsStore, caplog: pytest.LogCaptureFixture) -> None:
    store.on_change(start_at_login_listener(NullStartAtLogin("not on this platform")))
    with caplog.at_level(logging.WARNING):
        store.update({"general": {"start_at_login": True}})
    assert "Start at login not changed: not on this platform" in caplog.text


def test_the_entry_goes_in_xdg_config_home(tmp_path: Path) -> None:
    assert autostart_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "autostart"
    switch = create_start_at_login({"XDG_CONFIG_HOME": str(tmp_path)})
    assert switch.location == str(tmp_path / "autostart" / ENTRY_NAME)
    switch.set(True)
    assert switch.enabled()
    assert _entry(tmp_path / "autostart" / ENTRY_NAME)["Exec"] == f"{sys.executable} -m sparecycles"
    switch.set(False)
    assert not switch.enabled()


def test_exec_quoting_follows_the_desktop_entry_spec() -> None:
    text = render_entry(["/a b/sc", 'say"hi', "50%", "$HOME"], autostart=False)
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line == 'Exec="/a b/sc" "say\\\\"hi" 50%% "\\\\$HOME"'
    assert "X-GNOME-Autostart-enabled" not in text


def test_the_shipped_desktop_entry_and_icon() -> None:
    folder = Path(__file__).resolve().parents[2] / "installer" / "linux"
    fields = _entry(folder / "sparecycles.desktop")
    assert fields["Exec"] == "sparecycles"
    assert fields["Icon"] == "sparecycles"
    assert fields["Type"] == "Application"
    assert (folder / "sparecycles.svg").read_text().lstrip().startswith("<?xml")


def test_on_windows_the_setting_writes_and_removes_the_run_key_value_with_windows_quoting(
    store: SettingsStore,
) -> None:
    from sparecycles.autostart import RUN_VALUE, WindowsRunKey
    from tests.fakes.registry import DictRunKey

    key = DictRunKey()
    store.on_change(start_at_login_listener(WindowsRunKey(key, [r"C:\Program Files\SpareCycles\sparecycles-gui.exe"])))
    store.update({"general": {"start_at_login": True}})
    assert key.values == {RUN_VALUE: r'"C:\Program Files\SpareCycles\sparecycles-gui.exe"'}
    store.update({"general": {"start_at_login": False}})
    assert key.values == {}


def test_on_windows_a_bundle_starts_its_windowed_executable_at_login_so_no_console_opens(tmp_path: Path) -> None:
    from sparecycles.autostart import WINDOWED_EXECUTABLE, login_command

    console = tmp_path / "sparecycles.exe"
    console.touch()
    assert login_command([str(console)], platform="win32") == [str(console)]  # no windowed one beside it
    (tmp_path / WINDOWED_EXECUTABLE).touch()
    assert login_command([str(console)], platform="win32") == [str(tmp_path / WINDOWED_EXECUTABLE)]
    assert login_command([str(console)], platform="linux") == [str(console)]

"""The systemd units: their text, and systemd-analyze's verdict on it where the binary is here.

systemd-analyze verify loads a unit file without a running systemd (this machine has no systemd as
PID 1): the system unit is verified in system mode, the user unit in user mode with a private runtime
folder. Any line it prints about our file (an unknown key, a bad value, a missing executable) fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparecycles.service_unit import (
    SYSTEM_HOME,
    UNIT_NAME,
    UnitFile,
    UnitSpec,
    render_unit,
    unit_dir,
)

COMMAND = [sys.executable, "-m", "sparecycles", "agent", "--foreground"]


def _lines(text: str) -> set[str]:
    return set(text.splitlines())


def test_user_unit_runs_the_agent_in_the_foreground_and_restarts_on_failure() -> None:
    text = render_unit(UnitSpec(COMMAND, home=Path("/srv/rig/sc")))
    lines = _lines(text)
    assert f"ExecStart={sys.executable} -m sparecycles agent --foreground" in lines
    assert {"Restart=on-failure", "Type=simple", "WantedBy=default.target"} <= lines
    assert 'Environment="SPARECYCLES_HOME=/srv/rig/sc"' in lines
    assert 'Environment="PYTHONUNBUFFERED=1"' in lines
    assert not any(line.startswith(("User=", "ProtectSystem=", "PYTHON_KEYRING")) for line in lines)


def test_user_unit_without_a_home_uses_the_users_folders() -> None:
    assert "SPARECYCLES_HOME" not in render_unit(UnitSpec(COMMAND))


def test_system_unit_runs_as_a_dedicated_user_with_its_state_under_var_lib() -> None:
    lines = _lines(render_unit(UnitSpec(COMMAND, system=True, user="gpuagent", home=SYSTEM_HOME)))
    assert {"User=gpuagent", "Group=gpuagent", "SupplementaryGroups=docker"} <= lines
    assert {"StateDirectory=sparecycles", "StateDirectoryMode=0700", "WantedBy=multi-user.target"} <= lines
    assert 'Environment="SPARECYCLES_HOME=/var/lib/sparecycles"' in lines
    # No Secret Service for a system account: keyring says so at once rather than waiting on D-Bus.
    assert 'Environment="PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring"' in lines
    assert "After=network-online.target docker.service nvidia-persistenced.service" in lines


def test_system_unit_hardening_keeps_nvml_cuda_and_the_docker_socket_working() -> None:
    lines = _lines(render_unit(UnitSpec(COMMAND, system=True, home=SYSTEM_HOME)))
    assert {
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    } <= lines
    keys = {line.split("=", 1)[0] for line in lines if "=" in line}
    # Each of these would shut out /dev/nvidia* (a device allow-list) or the CUDA driver (W^X, syscalls).
    for breaking in (
        "PrivateDevices",
        "DevicePolicy",
        "DeviceAllow",
        "ProtectClock",
        "ProtectKernelLogs",
        "MemoryDenyWriteExecute",
        "SystemCallFilter",
        "DynamicUser",
    ):
        assert breaking not in keys


def test_system_unit_without_a_docker_group_does_not_name_one() -> None:
    assert "SupplementaryGroups" not in render_unit(UnitSpec(COMMAND, system=True, docker_group=False))


def test_exec_start_quotes_a_path_with_spaces_and_specifiers() -> None:
    text = render_unit(UnitSpec(["/opt/Spare Cycles/sparecycles", "agent", "100%"]))
    assert 'ExecStart="/opt/Spare Cycles/sparecycles" agent "100%%"' in text


def test_unit_folders_follow_systemd_and_the_redirect(tmp_path: Path) -> None:
    assert unit_dir(system=True, environ={}) == Path("/etc/systemd/system")
    assert unit_dir(system=False, environ={"XDG_CONFIG_HOME": "/x"}) == Path("/x/systemd/user")
    redirected = {"SPARECYCLES_UNIT_DIR": str(tmp_path)}
    assert UnitFile.at(system=True, environ=redirected).path == tmp_path / UNIT_NAME


def _verify(unit: Path, *, user: bool, runtime: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed here (the unit's contents are tested above)")
    return subprocess.run(
        [binary, *(["--user"] if user else []), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)},
    )


@pytest.mark.parametrize("system", [False, True], ids=["user", "system"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, system: bool) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(UnitSpec(COMMAND, system=system, home=SYSTEM_HOME if system else tmp_path)))
    result = _verify(unit, user=not system, runtime=runtime)
    if not system and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze --user cannot start a user manager here: {result.stderr.strip()}")
    about_ours = [line for line in result.stderr.splitlines() if UNIT_NAME in line]
    assert result.returncode == 0, result.stderr
    assert about_ours == [], result.stderr


def test_systemd_analyze_verify_catches_a_bad_key(tmp_path: Path) -> None:
    """The check above would see a mistake: a unit with an unknown key is reported."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    unit = tmp_path / UNIT_NAME
    unit.write_text(
        render_unit(UnitSpec(COMMAND, system=True)).replace("Restart=on-failure", "Restart=on-failure\nRestartt=1")
    )
    result = _verify(unit, user=False, runtime=runtime)
    assert any(UNIT_NAME in line and "Restartt" in line for line in result.stderr.splitlines()), result.stderr

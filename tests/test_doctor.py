"""`sparecycles doctor` on this machine: no NVIDIA GPU or driver, a real Docker engine."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sparecycles.agent.doctor import check_docker, check_gpu, check_keyring, run_checks
from sparecycles.diagnostics import CheckOutcome
from tests.conftest import run_cli
from tests.fakes.gpu import FakeGpuInventory


def _by_name(output: str) -> dict[str, dict[str, object]]:
    return {check["name"]: check for check in json.loads(output)}


@pytest.mark.docker
def test_doctor_reports_missing_gpu_and_driver_with_a_fix_and_docker_as_fine(home: Path) -> None:
    result = run_cli(home, "doctor")
    assert result.returncode == 1  # a required part (the driver) is missing
    assert "✗ NVIDIA driver: NVIDIA driver not found" in result.stdout
    assert "fix: sudo apt install nvidia-driver" in result.stdout
    assert "✓ Docker engine: running" in result.stdout
    assert "✗ NVIDIA Container Toolkit" in result.stdout
    assert "nvidia-ctk runtime configure" in result.stdout
    assert "Not ready to earn" in result.stderr

    checks = _by_name(run_cli(home, "doctor", "--json").stdout)
    assert checks["Docker engine"]["outcome"] == "ok"
    assert checks["NVIDIA driver"]["outcome"] == "problem"
    assert checks["NVIDIA GPU"]["outcome"] == "problem"
    assert checks["Settings"]["outcome"] == "ok"


def test_doctor_says_when_the_docker_engine_is_not_running(home: Path, tmp_path: Path) -> None:
    """An engine that is stopped leaves no socket, or a socket nobody accepts on."""
    stale_socket = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as leftover:
        leftover.bind(str(stale_socket))  # bound, never listening: connection refused
        for docker_host in (f"unix://{tmp_path / 'absent.sock'}", f"unix://{stale_socket}"):
            result = run_cli(home, "doctor", DOCKER_HOST=docker_host)
            assert result.returncode == 1
            assert "✗ Docker engine: not reachable" in result.stdout
            assert "is the Docker service running?" in result.stdout
            assert "fix: sudo systemctl start docker" in result.stdout


def test_doctor_flags_an_invalid_settings_file(home: Path) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[gpu]\nmax_temperature_c = 200\n")
    checks = _by_name(run_cli(home, "doctor", "--json").stdout)
    assert checks["Settings"]["outcome"] == "problem"
    assert "gpu.max_temperature_c" in str(checks["Settings"]["detail"])


def test_gpu_check_lists_the_gpus_it_finds() -> None:
    results = check_gpu(FakeGpuInventory("NVIDIA GeForce RTX 3080"))
    assert [r.outcome for r in results] == [CheckOutcome.OK, CheckOutcome.OK]
    assert "RTX 3080" in results[1].detail


def test_keyring_check_sees_the_secret_service_of_the_test_session() -> None:
    result = check_keyring()
    assert result.outcome is CheckOutcome.OK, result.detail
    assert "SecretService" in result.detail


def test_keyring_check_warns_about_the_fail_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", fail.Keyring)
    result = check_keyring()
    assert result.outcome is CheckOutcome.WARNING
    assert "watch-only" in (result.fix or "")
    assert not result.blocking


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("PlaintextKeyring", "keeps secrets unencrypted"),
        (
            "EncryptedKeyring",
            "is a keyrings.alt stand-in (its own password-encrypted file, or a retired library), not the OS keyring",
        ),
    ],
)
def test_keyring_check_says_what_a_keyrings_alt_backend_does(
    monkeypatch: pytest.MonkeyPatch, backend: str, words: str
) -> None:
    import keyring
    from keyrings.alt import file as alt_file

    monkeypatch.setattr(keyring, "get_keyring", getattr(alt_file, backend))
    result = check_keyring()
    assert result.outcome is CheckOutcome.WARNING
    assert f"keyrings.alt.file.{backend} {words}; SpareCycles refuses it for keys" == result.detail
    assert "unencrypted" not in result.detail or backend == "PlaintextKeyring"  # an encrypted file is not called that


def test_run_checks_never_raises_whatever_is_missing(tmp_path: Path) -> None:
    results = run_checks(tmp_path / "config.toml", docker_url=f"unix://{tmp_path}/none.sock")
    assert {r.name for r in results} >= {"NVIDIA driver", "Docker engine", "NVIDIA Container Toolkit", "Settings"}
    assert all(r.fix for r in results if r.outcome is CheckOutcome.PROBLEM)


def test_on_windows_the_docker_fixes_point_to_docker_desktop_with_wsl2(tmp_path: Path) -> None:
    """The same engine (unreachable, then reachable without GPU support) as the doctor sees on Windows."""
    absent = f"unix://{tmp_path / 'absent.sock'}"
    engine, toolkit = check_docker(absent, platform="win32")
    assert engine.outcome is CheckOutcome.PROBLEM
    assert "Docker Desktop" in engine.detail
    assert engine.fix is not None
    assert "Install Docker Desktop" in engine.fix
    assert "WSL 2" in engine.fix
    assert "systemctl" not in engine.fix

    _engine, toolkit = check_docker(platform="win32")  # this machine's real engine, which has no nvidia runtime
    assert toolkit.outcome is CheckOutcome.PROBLEM
    assert toolkit.fix is not None
    assert "Use the WSL 2 based engine" in toolkit.fix
    assert "wsl --update" in toolkit.fix
    assert "nvidia-ctk" not in toolkit.fix

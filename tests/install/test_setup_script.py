"""installer/linux/setup-docker-nvidia.sh: valid bash (and shellcheck-clean where shellcheck is installed);
--dry-run prints the whole plan and runs nothing; a real run runs only the steps answered yes.

The commands it would run (apt-get, systemctl, curl, ...) are replaced by stubs on PATH that record
their calls, so a test can see what ran and nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "installer" / "linux" / "setup-docker-nvidia.sh"
STUBBED = ("apt-get", "systemctl", "curl", "gpg", "usermod", "docker", "nvidia-ctk", "install", "chmod", "dpkg")


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in STUBBED:
        stub = folder / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    return folder


def _run(stubs: Path, *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}")
    return subprocess.run(
        ["bash", str(SCRIPT), *args], input=answers, capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _calls(stubs: Path) -> list[str]:
    calls = stubs.parent / "calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_bash_parses_it() -> None:
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_shellcheck_finds_nothing() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed here (apt install shellcheck)")
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_dry_run_prints_the_plan_and_changes_nothing(stubs: Path) -> None:
    result = _run(stubs, "--dry-run", "--add-user", "alice")
    assert result.returncode == 0, result.stderr
    assert _calls(stubs) == []
    for expected in (
        "$ apt-get install -y docker.io",
        "$ apt-get install -y nvidia-container-toolkit",
        "$ nvidia-ctk runtime configure --runtime=docker",
        "$ usermod -aG docker alice",
        "equivalent\nto giving that user root",
        "sparecycles service install --system",
        "rootless Docker",
        "DRY RUN finished: nothing was changed.",
    ):
        assert expected in result.stdout, expected


def test_dry_run_with_dockers_repository(stubs: Path) -> None:
    result = _run(stubs, "--dry-run", "--docker-source", "docker")
    assert result.returncode == 0, result.stderr
    assert "$ apt-get install -y docker-ce docker-ce-cli containerd.io" in result.stdout
    assert _calls(stubs) == []


def test_bad_option_is_refused(stubs: Path) -> None:
    assert _run(stubs, "--docker-source", "snap", "--dry-run").returncode == 2
    assert _run(stubs, "--frobnicate").returncode == 2


def _debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "ID=debian" in text or "ID=ubuntu" in text or "debian" in text.lower()


@pytest.mark.skipif(os.geteuid() != 0 or not _debian_like(), reason="a real run needs root on Debian or Ubuntu")
def test_a_real_run_runs_only_the_steps_answered_yes(stubs: Path) -> None:
    result = _run(stubs, answers="y\nn\nn\n")  # Docker: yes; the toolkit: no; the check: no
    assert result.returncode == 0, result.stderr
    assert _calls(stubs) == ["apt-get update", "apt-get install -y docker.io", "systemctl enable --now docker"]
    assert result.stdout.count("Skipped.") == 2


@pytest.mark.skipif(os.geteuid() != 0 or not _debian_like(), reason="a real run needs root on Debian or Ubuntu")
def test_no_answer_means_no(stubs: Path) -> None:
    result = _run(stubs)  # standard input is empty: every question is answered no
    assert result.returncode == 0, result.stderr
    assert _calls(stubs) == []

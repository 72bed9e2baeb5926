"""`sparecycles bench` on a machine without an NVIDIA GPU: it says so and exits non-zero, with or without the
agent running; with simulated GPUs it refuses too, since a benchmark only measures a real GPU. (The
benchmark itself is tested in tests/benchmark/, and on a real GPU by bench/gpu_benchmark.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, start_agent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def no_nvidia_gpu() -> None:
    from sparecycles.launcher import no_gpu_reason

    if no_gpu_reason() is None:
        pytest.skip("this machine has an NVIDIA GPU: the no-GPU message cannot be shown here")


def test_without_an_agent_or_a_gpu_bench_says_there_is_no_gpu(home: Path, no_nvidia_gpu: None) -> None:
    result = run_cli(home, "bench")
    assert result.returncode == 1
    assert "no NVIDIA GPU found" in result.stderr
    assert "nothing to benchmark" in result.stderr


def test_with_an_agent_and_no_gpu_bench_says_there_is_no_gpu(home: Path, no_nvidia_gpu: None) -> None:
    agent = start_agent(home)
    try:
        result = run_cli(home, "bench", "--json")
        assert result.returncode == 1
        assert "no NVIDIA GPU found" in result.stderr
        assert result.stdout == ""
        listed = json.loads(run_cli(home, "status", "--json").stdout)
        assert listed["gpus"] == []
    finally:
        agent.stop()


def test_simulated_gpus_are_not_benchmarked(home: Path) -> None:
    agent = start_agent(home, "--simulated-gpus", "1")
    try:
        result = run_cli(home, "bench", "--gpu", "0")
        assert result.returncode == 1
        assert "simulated" in result.stderr
        status = json.loads(run_cli(home, "status", "--json").stdout)
        assert status["gpus"][0]["benchmark"]["state"] == "none"  # nothing was faked
    finally:
        agent.stop()

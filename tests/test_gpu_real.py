"""On a machine with an NVIDIA GPU and driver: real NVML discovery, end to end.

Skipped (with the reason NVML gives) where there is none, as on the development machines.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from sparecycles.agent.sensors.gpu import NvmlGpuBackend, NvmlGpuInventory
from tests.conftest import RunningAgent, run_cli

pytestmark = pytest.mark.gpu


def test_nvml_lists_every_gpu_with_uuid_and_name() -> None:
    discovery = NvmlGpuInventory().discover()
    assert discovery.available, discovery.reason
    assert discovery.gpus
    for expected_index, gpu in enumerate(discovery.gpus):
        assert gpu.index == expected_index
        assert gpu.uuid.startswith(("GPU-", "MIG-"))
        assert gpu.name


def test_status_reports_the_real_gpus(agent: RunningAgent, home: Path) -> None:
    document = json.loads(run_cli(home, "status", "--json").stdout)
    assert document["gpu_backend"] == {"available": True, "kind": "nvml", "reason": None}
    assert [gpu["uuid"] for gpu in document["gpus"]] == [gpu.uuid for gpu in NvmlGpuInventory().discover().gpus]


def test_nvml_inventory_and_samples_read_real_values_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    """Every reading is a plausible value or None (not available); nothing raises; nothing is logged as a failure."""
    own_pid = os.getpid()
    backend = NvmlGpuBackend()
    try:
        with caplog.at_level(logging.INFO, logger="sparecycles.agent.sensors.gpu.nvml"):
            discovery = backend.discover()
            first = backend.sample(lambda pid: pid == own_pid)
            time.sleep(0.5)
            second = backend.sample(lambda pid: pid == own_pid)
    finally:
        backend.close()

    assert discovery.available, discovery.reason
    for gpu in discovery.gpus:
        assert gpu.vram_total_bytes is not None
        assert gpu.vram_total_bytes > 0
        assert gpu.driver_version
        assert gpu.cuda_version is not None
        assert gpu.cuda_version.count(".") == 1
        assert gpu.compute_capability is not None
        assert gpu.compute_capability[0] >= 3
        limits = gpu.power_limits
        if limits.min_w is not None and limits.max_w is not None and limits.current_w is not None:
            assert 0 < limits.min_w <= limits.current_w <= limits.max_w < 2000  # watts, not milliwatts
    assert [s.index for s in first] == [gpu.index for gpu in discovery.gpus]
    assert [s.uuid for s in second] == [gpu.uuid for gpu in discovery.gpus]
    for before, after in zip(first, second, strict=True):
        assert after.monotonic_s > before.monotonic_s
        for percent in (after.utilization_gpu_percent, after.utilization_memory_percent, after.fan_speed_percent):
            assert percent is None or 0 <= percent <= 100
        assert after.vram_used_bytes is not None
        assert after.temperature_c is None or 0 < after.temperature_c < 130
        assert after.power_draw_w is None or 0 <= after.power_draw_w < 2000
        if before.energy_total_mj is not None and after.energy_total_mj is not None:
            assert after.energy_total_mj >= before.energy_total_mj
        assert after.clock_graphics_mhz is None or after.clock_graphics_mhz >= 0
        pids = [process.pid for process in after.foreign_processes]
        assert own_pid not in pids
        assert len(pids) == len(set(pids))
        for process in after.foreign_processes:
            assert process.name
            assert process.gpu_utilization_percent is None or process.gpu_utilization_percent >= 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_restoring_the_power_limit_answers_without_raising() -> None:
    """``None`` puts back the limit found at discovery: applied as root, else "not permitted"."""
    backend = NvmlGpuBackend()
    try:
        outcome = backend.set_power_limit(0, None)
    finally:
        backend.close()
    assert outcome.applied or "not permitted" in outcome.message or "not supported" in outcome.message, outcome

"""On a machine with an NVIDIA GPU and driver: real NVML discovery, end to end.

Skipped (with the reason NVML gives) where there is none, as on the development machines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparecycles.agent.sensors.gpu import NvmlGpuInventory
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

"""The benchmark and the marketplace: a GPU being benchmarked is not offered for work meanwhile, and each
GPU's kept score goes to the marketplace with the registration. GPUs come from the real NVML backend over
a fake NVML (tests/fakes), the policy from the real work engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sparecycles.agent.benchmark.results import ResultStore
from sparecycles.agent.benchmark.service import BenchmarkService, ProcessRunner
from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.market.service import _setup, machine_offer
from sparecycles.agent.sensors.gpu.nvml import NvmlGpuBackend
from sparecycles.config import Settings
from tests.fakes.fake_pynvml import FakeDevice, FakeNvml
from tests.fakes.presence import ScriptedPresenceSource

from ..benchmark.test_service import fake_runner

A = FakeDevice(name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaaaaaa-0000-0000-0000-000000000001")
B = FakeDevice(name="NVIDIA H100 80GB HBM3", uuid="GPU-bbbbbbbb-0000-0000-0000-000000000002")


def engine() -> WorkEngine:
    work = WorkEngine(
        gpu_backend=NvmlGpuBackend(FakeNvml(A, B, driver_version="580.159.04")),
        presence_source=ScriptedPresenceSource(idle_s=3600),
        activity=None,
        settings=Settings(),
    )
    work.discover()
    work.read_gpus()
    work.read_presence()
    work.evaluate()
    return work


def test_a_gpu_under_benchmark_is_not_offered_and_the_kept_score_is_registered(tmp_path: Path) -> None:
    work = engine()
    assert machine_offer(work, 2).gpus == {A.uuid: 0, B.uuid: 1}
    assert machine_offer(work, 2, held=frozenset({1})).gpus == {A.uuid: 0}

    runner: ProcessRunner = fake_runner()
    benchmarks = BenchmarkService(ResultStore(tmp_path / "benchmarks.json"), lambda: runner)
    [gpu_b] = [gpu for gpu in work.snapshot().discovery.gpus if gpu.uuid == B.uuid]
    result = asyncio.run(benchmarks.run(gpu_b))
    setup = _setup(work, Settings, benchmarks=benchmarks)()
    scores = {gpu.uuid: gpu.score for gpu in setup.gpus}
    assert scores == {A.uuid: None, B.uuid: result.score}

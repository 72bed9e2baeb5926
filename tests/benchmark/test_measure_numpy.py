"""A real, tiny benchmark with NumPy standing in for the GPU: every phase runs and adds up.

NumPy is in the dev extra; without it (a bare environment) these tests are skipped with that reason.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numpy", reason="NumPy (in the dev extra) stands in for the GPU array library")

from sparecycles.agent.benchmark.measure import Plan, run
from sparecycles.agent.benchmark.sampler import PhaseSampler
from sparecycles.agent.benchmark.score import score_figures
from tests.fakes.benchmark_backends import CountingBackend
from tests.fakes.numpy_backend import NumpyBackend

KIB, MIB = 1024, 1024**2
TINY = Plan(
    mode="quick",
    matmul_size=48,
    copy_size_bytes=256 * KIB,
    transfer_size_bytes=128 * KIB,
    warmup_s=0.002,
    budget_s=0.02,
    batches=3,
    vram_start_bytes=1 * MIB,
    vram_granularity_bytes=1 * MIB,
)


def test_every_phase_runs_and_gives_plausible_figures() -> None:
    backend = NumpyBackend(memory_bytes=40 * MIB + 12345)
    measurement = run(backend, TINY, sampler=PhaseSampler(lambda: (95.0, 55.0), interval_s=0.001))
    figures = measurement.figures
    for value in (figures.fp32_tflops, figures.fp16_tflops):
        assert value is not None
        assert 0 < value < 10  # a CPU core's worth, not a datacentre's
    for value in (figures.memory_gbps, figures.host_to_device_gbps, figures.device_to_host_gbps):
        assert value is not None
        assert 0 < value < 10_000
    assert figures.bf16_tflops is None
    assert measurement.phase("matmul_bf16").unsupported == "NumPy has no BF16"
    assert 39 * MIB < (figures.vram_usable_bytes or 0) <= 40 * MIB + 12345
    assert (score_figures(figures) or 0) > 0
    for phase in measurement.phases:
        if phase.value is None:
            continue
        assert phase.warmup_operations >= 2
        assert phase.timed_operations >= 2
        assert len(phase.batch_rates) >= 2
        assert phase.spread is not None
        assert phase.spread >= 0
        assert phase.power is not None
        assert phase.power.mean_power_w == 95.0
    assert measurement.backend == "numpy"
    assert measurement.elapsed_s > 0


def test_the_work_counted_is_the_work_done() -> None:
    backend = CountingBackend(NumpyBackend())
    measurement = run(backend, TINY)  # type: ignore[arg-type]
    n = TINY.matmul_size
    for dtype in ("fp32", "fp16"):
        phase = measurement.phase(f"matmul_{dtype}")  # type: ignore[arg-type]
        operations = phase.warmup_operations + phase.timed_operations
        assert backend.matmul_calls[dtype] == operations
        assert backend.flops_by_dtype[dtype] == 2 * n**3 * operations
        assert phase.work_per_operation == 2 * n**3
    assert "bf16" not in backend.matmul_calls
    for kind, phase_name, per_copy in (
        ("device", "device_copy", 2 * TINY.copy_size_bytes),
        ("host_to_device", "host_to_device", TINY.transfer_size_bytes),
        ("device_to_host", "device_to_host", TINY.transfer_size_bytes),
    ):
        phase = measurement.phase(phase_name)  # type: ignore[arg-type]
        operations = phase.warmup_operations + phase.timed_operations
        assert backend.copy_calls[kind] == operations
        assert backend.bytes_by_kind[kind] == per_copy * operations
        assert phase.work_per_operation == per_copy


def test_products_are_computed_not_skipped() -> None:
    import numpy as np

    backend = NumpyBackend()
    a = backend.random_matrix(4, 4, "fp32")
    b = backend.random_matrix(4, 4, "fp32")
    out = backend.empty_matrix(4, 4, "fp32")
    backend.matmul(a, b, out)
    assert np.allclose(out, a @ b)

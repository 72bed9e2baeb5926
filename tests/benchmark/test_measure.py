"""The measuring code on a simulated GPU with a virtual clock: figures, bookkeeping, budgets, stopping.

Every operation of :class:`SimulatedBackend` takes exactly work ÷ rate virtual seconds, so the figures,
batch sizes and durations asserted here are exact and do not depend on this machine's speed.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from sparecycles.agent.benchmark.arithmetic import copy_bytes, flops
from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted
from sparecycles.agent.benchmark.measure import (
    FULL,
    MIN_BATCHES,
    QUICK,
    TIMED_PHASES,
    Plan,
    Runner,
    run,
)
from sparecycles.agent.benchmark.sampler import PhaseSampler
from tests.fakes.benchmark_backends import GIB, SimulatedBackend

MIB = 1024**2
SMALL = Plan(
    mode="quick",
    matmul_size=1024,
    copy_size_bytes=64 * MIB,
    transfer_size_bytes=16 * MIB,
    warmup_s=0.01,
    budget_s=0.1,
    batches=5,
    vram_start_bytes=256 * MIB,
    vram_granularity_bytes=64 * MIB,
)


def test_figures_equal_the_simulated_gpus_rates() -> None:
    backend = SimulatedBackend(
        tflops={"fp32": 50.0, "fp16": 700.0, "bf16": 750.0},
        memory_gbps=3000.0,
        host_to_device_gbps=50.0,
        device_to_host_gbps=45.0,
    )
    figures = run(backend, SMALL).figures
    assert figures.fp32_tflops == pytest.approx(50.0, rel=1e-9)
    assert figures.fp16_tflops == pytest.approx(700.0, rel=1e-9)
    assert figures.bf16_tflops == pytest.approx(750.0, rel=1e-9)
    assert figures.memory_gbps == pytest.approx(3000.0, rel=1e-9)
    assert figures.host_to_device_gbps == pytest.approx(50.0, rel=1e-9)
    assert figures.device_to_host_gbps == pytest.approx(45.0, rel=1e-9)


def test_steady_batches_have_no_spread() -> None:
    measurement = run(SimulatedBackend(), SMALL)
    for phase in measurement.phases:
        assert phase.spread == pytest.approx(0.0, abs=1e-9), phase.phase
        assert len(phase.batch_rates) == SMALL.batches


def test_work_is_counted_exactly() -> None:
    backend = SimulatedBackend()
    measurement = run(backend, SMALL)
    n = SMALL.matmul_size
    for dtype in ("fp32", "fp16", "bf16"):
        phase = measurement.phase(f"matmul_{dtype}")  # type: ignore[arg-type]
        products = [call for call in backend.matmuls if call[0] == dtype]
        assert phase.work_per_operation == flops(n, n, n)
        assert len(products) == phase.warmup_operations + phase.timed_operations
        assert set(products) == {(dtype, n, n, n)}
    for kind, size in (
        ("device", SMALL.copy_size_bytes),
        ("host_to_device", SMALL.transfer_size_bytes),
        ("device_to_host", SMALL.transfer_size_bytes),
    ):
        phase = measurement.phase("device_copy" if kind == "device" else kind)  # type: ignore[arg-type]
        operations = phase.warmup_operations + phase.timed_operations
        assert backend.copy_calls[kind] == operations
        assert phase.work_per_operation == copy_bytes(size, kind)  # type: ignore[arg-type]
        assert backend.copies[kind] == copy_bytes(size, kind, operations)  # type: ignore[arg-type]


def test_batches_are_sized_from_the_warm_up_to_fill_the_budget() -> None:
    # One FP32 product of 1024³ at 2.147483648 TFLOP/s takes exactly 1 ms: 20 per 20 ms batch.
    one_ms = flops(1024, 1024, 1024) / 1e-3 / 1e12
    backend = SimulatedBackend(tflops={"fp32": one_ms, "fp16": None, "bf16": None})
    phase = Runner(backend, SMALL).run_phase("matmul_fp32")
    assert phase.warmup_operations in (10, 11)  # 10 ms of warm-up; 10 × 1 ms may add up to a hair under
    assert phase.timed_operations == 5 * 20
    assert phase.timed_seconds == pytest.approx(0.1)


def test_a_slow_gpu_runs_one_operation_per_batch() -> None:
    quarter_second = flops(1024, 1024, 1024) / 0.25 / 1e12
    backend = SimulatedBackend(tflops={"fp32": quarter_second, "fp16": None, "bf16": None})
    phase = Runner(backend, SMALL).run_phase("matmul_fp32")
    assert phase.warmup_operations == 2  # the minimum, though one already outlasts the warm-up time
    assert phase.timed_operations == MIN_BATCHES  # the budget (0.1 s) is spent after the first batch
    assert phase.value == pytest.approx(quarter_second, rel=1e-9)


def test_a_gpu_that_slows_down_stops_at_the_budget_and_shows_the_spread() -> None:
    # Two batches at full speed, then every copy takes 4× longer: the third batch alone outlasts the
    # budget that was left, so the phase ends after three batches instead of five.
    per_copy_s = copy_bytes(SMALL.copy_size_bytes, "device") / 3000e9
    per_batch = round(SMALL.budget_s / SMALL.batches / per_copy_s)
    warm = Runner(SimulatedBackend(), SMALL).run_phase("device_copy").warmup_operations
    backend = SimulatedBackend(slow_after_operations=warm + 2 * per_batch, slowdown=4.0)
    phase = Runner(backend, SMALL).run_phase("device_copy")
    assert phase.batch_rates == pytest.approx((3000.0, 3000.0, 750.0))
    assert phase.timed_seconds >= SMALL.budget_s
    assert phase.value == pytest.approx(3000.0)  # the median
    assert phase.spread == pytest.approx(0.75)


def test_an_unsupported_type_is_reported_not_run() -> None:
    backend = SimulatedBackend(tflops={"fp32": 10.0, "fp16": 40.0, "bf16": None})
    measurement = run(backend, SMALL)
    bf16 = measurement.phase("matmul_bf16")
    assert bf16.value is None
    assert bf16.unsupported == "the simulated GPU has no BF16"
    assert bf16.timed_operations == 0
    assert not [call for call in backend.matmuls if call[0] == "bf16"]
    assert measurement.figures.bf16_tflops is None


def test_memory_is_given_back_after_every_phase() -> None:
    backend = SimulatedBackend()
    run(backend, SMALL)
    assert backend.releases >= len(TIMED_PHASES) + 1


@pytest.mark.parametrize(
    ("capacity", "report_total"),
    [(10 * GIB + 123 * MIB, True), (10 * GIB + 123 * MIB, False), (100 * MIB, True), (80 * GIB, True)],
)
def test_the_vram_probe_finds_the_largest_allocation_within_its_granularity(capacity: int, report_total: bool) -> None:
    backend = SimulatedBackend(memory_bytes=capacity, report_memory_total=report_total)
    probe = Runner(backend, SMALL).probe_vram()
    assert capacity - SMALL.vram_granularity_bytes < probe.usable_bytes <= capacity
    assert probe.attempts == len(backend.allocation_attempts) < 25
    assert max(attempt for attempt in backend.allocation_attempts if attempt <= capacity) == probe.usable_bytes


def test_the_vram_probe_tries_the_drivers_total_first_when_doubling_reaches_it() -> None:
    backend = SimulatedBackend(memory_bytes=80 * GIB)  # a GPU where all of it can be allocated
    probe = Runner(backend, SMALL).probe_vram()
    assert probe.usable_bytes == 80 * GIB
    assert backend.allocation_attempts[-1] == 80 * GIB


def test_a_stop_request_raises_and_returns_no_result() -> None:
    stop = threading.Event()
    backend = SimulatedBackend()
    backend.after_operation = lambda: stop.set() if backend.operations == 30 else None
    with pytest.raises(BenchmarkInterrupted, match="interrupted during matmul_fp32") as raised:
        run(backend, SMALL, should_stop=stop.is_set)
    assert raised.value.phase == "matmul_fp32"
    assert backend.operations == 30  # nothing was queued after the request


def test_a_stop_request_during_the_vram_probe_is_honoured() -> None:
    calls = 0

    def stop_at_the_probe() -> bool:
        nonlocal calls
        calls += 1
        return bool(backend.allocation_attempts)

    backend = SimulatedBackend()
    with pytest.raises(BenchmarkInterrupted, match="vram"):
        run(backend, SMALL, should_stop=stop_at_the_probe)
    assert len(backend.allocation_attempts) == 1
    assert calls > 1


def test_a_timer_that_does_not_advance_is_an_error_not_an_infinite_rate() -> None:
    with pytest.raises(BenchmarkError, match="timer did not advance"):
        run(SimulatedBackend(frozen_clock=True), SMALL)


def test_each_timed_phase_carries_its_power_and_matmuls_their_efficiency() -> None:
    sampler = PhaseSampler(lambda: (250.0, 61.0), interval_s=0.001)
    measurement = run(SimulatedBackend(), SMALL, sampler=sampler)
    for phase in measurement.phases:
        assert phase.power is not None
        assert phase.power.samples >= 2
        assert (phase.power.mean_power_w, phase.power.max_power_w) == (250.0, 250.0)
        assert phase.power.max_temperature_c == 61.0
    assert measurement.phase("matmul_bf16").tflops_per_watt == pytest.approx(750.0 / 250.0)
    assert measurement.phase("device_copy").tflops_per_watt is None


def test_without_a_sampler_there_are_no_power_figures() -> None:
    measurement = run(SimulatedBackend(), SMALL)
    assert all(phase.power is None and phase.tflops_per_watt is None for phase in measurement.phases)


GPUS = {
    # Figures near what these GPUs achieve (TFLOP/s, GB/s); BF16 None where the GPU lacks it.
    "H200": ({"fp32": 55.0, "fp16": 780.0, "bf16": 790.0}, 4300.0, 55.0, 141 * GIB),
    "RTX 4090": ({"fp32": 60.0, "fp16": 160.0, "bf16": 160.0}, 900.0, 25.0, 24 * GIB),
    "RTX 2060": ({"fp32": 5.0, "fp16": 22.0, "bf16": None}, 300.0, 12.0, 6 * GIB),
}


@pytest.mark.parametrize("gpu", GPUS)
def test_quick_mode_finishes_well_under_a_minute(gpu: str) -> None:
    rates, memory, link, vram = GPUS[gpu]
    backend = SimulatedBackend(
        tflops=rates,  # type: ignore[arg-type]
        memory_gbps=memory,
        host_to_device_gbps=link,
        device_to_host_gbps=link,
        memory_bytes=vram,
    )
    measurement = run(backend, QUICK)
    assert measurement.elapsed_s < 30  # virtual seconds of GPU work; set-up adds a few real ones
    assert measurement.vram.usable_bytes > vram - QUICK.vram_granularity_bytes


def test_full_mode_runs_longer_batches_than_quick() -> None:
    quick, full = run(SimulatedBackend(), QUICK), run(SimulatedBackend(), FULL)
    assert full.elapsed_s > 3 * quick.elapsed_s
    assert full.elapsed_s < 120


@pytest.mark.parametrize(
    "change",
    [{"matmul_size": 0}, {"batches": 0}, {"budget_s": 0.0}, {"warmup_s": -1.0}, {"vram_granularity_bytes": 0}],
)
def test_a_nonsensical_plan_is_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        replace(SMALL, **change)

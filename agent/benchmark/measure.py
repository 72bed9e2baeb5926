"""The benchmark's phases, written once against :class:`~.backend.ArrayBackend`.

Phases, in order: matrix products in FP32, FP16 and BF16 (a type the device or library lacks is
reported as unsupported, not failed), a device-to-device copy (memory bandwidth), copies from and to
pinned host memory (the host link), and the largest single allocation that succeeds (usable VRAM).

Each timed phase warms up (the first product loads cuBLAS kernels and picks an algorithm), estimates
one operation's time from the last warm-up operation, then runs batches sized so that the plan's
batches fill its time budget: a fast GPU runs more operations, a slow one fewer, and every mode has a
bounded duration. The figure reported is the **median** of the batches' rates, not the best: the
marketplace sells sustained throughput, and the median ignores one batch that hit a clock boost or a
stall alike. The spread, (largest − smallest) / median, says how steady the batches were.

The caller's ``should_stop`` is asked before every operation; when it answers yes the run raises
:class:`~.errors.BenchmarkInterrupted` and returns nothing, so no partial result can be mistaken for a
complete one.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sparecycles.agent.benchmark.arithmetic import copy_bytes, flops, gbps, spread, tflops
from sparecycles.agent.benchmark.backend import ArrayBackend, DType
from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted
from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.sampler import PhasePower, PhaseRecording, PhaseSampler

Mode = Literal["quick", "full"]
PhaseName = Literal[
    "matmul_fp32", "matmul_fp16", "matmul_bf16", "device_copy", "host_to_device", "device_to_host", "vram"
]
TIMED_PHASES: tuple[PhaseName, ...] = (
    "matmul_fp32",
    "matmul_fp16",
    "matmul_bf16",
    "device_copy",
    "host_to_device",
    "device_to_host",
)
PHASE_TITLES: dict[str, str] = {
    "matmul_fp32": "FP32 matrix multiply",
    "matmul_fp16": "FP16 matrix multiply",
    "matmul_bf16": "BF16 matrix multiply",
    "device_copy": "memory bandwidth",
    "host_to_device": "host-to-device transfer",
    "device_to_host": "device-to-host transfer",
    "vram": "usable VRAM",
}
_MATMUL_DTYPES: dict[PhaseName, DType] = {"matmul_fp32": "fp32", "matmul_fp16": "fp16", "matmul_bf16": "bf16"}

MIB = 1024**2
GIB = 1024**3
MIN_WARMUP_OPERATIONS = 2  # the first includes one-off set-up; the second gives the time estimate
MAX_WARMUP_OPERATIONS = 10_000
MIN_BATCHES = 2  # a spread needs two
MAX_OPERATIONS_PER_BATCH = 1_000_000


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one run.

    8192³ products reach full tensor-core throughput on every GPU in the reference table and need
    768 MiB in FP32; copies of 512 MiB and more are well past every L2 cache (≤ 128 MB).
    """

    mode: Mode
    matmul_size: int
    copy_size_bytes: int
    transfer_size_bytes: int
    warmup_s: float
    budget_s: float  # timed seconds per phase; the last batch may run past it
    batches: int
    vram_start_bytes: int
    vram_granularity_bytes: int
    expected_s: float = 60.0  # how long a run takes on a current GPU, start-up included: for a progress bar

    def __post_init__(self) -> None:
        if min(self.matmul_size, self.copy_size_bytes, self.transfer_size_bytes, self.batches) <= 0:
            raise ValueError("benchmark sizes and batch counts must be positive")
        if self.warmup_s < 0 or self.budget_s <= 0:
            raise ValueError("benchmark time budgets must be positive")
        if self.vram_start_bytes <= 0 or self.vram_granularity_bytes <= 0:
            raise ValueError("the VRAM probe's start and granularity must be positive")


# Six timed phases of about 3 s each plus set-up and the VRAM probe: about 25 s on a current GPU.
QUICK = Plan(
    mode="quick",
    matmul_size=8192,
    copy_size_bytes=512 * MIB,
    transfer_size_bytes=256 * MIB,
    warmup_s=0.5,
    budget_s=2.5,
    batches=5,
    vram_start_bytes=256 * MIB,
    vram_granularity_bytes=256 * MIB,
    expected_s=25.0,  # 21 s measured on an H200 (docs/benchmarks.md)
)
# Long enough for clocks and temperature to settle (about 80 s): what a GPU sustains, not its first burst.
FULL = Plan(
    mode="full",
    matmul_size=8192,
    copy_size_bytes=1 * GIB,
    transfer_size_bytes=1 * GIB,
    warmup_s=2.0,
    budget_s=10.0,
    batches=10,
    vram_start_bytes=256 * MIB,
    vram_granularity_bytes=64 * MIB,
    expected_s=80.0,
)
PLANS: dict[Mode, Plan] = {"quick": QUICK, "full": FULL}


@dataclass(frozen=True)
class PhaseResult:
    """One timed phase: its figure (median batch rate) and the bookkeeping behind it."""

    phase: PhaseName
    unit: str  # "TFLOP/s" or "GB/s"
    value: float | None  # None when unsupported
    unsupported: str | None = None
    batch_rates: tuple[float, ...] = ()
    spread: float | None = None
    work_per_operation: int = 0  # FLOPs or bytes
    warmup_operations: int = 0
    timed_operations: int = 0
    timed_seconds: float = 0.0
    power: PhasePower | None = None

    @property
    def tflops_per_watt(self) -> float | None:
        """Matrix products only: TFLOP/s per watt of mean board power during the timed batches."""
        if self.unit != "TFLOP/s" or self.value is None or self.power is None or not self.power.mean_power_w:
            return None
        return self.value / self.power.mean_power_w


@dataclass(frozen=True)
class VramProbe:
    """The largest single allocation that succeeded, within ``granularity_bytes`` of the true limit."""

    usable_bytes: int
    granularity_bytes: int
    attempts: int


@dataclass(frozen=True)
class Measurement:
    """A complete run: every phase and the VRAM probe."""

    mode: Mode
    backend: str
    device_name: str
    phases: tuple[PhaseResult, ...]
    vram: VramProbe
    elapsed_s: float

    def phase(self, name: PhaseName) -> PhaseResult:
        for result in self.phases:
            if result.phase == name:
                return result
        raise KeyError(name)

    @property
    def figures(self) -> Figures:
        return Figures(
            fp32_tflops=self.phase("matmul_fp32").value,
            fp16_tflops=self.phase("matmul_fp16").value,
            bf16_tflops=self.phase("matmul_bf16").value,
            memory_gbps=self.phase("device_copy").value,
            host_to_device_gbps=self.phase("host_to_device").value,
            device_to_host_gbps=self.phase("device_to_host").value,
            vram_usable_bytes=self.vram.usable_bytes,
        )


def _never() -> bool:
    return False


class Runner:
    """Runs a plan's phases on one backend; see the module docstring for how each phase is timed."""

    def __init__(
        self,
        backend: ArrayBackend,
        plan: Plan,
        *,
        sampler: PhaseSampler | None = None,
        should_stop: Callable[[], bool] = _never,
    ) -> None:
        self._backend = backend
        self._plan = plan
        self._sampler = sampler
        self._should_stop = should_stop

    def run(self) -> Measurement:
        """Every phase, then the VRAM probe with nothing else allocated."""
        started = self._backend.now()
        phases = tuple(self.run_phase(name) for name in TIMED_PHASES)
        vram = self.probe_vram()
        return Measurement(
            mode=self._plan.mode,
            backend=self._backend.name,
            device_name=self._backend.device_name,
            phases=phases,
            vram=vram,
            elapsed_s=self._backend.now() - started,
        )

    def run_phase(self, name: PhaseName) -> PhaseResult:
        self._check(name)
        try:
            if name in _MATMUL_DTYPES:
                return self._matmul(name, _MATMUL_DTYPES[name])
            if name == "device_copy":
                return self._device_copy()
            if name in ("host_to_device", "device_to_host"):
                return self._transfer(name)
            raise ValueError(f"{name} is not a timed phase")
        finally:
            self._backend.release_memory()  # the phase's buffers are gone: give their memory back

    # -- the phases -----------------------------------------------------------------------------

    def _matmul(self, name: PhaseName, dtype: DType) -> PhaseResult:
        reason = self._backend.unsupported_reason(dtype)
        if reason is not None:
            return PhaseResult(phase=name, unit="TFLOP/s", value=None, unsupported=reason)
        n = self._plan.matmul_size
        a = self._backend.random_matrix(n, n, dtype)
        b = self._backend.random_matrix(n, n, dtype)
        out = self._backend.empty_matrix(n, n, dtype)

        def product() -> None:
            self._backend.matmul(a, b, out)

        return self._timed(name, "TFLOP/s", product, flops(n, n, n), tflops)

    def _device_copy(self) -> PhaseResult:
        size = self._plan.copy_size_bytes
        src = self._backend.device_buffer(size)
        dst = self._backend.device_buffer(size)

        def copy() -> None:
            self._backend.copy_device(dst, src)

        return self._timed("device_copy", "GB/s", copy, copy_bytes(size, "device"), gbps)

    def _transfer(self, name: Literal["host_to_device", "device_to_host"]) -> PhaseResult:
        size = self._plan.transfer_size_bytes
        host = self._backend.pinned_host_buffer(size)
        device = self._backend.device_buffer(size)

        def upload() -> None:
            self._backend.copy_host_to_device(device, host)

        def download() -> None:
            self._backend.copy_device_to_host(host, device)

        operation = upload if name == "host_to_device" else download
        return self._timed(name, "GB/s", operation, copy_bytes(size, name), gbps)

    def probe_vram(self) -> VramProbe:
        """Double from the plan's start until an allocation fails, then bisect to the granularity.

        Each attempt frees its allocation before the next, so nothing is held afterwards. The driver's
        total is the ceiling: no allocation can exceed it, and trying it first saves the doubling steps
        on a GPU that is empty.
        """
        backend, granularity = self._backend, self._plan.vram_granularity_bytes
        backend.release_memory()
        ceiling = backend.memory_total_bytes()
        attempts = 0

        def fits(size: int) -> bool:
            nonlocal attempts
            self._check("vram")
            attempts += 1
            return backend.try_allocate(size)

        low, high = 0, None  # low: known to fit (0 trivially); high: known not to fit
        size = self._plan.vram_start_bytes
        while high is None:
            if ceiling is not None and size >= ceiling:
                if fits(ceiling):
                    return VramProbe(ceiling, granularity, attempts)
                high = ceiling
            elif fits(size):
                low, size = size, size * 2
            else:
                high = size
        while high - low > granularity:
            middle = low + (high - low) // 2 // granularity * granularity
            middle = max(middle, low + granularity)
            if fits(middle):
                low = middle
            else:
                high = middle
        return VramProbe(low, granularity, attempts)

    # -- timing ---------------------------------------------------------------------------------

    def _timed(
        self,
        name: PhaseName,
        unit: str,
        operation: Callable[[], None],
        work: int,
        rate: Callable[[int, float], float],
    ) -> PhaseResult:
        backend, plan = self._backend, self._plan
        warmup_operations, per_operation_s = self._warm_up(name, operation)
        batch_size = max(1, min(MAX_OPERATIONS_PER_BATCH, round(plan.budget_s / plan.batches / per_operation_s)))
        rates: list[float] = []
        timed_seconds = 0.0
        with self._sampling(name) as power:
            while len(rates) < plan.batches and not (timed_seconds >= plan.budget_s and len(rates) >= MIN_BATCHES):
                started = backend.now()
                for _ in range(batch_size):
                    self._check(name)
                    operation()
                backend.synchronize()
                seconds = self._elapsed(name, started)
                rates.append(rate(work * batch_size, seconds))
                timed_seconds += seconds
        return PhaseResult(
            phase=name,
            unit=unit,
            value=statistics.median(rates),
            batch_rates=tuple(rates),
            spread=spread(rates),
            work_per_operation=work,
            warmup_operations=warmup_operations,
            timed_operations=batch_size * len(rates),
            timed_seconds=timed_seconds,
            power=power.summary() if power is not None else None,
        )

    def _warm_up(self, name: PhaseName, operation: Callable[[], None]) -> tuple[int, float]:
        """Run the operation until the warm-up time has passed; the count and the last one's duration."""
        backend = self._backend
        started = backend.now()
        count, last_s = 0, 0.0
        while count < MIN_WARMUP_OPERATIONS or (
            backend.now() - started < self._plan.warmup_s and count < MAX_WARMUP_OPERATIONS
        ):
            self._check(name)
            begun = backend.now()
            operation()
            backend.synchronize()
            last_s = self._elapsed(name, begun)
            count += 1
        return count, last_s

    def _elapsed(self, name: PhaseName, started: float) -> float:
        seconds = self._backend.now() - started
        if seconds <= 0:
            raise BenchmarkError(
                f"{PHASE_TITLES[name]}: the timer did not advance over a whole operation; "
                "the array library returned before the device finished (report this as a bug)"
            )
        return seconds

    def _sampling(self, name: PhaseName) -> contextlib.AbstractContextManager[PhaseRecording | None]:
        if self._sampler is None:
            return contextlib.nullcontext()
        return self._sampler.sampling(name)

    def _check(self, phase: str) -> None:
        if self._should_stop():
            raise BenchmarkInterrupted(phase)


def run(
    backend: ArrayBackend,
    plan: Plan,
    *,
    sampler: PhaseSampler | None = None,
    should_stop: Callable[[], bool] = _never,
) -> Measurement:
    """Run every phase of ``plan`` on ``backend``; raises BenchmarkInterrupted when ``should_stop`` says so."""
    return Runner(backend, plan, sampler=sampler, should_stop=should_stop).run()

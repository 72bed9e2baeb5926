"""Array backends for the benchmark's tests, implementing ``ArrayBackend`` without a GPU.

:class:`SimulatedBackend` is a GPU on a virtual clock: each operation takes exactly as long as its
configured rate says and does no work, so measured figures, batch sizes and durations are known in
advance and no test depends on this machine's speed. It records every call, for the bookkeeping tests.
:class:`CountingBackend` wraps any backend (the NumPy one, say) and records the work it was asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparecycles.agent.benchmark.arithmetic import copy_bytes, flops
from sparecycles.agent.benchmark.backend import ArrayBackend, DType

GIB = 1024**3


@dataclass(frozen=True)
class Matrix:
    rows: int
    cols: int
    dtype: DType


@dataclass(frozen=True)
class Buffer:
    size_bytes: int
    where: str  # "device" or "host"


@dataclass
class SimulatedBackend:
    """A GPU whose operations take exactly work ÷ rate seconds of virtual time."""

    tflops: dict[DType, float | None] = field(default_factory=lambda: {"fp32": 50.0, "fp16": 750.0, "bf16": 750.0})
    memory_gbps: float = 3000.0
    host_to_device_gbps: float = 50.0
    device_to_host_gbps: float = 50.0
    memory_bytes: int = 80 * GIB
    report_memory_total: bool = True
    device_name: str = "Simulated GPU"
    device_uuid: str | None = "GPU-00000000-0000-0000-0000-00000000beef"
    # After this many operations every one takes ``slowdown`` times longer (a GPU that throttles).
    slow_after_operations: int | None = None
    slowdown: float = 1.0
    frozen_clock: bool = False  # a timer that never advances (an array library that does not wait)
    after_operation: Callable[[], None] | None = None  # called after each queued operation

    clock: float = 0.0
    operations: int = 0
    matmuls: list[tuple[DType, int, int, int]] = field(default_factory=list)
    copies: Counter[str] = field(default_factory=Counter)  # kind -> bytes counted by copy_bytes
    copy_calls: Counter[str] = field(default_factory=Counter)
    synchronizations: int = 0
    allocation_attempts: list[int] = field(default_factory=list)
    releases: int = 0

    @property
    def name(self) -> str:
        return "simulated"

    def unsupported_reason(self, dtype: DType) -> str | None:
        return None if self.tflops.get(dtype) is not None else f"the simulated GPU has no {dtype.upper()}"

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Matrix:
        return Matrix(rows, cols, dtype)

    def empty_matrix(self, rows: int, cols: int, dtype: DType) -> Matrix:
        return Matrix(rows, cols, dtype)

    def matmul(self, a: Matrix, b: Matrix, out: Matrix) -> None:
        assert a.cols == b.rows
        assert (out.rows, out.cols) == (a.rows, b.cols)
        assert a.dtype == b.dtype == out.dtype
        rate = self.tflops[a.dtype]
        assert rate is not None, "a product in a type the GPU does not support"
        self.matmuls.append((a.dtype, a.rows, b.cols, a.cols))
        self._advance(flops(a.rows, b.cols, a.cols) / (rate * 1e12))

    def device_buffer(self, size_bytes: int) -> Buffer:
        return Buffer(size_bytes, "device")

    def pinned_host_buffer(self, size_bytes: int) -> Buffer:
        return Buffer(size_bytes, "host")

    def copy_device(self, dst: Buffer, src: Buffer) -> None:
        assert dst.where == src.where == "device"
        assert dst.size_bytes == src.size_bytes
        self._copy("device", src.size_bytes, self.memory_gbps)

    def copy_host_to_device(self, dst: Buffer, src: Buffer) -> None:
        assert (dst.where, src.where) == ("device", "host")
        assert dst.size_bytes == src.size_bytes
        self._copy("host_to_device", src.size_bytes, self.host_to_device_gbps)

    def copy_device_to_host(self, dst: Buffer, src: Buffer) -> None:
        assert (dst.where, src.where) == ("host", "device")
        assert dst.size_bytes == src.size_bytes
        self._copy("device_to_host", src.size_bytes, self.device_to_host_gbps)

    def synchronize(self) -> None:
        self.synchronizations += 1

    def now(self) -> float:
        return self.clock

    def memory_total_bytes(self) -> int | None:
        return self.memory_bytes if self.report_memory_total else None

    def try_allocate(self, size_bytes: int) -> bool:
        self.allocation_attempts.append(size_bytes)
        return size_bytes <= self.memory_bytes

    def release_memory(self) -> None:
        self.releases += 1

    def _copy(self, kind: str, size_bytes: int, rate_gbps: float) -> None:
        moved = copy_bytes(size_bytes, kind)  # type: ignore[arg-type]
        self.copies[kind] += moved
        self.copy_calls[kind] += 1
        self._advance(moved / (rate_gbps * 1e9))

    def _advance(self, seconds: float) -> None:
        self.operations += 1
        if self.slow_after_operations is not None and self.operations > self.slow_after_operations:
            seconds *= self.slowdown
        if not self.frozen_clock:
            self.clock += seconds
        if self.after_operation is not None:
            self.after_operation()


class CountingBackend:
    """Passes every call to ``inner`` and counts the work asked of it."""

    def __init__(self, inner: ArrayBackend) -> None:
        self.inner = inner
        self.flops_by_dtype: Counter[str] = Counter()
        self.matmul_calls: Counter[str] = Counter()
        self.bytes_by_kind: Counter[str] = Counter()
        self.copy_calls: Counter[str] = Counter()
        self._dtypes: dict[int, DType] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def device_name(self) -> str:
        return self.inner.device_name

    @property
    def device_uuid(self) -> str | None:
        return self.inner.device_uuid

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        matrix = self.inner.random_matrix(rows, cols, dtype)
        self._dtypes[id(matrix)] = dtype
        return matrix

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        m, k = a.shape
        _, n = b.shape
        dtype = self._dtypes[id(a)]
        self.flops_by_dtype[dtype] += flops(m, n, k)
        self.matmul_calls[dtype] += 1
        self.inner.matmul(a, b, out)

    def copy_device(self, dst: Any, src: Any) -> None:
        self._count("device", src.nbytes)
        self.inner.copy_device(dst, src)

    def copy_host_to_device(self, dst: Any, src: Any) -> None:
        self._count("host_to_device", src.nbytes)
        self.inner.copy_host_to_device(dst, src)

    def copy_device_to_host(self, dst: Any, src: Any) -> None:
        self._count("device_to_host", src.nbytes)
        self.inner.copy_device_to_host(dst, src)

    def _count(self, kind: str, size_bytes: int) -> None:
        self.bytes_by_kind[kind] += copy_bytes(size_bytes, kind)  # type: ignore[arg-type]
        self.copy_calls[kind] += 1

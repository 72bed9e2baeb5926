"""The benchmark's array backend on NumPy: the CPU stands in for the GPU, its RAM for VRAM.

Products and copies really run, so a tiny benchmark gives real (small) figures; NumPy has no BF16,
which the benchmark must report as unsupported. The "device memory" is a limit the VRAM probe finds:
allocations up to it really happen (keep it small), larger ones fail as a full GPU's would.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sparecycles.agent.benchmark.backend import DType

_DTYPES = {"fp32": np.float32, "fp16": np.float16}


class NumpyBackend:
    def __init__(self, memory_bytes: int = 64 * 1024**2, seed: int = 0) -> None:
        self.memory_bytes = memory_bytes
        self._random = np.random.default_rng(seed)

    @property
    def name(self) -> str:
        return "numpy"

    @property
    def device_name(self) -> str:
        return "NumPy on the CPU"

    @property
    def device_uuid(self) -> str | None:
        return None

    def unsupported_reason(self, dtype: DType) -> str | None:
        return "NumPy has no BF16" if dtype not in _DTYPES else None

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        return self._random.standard_normal((rows, cols), dtype=np.float32).astype(_DTYPES[dtype])

    def empty_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        return np.empty((rows, cols), dtype=_DTYPES[dtype])

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        np.matmul(a, b, out=out)

    def device_buffer(self, size_bytes: int) -> Any:
        return np.ones(size_bytes, dtype=np.uint8)  # ones: pages touched, as device memory always is

    def pinned_host_buffer(self, size_bytes: int) -> Any:
        return np.ones(size_bytes, dtype=np.uint8)

    def copy_device(self, dst: Any, src: Any) -> None:
        np.copyto(dst, src)

    def copy_host_to_device(self, dst: Any, src: Any) -> None:
        np.copyto(dst, src)

    def copy_device_to_host(self, dst: Any, src: Any) -> None:
        np.copyto(dst, src)

    def synchronize(self) -> None:
        """NumPy finishes each operation before returning."""

    def now(self) -> float:
        return time.perf_counter()

    def memory_total_bytes(self) -> int | None:
        return self.memory_bytes

    def try_allocate(self, size_bytes: int) -> bool:
        if size_bytes > self.memory_bytes:
            return False
        block = np.empty(size_bytes, dtype=np.uint8)
        del block
        return True

    def release_memory(self) -> None:
        """Nothing is cached."""

"""The benchmark's array backend on CuPy. CuPy is imported by :meth:`CupyBackend.open` only.

CuPy has no BF16 arrays, so BF16 is reported as unsupported here. Copies go through
``cudaMemcpyAsync`` directly, so that what is timed is the copy engine and nothing else; CuPy does not
use TF32 for FP32 products unless ``CUPY_TF32=1`` is set, which the worker leaves alone.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from sparecycles.agent.benchmark.backend import DType
from sparecycles.agent.benchmark.errors import BenchmarkError, NoArrayLibraryError
from sparecycles.agent.benchmark.torch_backend import GpuMemoryError, out_of_memory_message


class CupyBackend:
    """One CUDA device through CuPy; ``cupy`` and ``cupyx`` are the imported modules."""

    def __init__(self, cupy: Any, cupyx: Any, index: int) -> None:
        self._cupy = cupy
        self._cupyx = cupyx
        self._index = index
        self._runtime = cupy.cuda.runtime
        self._dtypes = {"fp32": cupy.float32, "fp16": cupy.float16}

    @classmethod
    def open(cls, index: int) -> CupyBackend:
        try:
            cupy: Any = importlib.import_module("cupy")  # Any: no dependency on CuPy's own types
            cupyx: Any = importlib.import_module("cupyx")
        except ImportError:
            raise NoArrayLibraryError("CuPy is not installed") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise NoArrayLibraryError(f"CuPy sees no CUDA GPU ({exc})") from None
        if not 0 <= index < count:
            raise BenchmarkError(f"there is no GPU {index}: CuPy sees {count} (numbered from 0)")
        cupy.cuda.Device(index).use()
        return cls(cupy, cupyx, index)

    @property
    def name(self) -> str:
        return "cupy"

    @property
    def device_name(self) -> str:
        name = self._runtime.getDeviceProperties(self._index)["name"]
        return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)

    @property
    def device_uuid(self) -> str | None:
        """The device's UUID as NVML writes it ("GPU-…"), where this CuPy reports one."""
        raw = self._runtime.getDeviceProperties(self._index).get("uuid")
        if not isinstance(raw, bytes) or len(raw) != 16:
            return None
        text = raw.hex()
        return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def unsupported_reason(self, dtype: DType) -> str | None:
        return "CuPy has no BF16 arrays" if dtype == "bf16" else None

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        cupy = self._cupy
        return self._allocate(
            lambda: cupy.random.standard_normal((rows, cols), dtype=cupy.float32).astype(self._dtypes[dtype]),
            rows * cols * 4,
        )

    def empty_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        return self._allocate(lambda: self._cupy.empty((rows, cols), dtype=self._dtypes[dtype]), rows * cols * 4)

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self._cupy.matmul(a, b, out=out)

    def device_buffer(self, size_bytes: int) -> Any:
        return self._allocate(lambda: self._cupy.empty(size_bytes, dtype=self._cupy.uint8), size_bytes)

    def pinned_host_buffer(self, size_bytes: int) -> Any:
        return self._cupyx.empty_pinned(size_bytes, dtype="uint8")

    def copy_device(self, dst: Any, src: Any) -> None:
        self._copy(dst.data.ptr, src.data.ptr, dst.nbytes, self._runtime.memcpyDeviceToDevice)

    def copy_host_to_device(self, dst: Any, src: Any) -> None:
        self._copy(dst.data.ptr, src.ctypes.data, dst.nbytes, self._runtime.memcpyHostToDevice)

    def copy_device_to_host(self, dst: Any, src: Any) -> None:
        self._copy(dst.ctypes.data, src.data.ptr, dst.nbytes, self._runtime.memcpyDeviceToHost)

    def synchronize(self) -> None:
        self._cupy.cuda.Device(self._index).synchronize()

    def now(self) -> float:
        return time.perf_counter()

    def memory_total_bytes(self) -> int | None:
        return int(self._runtime.memGetInfo()[1])

    def try_allocate(self, size_bytes: int) -> bool:
        try:
            pointer = self._runtime.malloc(size_bytes)
        except self._runtime.CUDARuntimeError:
            return False
        self._runtime.free(pointer)
        return True

    def release_memory(self) -> None:
        self._cupy.get_default_memory_pool().free_all_blocks()
        self._cupy.get_default_pinned_memory_pool().free_all_blocks()

    def _copy(self, dst_pointer: int, src_pointer: int, size_bytes: int, kind: int) -> None:
        stream = self._cupy.cuda.get_current_stream()
        self._runtime.memcpyAsync(dst_pointer, src_pointer, size_bytes, kind, stream.ptr)

    def _allocate(self, make: Any, size_bytes: int) -> Any:
        try:
            return make()
        except self._cupy.cuda.memory.OutOfMemoryError:
            self.release_memory()
            raise GpuMemoryError(out_of_memory_message(size_bytes)) from None

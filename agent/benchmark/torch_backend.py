"""The benchmark's array backend on PyTorch (CUDA). PyTorch is imported by :meth:`TorchBackend.open` only.

FP32 products are kept to true FP32 (no TF32), and half-precision products accumulate in FP32 without
reduced-precision reductions: the figures then mean what the reference table's figures mean.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from sparecycles.agent.benchmark.backend import DType
from sparecycles.agent.benchmark.errors import BenchmarkError, NoArrayLibraryError

_BF16_CAPABILITY = (8, 0)  # Ampere


class GpuMemoryError(BenchmarkError):
    """The benchmark's buffers do not fit in the GPU's free memory."""


def out_of_memory_message(size_bytes: int) -> str:
    return (
        f"not enough free GPU memory for the benchmark's buffers ({size_bytes / 2**20:.0f} MiB): close the "
        "programs using the GPU (`nvidia-smi` lists them) and run it again"
    )


class TorchBackend:
    """One CUDA device through PyTorch; ``torch`` is the imported module."""

    def __init__(self, torch: Any, index: int) -> None:
        self._torch = torch
        self._index = index
        self._device = torch.device("cuda", index)
        self._dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    @classmethod
    def open(cls, index: int) -> TorchBackend:
        try:
            torch: Any = importlib.import_module("torch")  # Any: no dependency on PyTorch's own types
        except ImportError:
            raise NoArrayLibraryError("PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise NoArrayLibraryError("PyTorch sees no CUDA GPU (a CPU-only build, or no NVIDIA driver)")
        count = torch.cuda.device_count()
        if not 0 <= index < count:
            raise BenchmarkError(f"there is no GPU {index}: PyTorch sees {count} (numbered from 0)")
        torch.cuda.set_device(index)
        matmul = torch.backends.cuda.matmul
        if hasattr(matmul, "fp32_precision"):  # PyTorch 2.9 and later
            matmul.fp32_precision = "ieee"
        else:
            matmul.allow_tf32 = False
        matmul.allow_fp16_reduced_precision_reduction = False
        matmul.allow_bf16_reduced_precision_reduction = False
        return cls(torch, index)

    @property
    def name(self) -> str:
        return "torch"

    @property
    def device_name(self) -> str:
        return str(self._torch.cuda.get_device_name(self._index))

    @property
    def device_uuid(self) -> str | None:
        """The device's UUID as NVML writes it ("GPU-…"), where this PyTorch reports one."""
        uuid = getattr(self._torch.cuda.get_device_properties(self._index), "uuid", None)
        if uuid is None:
            return None
        text = str(uuid)
        return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"

    def unsupported_reason(self, dtype: DType) -> str | None:
        if dtype == "bf16":
            major, minor = self._torch.cuda.get_device_capability(self._index)
            if (major, minor) < _BF16_CAPABILITY:
                return f"BF16 needs an Ampere or newer GPU (compute capability 8.0); this one is {major}.{minor}"
        return None

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        return self._allocate(
            lambda: self._torch.randn(rows, cols, device=self._device, dtype=self._dtypes[dtype]),
            rows * cols * 4,
        )

    def empty_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        return self._allocate(
            lambda: self._torch.empty(rows, cols, device=self._device, dtype=self._dtypes[dtype]), rows * cols * 4
        )

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        self._torch.matmul(a, b, out=out)

    def device_buffer(self, size_bytes: int) -> Any:
        return self._allocate(
            lambda: self._torch.empty(size_bytes, dtype=self._torch.uint8, device=self._device), size_bytes
        )

    def pinned_host_buffer(self, size_bytes: int) -> Any:
        return self._torch.empty(size_bytes, dtype=self._torch.uint8, pin_memory=True)

    def copy_device(self, dst: Any, src: Any) -> None:
        dst.copy_(src)

    def copy_host_to_device(self, dst: Any, src: Any) -> None:
        dst.copy_(src, non_blocking=True)

    def copy_device_to_host(self, dst: Any, src: Any) -> None:
        dst.copy_(src, non_blocking=True)

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self._device)

    def now(self) -> float:
        return time.perf_counter()

    def memory_total_bytes(self) -> int | None:
        return int(self._torch.cuda.get_device_properties(self._index).total_memory)

    def try_allocate(self, size_bytes: int) -> bool:
        torch = self._torch
        try:
            block = torch.empty(size_bytes, dtype=torch.uint8, device=self._device)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return False
        del block
        torch.cuda.empty_cache()
        return True

    def release_memory(self) -> None:
        self._torch.cuda.empty_cache()

    def _allocate(self, make: Any, size_bytes: int) -> Any:
        try:
            return make()
        except self._torch.cuda.OutOfMemoryError:
            self._torch.cuda.empty_cache()
            raise GpuMemoryError(out_of_memory_message(size_bytes)) from None

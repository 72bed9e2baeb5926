"""The array-library interface the measuring code is written against, once, for every library.

A backend owns one GPU ("the device") and a timer. Arrays are the library's own objects, opaque to the
measuring code (``Any``): it only hands them back to the backend. PyTorch and CuPy implement it on a
GPU (``torch_backend``, ``cupy_backend``); the tests implement it with NumPy on the CPU.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

DType = Literal["fp32", "fp16", "bf16"]
DTYPES: tuple[DType, ...] = ("fp32", "fp16", "bf16")


class ArrayBackend(Protocol):
    """One device, driven through one array library."""

    @property
    def name(self) -> str:
        """The library, as results name it: "torch", "cupy", "numpy"."""
        ...

    @property
    def device_name(self) -> str:
        """The device as the library names it (e.g. "NVIDIA H100 80GB HBM3")."""
        ...

    @property
    def device_uuid(self) -> str | None:
        """The device's UUID as NVML writes it ("GPU-…"), so NVML reads the same GPU; ``None`` if unknown."""
        ...

    def unsupported_reason(self, dtype: DType) -> str | None:
        """Why matrix products in ``dtype`` cannot run here (e.g. no BF16 before Ampere), else ``None``."""
        ...

    def random_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        """A device matrix of normally distributed values (random data: zeros would flatter the GPU)."""
        ...

    def empty_matrix(self, rows: int, cols: int, dtype: DType) -> Any:
        """A device matrix to receive products, so that timed products allocate nothing."""
        ...

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        """``out = a @ b``, queued on the device (it may return before the product is done)."""
        ...

    def device_buffer(self, size_bytes: int) -> Any:
        """``size_bytes`` bytes of device memory."""
        ...

    def pinned_host_buffer(self, size_bytes: int) -> Any:
        """``size_bytes`` bytes of page-locked host memory, which the GPU's copy engines reach directly."""
        ...

    def copy_device(self, dst: Any, src: Any) -> None:
        """Queue a copy between two device buffers of the same size."""
        ...

    def copy_host_to_device(self, dst: Any, src: Any) -> None:
        """Queue a copy from a pinned host buffer to a device buffer of the same size."""
        ...

    def copy_device_to_host(self, dst: Any, src: Any) -> None:
        """Queue a copy from a device buffer to a pinned host buffer of the same size."""
        ...

    def synchronize(self) -> None:
        """Wait until everything queued on the device has finished."""
        ...

    def now(self) -> float:
        """A monotonic clock in seconds; durations are read after ``synchronize``."""
        ...

    def memory_total_bytes(self) -> int | None:
        """The device's memory as the driver reports it (the VRAM probe's ceiling), ``None`` if unknown."""
        ...

    def try_allocate(self, size_bytes: int) -> bool:
        """Whether one allocation of ``size_bytes`` succeeds now; it is freed again before this returns."""
        ...

    def release_memory(self) -> None:
        """Hand memory that the library caches for reuse back to the driver (arrays no longer referenced)."""
        ...

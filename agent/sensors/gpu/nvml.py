"""Which NVIDIA GPUs this machine has, behind one small interface.

The real implementation reads NVML (nvidia-ml-py) lazily; without a driver or a GPU it answers
"not available" with the reason instead of raising. Fakes for tests implement the same protocol.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sparecycles.agent.sensors.gpu.model import GpuDiscovery, GpuIdentity

log = logging.getLogger(__name__)


NO_DRIVER_REASON = (
    "NVIDIA driver not found (libnvidia-ml is missing). Install the NVIDIA driver: "
    "`sudo apt install nvidia-driver` on Debian (non-free) or `sudo ubuntu-drivers install` on Ubuntu."
)


class NvmlGpuInventory:
    """GPU discovery through NVML, initialised once, lazily, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: GpuDiscovery | None = None

    def discover(self) -> GpuDiscovery:
        with self._lock:
            if self._result is None:
                self._result = self._discover()
            return self._result

    def _discover(self) -> GpuDiscovery:
        import pynvml

        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound:
            return GpuDiscovery("none", False, NO_DRIVER_REASON, ())
        except pynvml.NVMLError as exc:
            reason = f"NVIDIA driver present but not usable ({_decode(pynvml.nvmlErrorString(exc.value))})."
            return GpuDiscovery("none", False, reason + " Reboot after a driver update, or reinstall the driver.", ())
        try:
            gpus = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                gpus.append(
                    GpuIdentity(
                        index=index,
                        uuid=_decode(pynvml.nvmlDeviceGetUUID(handle)),
                        name=_decode(pynvml.nvmlDeviceGetName(handle)),
                    )
                )
        except pynvml.NVMLError as exc:
            return GpuDiscovery("nvml", False, f"NVML failed to list GPUs: {exc}", ())
        if not gpus:
            return GpuDiscovery("nvml", False, "The NVIDIA driver is loaded but reports no GPU.", ())
        return GpuDiscovery("nvml", True, None, tuple(gpus))


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

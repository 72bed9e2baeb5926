"""A GPU inventory that reports whatever GPUs a test gives it (same protocol as NVML's)."""

from __future__ import annotations

from sparecycles.agent.sensors.gpu import GpuDiscovery, GpuIdentity


class FakeGpuInventory:
    def __init__(self, *names: str) -> None:
        self.gpus = tuple(
            GpuIdentity(index=i, uuid=f"GPU-00000000-0000-0000-0000-{i:012d}", name=name)
            for i, name in enumerate(names)
        )

    def discover(self) -> GpuDiscovery:
        if not self.gpus:
            return GpuDiscovery("none", False, "no fake GPU configured", ())
        return GpuDiscovery("nvml", True, None, self.gpus)

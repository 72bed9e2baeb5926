"""The figures a benchmark produces, in one record that the score, the outlier check and results share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figures:
    """What a GPU achieved; ``None`` where a phase could not run (e.g. BF16 before Ampere).

    Matrix products in TFLOP/s, memory and host-link rates in GB/s (10⁹ B/s), usable VRAM in bytes.
    """

    fp32_tflops: float | None = None
    fp16_tflops: float | None = None
    bf16_tflops: float | None = None
    memory_gbps: float | None = None
    host_to_device_gbps: float | None = None
    device_to_host_gbps: float | None = None
    vram_usable_bytes: int | None = None

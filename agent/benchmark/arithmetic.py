"""The benchmark's arithmetic: work counted per operation, rates, and the spread of repeated timings.

Pure functions with exact, documented conventions, so that a figure measured here means the same as a
published one: a matrix product does ``2·m·n·k`` floating-point operations (one multiply and one add per
term), a device-to-device copy moves its size twice (read once, written once, as STREAM's copy counts
it), and a transfer over the host link moves its size once. Units are decimal: 1 TFLOP/s = 10¹² FLOP/s,
1 GB/s = 10⁹ B/s, as in NVIDIA's datasheets.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

CopyKind = Literal["device", "host_to_device", "device_to_host"]

# Usable bytes per second per lane and direction, after line encoding: PCIe 1.x and 2.x use 8b/10b
# (2.5 and 5 GT/s), 3.0 to 5.0 use 128b/130b (8, 16 and 32 GT/s).
_PCIE_LANE_BYTES_PER_S = {
    1: 2.5e9 * 8 / 10 / 8,
    2: 5.0e9 * 8 / 10 / 8,
    3: 8.0e9 * 128 / 130 / 8,
    4: 16.0e9 * 128 / 130 / 8,
    5: 32.0e9 * 128 / 130 / 8,
}


def flops(m: int, n: int, k: int, reps: int = 1) -> int:
    """Floating-point operations of ``reps`` products of an m×k by a k×n matrix: 2·m·n·k each."""
    if min(m, n, k) < 0 or reps < 0:
        raise ValueError("matrix sizes and repetitions cannot be negative")
    return 2 * m * n * k * reps


def copy_bytes(size_bytes: int, kind: CopyKind, reps: int = 1) -> int:
    """Bytes moved by ``reps`` copies of ``size_bytes``: twice the size on the device, once over the link."""
    if size_bytes < 0 or reps < 0:
        raise ValueError("sizes and repetitions cannot be negative")
    per_copy = 2 * size_bytes if kind == "device" else size_bytes
    return per_copy * reps


def tflops(flop_count: int | float, seconds: float) -> float:
    """TFLOP/s (10¹² floating-point operations per second)."""
    return _rate(flop_count, seconds) / 1e12


def gbps(byte_count: int | float, seconds: float) -> float:
    """GB/s (10⁹ bytes per second)."""
    return _rate(byte_count, seconds) / 1e9


def pcie_gbps(generation: int, lanes: int) -> float:
    """The theoretical host-link rate in GB/s per direction: x16 gives 15.75 (3.0), 31.5 (4.0), 63.0 (5.0)."""
    if generation not in _PCIE_LANE_BYTES_PER_S:
        raise ValueError(f"PCIe generation {generation} is not one of {sorted(_PCIE_LANE_BYTES_PER_S)}")
    if lanes <= 0:
        raise ValueError("a PCIe link has at least one lane")
    return _PCIE_LANE_BYTES_PER_S[generation] * lanes / 1e9


def spread(rates: Sequence[float]) -> float:
    """How far repeated measurements disagree: (largest − smallest) / median, 0 for a single one."""
    if not rates:
        raise ValueError("no measurements")
    middle = statistics.median(rates)
    if middle <= 0:
        raise ValueError("rates must be positive")
    return (max(rates) - min(rates)) / middle


def _rate(amount: int | float, seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, not {seconds} s")
    if amount < 0:
        raise ValueError("an amount of work cannot be negative")
    return amount / seconds

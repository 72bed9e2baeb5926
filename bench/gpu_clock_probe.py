"""On a machine with an NVIDIA GPU and PyTorch: why sustained matrix throughput stays below the datasheet.

A datasheet's tensor peak assumes the boost clock. Under a long run of matrix products a board meets its
power limit and lowers its clocks, so what a renter gets for minutes is less than its first burst. This
shows that, or shows it is not so, on the GPU at hand:

1. **Timeline**: BF16 8192³ products on random data for ``--seconds``, timed in windows of ``--window``
   seconds with CUDA events, beside NVML's SM clock, board power and the reasons NVML gives for holding
   the clock down (power cap, thermal, ...), sampled every 50 ms.
2. **Data**: the same products on zeros for a few seconds. Zeros toggle far fewer transistors, so they
   draw less power at the same clock: if throughput rises on zeros, the limit on random data is power.
3. **Sizes**: sustained BF16 throughput of square products from 4096³ to 16384³ (after a warm-up).

Reads only; changes no clock or power setting. Prints Markdown and, with ``--json``, writes the numbers.

    python bench/gpu_clock_probe.py [--gpu 0] [--seconds 8] [--window 0.5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_INTERVAL_S = 0.05
Window = tuple[float, float, float]  # wall-clock start, end, TFLOP/s
SIZES = (4096, 8192, 12288, 16384)

# nvmlClocksEventReason* bits (nvml.h); older names say "Throttle".
REASONS = {
    0x1: "idle",
    0x2: "application clocks",
    0x4: "power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "thermal (software)",
    0x40: "thermal (hardware)",
    0x80: "power brake",
    0x100: "display clocks",
}


@dataclass
class Sample:
    t: float
    sm_mhz: float | None
    power_w: float | None
    temperature_c: float | None
    reasons: int | None


class NvmlSampler:
    """Samples one GPU every 50 ms on a thread, until stopped."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _read(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, function)(self._handle, *args)
        except Exception:  # a reading this GPU or driver lacks is left out
            return None

    def _loop(self) -> None:
        reasons_function = (
            "nvmlDeviceGetCurrentClocksEventReasons"
            if hasattr(self._nvml, "nvmlDeviceGetCurrentClocksEventReasons")
            else "nvmlDeviceGetCurrentClocksThrottleReasons"
        )
        while not self._stop.is_set():
            power = self._read("nvmlDeviceGetPowerUsage")
            self.samples.append(
                Sample(
                    t=time.perf_counter(),
                    sm_mhz=self._read("nvmlDeviceGetClockInfo", self._nvml.NVML_CLOCK_SM),
                    power_w=power / 1000 if power is not None else None,
                    temperature_c=self._read("nvmlDeviceGetTemperature", self._nvml.NVML_TEMPERATURE_GPU),
                    reasons=self._read(reasons_function),
                )
            )
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self) -> NvmlSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> list[Sample]:
        return [sample for sample in self.samples if start <= sample.t < end]


def mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def reason_names(samples: list[Sample]) -> str:
    bits = 0
    for sample in samples:
        bits |= sample.reasons or 0
    names = [name for bit, name in REASONS.items() if bits & bit]
    return ", ".join(names) or "none"


def timed_products(torch: Any, matrices: tuple[Any, Any, Any], *, seconds: float, window: float) -> list[Window]:
    """(start, end, TFLOP/s) per window of back-to-back products, timed on the GPU with CUDA events."""
    a, b, out = matrices
    flops = 2 * a.shape[0] ** 3
    windows = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started_wall = time.perf_counter()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        count = 0
        start.record()
        while time.perf_counter() - started_wall < window:
            for _ in range(4):
                torch.matmul(a, b, out=out)
            count += 4
            if count % 16 == 0:  # keep the queue short, so the window ends when its work does
                torch.cuda.current_stream().synchronize()
        end.record()
        end.synchronize()
        elapsed_s = start.elapsed_time(end) / 1000
        windows.append((started_wall, time.perf_counter(), flops * count / elapsed_s / 1e12))
    return windows


def bf16_matrices(torch: Any, device: Any, size: int) -> tuple[Any, Any, Any]:
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    return a, torch.randn_like(a), torch.empty_like(a)


def timeline(torch: Any, nvml: Any, handle: Any, device: Any, arguments: argparse.Namespace) -> dict[str, Any]:
    """Part 1 and 2: random data for ``--seconds``, then zeros for 3 s, window by window."""
    matrices = bf16_matrices(torch, device, 8192)
    torch.cuda.synchronize(device)
    time.sleep(2.0)  # let the board settle from the allocation
    with NvmlSampler(nvml, handle) as sampler:
        idle_end = time.perf_counter() + 1.0
        time.sleep(1.0)
        random_windows = timed_products(torch, matrices, seconds=arguments.seconds, window=arguments.window)
        matrices[0].zero_()
        matrices[1].zero_()
        zero_windows = timed_products(torch, matrices, seconds=3.0, window=arguments.window)
    print(f"## BF16 8192³ on random data, then on zeros ({arguments.window:g} s windows)\n")
    print("| data | window start (s) | TFLOP/s | SM clock (MHz) | board power (W) | °C | NVML's reasons |")
    print("|---|---|---|---|---|---|---|")
    origin = random_windows[0][0]
    rows = []
    for data, windows in (("random", random_windows), ("zeros", zero_windows)):
        for start, end, tflops in windows:
            samples = sampler.between(start, end)
            temperatures = [s.temperature_c for s in samples if s.temperature_c is not None]
            row = {
                "data": data,
                "start_s": start - origin,
                "tflops": tflops,
                "sm_mhz": mean([s.sm_mhz for s in samples]),
                "power_w": mean([s.power_w for s in samples]),
                "temperature_c": max(temperatures, default=None),
                "reasons": reason_names(samples),
            }
            rows.append(row)
            print(
                f"| {data} | {row['start_s']:.1f} | {tflops:.0f} | {row['sm_mhz'] or 0:.0f} | "
                f"{row['power_w'] or 0:.0f} | {row['temperature_c'] or 0:.0f} | {row['reasons']} |"
            )
    idle = sampler.between(0, idle_end)
    del matrices
    torch.cuda.empty_cache()
    return {
        "idle_sm_mhz": mean([s.sm_mhz for s in idle]),
        "idle_power_w": mean([s.power_w for s in idle]),
        "timeline": rows,
        "samples": [asdict(s) for s in sampler.samples],
    }


def by_size(torch: Any, nvml: Any, handle: Any, device: Any) -> list[dict[str, Any]]:
    """Part 3: sustained throughput of each size in :data:`SIZES`."""
    print("\n## Sustained BF16 throughput by size (1 s warm-up, then 3 s)\n")
    print("| size | TFLOP/s | SM clock (MHz) | board power (W) |")
    print("|---|---|---|---|")
    sizes = []
    for size in SIZES:
        matrices = bf16_matrices(torch, device, size)
        with NvmlSampler(nvml, handle) as sampler:
            timed_products(torch, matrices, seconds=1.0, window=1.0)
            windows = timed_products(torch, matrices, seconds=3.0, window=3.0)
        samples = sampler.between(windows[0][0], windows[-1][1])
        row = {
            "size": size,
            "tflops": statistics.fmean(w[2] for w in windows),
            "sm_mhz": mean([s.sm_mhz for s in samples]),
            "power_w": mean([s.power_w for s in samples]),
        }
        sizes.append(row)
        print(f"| {size}³ | {row['tflops']:.0f} | {row['sm_mhz'] or 0:.0f} | {row['power_w'] or 0:.0f} |")
        del matrices
        torch.cuda.empty_cache()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()

    import pynvml
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device("cuda", arguments.gpu)
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(arguments.gpu)
    name = pynvml.nvmlDeviceGetName(handle)
    limit_w = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
    max_sm = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)
    print(f"# Clock and power probe: {name}, power limit {limit_w:.0f} W, SM clock at most {max_sm} MHz\n")
    report: dict[str, Any] = {"gpu": name, "power_limit_w": limit_w, "max_sm_mhz": max_sm}
    report |= timeline(torch, pynvml, handle, device, arguments)
    report["sizes"] = by_size(torch, pynvml, handle, device)
    pynvml.nvmlShutdown()
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

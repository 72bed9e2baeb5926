"""Is this GPU performing like others of its model? Flags for figures far below, or far above, the norm.

No GPU reaches its datasheet peak, so a figure is compared with what a healthy card of the model
typically achieves: the peak × an efficiency per kind of figure, taken from what cuBLAS and the copy
engines reach on current GPUs:

- FP32 matrix products: 0.70 (SGEMM reaches 70–80 % of the dual-issue FP32 peak of Ampere and later);
- FP16/BF16 tensor products: 0.70 (large products reach 70–85 % of the dense tensor peak);
- memory bandwidth: 0.80 (a device copy reaches 80–90 % of the datasheet bandwidth);
- host link: 0.80 of the theoretical PCIe rate (pinned copies lose the rest to packet overhead).

At their 700 W limit, in quick mode, an H200 measured FP32 0.76, FP16 0.65, BF16 0.68, memory 0.87 and
host link 0.88 of its peaks, and an H100 SXM FP32 0.77, FP16 0.67, BF16 0.70, memory 0.89 and host link
0.87. Under that limit the H100's SMs ran at about 1370 MHz, not the 1.83 GHz its tensor peak assumes
(docs/benchmark.md).

A figure more than 20 % below that expectation is flagged with what to check: for compute, thermals,
the power limit and clocks; for memory, thermals and memory clocks; for the host link, the PCIe slot
(a x16 card in a x4 slot, or a link trained at a lower generation). A figure above 1.5 × the published
peak cannot be right (a wrong model match or a timing fault) and is flagged as implausible. A model
that is not in the reference table is not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.reference_table import GpuReference

FlagKind = Literal["below_typical", "implausible"]
FigureName = Literal[
    "fp32_tflops", "fp16_tflops", "bf16_tflops", "memory_gbps", "host_to_device_gbps", "device_to_host_gbps"
]

BELOW_TOLERANCE = 0.20  # flagged when more than this fraction below the expected figure
IMPLAUSIBLE_ABOVE_PEAK = 1.5  # flagged when more than this multiple of the published peak

_COMPUTE_ADVICE = "check thermals, the power limit and clocks (`nvidia-smi -q -d TEMPERATURE,POWER,CLOCK`)"
_MEMORY_ADVICE = "check thermals and memory clocks (`nvidia-smi -q -d TEMPERATURE,CLOCK`)"
_LINK_ADVICE = (
    "check the PCIe slot: the card should sit in a slot with all its lanes at its PCIe generation "
    "(`nvidia-smi -q | grep -A 8 'GPU Link Info'`; a riser or a chipset slot can halve the link)"
)


@dataclass(frozen=True)
class Flag:
    """One figure out of line with its model, with a message a user can act on."""

    figure: FigureName
    kind: FlagKind
    message: str


@dataclass(frozen=True)
class _Check:
    figure: FigureName
    title: str
    unit: str
    peak: Callable[[GpuReference], float | None]
    efficiency: float
    advice: str


CHECKS: tuple[_Check, ...] = (
    _Check("fp32_tflops", "FP32 matrix multiply", "TFLOP/s", lambda r: r.fp32_tflops, 0.70, _COMPUTE_ADVICE),
    _Check("fp16_tflops", "FP16 matrix multiply", "TFLOP/s", lambda r: r.fp16_tensor_tflops, 0.70, _COMPUTE_ADVICE),
    _Check("bf16_tflops", "BF16 matrix multiply", "TFLOP/s", lambda r: r.bf16_tensor_tflops, 0.70, _COMPUTE_ADVICE),
    _Check("memory_gbps", "memory bandwidth", "GB/s", lambda r: r.memory_gbps, 0.80, _MEMORY_ADVICE),
    _Check("host_to_device_gbps", "host-to-device transfer", "GB/s", lambda r: r.host_link_gbps, 0.80, _LINK_ADVICE),
    _Check("device_to_host_gbps", "device-to-host transfer", "GB/s", lambda r: r.host_link_gbps, 0.80, _LINK_ADVICE),
)
EFFICIENCY: dict[FigureName, float] = {check.figure: check.efficiency for check in CHECKS}


def expected(figure: FigureName, reference: GpuReference) -> float | None:
    """What a healthy GPU of the model typically achieves for ``figure`` (peak × efficiency)."""
    for check in CHECKS:
        if check.figure == figure:
            peak = check.peak(reference)
            return None if peak is None else peak * check.efficiency
    raise KeyError(figure)


def check_figures(figures: Figures, reference: GpuReference | None) -> tuple[Flag, ...]:
    """The flags for ``figures`` against ``reference``; none for an unknown model or a missing figure."""
    if reference is None:
        return ()
    flags: list[Flag] = []
    for check in CHECKS:
        measured: float | None = getattr(figures, check.figure)
        peak = check.peak(reference)
        if measured is None or peak is None:
            continue
        typical = peak * check.efficiency
        if measured > peak * IMPLAUSIBLE_ABOVE_PEAK:
            flags.append(
                Flag(
                    check.figure,
                    "implausible",
                    f"{check.title} measured {measured:.1f} {check.unit}, {measured / peak:.1f}× the published peak "
                    f"of the {reference.model} ({peak:g} {check.unit}): an implausible reading (another model than "
                    "the name says, or a timing fault); run the benchmark again",
                )
            )
        elif measured < typical * (1 - BELOW_TOLERANCE):
            below_percent = round(100 * (1 - measured / typical))
            flags.append(
                Flag(
                    check.figure,
                    "below_typical",
                    f"{check.title} {below_percent} % below typical for this model ({measured:.1f} {check.unit} "
                    f"measured; the {reference.model} typically reaches about {typical:.1f}): {check.advice}",
                )
            )
    return tuple(flags)

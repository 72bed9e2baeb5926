"""One number for a GPU's worth to the marketplace: a weighted geometric mean of its figures.

    score = 1000 × (T / 989.4)^0.5 × (F / 67)^0.2 × (M / 3350)^0.3

T is half-precision tensor throughput in TFLOP/s (BF16, or FP16 where BF16 is missing: Turing, CuPy;
FP32 where neither ran), F is FP32 throughput in TFLOP/s, M is memory bandwidth in GB/s. The divisors
are the H100 SXM's published peaks from the reference table, so its datasheet figures score exactly
1000. Measured figures score less than published ones, since no GPU reaches its datasheet peaks: an
H200 (published figures 1114.0) measured 833 in quick mode; an H100 SXM should measure about 750.

Why these weights: the marketplace's jobs are mostly deep learning, whose time goes into half-precision
matrix products (0.5) and, for inference and anything memory-bound, into memory bandwidth (0.3); FP32
throughput still matters for rendering and scientific work (0.2). A geometric mean rewards balance: a
GPU twice as fast at everything scores twice as high, and no single figure can dominate. VRAM and the
host link are not in the score: they decide whether a job fits or is worth moving, which the
marketplace checks directly.

Test vectors (the reference table's own figures; docs/benchmark.md lists them):
H100 SXM 1000.0, H200 SXM 1114.0, A100 SXM4 80GB 378.0, RTX 4090 297.2, RTX 3060 59.0, and
RTX 2080 Ti 101.8 (Turing: FP16 stands in for BF16).
"""

from __future__ import annotations

import math

from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.reference_table import REFERENCE_GPUS, GpuReference

SCALE = 1000.0
TENSOR_WEIGHT = 0.5
FP32_WEIGHT = 0.2
MEMORY_WEIGHT = 0.3
SCALE_KEY = "h100-sxm"


def _scale_reference() -> GpuReference:
    return next(entry for entry in REFERENCE_GPUS if entry.key == SCALE_KEY)


def score(tensor_tflops: float, fp32_tflops: float, memory_gbps: float) -> float:
    """The score of three positive figures (see the module docstring for the formula)."""
    if min(tensor_tflops, fp32_tflops, memory_gbps) <= 0:
        raise ValueError("scored figures must be positive")
    scale = _scale_reference()
    return SCALE * math.exp(
        TENSOR_WEIGHT * math.log(tensor_tflops / scale.tensor_tflops)
        + FP32_WEIGHT * math.log(fp32_tflops / scale.fp32_tflops)
        + MEMORY_WEIGHT * math.log(memory_gbps / scale.memory_gbps)
    )


def tensor_figure(figures: Figures) -> float | None:
    """The tensor throughput the score uses: BF16, else FP16, else FP32 (a GPU without tensor cores)."""
    for value in (figures.bf16_tflops, figures.fp16_tflops, figures.fp32_tflops):
        if value is not None:
            return value
    return None


def score_figures(figures: Figures) -> float | None:
    """The score of measured figures; ``None`` when FP32 throughput or memory bandwidth is missing."""
    tensor = tensor_figure(figures)
    if tensor is None or figures.fp32_tflops is None or figures.memory_gbps is None:
        return None
    return score(tensor, figures.fp32_tflops, figures.memory_gbps)


def reference_score(entry: GpuReference) -> float:
    """The score of a model's published peaks: what a GPU of that model would score at 100 %."""
    return score(entry.tensor_tflops, entry.fp32_tflops, entry.memory_gbps)

"""The score: its documented test vectors, recomputed from the reference table, and its properties."""

from __future__ import annotations

import math

import pytest

from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.reference import reference_by_key
from sparecycles.agent.benchmark.score import (
    FP32_WEIGHT,
    MEMORY_WEIGHT,
    TENSOR_WEIGHT,
    reference_score,
    score,
    score_figures,
)

# The same values as in docs/benchmark.md and score.py's docstring.
TEST_VECTORS = {
    "h100-sxm": 1000.0,
    "h200-sxm": 1114.0,
    "a100-sxm-80gb": 378.0,
    "rtx-4090": 297.2,
    "rtx-3060": 59.0,
    "rtx-2080-ti": 101.8,
}


@pytest.mark.parametrize(("key", "expected"), TEST_VECTORS.items())
def test_reference_figures_score_the_documented_values(key: str, expected: float) -> None:
    assert round(reference_score(reference_by_key(key)), 1) == expected


def test_the_rtx_3060_vector_by_hand() -> None:
    expected = 1000 * (25.5 / 989.4) ** 0.5 * (12.7 / 67) ** 0.2 * (360 / 3350) ** 0.3
    assert reference_score(reference_by_key("rtx-3060")) == pytest.approx(expected, rel=1e-12)


def test_the_weights_sum_to_one_so_twice_as_fast_scores_twice_as_high() -> None:
    assert math.isclose(TENSOR_WEIGHT + FP32_WEIGHT + MEMORY_WEIGHT, 1.0)
    assert score(200.0, 20.0, 1000.0) == pytest.approx(2 * score(100.0, 10.0, 500.0))


def test_each_figure_counts_with_its_weight() -> None:
    base = score(100.0, 10.0, 500.0)
    assert score(200.0, 10.0, 500.0) / base == pytest.approx(2**TENSOR_WEIGHT)
    assert score(100.0, 20.0, 500.0) / base == pytest.approx(2**FP32_WEIGHT)
    assert score(100.0, 10.0, 1000.0) / base == pytest.approx(2**MEMORY_WEIGHT)


def test_measured_figures_use_bf16_then_fp16_then_fp32() -> None:
    both = Figures(fp32_tflops=10.0, fp16_tflops=80.0, bf16_tflops=40.0, memory_gbps=500.0)
    assert score_figures(both) == score(40.0, 10.0, 500.0)
    no_bf16 = Figures(fp32_tflops=10.0, fp16_tflops=80.0, memory_gbps=500.0)
    assert score_figures(no_bf16) == score(80.0, 10.0, 500.0)
    fp32_only = Figures(fp32_tflops=10.0, memory_gbps=500.0)
    assert score_figures(fp32_only) == score(10.0, 10.0, 500.0)


def test_no_score_without_fp32_or_memory_bandwidth() -> None:
    assert score_figures(Figures(fp16_tflops=80.0, fp32_tflops=10.0)) is None
    assert score_figures(Figures(bf16_tflops=80.0, memory_gbps=500.0)) is None


def test_figures_equal_to_the_scale_gpu_score_the_scale() -> None:
    h100 = reference_by_key("h100-sxm")
    figures = Figures(fp32_tflops=h100.fp32_tflops, bf16_tflops=h100.bf16_tensor_tflops, memory_gbps=h100.memory_gbps)
    assert score_figures(figures) == pytest.approx(1000.0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_figures_cannot_be_scored(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        score(bad, 10.0, 500.0)
    assert math.isfinite(score(1e-6, 1e-6, 1e-6))

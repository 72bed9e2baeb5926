"""The outlier check: a figure 25 % below its model's typical value is flagged, one at it is not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.outliers import EFFICIENCY, check_figures, expected
from sparecycles.agent.benchmark.reference import GpuReference, reference_by_key

H100 = reference_by_key("h100-sxm")
RTX_2080_TI = reference_by_key("rtx-2080-ti")


def typical(reference: GpuReference = H100) -> Figures:
    """A GPU achieving exactly what its model typically does."""
    return Figures(
        fp32_tflops=expected("fp32_tflops", reference),
        fp16_tflops=expected("fp16_tflops", reference),
        bf16_tflops=expected("bf16_tflops", reference),
        memory_gbps=expected("memory_gbps", reference),
        host_to_device_gbps=expected("host_to_device_gbps", reference),
        device_to_host_gbps=expected("device_to_host_gbps", reference),
        vram_usable_bytes=79 * 2**30,
    )


def test_the_expected_figure_is_peak_times_the_documented_efficiency() -> None:
    assert expected("bf16_tflops", H100) == pytest.approx(989.4 * 0.70)
    assert expected("fp32_tflops", H100) == pytest.approx(67 * 0.70)
    assert expected("memory_gbps", H100) == pytest.approx(3350 * 0.80)
    assert expected("host_to_device_gbps", H100) == pytest.approx(H100.host_link_gbps * 0.80)
    assert expected("bf16_tflops", RTX_2080_TI) is None
    assert EFFICIENCY == {
        "fp32_tflops": 0.70,
        "fp16_tflops": 0.70,
        "bf16_tflops": 0.70,
        "memory_gbps": 0.80,
        "host_to_device_gbps": 0.80,
        "device_to_host_gbps": 0.80,
    }


def test_a_gpu_at_its_models_typical_figures_is_not_flagged() -> None:
    assert check_figures(typical(), H100) == ()


# Quick-mode figures measured on the lent device machines (docs/benchmarks.md), each the lowest of its runs.
MEASURED = {
    "h100-sxm": Figures(
        fp32_tflops=51.6,
        fp16_tflops=659.1,
        bf16_tflops=690.8,
        memory_gbps=2985.1,
        host_to_device_gbps=54.8,
        device_to_host_gbps=55.1,
        vram_usable_bytes=round(78.5 * 2**30),
    ),
    "h200-sxm": Figures(
        fp32_tflops=51.1,
        fp16_tflops=637.0,
        bf16_tflops=659.8,
        memory_gbps=4177.0,
        host_to_device_gbps=55.0,
        device_to_host_gbps=55.3,
        vram_usable_bytes=139 * 2**30,
    ),
}


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_the_healthy_gpus_measured_on_real_hardware_are_not_flagged(key: str) -> None:
    """The efficiencies must leave room for what real cards at their power limit sustain."""
    assert check_figures(MEASURED[key], reference_by_key(key)) == ()


def test_bf16_25_percent_below_typical_is_flagged_with_what_to_check() -> None:
    figures = typical()
    low = replace(figures, bf16_tflops=figures.bf16_tflops * 0.75)  # type: ignore[operator]
    (flag,) = check_figures(low, H100)
    assert flag.figure == "bf16_tflops"
    assert flag.kind == "below_typical"
    assert flag.message.startswith("BF16 matrix multiply 25 % below typical for this model")
    assert "power limit" in flag.message


def test_the_threshold_is_20_percent_below_typical() -> None:
    figures = typical()
    at_threshold = replace(figures, fp32_tflops=figures.fp32_tflops * 0.80 + 1e-9)  # type: ignore[operator]
    just_past = replace(figures, fp32_tflops=figures.fp32_tflops * 0.79)  # type: ignore[operator]
    assert check_figures(at_threshold, H100) == ()
    assert [flag.figure for flag in check_figures(just_past, H100)] == ["fp32_tflops"]


def test_each_kind_of_figure_gets_its_own_advice() -> None:
    figures = typical()
    low = replace(
        figures,
        memory_gbps=figures.memory_gbps * 0.5,  # type: ignore[operator]
        host_to_device_gbps=figures.host_to_device_gbps * 0.5,  # type: ignore[operator]
        device_to_host_gbps=figures.device_to_host_gbps * 0.5,  # type: ignore[operator]
    )
    messages = {flag.figure: flag.message for flag in check_figures(low, H100)}
    assert set(messages) == {"memory_gbps", "host_to_device_gbps", "device_to_host_gbps"}
    assert messages["memory_gbps"].startswith("memory bandwidth 50 % below typical")
    assert "memory clocks" in messages["memory_gbps"]
    assert "PCIe slot" in messages["host_to_device_gbps"]
    assert messages["device_to_host_gbps"].startswith("device-to-host transfer 50 % below typical")


def test_far_above_the_published_peak_is_implausible() -> None:
    figures = replace(typical(), fp16_tflops=H100.fp16_tensor_tflops * 2)
    (flag,) = check_figures(figures, H100)
    assert flag.kind == "implausible"
    assert "2.0× the published peak" in flag.message
    assert check_figures(replace(typical(), fp16_tflops=H100.fp16_tensor_tflops * 1.4), H100) == ()


def test_an_unknown_model_or_a_missing_figure_is_not_checked() -> None:
    low = Figures(fp32_tflops=0.1, memory_gbps=0.1)
    assert check_figures(low, None) == ()
    flagged = {flag.figure for flag in check_figures(low, H100)}
    assert flagged == {"fp32_tflops", "memory_gbps"}


def test_turing_has_no_bf16_to_check() -> None:
    figures = replace(typical(RTX_2080_TI), bf16_tflops=0.001)
    assert check_figures(figures, RTX_2080_TI) == ()

"""The benchmark's arithmetic, exactly: FLOP and byte counts, rates, PCIe rates and spread."""

from __future__ import annotations

import pytest

from sparecycles.agent.benchmark.arithmetic import copy_bytes, flops, gbps, pcie_gbps, spread, tflops


def test_a_matrix_product_counts_two_flops_per_multiply_add() -> None:
    assert flops(8192, 8192, 8192) == 2 * 8192**3 == 1_099_511_627_776
    assert flops(2, 3, 4, reps=5) == 240
    assert flops(2, 3, 4, reps=0) == 0


def test_a_device_copy_counts_read_and_write_and_a_transfer_counts_once() -> None:
    assert copy_bytes(100, "device") == 200
    assert copy_bytes(100, "device", reps=3) == 600
    assert copy_bytes(100, "host_to_device", reps=3) == 300
    assert copy_bytes(100, "device_to_host") == 100


@pytest.mark.parametrize(
    "call", [lambda: flops(-1, 1, 1), lambda: flops(1, 1, 1, reps=-1), lambda: copy_bytes(-1, "device")]
)
def test_negative_work_is_refused(call: object) -> None:
    with pytest.raises(ValueError, match="negative"):
        call()  # type: ignore[operator]


def test_rates_are_decimal_units_per_second() -> None:
    assert tflops(2_000_000_000_000, 2.0) == 1.0
    assert tflops(flops(8192, 8192, 8192), 0.001) == pytest.approx(1099.511627776)
    assert gbps(5_000_000_000, 0.5) == 10.0
    assert gbps(copy_bytes(2**30, "device"), 1.0) == 2 * 2**30 / 1e9


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_rate_needs_a_positive_duration(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        tflops(1, seconds)


@pytest.mark.parametrize(
    ("generation", "lanes", "expected"),
    [
        (1, 1, 0.25),
        (2, 16, 8.0),
        (3, 16, 8e9 * 128 / 130 / 8 * 16 / 1e9),  # 15.75
        (4, 16, 16e9 * 128 / 130 / 8 * 16 / 1e9),  # 31.5
        (4, 8, 16e9 * 128 / 130 / 8 * 8 / 1e9),
        (5, 16, 32e9 * 128 / 130 / 8 * 16 / 1e9),  # 63.0
    ],
)
def test_pcie_rates_per_direction(generation: int, lanes: int, expected: float) -> None:
    assert pcie_gbps(generation, lanes) == pytest.approx(expected, rel=1e-12)


def test_pcie_x16_headline_figures() -> None:
    assert round(pcie_gbps(3, 16), 2) == 15.75
    assert round(pcie_gbps(4, 16), 1) == 31.5
    assert round(pcie_gbps(5, 16), 1) == 63.0


@pytest.mark.parametrize(("generation", "lanes"), [(0, 16), (7, 16), (4, 0)])
def test_an_impossible_pcie_link_is_refused(generation: int, lanes: int) -> None:
    with pytest.raises(ValueError, match="PCIe"):
        pcie_gbps(generation, lanes)


def test_spread_is_range_over_median() -> None:
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert spread([5.0]) == 0.0
    with pytest.raises(ValueError, match="no measurements"):
        spread([])

"""The reference table's contents and the matcher from NVML device names to its entries."""

from __future__ import annotations

import pytest

from sparecycles.agent.benchmark.reference import (
    REFERENCE_GPUS,
    match_reference,
    normalise_name,
    reference_by_key,
)

GIB = 1024**3


@pytest.mark.parametrize(
    ("nvml_name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H200", "h200-sxm"),
        ("NVIDIA H200 NVL", "h200-nvl"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-sxm-40gb"),
        ("NVIDIA A100-PCIE-40GB", "a100-pcie-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA GeForce RTX 3060", "rtx-3060"),
        ("NVIDIA GeForce RTX 3060 Ti", "rtx-3060-ti"),
        ("NVIDIA GeForce RTX 4070 Ti SUPER", "rtx-4070-ti-super"),
        ("NVIDIA GeForce RTX 5090", "rtx-5090"),
        ("GeForce RTX 2080 Ti", "rtx-2080-ti"),  # drivers before R470 left "NVIDIA" out
        ("NVIDIA RTX A6000", "rtx-a6000"),
        ("NVIDIA RTX A2000 12GB", "rtx-a2000-12gb"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA L40", "l40"),
        ("NVIDIA L40S", "l40s"),
        ("nvidia  geforce  rtx 4090", "rtx-4090"),
    ],
)
def test_nvml_names_match_their_model(nvml_name: str, key: str) -> None:
    entry = match_reference(nvml_name)
    assert entry is not None
    assert entry.key == key


@pytest.mark.parametrize(
    "nvml_name",
    [
        "NVIDIA GeForce RTX 3060 Laptop GPU",  # not the desktop card: other clocks and power
        "NVIDIA GeForce RTX 4090 D",
        "NVIDIA GeForce GTX 1080 Ti",
        "NVIDIA H800",
        "NVIDIA RTX 4000 SFF Ada Generation",
        "Tesla T4",
        "",
    ],
)
def test_an_unknown_model_has_no_reference(nvml_name: str) -> None:
    assert match_reference(nvml_name) is None


@pytest.mark.parametrize(
    ("nvml_name", "vram_bytes", "key"),
    [
        ("NVIDIA GeForce RTX 3060", 12 * GIB, "rtx-3060"),
        ("NVIDIA GeForce RTX 3060", 8 * GIB - 300 * 2**20, "rtx-3060-8gb"),
        ("NVIDIA GeForce RTX 3060", None, "rtx-3060"),
        ("NVIDIA GeForce RTX 3080", 10 * GIB, "rtx-3080"),
        ("NVIDIA GeForce RTX 3080", 12 * GIB, "rtx-3080-12gb"),
        ("NVIDIA GeForce RTX 4060 Ti", 16 * GIB, "rtx-4060-ti-16gb"),
        ("NVIDIA H100 80GB HBM3", 81559 * 2**20, "h100-sxm"),
    ],
)
def test_memory_tells_variants_of_one_name_apart(nvml_name: str, vram_bytes: int | None, key: str) -> None:
    entry = match_reference(nvml_name, vram_bytes)
    assert entry is not None
    assert entry.key == key


def test_names_are_normalised_without_brand_case_or_punctuation() -> None:
    assert normalise_name("NVIDIA A100-SXM4-80GB") == "a100 sxm4 80gb"
    assert normalise_name(" NVIDIA GeForce RTX 3060 Ti ") == "rtx 3060 ti"


REQUIRED = [
    *("rtx-2060", "rtx-2070", "rtx-2080", "rtx-2080-ti"),
    *("rtx-3060", "rtx-3060-ti", "rtx-3070", "rtx-3080", "rtx-3080-ti", "rtx-3090", "rtx-3090-ti"),
    *("rtx-4060", "rtx-4060-ti", "rtx-4070", "rtx-4070-ti", "rtx-4080", "rtx-4090"),
    *("rtx-5070", "rtx-5070-ti", "rtx-5080", "rtx-5090"),
    *("rtx-a2000", "rtx-a4000", "rtx-a5000", "rtx-a6000", "rtx-4000-ada", "rtx-5000-ada", "rtx-6000-ada"),
    *("a100-pcie-40gb", "a100-pcie-80gb", "a100-sxm-40gb", "a100-sxm-80gb"),
    *("h100-pcie", "h100-sxm", "h100-nvl", "h200-sxm", "l4", "l40", "l40s"),
]


@pytest.mark.parametrize("key", REQUIRED)
def test_the_table_covers_the_models_we_expect(key: str) -> None:
    assert reference_by_key(key).key == key


def test_every_entry_is_complete_and_plausible() -> None:
    keys = [entry.key for entry in REFERENCE_GPUS]
    assert len(keys) == len(set(keys))
    for entry in REFERENCE_GPUS:
        assert entry.source.strip(), entry.key
        assert entry.nvml_names, entry.key
        assert 0 < entry.fp32_tflops < entry.fp16_tensor_tflops, entry.key
        assert min(entry.memory_gbps, entry.vram_gib, entry.board_power_w) > 0, entry.key
        assert (entry.pcie_generation, entry.pcie_lanes) in {(3, 16), (4, 8), (4, 16), (5, 16)}, entry.key
        # BF16 runs at the FP16 rate wherever it exists; only Turing lacks it.
        turing = entry.key.startswith("rtx-20")
        assert (entry.bf16_tensor_tflops is None) == turing, entry.key
        if not turing:
            assert entry.bf16_tensor_tflops == entry.fp16_tensor_tflops, entry.key


def test_every_nvml_name_finds_its_own_entry_or_a_memory_variant() -> None:
    for entry in REFERENCE_GPUS:
        for name in entry.nvml_names:
            assert match_reference(name, int(entry.vram_gib * GIB)) == entry


def test_a_few_published_figures() -> None:
    h100 = reference_by_key("h100-sxm")
    assert (h100.fp32_tflops, h100.bf16_tensor_tflops, h100.memory_gbps, h100.board_power_w) == (67, 989.4, 3350, 700)
    assert round(h100.host_link_gbps, 1) == 63.0
    rtx3060 = reference_by_key("rtx-3060")
    assert (rtx3060.fp32_tflops, rtx3060.fp16_tensor_tflops, rtx3060.memory_gbps) == (12.7, 25.5, 360)
    assert reference_by_key("rtx-2080-ti").tensor_tflops == 53.8  # FP16 stands in for the missing BF16
    assert round(reference_by_key("rtx-4060").host_link_gbps, 2) == 15.75  # PCIe 4.0 x8


def test_an_unknown_key_says_so() -> None:
    with pytest.raises(KeyError, match="no reference GPU"):
        reference_by_key("rtx-9999")
